/**
 * Random-forest regression, the way scikit-learn's Pipeline(StandardScaler, RandomForestRegressor) does it:
 * standard scaling fitted on the training rows, bootstrap samples (as integer weights), CART trees grown on
 * variance reduction with the exact best split over sorted values, midpoint thresholds, features drawn per
 * split. Pure: no I/O, deterministic for a given data set, options and seed.
 */
import { type FlatForest, LEAF, predictScaledRow } from './forest.js';
import { Prng } from './prng.js';
import { regressionMetrics } from './metrics.js';
import type { Dataset } from './csv.js';
import type { FeatureSpec, RegressionMetrics } from './types.js';

/** Features tried per split: a share of them (0, 1], a count (integer > 1), or a rule. */
export type MaxFeatures = number | 'all' | 'sqrt' | 'log2';

export interface TrainOptions {
  trees: number;
  /** null: grow until leaves are pure or too small. */
  maxDepth: number | null;
  minSamplesLeaf: number;
  maxFeatures: MaxFeatures;
  seed: number;
  /** Share of rows held out for the metrics (and the golden set); 0 when a separate test table is given. */
  testFraction: number;
}

export const DEFAULT_TRAIN_OPTIONS: TrainOptions = {
  trees: 100,
  maxDepth: null,
  minSamplesLeaf: 1,
  maxFeatures: 'all',
  seed: 42,
  testFraction: 0.2,
};

export class TrainOptionsError extends Error {
  override name = 'TrainOptionsError';
}

/** `externalTest`: the metrics come from a separate table, so holding nothing out (testFraction 0) is valid. */
export function checkTrainOptions(opts: TrainOptions, externalTest = false): void {
  const posInt = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw new TrainOptionsError(`${name} must be a positive integer, got ${v}`);
  };
  posInt('trees', opts.trees);
  posInt('minSamplesLeaf', opts.minSamplesLeaf);
  if (opts.maxDepth !== null) posInt('maxDepth', opts.maxDepth);
  if (!Number.isSafeInteger(opts.seed)) throw new TrainOptionsError(`seed must be an integer, got ${opts.seed}`);
  if (externalTest) {
    // Rows held out of the training data would be scored nowhere: train on all of them.
    if (opts.testFraction !== 0)
      throw new TrainOptionsError(`with a separate test table nothing is held out: testFraction must be 0, got ${opts.testFraction}`);
  } else if (!(opts.testFraction > 0 && opts.testFraction < 1)) {
    throw new TrainOptionsError(`testFraction must be in (0, 1) without a separate test table, got ${opts.testFraction}`);
  }
  const mf = opts.maxFeatures;
  if (typeof mf === 'number' && !(mf > 0 && (mf <= 1 || Number.isInteger(mf)))) {
    throw new TrainOptionsError(`maxFeatures must be a share in (0, 1] or an integer count, got ${mf}`);
  }
  if (typeof mf === 'string' && !['all', 'sqrt', 'log2'].includes(mf)) {
    throw new TrainOptionsError(`maxFeatures must be all, sqrt, log2 or a number, got ${mf}`);
  }
}

/** Number of features tried per split, as scikit-learn resolves max_features. */
export function resolveMaxFeatures(mf: MaxFeatures, nFeatures: number): number {
  if (mf === 'all') return nFeatures;
  if (mf === 'sqrt') return Math.max(1, Math.floor(Math.sqrt(nFeatures)));
  if (mf === 'log2') return Math.max(1, Math.floor(Math.log2(nFeatures)));
  if (mf <= 1) return Math.max(1, Math.floor(mf * nFeatures));
  return Math.min(nFeatures, mf);
}

/** Deterministic shuffled split; both index lists are returned in ascending order. */
export function splitRows(nRows: number, testFraction: number, seed: number): { train: Int32Array; test: Int32Array } {
  const perm = new Prng(seed).shuffle(Int32Array.from({ length: nRows }, (_, i) => i));
  const nTest = Math.ceil(testFraction * nRows);
  if (nTest < 1 || nTest >= nRows) throw new TrainOptionsError(`cannot hold out ${nTest} of ${nRows} rows`);
  return { test: perm.slice(0, nTest).sort(), train: perm.slice(nTest).sort() };
}

export interface Scaler {
  mean: number[];
  scale: number[];
}

/** Mean and population standard deviation per feature (StandardScaler); a constant feature gets scale 1. */
export function fitScaler(
  x: Float64Array,
  nFeatures: number,
  rows: ArrayLike<number>,
): { scaler: Scaler; stats: Omit<FeatureSpec, 'name'>[] } {
  const n = rows.length;
  const mean: number[] = [];
  const scale: number[] = [];
  const stats: Omit<FeatureSpec, 'name'>[] = [];
  for (let j = 0; j < nFeatures; j++) {
    let sum = 0;
    let min = Infinity;
    let max = -Infinity;
    for (let k = 0; k < n; k++) {
      const v = x[rows[k] * nFeatures + j];
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const m = sum / n;
    let ss = 0;
    for (let k = 0; k < n; k++) ss += (x[rows[k] * nFeatures + j] - m) ** 2;
    const std = Math.sqrt(ss / n);
    mean.push(m);
    scale.push(std === 0 ? 1 : std);
    stats.push({ min, max, mean: m, std });
  }
  return { scaler: { mean, scale }, stats };
}

/** Scales the given rows into a new row-major matrix; the runtimes apply exactly this arithmetic. */
export function scaleRows(x: Float64Array, nFeatures: number, rows: ArrayLike<number>, scaler: Scaler): Float64Array {
  const out = new Float64Array(rows.length * nFeatures);
  for (let k = 0; k < rows.length; k++) {
    for (let j = 0; j < nFeatures; j++) out[k * nFeatures + j] = (x[rows[k] * nFeatures + j] - scaler.mean[j]) / scaler.scale[j];
  }
  return out;
}

export interface ForestParams {
  trees: number;
  maxDepth: number | null;
  minSamplesLeaf: number;
  /** Resolved count of features tried per split. */
  featuresPerSplit: number;
}

/** Growable node arrays for one tree, appended in preorder. */
export class NodeList {
  feature: number[] = [];
  threshold: number[] = [];
  left: number[] = [];
  right: number[] = [];
  value: number[] = [];
  add(value: number): number {
    this.feature.push(LEAF);
    this.threshold.push(0);
    this.left.push(-1);
    this.right.push(-1);
    this.value.push(value);
    return this.value.length - 1;
  }
  /** A node of a multi-output tree: its values (a classifier's class shares) appended together. */
  addValues(values: ArrayLike<number>): number {
    this.feature.push(LEAF);
    this.threshold.push(0);
    this.left.push(-1);
    this.right.push(-1);
    for (let k = 0; k < values.length; k++) this.value.push(values[k]);
    return this.feature.length - 1;
  }
}

/**
 * Grows `trees` trees into `nodes`, tree t with fork t of the seed's generator, and flattens them. Node
 * indices are appended tree after tree, so each tree's preorder indices are already absolute.
 */
export function growTrees(
  trees: number,
  nFeatures: number,
  seed: number,
  nodes: NodeList,
  growOne: (rng: Prng) => void,
  nOutputs = 1,
): FlatForest {
  const master = new Prng(seed ^ 0x2f6b3c5d);
  const treeOffsets = new Int32Array(trees + 1);
  for (let t = 0; t < trees; t++) {
    growOne(master.fork(t));
    treeOffsets[t + 1] = nodes.feature.length;
  }
  return {
    nTrees: trees,
    nFeatures,
    treeOffsets,
    feature: Int32Array.from(nodes.feature),
    threshold: Float64Array.from(nodes.threshold),
    left: Int32Array.from(nodes.left),
    right: Int32Array.from(nodes.right),
    value: Float64Array.from(nodes.value),
    ...(nOutputs > 1 ? { nOutputs } : {}),
  };
}

/** The split threshold between neighbouring values v < vNext: their midpoint, unless rounding puts it on vNext. */
export function midpoint(v: number, vNext: number): number {
  const t = v / 2 + vNext / 2;
  return t === vNext || !Number.isFinite(t) ? v : t;
}

/**
 * A tree's bootstrap sample laid out for the split search (the regressor's and the classifier's). Samples are
 * the distinct drawn rows with their draw counts as weights (as scikit-learn does). Each feature keeps its own
 * presorted order of the samples; a node is the same range [start, end) in every order, and splitting
 * partitions every order stably (partitionNode), so no sorting happens after the start.
 */
export interface TreeSample {
  m: number;
  /** The training row of each sample. */
  rowsOf: number[];
  /** Draw count of each sample: its weight. */
  w: Float64Array;
  /** col[f * m + s]: feature f of sample s. */
  col: Float64Array;
  /** order[f * m + k]: the sample at rank k of feature f (ties by sample). */
  order: Int32Array;
  goesLeft: Uint8Array;
  scratch: Int32Array;
}

export function drawTreeSample(x: Float64Array, nRows: number, nf: number, rng: Prng): TreeSample {
  const counts = new Int32Array(nRows);
  for (let i = 0; i < nRows; i++) counts[rng.int(nRows)]++;
  const rowsOf: number[] = [];
  for (let i = 0; i < nRows; i++) if (counts[i] > 0) rowsOf.push(i);
  const m = rowsOf.length;
  const w = new Float64Array(m);
  const col = new Float64Array(nf * m);
  for (let s = 0; s < m; s++) {
    const r = rowsOf[s];
    w[s] = counts[r];
    for (let f = 0; f < nf; f++) col[f * m + s] = x[r * nf + f];
  }
  const order = new Int32Array(nf * m);
  for (let f = 0; f < nf; f++) {
    const idx = Array.from({ length: m }, (_, s) => s);
    idx.sort((a, b) => col[f * m + a] - col[f * m + b] || a - b);
    order.set(idx, f * m);
  }
  return { m, rowsOf, w, col, order, goesLeft: new Uint8Array(m), scratch: new Int32Array(m) };
}

/** Splits the node [start, end) of every order: its first nLeft samples in `feature`'s order first, stably. */
export function partitionNode(sample: TreeSample, nf: number, start: number, end: number, feature: number, nLeft: number): void {
  const { m, order, goesLeft, scratch } = sample;
  const bBase = feature * m;
  for (let k = start; k < end; k++) goesLeft[order[bBase + k]] = k - start < nLeft ? 1 : 0;
  for (let f = 0; f < nf; f++) {
    const base = f * m;
    let l = base + start;
    let r = 0;
    for (let k = start; k < end; k++) {
      const s = order[base + k];
      if (goesLeft[s]) order[l++] = s;
      else scratch[r++] = s;
    }
    order.set(scratch.subarray(0, r), l);
  }
}

/** One CART tree grown on variance reduction over a bootstrap sample (drawTreeSample). */
function growTree(x: Float64Array, y: Float64Array, nRows: number, nf: number, params: ForestParams, rng: Prng, out: NodeList): void {
  const sample = drawTreeSample(x, nRows, nf, rng);
  const { m, w, col, order } = sample;
  const ys = Float64Array.from(sample.rowsOf, (r) => y[r]);
  const featurePerm = Int32Array.from({ length: nf }, (_, i) => i);

  const build = (start: number, end: number, depth: number): number => {
    let W = 0;
    let S = 0;
    let SS = 0;
    for (let k = start; k < end; k++) {
      const s = order[k]; // feature 0's order: any order holds the node's samples
      W += w[s];
      S += w[s] * ys[s];
      SS += w[s] * ys[s] * ys[s];
    }
    const node = out.add(S / W);
    const n = end - start;
    const impurity = SS / W - (S / W) * (S / W);
    if ((params.maxDepth !== null && depth >= params.maxDepth) || n < 2 * params.minSamplesLeaf || impurity <= 1e-12) return node;

    // Draw features until enough non-constant ones were searched (scikit-learn keeps drawing past
    // max_features while no valid split was found).
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
      let wl = 0;
      let sl = 0;
      for (let k = start; k < end - 1; k++) {
        const s = order[base + k];
        wl += w[s];
        sl += w[s] * ys[s];
        const v = col[base + s];
        const vNext = col[base + order[base + k + 1]];
        if (v === vNext) continue;
        const nLeft = k - start + 1;
        if (nLeft < params.minSamplesLeaf || n - nLeft < params.minSamplesLeaf) continue;
        const wr = W - wl;
        const sr = S - sl;
        const proxy = (sl * sl) / wl + (sr * sr) / wr;
        if (proxy > bestProxy) {
          bestProxy = proxy;
          bestFeature = f;
          bestPos = nLeft;
          bestThreshold = midpoint(v, vNext); // rounding must keep v on the left and vNext on the right
        }
      }
    }
    if (bestFeature < 0 || bestProxy <= (S * S) / W) return node;

    partitionNode(sample, nf, start, end, bestFeature, bestPos);
    out.feature[node] = bestFeature;
    out.threshold[node] = bestThreshold;
    out.left[node] = build(start, start + bestPos, depth + 1);
    out.right[node] = build(start + bestPos, end, depth + 1);
    return node;
  };
  build(0, m, 0);
}

/** Grows the forest on already-scaled rows (row-major nRows x nFeatures). */
export function growForest(
  x: Float64Array,
  y: Float64Array,
  nRows: number,
  nFeatures: number,
  params: ForestParams,
  seed: number,
): FlatForest {
  const nodes = new NodeList();
  return growTrees(params.trees, nFeatures, seed, nodes, (rng) => growTree(x, y, nRows, nFeatures, params, rng, nodes));
}

export interface TrainedModel {
  forest: FlatForest;
  scaler: Scaler;
  /** Ranges and moments of each feature over the training rows, in dataset feature order. */
  featureStats: FeatureSpec[];
  /** Rows of the training table the trees were grown on. */
  trainRows: Int32Array;
  /** Rows scored for the metrics: of the training table when held out from it, else of the test table. */
  testRows: Int32Array;
  /** The trainer's own predictions for testRows, in that order. */
  testPredictions: Float64Array;
  metrics: RegressionMetrics;
  options: TrainOptions;
  params: ForestParams;
}

/**
 * Trains on `data` and scores on `testData` when given (every row of `data` trains, options.testFraction
 * must be 0), else on a seeded share of `data` held out.
 */
/** What both trainers settle before growing: options, the rows trained and scored, the scaler, the forest's params. */
export interface TrainingPlan {
  opts: TrainOptions;
  nf: number;
  train: Int32Array;
  /** Rows of `scored` the metrics are computed on. */
  test: Int32Array;
  /** The test table when given, else the training table (the held-out rows). */
  scored: Dataset;
  scaler: Scaler;
  stats: Omit<FeatureSpec, 'name'>[];
  params: ForestParams;
}

export function planTraining(data: Dataset, options: Partial<TrainOptions>, testData: Dataset | undefined): TrainingPlan {
  const opts: TrainOptions = { ...DEFAULT_TRAIN_OPTIONS, ...options };
  checkTrainOptions(opts, testData !== undefined);
  if (data.y === null) throw new TrainOptionsError('training data has no label column');
  if (testData && testData.y === null) throw new TrainOptionsError('test data has no label column');
  const nf = data.features.length;
  if (testData && testData.features.join('\n') !== data.features.join('\n')) {
    throw new TrainOptionsError('test data must have the training features, in the same order');
  }
  const { train, test } = testData
    ? { train: Int32Array.from({ length: data.nRows }, (_, i) => i), test: Int32Array.from({ length: testData.nRows }, (_, i) => i) }
    : splitRows(data.nRows, opts.testFraction, opts.seed);
  const { scaler, stats } = fitScaler(data.x, nf, train);
  const params: ForestParams = {
    trees: opts.trees,
    maxDepth: opts.maxDepth,
    minSamplesLeaf: opts.minSamplesLeaf,
    featuresPerSplit: resolveMaxFeatures(opts.maxFeatures, nf),
  };
  return { opts, nf, train, test, scored: testData ?? data, scaler, stats, params };
}

export function trainModel(data: Dataset, options: Partial<TrainOptions> = {}, testData?: Dataset): TrainedModel {
  const { opts, nf, train, test, scored, scaler, stats, params } = planTraining(data, options, testData);
  const yTrain = Float64Array.from(train, (r) => data.y![r]);
  const forest = growForest(scaleRows(data.x, nf, train, scaler), yTrain, train.length, nf, params, opts.seed);
  const xTest = scaleRows(scored.x, nf, test, scaler);
  const testPredictions = new Float64Array(test.length);
  for (let k = 0; k < test.length; k++) testPredictions[k] = predictScaledRow(forest, xTest, k * nf);
  const yTest = Float64Array.from(test, (r) => scored.y![r]);
  return {
    forest,
    scaler,
    featureStats: stats.map((s, j) => ({ name: data.features[j], ...s })),
    trainRows: train,
    testRows: test,
    testPredictions,
    metrics: regressionMetrics(yTest, testPredictions),
    options: opts,
    params,
  };
}
