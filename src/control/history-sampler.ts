/**
 * The I/O half of the controller's history: every few seconds, scrape both instances' /metrics the way the
 * release analysis does without Prometheus (metric-sources/scrape-provider.ts), read the router's weights,
 * and hand the cumulative totals to a MetricHistory.
 */
import { COLORS, type Color } from '../config/defaults.js';
import type { PoolView } from '../controller/pools.js';
import { ScrapeProvider } from '../metric-sources/scrape-provider.js';
import type { Weights } from '../release/types.js';
import type { ColorTotals, CumulativeSample, MetricHistory } from './history.js';

export interface HistorySamplerOptions {
  history: MetricHistory;
  /** Base URL of each color's instance. */
  instances: Record<Color, string>;
  /** Each color's replicas, when a color may have several: their totals are summed, as the analysis does. */
  pools?: PoolView;
  /** The router's weights now. */
  weights: () => Weights;
  /** Default: the history's interval. */
  intervalMs?: number;
  /** Per scrape; kept under the interval so a hung instance cannot pile scrapes up. Default 1 s. */
  timeoutMs?: number;
  now?: () => number;
}

export class HistorySampler {
  private readonly scraper: ScrapeProvider;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(private readonly opts: HistorySamplerOptions) {
    // One attempt: a failed scrape is a gap in the chart, and the next one is only an interval away.
    this.scraper = new ScrapeProvider({
      instances: opts.instances,
      ...(opts.pools ? { pools: opts.pools } : {}),
      timeoutMs: opts.timeoutMs ?? 1_000,
      attempts: 1,
    });
  }

  /** Takes one sample now (skipped while the previous one is still out). */
  sampleOnce(): Promise<void> {
    this.running ??= this.take().finally(() => (this.running = null));
    return this.running;
  }

  private async take(): Promise<void> {
    const results = await Promise.all(
      COLORS.map((c) =>
        this.scraper.scrapeSources(c).then(
          (t): ColorTotals | { error: string } => t,
          (err: unknown) => ({ error: err instanceof Error ? err.message : String(err) }),
        ),
      ),
    );
    const sample: CumulativeSample = {
      at: (this.opts.now ?? Date.now)(),
      weights: { ...this.opts.weights() },
      colors: { blue: results[0], green: results[1] },
    };
    this.opts.history.add(sample);
  }

  start(): void {
    if (this.timer) return;
    void this.sampleOnce();
    this.timer = setInterval(() => void this.sampleOnce(), this.opts.intervalMs ?? this.opts.history.intervalMs);
    // The history is for people looking; it never keeps a process alive.
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
