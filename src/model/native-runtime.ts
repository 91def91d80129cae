import { type FlatForest, LEAF, deserializeForest } from './forest.js';
import type { ModelRuntime, Preprocessing } from './types.js';

/**
 * The native tree-ensemble runtime: standard scaling then forest traversal over typed arrays.
 * Scaling is the trainer's arithmetic, (x - mean) / scale in float64, so predictions equal the trainer's bit for bit.
 * Batches are scaled into a reused buffer and walked tree by tree, which keeps one tree's nodes hot in cache.
 */
export class NativeForestRuntime implements ModelRuntime {
  readonly kind = 'native-forest' as const;
  readonly nFeatures: number;
  private readonly mean: Float64Array;
  private readonly scale: Float64Array;
  private scaled: Float64Array;

  constructor(
    private readonly forest: FlatForest,
    preprocessing: Preprocessing,
  ) {
    const nf = forest.nFeatures;
    this.nFeatures = nf;
    if (preprocessing.kind === 'standard-scaler') {
      if (preprocessing.mean.length !== nf || preprocessing.scale.length !== nf) {
        throw new Error(`scaler has ${preprocessing.mean.length} means and ${preprocessing.scale.length} scales for a forest of ${nf} features`);
      }
      this.mean = Float64Array.from(preprocessing.mean);
      this.scale = Float64Array.from(preprocessing.scale);
    } else {
      this.mean = new Float64Array(nf);
      this.scale = new Float64Array(nf).fill(1);
    }
    this.scaled = new Float64Array(nf * 64);
  }

  /** Builds the runtime from forest.bin bytes. */
  static fromBytes(bytes: Uint8Array, preprocessing: Preprocessing): NativeForestRuntime {
    return new NativeForestRuntime(deserializeForest(bytes), preprocessing);
  }

  predict(rows: Float64Array, nRows: number): Float64Array {
    const nf = this.nFeatures;
    if (!Number.isInteger(nRows) || nRows < 0 || rows.length < nRows * nf) {
      throw new RangeError(`predict: ${rows.length} values cannot hold ${nRows} rows of ${nf} features`);
    }
    if (this.scaled.length < nRows * nf) this.scaled = new Float64Array(nRows * nf);
    const x = this.scaled;
    const { mean, scale } = this;
    for (let r = 0; r < nRows; r++) {
      const o = r * nf;
      for (let j = 0; j < nf; j++) x[o + j] = (rows[o + j] - mean[j]) / scale[j];
    }
    const out = new Float64Array(nRows);
    const { feature, threshold, left, right, value, treeOffsets, nTrees } = this.forest;
    for (let t = 0; t < nTrees; t++) {
      const root = treeOffsets[t];
      for (let r = 0; r < nRows; r++) {
        const o = r * nf;
        let node = root;
        let f = feature[node];
        while (f !== LEAF) {
          node = x[o + f] <= threshold[node] ? left[node] : right[node];
          f = feature[node];
        }
        out[r] += value[node];
      }
    }
    for (let r = 0; r < nRows; r++) out[r] /= nTrees;
    return out;
  }
}
