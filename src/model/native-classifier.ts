import { type FlatForest, outputForest, outputsOf } from './forest.js';
import { NativeForestRuntime } from './native-runtime.js';
import type { ModelRuntime, Preprocessing } from './types.js';

/**
 * A classifier forest served by the regression runtime, one class at a time: class k's probability is the
 * mean over trees of the leaves' class-k shares, i.e. the regression forest whose leaf values are those
 * shares. Each class walks the same trees again (K walks per row); in exchange the regressor's compiled
 * layout and WebAssembly kernel serve it unchanged, and the probabilities equal the trainer's bit for bit.
 */
export class NativeClassifierRuntime implements ModelRuntime {
  readonly kind = 'native-forest' as const;
  readonly nFeatures: number;
  readonly nOutputs: number;
  private readonly perClass: NativeForestRuntime[];

  constructor(forest: FlatForest, preprocessing: Preprocessing) {
    this.nFeatures = forest.nFeatures;
    this.nOutputs = outputsOf(forest);
    this.perClass = Array.from({ length: this.nOutputs }, (_, k) => new NativeForestRuntime(outputForest(forest, k), preprocessing));
  }

  /** nRows x nClasses probabilities, row-major. */
  predict(rows: Float64Array, nRows: number): Float64Array {
    const K = this.nOutputs;
    const out = new Float64Array(nRows * K);
    for (let k = 0; k < K; k++) {
      const p = this.perClass[k].predict(rows, nRows);
      for (let r = 0; r < nRows; r++) out[r * K + k] = p[r];
    }
    return out;
  }
}
