/**
 * Direct scrape of both instances' /metrics (the embedded default: no Prometheus needed). A window is the
 * difference between the snapshot taken when it opened and a fresh one.
 */
import { request } from 'undici';
import { COLORS, type Color } from '../config/defaults.js';
import type { ColorWindow, WindowStats } from '../release/types.js';
import { colorDelta, colorTotals, windowStats } from './color-totals.js';
import { parseExposition } from './prom-text.js';
import type { MetricsProvider } from './types.js';

export interface ScrapeProviderOptions {
  /** Base URL of each color's instance, e.g. http://127.0.0.1:8001 */
  instances: Record<Color, string>;
  timeoutMs?: number;
  /** Baselines kept (one per window opened); older ones are dropped. */
  keep?: number;
}

type Totals = Record<Color, ColorWindow>;

/** A color's /metrics could not be read: the controller treats a lasting one as the instance being down. */
export class ScrapeError extends Error {
  constructor(
    readonly color: Color,
    message: string,
  ) {
    super(message);
  }
}

export class ScrapeProvider implements MetricsProvider {
  readonly kind = 'scrape' as const;
  private readonly baselines = new Map<number, Totals>();

  constructor(private readonly opts: ScrapeProviderOptions) {}

  async scrapeColor(color: Color): Promise<ColorWindow> {
    const url = new URL('/metrics', this.opts.instances[color]);
    const timeout = this.opts.timeoutMs ?? 2_000;
    let text: string;
    try {
      const res = await request(url, { headersTimeout: timeout, bodyTimeout: timeout });
      text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`answered ${res.statusCode}`);
    } catch (err) {
      throw new ScrapeError(color, `scrape of ${color} (${url}) failed: ${(err as Error).message}`);
    }
    return colorTotals(parseExposition(text), color);
  }

  async snapshot(): Promise<Totals> {
    const [blue, green] = await Promise.all(COLORS.map((c) => this.scrapeColor(c)));
    return { blue, green };
  }

  async open(fromMs: number): Promise<void> {
    this.baselines.set(fromMs, await this.snapshot());
    const keep = this.opts.keep ?? 8;
    for (const key of [...this.baselines.keys()].sort((a, b) => a - b).slice(0, Math.max(0, this.baselines.size - keep))) {
      this.baselines.delete(key);
    }
  }

  async window(fromMs: number, toMs: number): Promise<WindowStats> {
    if (!this.baselines.has(fromMs)) await this.open(fromMs);
    const then = this.baselines.get(fromMs) as Totals;
    const now = await this.snapshot();
    return windowStats(fromMs, toMs, { blue: colorDelta(now.blue, then.blue), green: colorDelta(now.green, then.green) });
  }
}
