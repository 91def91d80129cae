/**
 * Direct scrape of both colors' /metrics (the embedded default: no Prometheus needed), on every replica of a
 * color when it has several. A window is the difference between the snapshot taken when it opened and a fresh
 * one, taken replica by replica (a replica that restarted counts from its reset, as PromQL's increase() does; one
 * that appeared since counts whole) and summed over the color. A replica that cannot be read is left out of the
 * sum while another replica of its color answers; a color none of whose replicas answers is unreadable.
 */
import { request } from 'undici';
import { COLORS, type Color } from '../config/defaults.js';
import { type PoolView, replicaUrl } from '../controller/pools.js';
import type { ColorWindow, HistogramWindow, WindowStats } from '../release/types.js';
import { ANALYSIS_FAMILIES, addBucket, colorDelta, colorTotals, emptyColorWindow, windowStats } from './color-totals.js';
import { parseExposition } from './prom-text.js';
import { ColorUnreadableError, type MetricsProvider } from './types.js';

export interface ScrapeProviderOptions {
  /** Base URL of each color's instance, e.g. http://127.0.0.1:8001 */
  instances: Record<Color, string>;
  /** Each color's replicas (read on every snapshot); without it, the one instance per color above. */
  pools?: PoolView;
  /** Per attempt. */
  timeoutMs?: number;
  /** Attempts per scrape: a scrape that fails once (a reset connection, a reload) is tried again at once. */
  attempts?: number;
  retryDelayMs?: number;
  /** Baselines kept (one per window opened); older ones are dropped. */
  keep?: number;
}

/** What one color answered so far, by the traffic sources a window counts. */
interface ColorSnapshot {
  live: ColorWindow;
  mirror: ColorWindow;
}

/** By color, then by replica URL. */
type Totals = Record<Color, Map<string, ColorSnapshot>>;

/** A color's /metrics could not be read: the controller treats a lasting one as the instance being down. */
export class ScrapeError extends ColorUnreadableError {}

/** A color's /metrics answered, but what the analysis needs of it could not be read. */
export class MetricsTextError extends Error {}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ScrapeProvider implements MetricsProvider {
  readonly kind = 'scrape' as const;
  /** Keyed by the window's start; `at` is when the baseline was really taken. */
  private readonly baselines = new Map<number, { at: number; totals: Totals }>();

  constructor(private readonly opts: ScrapeProviderOptions) {}

  private urls(color: Color): string[] {
    return this.opts.pools ? this.opts.pools.replicas(color).map(replicaUrl) : [this.opts.instances[color]];
  }

  private async scrapeOnce(color: Color, base: string): Promise<ColorSnapshot> {
    const url = new URL('/metrics', base);
    const timeout = this.opts.timeoutMs ?? 1_000;
    let text: string;
    try {
      const res = await request(url, { headersTimeout: timeout, bodyTimeout: timeout, signal: AbortSignal.timeout(timeout) });
      text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`answered ${res.statusCode}`);
    } catch (err) {
      throw new ScrapeError(color, `scrape of ${color} (${url}) failed: ${(err as Error).message}`);
    }
    try {
      const samples = parseExposition(text, { families: ANALYSIS_FAMILIES });
      return { live: colorTotals(samples, color, 'live'), mirror: colorTotals(samples, color, 'mirror') };
    } catch (err) {
      throw new MetricsTextError(`metrics of ${color} (${url}) unreadable: ${(err as Error).message}`);
    }
  }

  /** One color's live totals, summed over its replicas (what the status page shows). */
  async scrapeColor(color: Color): Promise<ColorWindow> {
    return sumSnapshots([...(await this.scrapeReplicas(color)).values()]).live;
  }

  /** One color's totals by source, summed over its replicas. */
  async scrapeSources(color: Color): Promise<ColorSnapshot> {
    return sumSnapshots([...(await this.scrapeReplicas(color)).values()]);
  }

  private async scrapeReplica(color: Color, base: string): Promise<ColorSnapshot> {
    const attempts = Math.max(1, this.opts.attempts ?? 3);
    for (let i = 1; ; i++) {
      try {
        return await this.scrapeOnce(color, base);
      } catch (err) {
        if (i >= attempts) throw err;
        await sleep(this.opts.retryDelayMs ?? 100);
      }
    }
  }

  /** Every replica that answers; throws the first error when none does. */
  private async scrapeReplicas(color: Color): Promise<Map<string, ColorSnapshot>> {
    const urls = this.urls(color);
    if (urls.length === 0) throw new ScrapeError(color, `${color} has no replicas to scrape`);
    const results = await Promise.allSettled(urls.map((u) => this.scrapeReplica(color, u)));
    const out = new Map<string, ColorSnapshot>();
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') out.set(urls[i], r.value);
    });
    if (out.size === 0) throw (results[0] as PromiseRejectedResult).reason;
    return out;
  }

  async snapshot(): Promise<Totals> {
    const [blue, green] = await Promise.all(COLORS.map((c) => this.scrapeReplicas(c)));
    return { blue, green };
  }

  async open(fromMs: number): Promise<void> {
    await this.takeBaseline(fromMs, fromMs);
  }

  private async takeBaseline(fromMs: number, at: number): Promise<void> {
    const totals = await this.snapshot();
    this.baselines.set(fromMs, { at, totals });
    const keep = this.opts.keep ?? 8;
    for (const key of [...this.baselines.keys()].sort((a, b) => a - b).slice(0, Math.max(0, this.baselines.size - keep))) {
      this.baselines.delete(key);
    }
  }

  /**
   * When the window's baseline could not be taken as it opened, it is taken now: the window then starts
   * here (its fromMs says so), and the engine waits for a full window from this point.
   */
  async window(fromMs: number, toMs: number): Promise<WindowStats> {
    if (!this.baselines.has(fromMs)) await this.takeBaseline(fromMs, toMs);
    const then = this.baselines.get(fromMs) as { at: number; totals: Totals };
    const now = await this.snapshot();
    const delta = (source: keyof ColorSnapshot) =>
      Object.fromEntries(
        COLORS.map((c) => [
          c,
          sumWindows(
            [...now[c].entries()].map(([url, snap]) => {
              const before = then.totals[c].get(url);
              return before ? colorDelta(snap[source], before[source]) : snap[source];
            }),
          ),
        ]),
      ) as Record<Color, ColorWindow>;
    return windowStats(then.at, Math.max(toMs, then.at), delta('live'), delta('mirror'));
  }
}

function sumHistograms(into: HistogramWindow, h: HistogramWindow): void {
  for (const b of h.buckets) addBucket(into, b.le, b.count);
  into.sum += h.sum;
  into.count += h.count;
}

/** A color's window over its replicas. */
export function sumWindows(windows: readonly ColorWindow[]): ColorWindow {
  const total = emptyColorWindow();
  for (const w of windows) {
    total.requests += w.requests;
    total.serverErrors += w.serverErrors;
    sumHistograms(total.latency, w.latency);
    sumHistograms(total.predictions, w.predictions);
  }
  return total;
}

function sumSnapshots(snaps: readonly ColorSnapshot[]): ColorSnapshot {
  return { live: sumWindows(snaps.map((s) => s.live)), mirror: sumWindows(snaps.map((s) => s.mirror)) };
}
