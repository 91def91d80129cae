/**
 * Minimum-sample rules: when a window holds too few requests for a check to judge. Tail statistics (a p99,
 * PSI over many buckets) need more than averages: with few requests one GC pause is the p99, and sampling
 * noise alone moves PSI.
 */
import type { SampleRule } from './definition.js';

/** The new color answered at least minSamples requests. */
export const targetSamples: SampleRule = ({ target }, config) =>
  target.requests < config.minSamples ? { detail: `${target.requests} requests < ${config.minSamples} needed`, withThreshold: true } : null;

/** As targetSamples, and minTailSamples before `statistic` (e.g. 'a p99') may judge. */
export function targetTailSamples(statistic: string): SampleRule {
  return (w, config) =>
    targetSamples(w, config) ??
    (w.target.requests < config.minTailSamples
      ? { detail: `${w.target.requests} requests < ${config.minTailSamples} needed for ${statistic}`, withThreshold: true }
      : null);
}

/** Both colors answered (and predicted) at least minSamples requests. */
export const pairedSamples: SampleRule = ({ target, stable }, config) => {
  const n = config.minSamples;
  if (target.requests >= n && stable.requests >= n && target.predictions.count >= n && stable.predictions.count >= n) return null;
  return { detail: `samples target=${target.requests} stable=${stable.requests} < ${n} needed`, withThreshold: false };
};

/** As pairedSamples, and minTailSamples on each color before a tail statistic may judge. */
export const pairedTailSamples: SampleRule = (w, config) =>
  pairedSamples(w, config) ??
  (Math.min(w.target.requests, w.stable.requests) < config.minTailSamples
    ? { detail: `samples target=${w.target.requests} stable=${w.stable.requests} < ${config.minTailSamples} needed`, withThreshold: true }
    : null);
