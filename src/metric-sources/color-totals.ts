/**
 * Per-color cumulative totals of the instance metrics the analysis needs, and the window between two of them.
 * Series are summed over model_version and route: a color's window counts whatever it served. They are kept
 * apart by traffic source: live traffic is what a release is judged on, mirrored (shadow) copies are judged
 * only in the shadow phase, and preview requests (smoke checks, people trying the idle color) never count.
 */
import { COLORS, type Color } from '../config/defaults.js';
import { INSTANCE_METRICS } from '../config/metric-names.js';
import type { ColorWindow, HistogramWindow, WindowStats } from '../release/types.js';
import { parseSampleValue, type Sample } from './prom-text.js';

export function emptyHistogram(): HistogramWindow {
  return { buckets: [], sum: 0, count: 0 };
}

export function emptyColorWindow(): ColorWindow {
  return { requests: 0, serverErrors: 0, latency: emptyHistogram(), predictions: emptyHistogram() };
}

/** Adds cumulative bucket counts by bound, keeping bounds ascending. */
export function addBucket(h: HistogramWindow, le: number, count: number): void {
  const existing = h.buckets.find((b) => b.le === le);
  if (existing) existing.count += count;
  else {
    h.buckets.push({ le, count });
    h.buckets.sort((a, b) => a.le - b.le);
  }
}

function parseLe(text: string | undefined): number | null {
  if (text === undefined) return null;
  const v = parseSampleValue(text);
  return v === null || Number.isNaN(v) ? null : v;
}

/** The sources a window keeps apart; preview is read by nobody. */
export type CountedSource = 'live' | 'mirror';

/** The instance families the analysis reads: the parser skips every other line. */
export const ANALYSIS_FAMILIES: readonly string[] = [INSTANCE_METRICS.requests, INSTANCE_METRICS.latency, INSTANCE_METRICS.predictionValue];

/** A series' traffic source. Instances from before the `source` label served live traffic only. */
export function sampleSource(labels: Record<string, string>): string {
  const source = labels.source;
  return source === undefined || source === '' ? 'live' : source;
}

/** Totals of one color's `source` traffic from its samples (other colors' samples, if any, are ignored). */
export function colorTotals(samples: readonly Sample[], color: Color, source: CountedSource = 'live'): ColorWindow {
  const w = emptyColorWindow();
  const latency = INSTANCE_METRICS.latency;
  const predictions = INSTANCE_METRICS.predictionValue;
  for (const s of samples) {
    if (s.labels.color !== undefined && s.labels.color !== color) continue;
    if (sampleSource(s.labels) !== source) continue;
    switch (s.name) {
      case INSTANCE_METRICS.requests:
        w.requests += s.value;
        if (/^5\d\d$/.test(s.labels.status ?? '')) w.serverErrors += s.value;
        break;
      case `${latency}_bucket`:
      case `${predictions}_bucket`: {
        const le = parseLe(s.labels.le);
        if (le !== null) addBucket(s.name.startsWith(latency) ? w.latency : w.predictions, le, s.value);
        break;
      }
      case `${latency}_sum`:
        w.latency.sum += s.value;
        break;
      case `${latency}_count`:
        w.latency.count += s.value;
        break;
      case `${predictions}_sum`:
        w.predictions.sum += s.value;
        break;
      case `${predictions}_count`:
        w.predictions.count += s.value;
        break;
    }
  }
  return w;
}

function histogramDelta(now: HistogramWindow, then: HistogramWindow): HistogramWindow {
  const before = new Map(then.buckets.map((b) => [b.le, b.count]));
  return {
    buckets: now.buckets.map((b) => ({ le: b.le, count: b.count - (before.get(b.le) ?? 0) })),
    sum: now.sum - then.sum,
    count: now.count - then.count,
  };
}

/**
 * Increase from `then` to `now`. A counter that went down means the instance restarted: as PromQL's
 * increase() does, the new value counts as the increase since the reset.
 */
export function colorDelta(now: ColorWindow, then: ColorWindow): ColorWindow {
  if (now.requests < then.requests || now.latency.count < then.latency.count || now.predictions.count < then.predictions.count) {
    return now;
  }
  return {
    requests: now.requests - then.requests,
    serverErrors: Math.max(0, now.serverErrors - then.serverErrors),
    latency: histogramDelta(now.latency, then.latency),
    predictions: histogramDelta(now.predictions, then.predictions),
  };
}

export function windowStats(
  fromMs: number,
  toMs: number,
  colors: Record<Color, ColorWindow>,
  mirrored?: Record<Color, ColorWindow>,
): WindowStats {
  const pick = (from: Record<Color, ColorWindow>) => Object.fromEntries(COLORS.map((c) => [c, from[c]])) as Record<Color, ColorWindow>;
  return { fromMs, toMs, colors: pick(colors), ...(mirrored ? { mirrored: pick(mirrored) } : {}) };
}
