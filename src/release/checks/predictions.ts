/** Checks on what the new color predicts, against the stable color's predictions in the same window. */
import { predictionMean, predictionQuantile } from '../../monitoring/queries.js';
import { histogramMean, histogramStd, psi, psiSamplingNoise } from '../histograms.js';
import { defineCheck, finding, round, skipForClassifier, UNITS } from './definition.js';
import { pairedSamples, pairedTailSamples } from './samples.js';

/** Mean prediction shift in units of the stable color's standard deviation. */
export const predictionMeanShift = defineCheck({
  name: 'prediction-mean-shift',
  unit: UNITS.stableStd,
  thresholds: {
    // Half a standard deviation of the stable predictions is a visible change of the model's output.
    maxMeanShiftStd: 0.5,
    // Floor for that standard deviation, so a near-constant stable model does not make every shift huge.
    minPredictionStd: 0.1,
  },
  comparesWithStable: true,
  samples: pairedSamples,
  // A classifier's shift is prediction-psi's, over its predicted class frequencies.
  skip: skipForClassifier,
  threshold: (c) => c.maxMeanShiftStd,
  evaluate({ target, stable }, c) {
    const tm = histogramMean(target.predictions) ?? 0;
    const sm = histogramMean(stable.predictions) ?? 0;
    const std = Math.max(histogramStd(stable.predictions) ?? 0, c.minPredictionStd);
    const shift = Math.abs(tm - sm) / std;
    return finding(
      shift <= c.maxMeanShiftStd ? 'pass' : 'fail',
      shift,
      c.maxMeanShiftStd,
      `mean ${round(tm)} vs stable ${round(sm)} (stable std ${round(std)})`,
    );
  },
  /**
   * Histograms keep no squares, so PromQL estimates the spread as half the 16th-84th percentile range (one
   * standard deviation for a normal shape), floored at minPredictionStd as the check is.
   */
  promql: ({ target, stable }, c) => ({
    query: `abs(${predictionMean(target)} - ${predictionMean(stable)}) / clamp_min((${predictionQuantile(0.84, stable)} - ${predictionQuantile(0.16, stable)}) / 2, ${c.minPredictionStd})`,
    limit: c.maxMeanShiftStd,
  }),
});

/** Population stability index of the new color's prediction histogram against the stable one's. No PromQL. */
export const predictionPsi = defineCheck({
  name: 'prediction-psi',
  unit: UNITS.index,
  thresholds: {
    // PSI: < 0.1 stable, 0.1-0.25 moderate, > 0.25 major shift (the usual credit-scoring reading).
    maxPsi: 0.25,
  },
  comparesWithStable: true,
  samples: pairedTailSamples,
  threshold: (c) => c.maxPsi,
  /**
   * A classifier's series holds class indices: each index falls in its own bucket of the instances' prediction
   * histogram (0, 1, 2, ... are bounds of its 0.25-wide buckets), so this is the PSI of predicted class frequencies.
   */
  evaluate(w, c) {
    const { target, stable } = w;
    const raw = psi(stable.predictions, target.predictions);
    const noise = psiSamplingNoise(stable.predictions, target.predictions);
    // Short windows carry sampling noise of the same size as the threshold: only the PSI above it is a shift.
    const shift = Math.max(0, raw - noise);
    return finding(
      shift <= c.maxPsi ? 'pass' : 'fail',
      shift,
      c.maxPsi,
      `PSI ${round(raw)} of ${w.task === 'classification' ? 'predicted class frequencies' : 'predictions'} vs stable, ${round(noise)} of it expected from sampling alone`,
    );
  },
});
