/** Checks on the requests the new color failed. */
import { serverErrorRatio } from '../../monitoring/queries.js';
import { defineCheck, finding, UNITS } from './definition.js';
import { targetSamples } from './samples.js';

/** Share of the new color's requests answered with a 5xx: the instance's fault, not the caller's. */
export const errorRatio = defineCheck({
  name: 'error-ratio',
  unit: UNITS.ratio,
  thresholds: {
    // The stable model answers no 5xx at all; 1% is a clear fault, not noise.
    maxErrorRatio: 0.01,
  },
  comparesWithStable: false,
  samples: targetSamples,
  threshold: (c) => c.maxErrorRatio,
  evaluate({ target: t }, c) {
    const ratio = t.serverErrors / t.requests;
    return finding(
      ratio <= c.maxErrorRatio ? 'pass' : 'fail',
      ratio,
      c.maxErrorRatio,
      `${t.serverErrors} of ${t.requests} requests answered 5xx`,
    );
  },
  promql: ({ target }, c) => ({ query: serverErrorRatio(target), limit: c.maxErrorRatio }),
});
