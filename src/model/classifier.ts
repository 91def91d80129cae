/**
 * Random-forest classification, the way scikit-learn's RandomForestClassifier does it: bootstrap samples (as
 * integer weights), CART trees grown on Gini impurity with the exact best split over sorted values, midpoint
 * thresholds, features drawn per split, each node's value its weighted class shares, and the forest's class
 * probabilities the mean of its trees' leaf shares (the class: the first with the highest mean). Standard
 * scaling is fitted on the training rows as for the regressor (a tree's splits do not depend on it; the runtime
 * and the ONNX export share the regressor's input path). Pure and deterministic, like trainer.ts, which keeps
 * its own loop so the regressor's speed does not pay for this one.
 */
import type { Dataset } from './csv.js';
import { type FlatForest, predictScaledRowOutputs } from './forest.js';
import { classificationMetrics } from './metrics.js';
import type { Prng } from './prng.js';
import {
  NodeList,
  type ForestParams,
  type TrainOptions,
  type TrainedModel,
  TrainOptionsError,
  drawTreeSample,
  growTrees,
  midpoint,
  partitionNode,
  planTraining,
  scaleRows,
} from './trainer.js';

/** One Gini CART tree on a bootstrap sample (trainer.ts's drawTreeSample and partitionNode). */
function growClassTree(
  x: Float64Array,
  y: Int32Array,
  nClasses: number,
  nRows: number,
  nf: number,
  params: ForestParams,
  rng: Prng,
  out: NodeList,
): void {
  const K = nClasses;
  const sample = drawTreeSample(x, nRows, nf, rng);
  const { m, w, col, order } = sample;
  const ys = Int32Array.from(sample.rowsOf, (r) => y[r]);
  const featurePerm = Int32Array.from({ length: nf }, (_, i) => i);
  const total = new Float64Array(K);
  const leftCounts = new Float64Array(K);
  const shares = new Float64Array(K);

  const build = (start: number, end: number, depth: number): number => {
    total.fill(0);
    let W = 0;
    for (let k = start; k < end; k++) {
      const s = order[k];
      W += w[s];
      total[ys[s]] += w[s];
    }
    let sumSq = 0;
    for (let c = 0; c < K; c++) {
      shares[c] = total[c] / W;
      sumSq += total[c] * total[c];
    }
    const node = out.addValues(shares);
    const n = end - start;
    const gini = 1 - sumSq / (W * W);
    if ((params.maxDepth !== null && depth >= params.maxDepth) || n < 2 * params.minSamplesLeaf || gini <= 1e-12) return node;

    // Weighted Gini of the children, wl * (1 - Σ l²/wl²) + wr * (1 - Σ r²/wr²), is smallest where
    // Σ l²/wl + Σ r²/wr (the proxy) is largest; both sums of squares move in O(1) per sample.
    let bestProxy = -Infinity;
    let bestFeature = -1;
    let bestPos = -1;
    let bestThreshold = 0;
    let searched = 0;
    for (let drawn = 0; drawn < nf; drawn++) {
      if (searched >= params.featuresPerSplit && bestFeature >= 0) break;
      const j = drawn + rng.int(nf - drawn);
      const f = featurePerm[j];
      featurePerm[j] = featurePerm[drawn];
      featurePerm[drawn] = f;
      const base = f * m;
      if (col[base + order[base + start]] === col[base + order[base + end - 1]]) continue;
      searched++;
      leftCounts.fill(0);
      let wl = 0;
      let sqL = 0;
      let sqR = sumSq;
      for (let k = start; k < end - 1; k++) {
        const s = order[base + k];
        const c = ys[s];
        const ws = w[s];
        const l = leftCounts[c];
        const r = total[c] - l;
        sqL += 2 * ws * l + ws * ws;
        sqR += -2 * ws * r + ws * ws;
        leftCounts[c] = l + ws;
        wl += ws;
        const v = col[base + s];
        const vNext = col[base + order[base + k + 1]];
        if (v === vNext) continue;
        const nLeft = k - start + 1;
        if (nLeft < params.minSamplesLeaf || n - nLeft < params.minSamplesLeaf) continue;
        const proxy = sqL / wl + sqR / (W - wl);
        if (proxy > bestProxy) {
          bestProxy = proxy;
          bestFeature = f;
          bestPos = nLeft;
          bestThreshold = midpoint(v, vNext);
        }
      }
    }
    if (bestFeature < 0 || bestProxy <= sumSq / W) return node;

    partitionNode(sample, nf, start, end, bestFeature, bestPos);
    out.feature[node] = bestFeature;
    out.threshold[node] = bestThreshold;
    out.left[node] = build(start, start + bestPos, depth + 1);
    out.right[node] = build(start + bestPos, end, depth + 1);
    return node;
  };
  build(0, m, 0);
}

/** Grows the classifier on already-scaled rows; y holds class indices 0..nClasses-1. */
export function growClassifierForest(
  x: Float64Array,
  y: Int32Array,
  nClasses: number,
  nRows: number,
  nFeatures: number,
  params: ForestParams,
  seed: number,
): FlatForest {
  const nodes = new NodeList();
  return growTrees(
    params.trees,
    nFeatures,
    seed,
    nodes,
    (rng) => growClassTree(x, y, nClasses, nRows, nFeatures, params, rng, nodes),
    nClasses,
  );
}

/** Index of the first largest entry of each row of K: the predicted class, as scikit-learn's argmax picks it. */
export function argmaxRows(probabilities: ArrayLike<number>, nRows: number, K: number): Int32Array {
  const out = new Int32Array(nRows);
  for (let r = 0; r < nRows; r++) {
    let best = 0;
    for (let k = 1; k < K; k++) if (probabilities[r * K + k] > probabilities[r * K + best]) best = k;
    out[r] = best;
  }
  return out;
}

export interface TrainedClassifier extends Omit<TrainedModel, 'metrics'> {
  classes: string[];
  /** Probabilities for testRows, testRows.length x classes.length. */
  testProbabilities: Float64Array;
  metrics: ReturnType<typeof classificationMetrics>;
}

/**
 * Trains on `data` whose y holds class indices into `classes`, scored on `testData` when given, else on a
 * held-out share of `data` (as trainModel).
 */
export function trainClassifier(
  data: Dataset,
  classes: string[],
  options: Partial<TrainOptions> = {},
  testData?: Dataset,
): TrainedClassifier {
  if (classes.length < 2) throw new TrainOptionsError(`a classifier needs 2 or more classes, got ${classes.length}`);
  const { opts, nf, train, test, scored, scaler, stats, params } = planTraining(data, options, testData);
  const yTrain = Int32Array.from(train, (r) => data.y![r]);
  const forest = growClassifierForest(scaleRows(data.x, nf, train, scaler), yTrain, classes.length, train.length, nf, params, opts.seed);
  const K = classes.length;
  const xTest = scaleRows(scored.x, nf, test, scaler);
  const testProbabilities = new Float64Array(test.length * K);
  for (let k = 0; k < test.length; k++) predictScaledRowOutputs(forest, xTest, k * nf, testProbabilities, k * K);
  const testPredictions = Float64Array.from(argmaxRows(testProbabilities, test.length, K));
  const yTest = Int32Array.from(test, (r) => scored.y![r]);
  return {
    forest,
    scaler,
    classes,
    featureStats: stats.map((s, j) => ({ name: data.features[j], ...s })),
    trainRows: train,
    testRows: test,
    testPredictions,
    testProbabilities,
    metrics: classificationMetrics(yTest, testProbabilities, K),
    options: opts,
    params,
  };
}
