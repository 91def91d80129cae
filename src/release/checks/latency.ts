/** Checks on how long the new color took to answer, absolutely and against the stable color. */
import { latencyQuantile } from '../../monitoring/queries.js';
import { histogramCountAbove, histogramQuantile } from '../histograms.js';
import type { HistogramWindow } from '../types.js';
import { defineCheck, finding, round, UNITS, type Finding, type SampleConfig } from './definition.js';
import { pairedTailSamples, targetSamples, targetTailSamples } from './samples.js';

/**
 * A p99 over its limit fails only when enough requests back it: one GC pause, or the first requests on a
 * color's cold code path, slow a handful of requests at once, which is the p99 of a few hundred. Fewer
 * requests over the limit than that is inconclusive (the window waits for more), never a pass.
 */
function tailFinding(h: HistogramWindow, limit: number, config: SampleConfig, detail: string): Finding {
  const p99 = histogramQuantile(0.99, h);
  if (p99 === null) return finding('inconclusive', null, limit, 'no samples');
  if (p99 <= limit) return finding('pass', p99, limit, detail);
  const over = histogramCountAbove(h, limit);
  const needed = config.minTailExceedances;
  if (over < needed) {
    return finding(
      'inconclusive',
      p99,
      limit,
      `${detail}; only ${Math.round(over)} requests over the limit, ${needed} needed to judge a tail`,
    );
  }
  return finding('fail', p99, limit, detail);
}

export const latencyP95 = defineCheck({
  name: 'latency-p95',
  unit: UNITS.seconds,
  thresholds: {
    // Inference takes microseconds: this absolute limit catches a hung or thrashing instance.
    maxP95Seconds: 0.1,
  },
  comparesWithStable: false,
  samples: targetSamples,
  threshold: (c) => c.maxP95Seconds,
  evaluate({ target }, c) {
    const p95 = histogramQuantile(0.95, target.latency);
    if (p95 === null) return finding('inconclusive', null, c.maxP95Seconds, 'no samples');
    const outcome = p95 <= c.maxP95Seconds ? 'pass' : 'fail';
    return finding(outcome, p95, c.maxP95Seconds, `${round(p95)}s ${outcome === 'pass' ? '<=' : '>'} ${c.maxP95Seconds}s`);
  },
  promql: ({ target }, c) => ({ query: latencyQuantile(0.95, target), limit: c.maxP95Seconds }),
});

export const latencyP99 = defineCheck({
  name: 'latency-p99',
  unit: UNITS.seconds,
  thresholds: {
    // As the p95's: a hung or thrashing instance, not a slower model (latency-p99-vs-stable judges that).
    maxP99Seconds: 0.25,
  },
  comparesWithStable: false,
  samples: targetTailSamples('a p99'),
  threshold: (c) => c.maxP99Seconds,
  evaluate: ({ target }, c) => tailFinding(target.latency, c.maxP99Seconds, c, `p99 against ${c.maxP99Seconds}s`),
  promql: ({ target }, c) => ({ query: latencyQuantile(0.99, target), limit: c.maxP99Seconds }),
});

/** New p99 <= stable p99 * ratio + slack, both measured in the same window. */
export const latencyP99VsStable = defineCheck({
  name: 'latency-p99-vs-stable',
  unit: UNITS.seconds,
  thresholds: {
    // Twice as slow as the stable color, plus 5 ms of bucket coarseness.
    maxLatencyRatio: 2,
    latencySlackSeconds: 0.005,
  },
  comparesWithStable: true,
  samples: pairedTailSamples,
  // The limit follows the stable color's p99: it is only known from a window.
  threshold: () => null,
  evaluate({ target, stable }, c) {
    const tp99 = histogramQuantile(0.99, target.latency) ?? 0;
    const sp99 = histogramQuantile(0.99, stable.latency) ?? 0;
    const limit = sp99 * c.maxLatencyRatio + c.latencySlackSeconds;
    return tailFinding(
      target.latency,
      round(limit),
      c,
      `p99 ${round(tp99)}s vs stable ${round(sp99)}s (limit ${c.maxLatencyRatio}x + ${c.latencySlackSeconds}s)`,
    );
  },
  // New p99 minus what is allowed relative to the stable color: passes at <= 0.
  promql: ({ target, stable }, c) => ({
    query: `${latencyQuantile(0.99, target)} - (${latencyQuantile(0.99, stable)} * ${c.maxLatencyRatio} + ${c.latencySlackSeconds})`,
    limit: 0,
  }),
});
