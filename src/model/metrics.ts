import type { ClassificationMetrics, ModelMetrics, RegressionMetrics } from './types.js';

/** RMSE, MAE, R² and rounded accuracy (share of rows whose rounded prediction equals the label). */
export function regressionMetrics(actual: ArrayLike<number>, predicted: ArrayLike<number>): RegressionMetrics {
  const n = actual.length;
  if (n === 0) throw new Error('cannot compute metrics over zero rows');
  if (predicted.length !== n) throw new Error(`${n} labels but ${predicted.length} predictions`);
  let mean = 0;
  for (let i = 0; i < n; i++) mean += actual[i];
  mean /= n;
  let se = 0;
  let ae = 0;
  let ss = 0;
  let hits = 0;
  for (let i = 0; i < n; i++) {
    const err = predicted[i] - actual[i];
    se += err * err;
    ae += Math.abs(err);
    ss += (actual[i] - mean) ** 2;
    if (Math.round(predicted[i]) === actual[i]) hits++;
  }
  return {
    rmse: Math.sqrt(se / n),
    mae: ae / n,
    // Constant labels: R² is undefined; report 0 rather than NaN, which JSON cannot carry.
    r2: ss === 0 ? 0 : 1 - se / ss,
    accuracy: hits / n,
    rows: n,
  };
}

/**
 * Accuracy (share of rows whose most probable class is the label; ties go to the first class) and log-loss
 * (mean of -ln p(label), p clipped to [1e-15, 1] so that one confident miss is large but finite).
 * labels: class indices; probabilities: nRows x nClasses.
 */
export function classificationMetrics(
  labels: ArrayLike<number>,
  probabilities: ArrayLike<number>,
  nClasses: number,
): ClassificationMetrics {
  const n = labels.length;
  if (n === 0) throw new Error('cannot compute metrics over zero rows');
  if (probabilities.length !== n * nClasses) throw new Error(`${n} labels but ${probabilities.length / nClasses} probability rows`);
  let hits = 0;
  let loss = 0;
  for (let r = 0; r < n; r++) {
    let best = 0;
    for (let k = 1; k < nClasses; k++) if (probabilities[r * nClasses + k] > probabilities[r * nClasses + best]) best = k;
    if (best === labels[r]) hits++;
    loss -= Math.log(Math.min(1, Math.max(1e-15, probabilities[r * nClasses + labels[r]])));
  }
  return { accuracy: hits / n, logLoss: loss / n, rows: n };
}

export function isClassificationMetrics(m: ModelMetrics): m is ClassificationMetrics {
  return (m as Partial<RegressionMetrics>).rmse === undefined;
}

/** Aligned human-readable lines, as the train and evaluate commands print them. */
export function formatMetrics(m: ModelMetrics): string {
  const rows: [string, string][] = isClassificationMetrics(m)
    ? [
        ['rows', String(m.rows)],
        ['accuracy', m.accuracy.toFixed(4)],
        ['log-loss', m.logLoss.toFixed(4)],
      ]
    : [
        ['rows', String(m.rows)],
        ['rmse', m.rmse.toFixed(4)],
        ['mae', m.mae.toFixed(4)],
        ['r2', m.r2.toFixed(4)],
        ['accuracy', m.accuracy.toFixed(4)],
      ];
  return rows.map(([k, v]) => `  ${k.padEnd(9)}${v}`).join('\n');
}
