/**
 * A bounded traffic generator for the demo (like Flagger's load tester): posts rows to a router's /predict at a
 * fixed rate for a fixed time and counts what answered, by color and model version. Releases are judged on
 * live traffic, so without it a demo release only ever pauses for lack of samples.
 */
import { request } from 'undici';

/** Bounds, so a typo cannot turn a demo into a flood or a process that never ends. */
export const LOAD_LIMITS = { maxRate: 1000, maxDurationMs: 60 * 60_000, maxInFlight: 256 } as const;

export type Row = Readonly<Record<string, number>>;

export interface LoadTally {
  sent: number;
  ok: number;
  failed: number;
  /** Answers by `<color> <version>` (e.g. `blue 1.0.0`). */
  answers: Record<string, number>;
  /** Failures by cause (`HTTP 503`, `ECONNREFUSED`, `skipped: too many in flight`). */
  failures: Record<string, number>;
  elapsedMs: number;
}

export function emptyTally(): LoadTally {
  return { sent: 0, ok: 0, failed: 0, answers: {}, failures: {}, elapsedMs: 0 };
}

const bump = (counts: Record<string, number>, key: string) => {
  counts[key] = (counts[key] ?? 0) + 1;
};

/** What a /predict answer counts as: its color and version, or why it failed. */
export function classify(status: number, body: unknown): { ok: true; key: string } | { ok: false; cause: string } {
  if (status !== 200) return { ok: false, cause: `HTTP ${status}` };
  const b = body as { color?: unknown; model?: { version?: unknown } } | null;
  const color = typeof b?.color === 'string' ? b.color : 'unknown-color';
  const version = typeof b?.model?.version === 'string' ? b.model.version : 'unknown-version';
  return { ok: true, key: `${color} ${version}` };
}

export function record(tally: LoadTally, outcome: ReturnType<typeof classify>): void {
  if (outcome.ok) {
    tally.ok++;
    bump(tally.answers, outcome.key);
  } else {
    tally.failed++;
    bump(tally.failures, outcome.cause);
  }
}

/** One line: `12.0s  sent 240  ok 240  failed 0  |  blue 1.0.0 216, green 1.1.0 24`. */
export function formatTally(t: LoadTally): string {
  const answers = Object.entries(t.answers)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const failures = Object.entries(t.failures)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  return `${(t.elapsedMs / 1000).toFixed(1).padStart(6)}s  sent ${t.sent}  ok ${t.ok}  failed ${t.failed}  |  ${answers || 'no answers'}${failures ? `  |  failures: ${failures}` : ''}`;
}

export interface LoadOptions {
  /** The router's base URL; requests go to <url>/predict. */
  url: string;
  /** Requests per second. */
  rate: number;
  durationMs: number;
  rows: readonly Row[];
  /** Called with a snapshot every reportEveryMs. */
  onReport?: (tally: LoadTally) => void;
  reportEveryMs?: number;
  /** Per-request limit, so a hung router counts as failures instead of holding the run open. */
  requestTimeoutMs?: number;
  /** Stops sending early (Ctrl-C); the requests in flight are still counted. */
  signal?: AbortSignal;
}

async function postOne(url: string, row: Row, timeoutMs: number): Promise<ReturnType<typeof classify>> {
  try {
    const res = await request(`${url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(row),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const text = await res.body.text();
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch {
      // A non-JSON 200 still counts as answered, by an unknown color.
    }
    return classify(res.statusCode, body);
  } catch (err) {
    return { ok: false, cause: (err as NodeJS.ErrnoException).code ?? (err as Error).name };
  }
}

/** Sends rate x duration requests on a fixed schedule (rows in turn), then waits for those in flight. */
export async function runLoad(o: LoadOptions): Promise<LoadTally> {
  if (!(o.rate > 0 && o.rate <= LOAD_LIMITS.maxRate)) throw new RangeError(`rate must be above 0 and at most ${LOAD_LIMITS.maxRate}`);
  if (!(o.durationMs > 0 && o.durationMs <= LOAD_LIMITS.maxDurationMs))
    throw new RangeError(`duration must be above 0 and at most ${LOAD_LIMITS.maxDurationMs / 60_000} minutes`);
  if (o.rows.length === 0) throw new RangeError('no rows to send');
  const url = o.url.replace(/\/+$/, '');
  const tally = emptyTally();
  const started = Date.now();
  const total = Math.max(1, Math.round((o.rate * o.durationMs) / 1000));
  const intervalMs = 1000 / o.rate;
  const inFlight = new Set<Promise<void>>();
  const reporter = o.onReport
    ? setInterval(() => o.onReport?.({ ...tally, elapsedMs: Date.now() - started }), o.reportEveryMs ?? 5000)
    : undefined;
  try {
    for (let i = 0; i < total && !o.signal?.aborted; i++) {
      // A fixed schedule rather than a fixed gap: a slow answer does not lower the rate.
      const wait = started + i * intervalMs - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (o.signal?.aborted) break;
      tally.sent++;
      if (inFlight.size >= LOAD_LIMITS.maxInFlight) {
        record(tally, { ok: false, cause: 'skipped: too many in flight' });
        continue;
      }
      const p: Promise<void> = postOne(url, o.rows[i % o.rows.length], o.requestTimeoutMs ?? 5000).then((outcome) => {
        record(tally, outcome);
        inFlight.delete(p);
      });
      inFlight.add(p);
    }
    await Promise.all(inFlight);
  } finally {
    if (reporter) clearInterval(reporter);
  }
  tally.elapsedMs = Date.now() - started;
  return tally;
}
