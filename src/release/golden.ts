/** Golden-set comparison of two colors' predictions on the same labelled rows (pure). */
import { AGREEMENT_TOLERANCE } from './defaults.js';

export interface GoldenComparison {
  rows: number;
  rmse: { candidate: number; stable: number };
  /** Share of rows where both colors' predictions are within AGREEMENT_TOLERANCE of each other. */
  agreement: number;
  meanAbsDelta: number;
}

function rmse(predicted: ArrayLike<number>, labels: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < labels.length; i++) s += (predicted[i] - labels[i]) ** 2;
  return Math.sqrt(s / labels.length);
}

export function compareGolden(labels: ArrayLike<number>, candidate: ArrayLike<number>, stable: ArrayLike<number>): GoldenComparison {
  const n = labels.length;
  if (n === 0 || candidate.length !== n || stable.length !== n) {
    throw new Error(`golden comparison needs one prediction per row: ${n} labels, ${candidate.length} candidate, ${stable.length} stable`);
  }
  let agree = 0;
  let delta = 0;
  for (let i = 0; i < n; i++) {
    const d = Math.abs(candidate[i] - stable[i]);
    delta += d;
    if (d <= AGREEMENT_TOLERANCE) agree++;
  }
  return {
    rows: n,
    rmse: { candidate: rmse(candidate, labels), stable: rmse(stable, labels) },
    agreement: agree / n,
    meanAbsDelta: delta / n,
  };
}
