/**
 * The judge's verdict on two versions' predictions for the same golden rows (pure): the golden-set gate as the
 * release engine applies it after its smoke step (candidate RMSE <= stable RMSE + goldenRmseMargin), and the
 * catalogue's prediction checks (mean shift, PSI) on the two prediction sets, with the catalogue's thresholds
 * and sample rules. Nothing here is a second copy of a threshold: they come from release/.
 */
import { evaluate } from '../release/analysis.js';
import { CATALOGUE, type Catalogue } from '../release/checks/catalogue.js';
import { finding } from '../release/checks/definition.js';
import { DEFAULT_ANALYSIS, DEFAULT_GOLDEN_RMSE_MARGIN } from '../release/defaults.js';
import { compareGolden, type GoldenComparison } from '../release/golden.js';
import { psi, psiSamplingNoise } from '../release/histograms.js';
import type { CheckResult, ColorWindow, HistogramWindow } from '../release/types.js';

export const JUDGE_CHECKS = ['golden', 'agreement', 'all'] as const;
export type JudgeCheck = (typeof JUDGE_CHECKS)[number];
export type Verdict = 'pass' | 'fail' | 'inconclusive';

/** The catalogue's checks of what the new version predicts against the stable one: the rest need live traffic. */
export const PREDICTION_CHECKS: Catalogue = CATALOGUE.filter((c) => c.comparesWithStable && c.name.startsWith('prediction-'));

export const GOLDEN_CHECK = 'golden-rmse';

export interface JudgeInput {
  labels: ArrayLike<number>;
  candidate: ArrayLike<number>;
  stable: ArrayLike<number>;
  /** Upper bounds of the prediction histogram (the instances' own: serve/metrics.ts PREDICTION_BUCKETS). */
  buckets: readonly number[];
  goldenRmseMargin?: number;
}

export interface JudgeFigures {
  rows: number;
  rmse: GoldenComparison['rmse'];
  /** Share of rows where both predictions are within release/defaults.ts AGREEMENT_TOLERANCE. */
  agreement: number;
  meanAbsDelta: number;
  /** Raw PSI of the candidate's predictions against the stable ones, and the part sampling alone explains. */
  psi: number;
  psiNoise: number;
}

export interface JudgeAnswer {
  check: JudgeCheck;
  verdict: Verdict;
  /** One line: why it passes, fails or cannot judge yet. */
  reason: string;
  inconclusive: boolean;
  samples: number;
  figures: JudgeFigures;
  checks: CheckResult[];
}

/** The predictions as the cumulative histogram an instance would have recorded for them. */
export function histogramOf(values: ArrayLike<number>, bounds: readonly number[]): HistogramWindow {
  const les = [...bounds, Number.POSITIVE_INFINITY];
  const counts = new Array<number>(les.length).fill(0);
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    sum += v;
    counts[les.findIndex((le) => v <= le)]++;
  }
  const buckets: HistogramWindow['buckets'] = [];
  let cumulative = 0;
  for (let i = 0; i < les.length; i++) {
    cumulative += counts[i];
    buckets.push({ le: les[i], count: cumulative });
  }
  return { buckets, sum, count: values.length };
}

/** Every golden row answered once, with no error: what a window of the checks needs to know of it. */
function windowOf(values: ArrayLike<number>, bounds: readonly number[]): ColorWindow {
  return { requests: values.length, serverErrors: 0, latency: { buckets: [], sum: 0, count: 0 }, predictions: histogramOf(values, bounds) };
}

/**
 * The golden gate: inconclusive below the analysis' minSamples (too few rows to tell a regression from noise,
 * as for the checks), else the engine's rule.
 */
function goldenGate(cmp: GoldenComparison, margin: number): CheckResult {
  const { candidate, stable } = cmp.rmse;
  const detail = `RMSE ${candidate.toFixed(4)} vs stable ${stable.toFixed(4)} on ${cmp.rows} rows (margin ${margin})`;
  if (cmp.rows < DEFAULT_ANALYSIS.minSamples)
    return { name: GOLDEN_CHECK, ...finding('inconclusive', null, margin, `${cmp.rows} rows < ${DEFAULT_ANALYSIS.minSamples} needed`) };
  return { name: GOLDEN_CHECK, ...finding(candidate <= stable + margin ? 'pass' : 'fail', candidate - stable, margin, detail) };
}

function fold(checks: CheckResult[]): Verdict {
  if (checks.some((c) => c.outcome === 'fail')) return 'fail';
  return checks.some((c) => c.outcome === 'inconclusive') ? 'inconclusive' : 'pass';
}

function reasonFor(verdict: Verdict, checks: CheckResult[]): string {
  const judged = checks.filter((c) => c.outcome === (verdict === 'pass' ? 'pass' : verdict));
  const parts = judged.map(
    (c) => `${c.name}: ${c.detail}${c.value !== null && c.threshold !== null ? ` (${c.value} vs limit ${c.threshold})` : ''}`,
  );
  return `${verdict}: ${parts.join('; ')}`;
}

export function judge(input: JudgeInput, check: JudgeCheck): JudgeAnswer {
  const cmp = compareGolden(input.labels, input.candidate, input.stable);
  const stableWindow = windowOf(input.stable, input.buckets);
  const candidateWindow = windowOf(input.candidate, input.buckets);
  const checks: CheckResult[] = [];
  if (check !== 'agreement') checks.push(goldenGate(cmp, input.goldenRmseMargin ?? DEFAULT_GOLDEN_RMSE_MARGIN));
  if (check !== 'golden') {
    const verdict = evaluate(
      { fromMs: 0, toMs: 0, colors: { blue: stableWindow, green: candidateWindow } },
      DEFAULT_ANALYSIS,
      { target: 'green', stable: 'blue', compareWithStable: true },
      PREDICTION_CHECKS,
    );
    checks.push(...verdict.checks);
  }
  const verdict = fold(checks);
  return {
    check,
    verdict,
    reason: reasonFor(verdict, checks),
    inconclusive: verdict === 'inconclusive',
    samples: cmp.rows,
    figures: {
      rows: cmp.rows,
      rmse: cmp.rmse,
      agreement: cmp.agreement,
      meanAbsDelta: cmp.meanAbsDelta,
      psi: psi(stableWindow.predictions, candidateWindow.predictions),
      psiNoise: psiSamplingNoise(stableWindow.predictions, candidateWindow.predictions),
    },
    checks,
  };
}
