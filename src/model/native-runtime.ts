import { compileForest, lowerBound, type CompiledForest } from './compiled-forest.js';
import { type FlatForest, deserializeForest, predictScaledRow } from './forest.js';
import type { ModelRuntime, Preprocessing } from './types.js';
import { ForestKernel } from './wasm/forest-kernel.js';

/**
 * The native tree-ensemble runtime: standard scaling and binning here, then the forest walk in WebAssembly
 * (wasm/forest-kernel-wat.ts) over the compiled layout (compiled-forest.ts).
 *
 * Exactness: scaling is the trainer's arithmetic, (x - mean) / scale in float64; the bin test is equivalent to
 * x <= threshold; each row sums its trees in tree order before dividing by their number. So predictions equal
 * the trainer's (predictScaledRow) bit for bit.
 */
export class NativeForestRuntime implements ModelRuntime {
  readonly kind = 'native-forest' as const;
  readonly nFeatures: number;
  /** 'compiled' normally; 'plain' for a forest too large for 32-bit node words, or when asked for. */
  readonly layout: 'compiled' | 'plain';
  /** The compiled forest and the kernel holding its copy; null for the plain walk. */
  private readonly compiled: { forest: CompiledForest; kernel: ForestKernel } | null;
  private readonly mean: Float64Array;
  private readonly scale: Float64Array;
  /** The plain walk's scaled rows. */
  private scaled = new Float64Array(0);

  /** `layout: 'plain'` forces the trainer's plain walk (the benchmark's baseline). */
  constructor(
    private readonly forest: FlatForest,
    preprocessing: Preprocessing,
    layout: 'compiled' | 'plain' = 'compiled',
  ) {
    const nf = forest.nFeatures;
    this.nFeatures = nf;
    if (preprocessing.kind === 'standard-scaler') {
      if (preprocessing.mean.length !== nf || preprocessing.scale.length !== nf) {
        throw new Error(
          `scaler has ${preprocessing.mean.length} means and ${preprocessing.scale.length} scales for a forest of ${nf} features`,
        );
      }
      this.mean = Float64Array.from(preprocessing.mean);
      this.scale = Float64Array.from(preprocessing.scale);
    } else {
      this.mean = new Float64Array(nf);
      this.scale = new Float64Array(nf).fill(1);
    }
    const compiled = layout === 'compiled' ? compileForest(forest) : null;
    this.compiled = compiled ? { forest: compiled, kernel: new ForestKernel(compiled) } : null;
    this.layout = compiled ? 'compiled' : 'plain';
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
    const out = new Float64Array(nRows);
    if (this.compiled === null) {
      if (this.scaled.length < nRows * nf) this.scaled = new Float64Array(nRows * nf);
      for (let r = 0; r < nRows; r++) {
        for (let j = 0; j < nf; j++) this.scaled[r * nf + j] = this.scaledValue(rows, r, j);
      }
      for (let r = 0; r < nRows; r++) out[r] = predictScaledRow(this.forest, this.scaled, r * nf);
      return out;
    }
    const { forest: c, kernel } = this.compiled;
    const bins = kernel.binsFor(nRows);
    for (let r = 0; r < nRows; r++) {
      for (let j = 0; j < nf; j++) bins[r * nf + j] = lowerBound(c.cuts[j], this.scaledValue(rows, r, j));
    }
    // Few rows: each walks four trees at once; more: four rows at once, tree by tree.
    if (nRows < 8) {
      for (let r = 0; r < nRows; r++) out[r] = kernel.sumRow(r) / c.nTrees;
    } else {
      const sums = kernel.sumRows(nRows);
      for (let r = 0; r < nRows; r++) out[r] = sums[r] / c.nTrees;
    }
    return out;
  }

  private scaledValue(rows: Float64Array, r: number, j: number): number {
    const v = (rows[r * this.nFeatures + j] - this.mean[j]) / this.scale[j];
    // No split can place NaN (the callers validate inputs; this guards the contract).
    if (Number.isNaN(v)) throw new RangeError(`predict: row ${r}, feature ${j} is NaN`);
    return v;
  }
}
