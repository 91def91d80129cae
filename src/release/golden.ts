/** Golden-set comparison of two colors' predictions on the same labelled rows (pure): a regressor's, a classifier's. */
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

/** A classifier's answer to one golden row: its class and its probabilities by class name. */
export interface ClassAnswers {
  predictions: readonly string[];
  probabilities: ReadonlyArray<Readonly<Record<string, number>>>;
}

export interface ClassGoldenComparison {
  rows: number;
  /** Share of rows whose predicted class is the label. */
  accuracy: { candidate: number; stable: number };
  /** Mean -ln p(label), p clipped at 1e-15 as model/metrics.ts does (a label the model lacks counts as p = 0). */
  logLoss: { candidate: number; stable: number };
  /** Share of rows where both versions predict the same class. */
  agreement: number;
}

function accuracy(predicted: readonly string[], labels: readonly string[]): number {
  let hits = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) hits++;
  return hits / labels.length;
}

function logLoss(probabilities: ClassAnswers['probabilities'], labels: readonly string[]): number {
  let loss = 0;
  for (let i = 0; i < labels.length; i++) loss -= Math.log(Math.min(1, Math.max(1e-15, probabilities[i]?.[labels[i]] ?? 0)));
  return loss / labels.length;
}

/** The classification form of compareGolden: class names as labels, accuracy and log-loss for RMSE. */
export function compareGoldenClasses(labels: readonly string[], candidate: ClassAnswers, stable: ClassAnswers): ClassGoldenComparison {
  const n = labels.length;
  const sizes = [candidate.predictions, candidate.probabilities, stable.predictions, stable.probabilities].map((a) => a.length);
  if (n === 0 || sizes.some((s) => s !== n)) {
    throw new Error(`golden comparison needs one class and one probability row per row: ${n} labels, answers ${sizes.join('/')}`);
  }
  let agree = 0;
  for (let i = 0; i < n; i++) if (candidate.predictions[i] === stable.predictions[i]) agree++;
  return {
    rows: n,
    accuracy: { candidate: accuracy(candidate.predictions, labels), stable: accuracy(stable.predictions, labels) },
    logLoss: { candidate: logLoss(candidate.probabilities, labels), stable: logLoss(stable.probabilities, labels) },
    agreement: agree / n,
  };
}
