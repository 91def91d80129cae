/**
 * Direct scrape of both instances' /metrics (the embedded default: no Prometheus needed). A window is the
 * difference between the snapshot taken when it opened and a fresh one.
 */
import { request } from 'undici';
import { COLORS, type Color } from '../config/defaults.js';
import type { ColorWindow, WindowStats } from '../release/types.js';
import { ANALYSIS_FAMILIES, colorDelta, colorTotals, windowStats } from './color-totals.js';
import { parseExposition } from './prom-text.js';
import { ColorUnreadableError, type MetricsProvider } from './types.js';

export interface ScrapeProviderOptions {
  /** Base URL of each color's instance, e.g. http://127.0.0.1:8001 */
  instances: Record<Color, string>;
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

type Totals = Record<Color, ColorSnapshot>;

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

  private async scrapeOnce(color: Color): Promise<ColorSnapshot> {
    const url = new URL('/metrics', this.opts.instances[color]);
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

  /** One color's live totals (what the status page shows). */
  async scrapeColor(color: Color): Promise<ColorWindow> {
    return (await this.scrapeSources(color)).live;
  }

  async scrapeSources(color: Color): Promise<ColorSnapshot> {
    const attempts = Math.max(1, this.opts.attempts ?? 3);
    for (let i = 1; ; i++) {
      try {
        return await this.scrapeOnce(color);
      } catch (err) {
        if (i >= attempts) throw err;
        await sleep(this.opts.retryDelayMs ?? 100);
      }
    }
  }

  async snapshot(): Promise<Totals> {
    const [blue, green] = await Promise.all(COLORS.map((c) => this.scrapeSources(c)));
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
      Object.fromEntries(COLORS.map((c) => [c, colorDelta(now[c][source], then.totals[c][source])])) as Record<Color, ColorWindow>;
    return windowStats(then.at, Math.max(toMs, then.at), delta('live'), delta('mirror'));
  }
}
