import type { RegressionMetrics } from './types.js';

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

/** Aligned human-readable lines, as the train and evaluate commands print them. */
export function formatMetrics(m: RegressionMetrics): string {
  const rows: [string, string][] = [
    ['rows', String(m.rows)],
    ['rmse', m.rmse.toFixed(4)],
    ['mae', m.mae.toFixed(4)],
    ['r2', m.r2.toFixed(4)],
    ['accuracy', m.accuracy.toFixed(4)],
  ];
  return rows.map(([k, v]) => `  ${k.padEnd(9)}${v}`).join('\n');
}
