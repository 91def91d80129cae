/**
 * Statistics of window histograms, as Prometheus computes them: what the checks measure, and how the windows
 * of two kinds of traffic add up.
 */
import type { ColorWindow, HistogramWindow } from './types.js';

/** Quantile of a cumulative histogram by linear interpolation inside the bucket (as PromQL's histogram_quantile). */
export function histogramQuantile(q: number, h: HistogramWindow): number | null {
  const total = h.buckets.length > 0 ? h.buckets[h.buckets.length - 1].count : 0;
  if (total <= 0) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const { le, count } of h.buckets) {
    if (count >= rank) {
      // The +Inf bucket has no upper bound: report its lower bound, as Prometheus does.
      if (!Number.isFinite(le)) return prevLe;
      const inBucket = count - prevCount;
      if (inBucket <= 0) return le;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / inBucket;
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

function addHistograms(a: HistogramWindow, b: HistogramWindow): HistogramWindow {
  const counts = new Map<number, number>();
  for (const { le, count } of [...a.buckets, ...b.buckets]) counts.set(le, (counts.get(le) ?? 0) + count);
  return {
    buckets: [...counts].sort(([x], [y]) => x - y).map(([le, count]) => ({ le, count })),
    sum: a.sum + b.sum,
    count: a.count + b.count,
  };
}

/** What a color answered in two windows (or two kinds of traffic) together. */
export function addWindows(a: ColorWindow, b: ColorWindow): ColorWindow {
  return {
    requests: a.requests + b.requests,
    serverErrors: a.serverErrors + b.serverErrors,
    latency: addHistograms(a.latency, b.latency),
    predictions: addHistograms(a.predictions, b.predictions),
  };
}

/** Observations above `x` (interpolated inside its bucket; what falls in +Inf counts as above). */
export function histogramCountAbove(h: HistogramWindow, x: number): number {
  const total = h.buckets.length > 0 ? h.buckets[h.buckets.length - 1].count : 0;
  let prevLe = 0;
  let prevCount = 0;
  for (const { le, count } of h.buckets) {
    if (x < le) {
      const below = Number.isFinite(le) && le > prevLe ? prevCount + ((count - prevCount) * (x - prevLe)) / (le - prevLe) : prevCount;
      return Math.max(0, total - below);
    }
    prevLe = le;
    prevCount = count;
  }
  return Math.max(0, total - prevCount);
}

/** Non-cumulative bucket counts over the bounds both histograms share, with each bucket's midpoint. */
function alignedCounts(a: HistogramWindow, b: HistogramWindow): { p: number[]; q: number[]; mids: number[] } {
  const bCounts = new Map(b.buckets.map((x) => [x.le, x.count]));
  const p: number[] = [];
  const q: number[] = [];
  const mids: number[] = [];
  let prevA = 0;
  let prevB = 0;
  let prevLe = Number.NaN;
  for (const { le, count } of a.buckets) {
    const other = bCounts.get(le);
    if (other === undefined) continue;
    p.push(Math.max(0, count - prevA));
    q.push(Math.max(0, other - prevB));
    mids.push(Number.isNaN(prevLe) ? le : Number.isFinite(le) ? (prevLe + le) / 2 : prevLe);
    prevA = count;
    prevB = other;
    prevLe = le;
  }
  return { p, q, mids };
}

/** Non-cumulative bucket shares over the bounds both histograms share. */
function alignedShares(a: HistogramWindow, b: HistogramWindow): { p: number[]; q: number[]; mids: number[] } {
  const { p, q, mids } = alignedCounts(a, b);
  const sa = p.reduce((x, y) => x + y, 0) || 1;
  const sb = q.reduce((x, y) => x + y, 0) || 1;
  return { p: p.map((x) => x / sa), q: q.map((x) => x / sb), mids };
}

/** Pseudo-count added to every bucket either side uses (Jeffreys' prior), so a bucket empty on one side stays finite. */
const PSI_PSEUDO_COUNT = 0.5;

/**
 * Population stability index of `actual` against `expected`, over the buckets either histogram uses.
 * Smoothed with a pseudo-count rather than clamped at a tiny share: a clamp made one stray request in a bucket
 * the other side left empty weigh as much as a real shift.
 */
export function psi(expected: HistogramWindow, actual: HistogramWindow): number {
  const { p, q } = alignedCounts(expected, actual);
  const used = p.map((_, i) => i).filter((i) => p[i] > 0 || q[i] > 0);
  const ne = used.reduce((t, i) => t + p[i], 0) + PSI_PSEUDO_COUNT * used.length;
  const na = used.reduce((t, i) => t + q[i], 0) + PSI_PSEUDO_COUNT * used.length;
  let total = 0;
  for (const i of used) {
    const e = (p[i] + PSI_PSEUDO_COUNT) / ne;
    const a = (q[i] + PSI_PSEUDO_COUNT) / na;
    total += (a - e) * Math.log(a / e);
  }
  return total;
}

/**
 * The PSI two samples of one distribution show on average: (buckets - 1) x (1/n + 1/m), as PSI times the
 * effective sample size is about chi-square with buckets - 1 degrees of freedom. A few hundred requests over a
 * dozen buckets give 0.05-0.1 of PSI from sampling alone, so the check judges what is left above it.
 */
export function psiSamplingNoise(expected: HistogramWindow, actual: HistogramWindow): number {
  const { p, q } = alignedCounts(expected, actual);
  const used = p.filter((x, i) => x > 0 || q[i] > 0).length;
  const ne = p.reduce((t, x) => t + x, 0);
  const na = q.reduce((t, x) => t + x, 0);
  if (used < 2 || ne <= 0 || na <= 0) return 0;
  return (used - 1) * (1 / ne + 1 / na);
}

export function histogramMean(h: HistogramWindow): number | null {
  return h.count > 0 ? h.sum / h.count : null;
}

/** Standard deviation estimated from bucket midpoints (histograms keep no squares). */
export function histogramStd(h: HistogramWindow): number | null {
  const mean = histogramMean(h);
  if (mean === null) return null;
  const { p, mids } = alignedShares(h, h);
  let v = 0;
  for (let i = 0; i < p.length; i++) v += p[i] * (mids[i] - mean) ** 2;
  return Math.sqrt(v);
}
