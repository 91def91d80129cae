/**
 * Pure analysis: turns two colors' window statistics into named checks and one verdict.
 * "Too few samples" is never a pass and never a fail: it is inconclusive.
 */
import type { Color } from '../config/defaults.js';
import { DEFAULT_ANALYSIS } from './defaults.js';
import type { AnalysisConfig, AnalysisVerdict, CheckResult, ColorWindow, HistogramWindow, WindowStats } from './types.js';

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

/** Non-cumulative bucket shares over the bounds both histograms share. */
function alignedShares(a: HistogramWindow, b: HistogramWindow): { p: number[]; q: number[]; mids: number[] } {
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
    p.push(count - prevA);
    q.push(other - prevB);
    mids.push(Number.isNaN(prevLe) ? le : Number.isFinite(le) ? (prevLe + le) / 2 : prevLe);
    prevA = count;
    prevB = other;
    prevLe = le;
  }
  const sa = prevA || 1;
  const sb = prevB || 1;
  return { p: p.map((x) => x / sa), q: q.map((x) => x / sb), mids };
}

/** Shares below this are treated as this, so an empty bucket on one side does not make PSI infinite. */
const PSI_EPSILON = 1e-4;

/** Population stability index of `actual` against `expected`. */
export function psi(expected: HistogramWindow, actual: HistogramWindow): number {
  const { p, q } = alignedShares(expected, actual);
  let total = 0;
  for (let i = 0; i < p.length; i++) {
    const e = Math.max(p[i], PSI_EPSILON);
    const a = Math.max(q[i], PSI_EPSILON);
    total += (a - e) * Math.log(a / e);
  }
  return total;
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

const round = (x: number) => Math.round(x * 1e6) / 1e6;

function check(name: string, outcome: CheckResult['outcome'], value: number | null, threshold: number | null, detail: string): CheckResult {
  return { name, outcome, value: value === null ? null : round(value), threshold, detail };
}

function limitCheck(name: string, value: number | null, limit: number, unit: string): CheckResult {
  if (value === null) return check(name, 'inconclusive', null, limit, 'no samples');
  const outcome = value <= limit ? 'pass' : 'fail';
  return check(name, outcome, value, limit, `${round(value)}${unit} ${outcome === 'pass' ? '<=' : '>'} ${limit}${unit}`);
}

/**
 * A p99 over its limit fails only when enough requests back it: one GC pause, or the first requests on a
 * color's cold code path, slow a handful of requests at once, which is the p99 of a few hundred. Fewer
 * requests over the limit than that is inconclusive (the window waits for more), never a pass.
 */
function tailCheck(name: string, h: HistogramWindow, limit: number, config: AnalysisConfig, detail: string): CheckResult {
  const p99 = histogramQuantile(0.99, h);
  if (p99 === null) return check(name, 'inconclusive', null, limit, 'no samples');
  if (p99 <= limit) return check(name, 'pass', p99, limit, detail);
  const over = histogramCountAbove(h, limit);
  const needed = config.minTailExceedances ?? DEFAULT_ANALYSIS.minTailExceedances ?? 0;
  if (over < needed) {
    return check(name, 'inconclusive', p99, limit, `${detail}; only ${Math.round(over)} requests over the limit, ${needed} needed to judge a tail`);
  }
  return check(name, 'fail', p99, limit, detail);
}

/** Mean prediction shift in units of the stable color's standard deviation. */
function meanShiftCheck(t: ColorWindow, s: ColorWindow, config: AnalysisConfig): CheckResult {
  const tm = histogramMean(t.predictions) ?? 0;
  const sm = histogramMean(s.predictions) ?? 0;
  const std = Math.max(histogramStd(s.predictions) ?? 0, config.minPredictionStd);
  const shift = Math.abs(tm - sm) / std;
  return check('prediction-mean-shift', shift <= config.maxMeanShiftStd ? 'pass' : 'fail', shift, config.maxMeanShiftStd,
    `mean ${round(tm)} vs stable ${round(sm)} (stable std ${round(std)})`);
}

export interface EvaluateOptions {
  target: Color;
  stable: Color;
  /**
   * Whether the stable color serves traffic in this window (canary steps below 100, shadow). When it does not
   * (after a blue-green switch), the relative checks are skipped rather than inconclusive.
   */
  compareWithStable: boolean;
}

/** Runs every check on one window and folds them into a verdict. */
export function evaluate(stats: WindowStats, config: AnalysisConfig, opts: EvaluateOptions): AnalysisVerdict {
  const t: ColorWindow = stats.colors[opts.target];
  const s: ColorWindow = stats.colors[opts.stable];
  const enough = t.requests >= config.minSamples;
  const checks: CheckResult[] = [];
  const tooFew = (name: string, threshold: number) =>
    check(name, 'inconclusive', null, threshold, `${t.requests} requests < ${config.minSamples} needed`);

  if (!enough) {
    checks.push(tooFew('error-ratio', config.maxErrorRatio));
    checks.push(tooFew('latency-p95', config.maxP95Seconds));
    checks.push(tooFew('latency-p99', config.maxP99Seconds));
  } else {
    const ratio = t.serverErrors / t.requests;
    checks.push(
      check('error-ratio', ratio <= config.maxErrorRatio ? 'pass' : 'fail', ratio, config.maxErrorRatio,
        `${t.serverErrors} of ${t.requests} requests answered 5xx`),
    );
    checks.push(limitCheck('latency-p95', histogramQuantile(0.95, t.latency), config.maxP95Seconds, 's'));
    checks.push(
      t.requests >= config.minTailSamples
        ? tailCheck('latency-p99', t.latency, config.maxP99Seconds, config, `p99 against ${config.maxP99Seconds}s`)
        : check('latency-p99', 'inconclusive', null, config.maxP99Seconds, `${t.requests} requests < ${config.minTailSamples} needed for a p99`),
    );
  }

  const relative = ['latency-p99-vs-stable', 'prediction-mean-shift', 'prediction-psi'] as const;
  if (!opts.compareWithStable) {
    for (const name of relative) checks.push(check(name, 'skipped', null, null, 'stable color serves no traffic in this window'));
  } else if (!enough || s.requests < config.minSamples || t.predictions.count < config.minSamples || s.predictions.count < config.minSamples) {
    for (const name of relative) {
      checks.push(check(name, 'inconclusive', null, null, `samples target=${t.requests} stable=${s.requests} < ${config.minSamples} needed`));
    }
  } else if (Math.min(t.requests, s.requests) < config.minTailSamples) {
    const tail = `samples target=${t.requests} stable=${s.requests} < ${config.minTailSamples} needed`;
    checks.push(check('latency-p99-vs-stable', 'inconclusive', null, null, tail));
    checks.push(meanShiftCheck(t, s, config));
    checks.push(check('prediction-psi', 'inconclusive', null, config.maxPsi, tail));
  } else {
    const tp99 = histogramQuantile(0.99, t.latency) ?? 0;
    const sp99 = histogramQuantile(0.99, s.latency) ?? 0;
    const limit = sp99 * config.maxLatencyRatio + config.latencySlackSeconds;
    checks.push(
      tailCheck('latency-p99-vs-stable', t.latency, round(limit), config,
        `p99 ${round(tp99)}s vs stable ${round(sp99)}s (limit ${config.maxLatencyRatio}x + ${config.latencySlackSeconds}s)`),
    );
    checks.push(meanShiftCheck(t, s, config));
    const p = psi(s.predictions, t.predictions);
    checks.push(check('prediction-psi', p <= config.maxPsi ? 'pass' : 'fail', p, config.maxPsi, `PSI ${round(p)} of predictions vs stable`));
  }

  const outcome = checks.some((c) => c.outcome === 'fail')
    ? 'fail'
    : checks.some((c) => c.outcome === 'inconclusive')
      ? 'inconclusive'
      : 'pass';
  return {
    outcome,
    checks,
    // Prometheus' increase() extrapolates: counts may come back fractional.
    samples: { target: Math.round(t.requests), stable: Math.round(s.requests) },
    window: { fromMs: stats.fromMs, toMs: stats.toMs },
  };
}

/** The failing checks in one line, for reasons and CLI output. */
export function describeFailures(verdict: AnalysisVerdict): string {
  return verdict.checks
    .filter((c) => c.outcome === 'fail')
    .map((c) => `${c.name} ${c.value} > ${c.threshold} (${c.detail})`)
    .join('; ');
}
