/**
 * Live per-color numbers for the status page (request rate, 5xx ratio, p99 latency) without Prometheus:
 * the control API scrapes both instances when the page asks, keeps the recent snapshots and compares the
 * newest with one about `windowMs` older.
 */
import { COLORS, type Color } from '../config/defaults.js';
import { ScrapeProvider } from '../metric-sources/scrape-provider.js';
import type { ColorWindow } from '../release/types.js';
import { colorFigures } from './history.js';

export interface LiveColorStats {
  /** Prediction requests per second over the window; null until two snapshots exist. */
  requestRate: number | null;
  /** Share of those answered with a 5xx; null without requests. */
  errorRatio: number | null;
  /** p99 latency in seconds; null without requests. */
  p99Seconds: number | null;
  /** Why there are no numbers (instance unreachable), else null. */
  error: string | null;
}

export interface LiveStats {
  windowSeconds: number | null;
  colors: Record<Color, LiveColorStats>;
}

export interface Snapshot {
  at: number;
  colors: Record<Color, ColorWindow | { error: string }>;
}

function isWindow(v: ColorWindow | { error: string }): v is ColorWindow {
  return !('error' in v);
}

/** The numbers between two snapshots of one color (pure). */
export function liveColorStats(
  then: ColorWindow | { error: string } | undefined,
  now: ColorWindow | { error: string },
  seconds: number,
): LiveColorStats {
  if (!isWindow(now)) return { requestRate: null, errorRatio: null, p99Seconds: null, error: now.error };
  if (then === undefined || !isWindow(then) || seconds <= 0) return { requestRate: null, errorRatio: null, p99Seconds: null, error: null };
  const f = colorFigures(then, now, seconds);
  return { requestRate: f.requestRate, errorRatio: f.errorRatio, p99Seconds: f.p99Seconds, error: null };
}

/** The snapshot to compare `now` with: the newest one at least `windowMs` old, else the oldest one. */
export function baselineFor(snapshots: readonly Snapshot[], now: number, windowMs: number): Snapshot | undefined {
  const older = snapshots.filter((s) => s.at < now);
  const old = older.filter((s) => s.at <= now - windowMs);
  return old.length > 0 ? old[old.length - 1] : older[0];
}

export interface LiveSamplerOptions {
  instances: Record<Color, string>;
  /** Default 10s. */
  windowMs?: number;
  /** Scrapes no more often than this, however many pages poll. Default 1s. */
  minIntervalMs?: number;
  now?: () => number;
}

export class LiveSampler {
  private readonly scraper: ScrapeProvider;
  private snapshots: Snapshot[] = [];
  private inFlight: Promise<Snapshot> | null = null;

  constructor(private readonly opts: LiveSamplerOptions) {
    this.scraper = new ScrapeProvider({ instances: opts.instances, timeoutMs: 1_000 });
  }

  private get windowMs(): number {
    return this.opts.windowMs ?? 10_000;
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  private async take(): Promise<Snapshot> {
    const results = await Promise.all(
      COLORS.map((c) =>
        this.scraper.scrapeColor(c).then(
          (w) => w as ColorWindow | { error: string },
          (err: unknown) => ({ error: err instanceof Error ? err.message : String(err) }),
        ),
      ),
    );
    const snapshot: Snapshot = { at: this.now(), colors: { blue: results[0], green: results[1] } };
    this.snapshots.push(snapshot);
    // Keep a little more than one window.
    const cutoff = snapshot.at - 3 * this.windowMs;
    this.snapshots = this.snapshots.filter((s) => s.at >= cutoff);
    return snapshot;
  }

  /** Live numbers now; scrapes if the newest snapshot is older than minIntervalMs. */
  async stats(): Promise<LiveStats> {
    const last = this.snapshots[this.snapshots.length - 1];
    let current: Snapshot;
    if (last !== undefined && this.now() - last.at < (this.opts.minIntervalMs ?? 1_000)) current = last;
    else {
      this.inFlight ??= this.take().finally(() => (this.inFlight = null));
      current = await this.inFlight;
    }
    const base = baselineFor(this.snapshots, current.at, this.windowMs);
    const seconds = base ? (current.at - base.at) / 1000 : 0;
    const colors = Object.fromEntries(COLORS.map((c) => [c, liveColorStats(base?.colors[c], current.colors[c], seconds)])) as Record<
      Color,
      LiveColorStats
    >;
    return { windowSeconds: base ? seconds : null, colors };
  }
}
