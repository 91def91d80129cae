import { Agent, request } from 'undici';
import { WINE_EXAMPLE } from '../../src/model/wine.js';

export interface LoadCounts {
  sent: number;
  failed: number;
  byColor: Record<string, number>;
  errors: string[];
}

export interface Load {
  /** Counts so far (live object). */
  counts: LoadCounts;
  /** Copy of the counts now, to diff a window. */
  snapshot(): LoadCounts;
  stop(): Promise<LoadCounts>;
}

const BODY = JSON.stringify(WINE_EXAMPLE);

/**
 * Continuous POST /predict load from `concurrency` keep-alive workers until stop() or the deadline, whichever
 * comes first. A request fails unless it gets a 200 with a color in its answer.
 */
export function startLoad(url: string, opts: { concurrency?: number; deadlineMs?: number; headers?: Record<string, string> } = {}): Load {
  const agent = new Agent({ connections: opts.concurrency ?? 8, keepAliveTimeout: 30_000 });
  const deadline = Date.now() + (opts.deadlineMs ?? 60_000);
  const counts: LoadCounts = { sent: 0, failed: 0, byColor: {}, errors: [] };
  let stopped = false;
  const worker = async () => {
    while (!stopped && Date.now() < deadline) {
      counts.sent++;
      try {
        const res = await request(`${url}/predict`, {
          method: 'POST',
          dispatcher: agent,
          headers: { 'content-type': 'application/json', ...opts.headers },
          body: BODY,
        });
        const text = await res.body.text();
        const color = res.statusCode === 200 ? (JSON.parse(text) as { color?: string }).color : undefined;
        if (color === undefined) throw new Error(`status ${res.statusCode}: ${text.slice(0, 200)}`);
        counts.byColor[color] = (counts.byColor[color] ?? 0) + 1;
      } catch (err) {
        counts.failed++;
        if (counts.errors.length < 10) counts.errors.push((err as Error).message);
      }
    }
  };
  const workers = Array.from({ length: opts.concurrency ?? 8 }, worker);
  return {
    counts,
    snapshot: () => structuredClone(counts),
    stop: async () => {
      stopped = true;
      await Promise.all(workers);
      await agent.close();
      return structuredClone(counts);
    },
  };
}

/** Requests per color between two snapshots. */
export function windowCounts(before: LoadCounts, after: LoadCounts): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [color, n] of Object.entries(after.byColor)) out[color] = n - (before.byColor[color] ?? 0);
  return out;
}

/** Sum of a counter over all its label sets, from a Prometheus text scrape. */
/** Sum of a counter's series on an instance; `labels` (e.g. 'source="preview"') keeps only the series with it. */
export async function scrapeCounter(url: string, name: string, labels?: string): Promise<number> {
  const res = await request(`${url}/metrics`);
  const text = await res.body.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (labels !== undefined && !line.includes(labels)) continue;
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
