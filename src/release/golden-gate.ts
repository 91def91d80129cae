/**
 * The golden-set gate the engine applies to a passed smoke check (pure): a regressor's golden RMSE may be worse
 * than the stable color's by at most the margin; a classifier's golden accuracy may be lower by at most the
 * margin (accuracy as a share, so the default 0.05 is five accuracy points). The same `--golden-margin` serves
 * both: one release moves one model, whose task the smoke result says.
 */
import type { SmokeResult } from './types.js';

export interface GoldenGate {
  /** Why the gate refuses the new version, or null. */
  failure: string | null;
  /** The golden figures in a few words for the smoke-passed event ('' when the result has none). */
  summary: string;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

export function goldenGate(r: SmokeResult, margin: number): GoldenGate {
  if (r.accuracy) {
    const { candidate, stable } = r.accuracy;
    const failure =
      candidate < stable - margin
        ? `golden-set accuracy ${pct(candidate)} is worse than stable ${pct(stable)} by more than ${margin} (${(margin * 100).toFixed(1)} points)`
        : null;
    const loss = r.logLoss ? `, log-loss ${r.logLoss.candidate.toFixed(4)} vs ${r.logLoss.stable.toFixed(4)}` : '';
    const same = r.agreement !== null ? `, same class on ${pct(r.agreement)}` : '';
    return { failure, summary: `; golden accuracy ${pct(candidate)} vs stable ${pct(stable)} on ${r.rows} rows${loss}${same}` };
  }
  if (!r.rmse) return { failure: null, summary: '' };
  const failure =
    r.rmse.candidate > r.rmse.stable + margin
      ? `golden-set RMSE ${r.rmse.candidate.toFixed(4)} is worse than stable ${r.rmse.stable.toFixed(4)} by more than ${margin}`
      : null;
  const summary =
    `; golden RMSE ${r.rmse.candidate.toFixed(4)} vs stable ${r.rmse.stable.toFixed(4)} on ${r.rows} rows` +
    (r.agreement !== null && r.meanAbsDelta !== null
      ? `, agreement ${(r.agreement * 100).toFixed(1)}%, mean |delta| ${r.meanAbsDelta.toFixed(3)}`
      : '');
  return { failure, summary };
}
