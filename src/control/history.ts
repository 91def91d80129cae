/**
 * The controller's recent history for the status page's charts and `bgserve status --watch`, kept in memory so
 * it works without Prometheus. Pure: a sampler (history-sampler.ts) feeds it cumulative totals scraped from the
 * instances; this module turns consecutive totals into per-color rates and quantiles, keeps a bounded ring of
 * them, and derives the prediction distributions, release markers and golden-set comparison from its inputs.
 */
import { COLORS, type Color } from '../config/defaults.js';
import { colorDelta, emptyHistogram } from '../metric-sources/color-totals.js';
import { addWindows, histogramQuantile } from '../release/histograms.js';
import type { ColorWindow, EventType, HistogramWindow, ReleaseEvent, ReleaseState, Weights } from '../release/types.js';

export const HISTORY_WINDOW_MS = 15 * 60_000;
export const HISTORY_INTERVAL_MS = 2_000;

/** One color's figures between two samples; null where there is nothing to compute them from. */
export interface ColorFigures {
  /** Live prediction requests per second. */
  requestRate: number | null;
  /** Share of those answered with a 5xx; null without requests. */
  errorRatio: number | null;
  p50Seconds: number | null;
  p99Seconds: number | null;
}

export interface ColorPoint extends ColorFigures {
  /** Percent of live traffic the router gave this color when the sample was taken. */
  weight: number;
  /** Why the color's metrics could not be read (its figures are then null), else absent. */
  error?: string;
}

export interface HistoryPoint {
  at: number;
  colors: Record<Color, ColorPoint>;
}

/** What one color's /metrics said, cumulative, by the traffic sources kept apart (preview is never counted). */
export interface ColorTotals {
  live: ColorWindow;
  mirror: ColorWindow;
}

/** One scrape of both colors, as the sampler hands it over. */
export interface CumulativeSample {
  at: number;
  weights: Weights;
  colors: Record<Color, ColorTotals | { error: string }>;
}

function readable(v: ColorTotals | { error: string } | undefined): v is ColorTotals {
  return v !== undefined && !('error' in v);
}

const NO_FIGURES: ColorFigures = { requestRate: null, errorRatio: null, p50Seconds: null, p99Seconds: null };

/** Rates and quantiles of one color's live traffic between two cumulative totals `seconds` apart. */
export function colorFigures(then: ColorWindow, now: ColorWindow, seconds: number): ColorFigures {
  if (seconds <= 0) return NO_FIGURES;
  // A restarted instance's counters start again from zero: colorDelta counts them from the reset, as PromQL does.
  const d = colorDelta(now, then);
  const any = d.requests > 0;
  return {
    requestRate: d.requests / seconds,
    errorRatio: any ? d.serverErrors / d.requests : null,
    p50Seconds: any ? histogramQuantile(0.5, d.latency) : null,
    p99Seconds: any ? histogramQuantile(0.99, d.latency) : null,
  };
}

/** The chart point for `now`, given the sample before it (none: the first sample has no rates yet). */
export function pointBetween(prev: CumulativeSample | undefined, now: CumulativeSample): HistoryPoint {
  const seconds = prev ? (now.at - prev.at) / 1000 : 0;
  const colors = {} as Record<Color, ColorPoint>;
  for (const c of COLORS) {
    const cur = now.colors[c];
    const before = prev?.colors[c];
    const weight = now.weights[c];
    if (!readable(cur)) colors[c] = { ...NO_FIGURES, weight, error: cur.error };
    else colors[c] = { ...(readable(before) ? colorFigures(before.live, cur.live, seconds) : NO_FIGURES), weight };
  }
  return { at: now.at, colors };
}

/** A color's prediction histogram as counts per bucket (not cumulative): what a distribution chart draws. */
export interface Distribution {
  /** Upper bounds, ascending; the last is +Inf when the instance exports it. */
  buckets: Array<{ le: number; count: number }>;
  total: number;
}

/** Per-bucket counts of the predictions made between two cumulative histograms (a reset counts from zero). */
export function distributionBetween(then: HistogramWindow | undefined, now: HistogramWindow): Distribution {
  const reset = then === undefined || now.count < then.count;
  const before = new Map((reset ? [] : then.buckets).map((b) => [b.le, b.count]));
  let prevCumulative = 0;
  const buckets = now.buckets.map((b) => {
    const cumulative = Math.max(0, b.count - (before.get(b.le) ?? 0));
    const count = Math.max(0, cumulative - prevCumulative);
    prevCumulative = cumulative;
    return { le: b.le, count };
  });
  return { buckets, total: prevCumulative };
}

interface Entry {
  point: HistoryPoint;
  /** Cumulative predictions of each color (live and mirrored: a shadow only ever answers mirrored copies). */
  predictions: Record<Color, HistogramWindow | null>;
}

export interface MetricHistoryOptions {
  /** How far back points are kept. Default 15 minutes. */
  windowMs?: number;
  /** The sampling interval: with windowMs, bounds how many points are kept. Default 2 s. */
  intervalMs?: number;
}

/**
 * A bounded ring of chart points: at most windowMs / intervalMs + 1 entries, none older than windowMs behind
 * the newest, whatever the sampler does (a stalled or too-eager sampler cannot grow it).
 */
export class MetricHistory {
  readonly windowMs: number;
  readonly intervalMs: number;
  readonly capacity: number;
  private readonly entries: Entry[] = [];
  private last: CumulativeSample | undefined;

  constructor(opts: MetricHistoryOptions = {}) {
    this.windowMs = opts.windowMs ?? HISTORY_WINDOW_MS;
    this.intervalMs = opts.intervalMs ?? HISTORY_INTERVAL_MS;
    this.capacity = Math.ceil(this.windowMs / this.intervalMs) + 1;
  }

  /** Adds a scrape; one that is not newer than the last one is ignored (clocks and late answers). */
  add(sample: CumulativeSample): HistoryPoint | undefined {
    if (this.last && sample.at <= this.last.at) return undefined;
    const point = pointBetween(this.last, sample);
    const predictions = {} as Record<Color, HistogramWindow | null>;
    for (const c of COLORS) {
      const totals = sample.colors[c];
      predictions[c] = readable(totals) ? addWindows(totals.live, totals.mirror).predictions : null;
    }
    this.entries.push({ point, predictions });
    this.last = sample;
    const cutoff = sample.at - this.windowMs;
    let drop = Math.max(0, this.entries.length - this.capacity);
    while (drop < this.entries.length && this.entries[drop].point.at < cutoff) drop++;
    if (drop > 0) this.entries.splice(0, drop);
    return point;
  }

  get size(): number {
    return this.entries.length;
  }

  /** Points taken after `sinceMs` (all of them by default), oldest first. */
  points(sinceMs = -Infinity): HistoryPoint[] {
    return this.entries.filter((e) => e.point.at > sinceMs).map((e) => e.point);
  }

  /**
   * Each color's predictions over the kept window: the newest cumulative histogram less the oldest one that
   * color could be read at. An empty distribution when the color was never read or answered nothing.
   */
  distributions(): Record<Color, Distribution> {
    const out = {} as Record<Color, Distribution>;
    for (const c of COLORS) {
      const readings = this.entries.map((e) => e.predictions[c]).filter((h): h is HistogramWindow => h !== null);
      const newest = readings[readings.length - 1];
      out[c] = newest ? distributionBetween(readings.length > 1 ? readings[0] : emptyHistogram(), newest) : { buckets: [], total: 0 };
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Release markers and the golden-set comparison: read from the release log, not sampled.

/** Events that move traffic or end a release: the ones worth a vertical line on a chart. */
export const MARKER_EVENTS: readonly EventType[] = [
  'release-started',
  'shadow-started',
  'step-started',
  'switched',
  'promoted',
  'paused',
  'resumed',
  'rolled-back',
  'aborted',
  'succeeded',
];

export interface Marker {
  at: number;
  releaseId: string;
  type: EventType;
  reason: string;
}

/** The marker events of `releases` at or after `sinceMs`, oldest first. */
export function releaseMarkers(
  releases: readonly ReleaseState[],
  eventsOf: (releaseId: string) => readonly ReleaseEvent[],
  sinceMs: number,
): Marker[] {
  const markers: Marker[] = [];
  for (const r of releases) {
    if (r.updatedAt < sinceMs) continue;
    for (const e of eventsOf(r.spec.id)) {
      if (e.at >= sinceMs && MARKER_EVENTS.includes(e.type))
        markers.push({ at: e.at, releaseId: e.releaseId, type: e.type, reason: e.reason });
    }
  }
  return markers.sort((a, b) => a.at - b.at);
}

/** What the smoke phase measured on the bundle's golden rows, both versions answering the same rows. */
export interface GoldenComparison {
  releaseId: string;
  passed: boolean;
  rows: number;
  versions: { candidate: string; stable: string | null };
  colors: { candidate: Color; stable: Color };
  rmse: { candidate: number; stable: number };
  /** Share of rows on which both versions agree; null when the smoke phase could not pair them. */
  agreement: number | null;
  meanAbsDelta: number | null;
}

function finite(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** The golden-set comparison of `release` from its latest smoke event, or null when it has none with RMSEs. */
export function goldenComparison(release: ReleaseState, events: readonly ReleaseEvent[]): GoldenComparison | null {
  const smoke = [...events].reverse().find((e) => e.type === 'smoke-passed' || e.type === 'smoke-failed');
  const v = smoke?.values;
  const rmse = v?.rmse as { candidate?: unknown; stable?: unknown } | null | undefined;
  const candidate = finite(rmse?.candidate);
  const stable = finite(rmse?.stable);
  if (!smoke || !v || candidate === null || stable === null) return null;
  return {
    releaseId: release.spec.id,
    passed: smoke.type === 'smoke-passed',
    rows: finite(v.rows) ?? 0,
    versions: { candidate: release.spec.version, stable: release.spec.stableVersion ?? null },
    colors: { candidate: release.spec.targetColor, stable: release.spec.stableColor },
    rmse: { candidate, stable },
    agreement: finite(v.agreement),
    meanAbsDelta: finite(v.meanAbsDelta),
  };
}
