import { type FlatForest, LEAF, deserializeForest } from './forest.js';
import type { ModelRuntime, Preprocessing } from './types.js';

/**
 * The forest re-laid for fast traversal. 16 bytes per node in one buffer, so a visited node costs one cache
 * line: f64 slot 2i = threshold, i32 slot 4i+2 = feature, i32 slot 4i+3 = distance of the right child from the
 * left one. Trees are renumbered in preorder, so the left child is i + 1 and the right one i + 1 + distance.
 * A leaf has threshold -Infinity and distance -1: every (finite) x goes "right" onto the leaf itself, so a walk
 * can take a fixed number of steps (the tree's depth) with no leaf test and no data-dependent branch, which
 * matters more than the wasted steps: a mispredicted branch per node costs more than the node.
 */
interface PackedForest {
  nTrees: number;
  roots: Int32Array;
  /** Depth of each tree (steps from the root to its deepest leaf). */
  depths: Int32Array;
  f64: Float64Array;
  i32: Int32Array;
  leafValue: Float64Array;
}

function pack(forest: FlatForest): PackedForest {
  const n = forest.treeOffsets[forest.nTrees];
  const buffer = new ArrayBuffer(16 * n);
  const f64 = new Float64Array(buffer);
  const i32 = new Int32Array(buffer);
  const leafValue = new Float64Array(n);
  const roots = new Int32Array(forest.nTrees);
  const depths = new Int32Array(forest.nTrees);
  let next = 0;
  // Pending nodes: old index, slot where the parent wants this node's distance (-1: left child or root), depth.
  const stack: number[] = [];
  for (let t = 0; t < forest.nTrees; t++) {
    roots[t] = next;
    stack.push(forest.treeOffsets[t], -1, 0);
    while (stack.length) {
      const depth = stack.pop()!;
      const slot = stack.pop()!;
      const old = stack.pop()!;
      const i = next++;
      if (slot >= 0) i32[slot] = i - ((slot - 3) / 4 + 1);
      if (depth > depths[t]) depths[t] = depth;
      if (forest.feature[old] === LEAF) {
        f64[2 * i] = -Infinity;
        i32[4 * i + 2] = 0;
        i32[4 * i + 3] = -1;
        leafValue[i] = forest.value[old];
      } else {
        f64[2 * i] = forest.threshold[old];
        i32[4 * i + 2] = forest.feature[old];
        // Right is pushed first so that left is popped next and lands at i + 1.
        stack.push(forest.right[old], 4 * i + 3, depth + 1);
        stack.push(forest.left[old], -1, depth + 1);
      }
    }
  }
  return { nTrees: forest.nTrees, roots, depths, f64, i32, leafValue };
}

/**
 * The native tree-ensemble runtime: standard scaling then forest traversal over typed arrays.
 *
 * Exactness: scaling is the trainer's arithmetic, (x - mean) / scale in float64, a step goes right exactly when
 * x <= threshold is false, and each row sums its trees in tree order before dividing by their number, so
 * predictions equal the trainer's (predictScaledRow) bit for bit.
 *
 * Speed: the walks of several independent trees (one row) or rows (a batch, tree by tree so one tree stays in
 * cache) are interleaved four at a time, so the CPU overlaps their dependent loads.
 */
export class NativeForestRuntime implements ModelRuntime {
  readonly kind = 'native-forest' as const;
  readonly nFeatures: number;
  private readonly packed: PackedForest;
  private readonly mean: Float64Array;
  private readonly scale: Float64Array;
  private scaled: Float64Array;

  constructor(forest: FlatForest, preprocessing: Preprocessing) {
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
    this.packed = pack(forest);
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
    this.scaleInto(rows, nRows);
    const out = new Float64Array(nRows);
    if (nRows < 8) {
      for (let r = 0; r < nRows; r++) out[r] = this.sumOneRow(r * nf);
    } else {
      this.sumBatch(nRows, out);
    }
    const nTrees = this.packed.nTrees;
    for (let r = 0; r < nRows; r++) out[r] /= nTrees;
    return out;
  }

  /**
   * Scales rows into this.scaled. NaN is refused (no split can place it); an infinite scaled value is clamped to
   * ±MAX_VALUE, which compares with every (finite) threshold exactly as the infinity would.
   */
  private scaleInto(rows: Float64Array, nRows: number): void {
    const nf = this.nFeatures;
    const x = this.scaled;
    const { mean, scale } = this;
    for (let r = 0; r < nRows; r++) {
      const o = r * nf;
      for (let j = 0; j < nf; j++) {
        let v = (rows[o + j] - mean[j]) / scale[j];
        if (v - v !== 0) {
          if (Number.isNaN(v)) throw new RangeError(`predict: row ${r}, feature ${j} is NaN`);
          v = v > 0 ? Number.MAX_VALUE : -Number.MAX_VALUE;
        }
        x[o + j] = v;
      }
    }
  }

  /** Sum of the trees' leaf values for the scaled row at offset o, four trees walked at once. */
  private sumOneRow(o: number): number {
    const { roots, depths, f64, i32, leafValue, nTrees } = this.packed;
    const x = this.scaled;
    let sum = 0;
    let t = 0;
    for (; t + 3 < nTrees; t += 4) {
      let i0 = roots[t];
      let i1 = roots[t + 1];
      let i2 = roots[t + 2];
      let i3 = roots[t + 3];
      const d = Math.max(depths[t], depths[t + 1], depths[t + 2], depths[t + 3]);
      for (let s = 0; s < d; s++) {
        // -(x > t) is -1 or -0: as a mask it selects the right-child distance without a branch.
        i0 = i0 + 1 + (i32[4 * i0 + 3] & -(x[o + i32[4 * i0 + 2]] > f64[2 * i0]));
        i1 = i1 + 1 + (i32[4 * i1 + 3] & -(x[o + i32[4 * i1 + 2]] > f64[2 * i1]));
        i2 = i2 + 1 + (i32[4 * i2 + 3] & -(x[o + i32[4 * i2 + 2]] > f64[2 * i2]));
        i3 = i3 + 1 + (i32[4 * i3 + 3] & -(x[o + i32[4 * i3 + 2]] > f64[2 * i3]));
      }
      sum += leafValue[i0];
      sum += leafValue[i1];
      sum += leafValue[i2];
      sum += leafValue[i3];
    }
    for (; t < nTrees; t++) sum += leafValue[this.walk(t, o)];
    return sum;
  }

  private walk(t: number, o: number): number {
    const { roots, depths, f64, i32 } = this.packed;
    const x = this.scaled;
    let i = roots[t];
    for (let s = depths[t]; s > 0; s--) i = i + 1 + (i32[4 * i + 3] & -(x[o + i32[4 * i + 2]] > f64[2 * i]));
    return i;
  }

  /** Adds every tree's leaf value to out[r], tree by tree, four rows walked at once. */
  private sumBatch(nRows: number, out: Float64Array): void {
    const { roots, depths, f64, i32, leafValue, nTrees } = this.packed;
    const x = this.scaled;
    const nf = this.nFeatures;
    const blocked = nRows - (nRows % 4);
    for (let t = 0; t < nTrees; t++) {
      const root = roots[t];
      const d = depths[t];
      for (let r = 0; r < blocked; r += 4) {
        const o0 = r * nf;
        const o1 = o0 + nf;
        const o2 = o1 + nf;
        const o3 = o2 + nf;
        let i0 = root;
        let i1 = root;
        let i2 = root;
        let i3 = root;
        for (let s = 0; s < d; s++) {
          i0 = i0 + 1 + (i32[4 * i0 + 3] & -(x[o0 + i32[4 * i0 + 2]] > f64[2 * i0]));
          i1 = i1 + 1 + (i32[4 * i1 + 3] & -(x[o1 + i32[4 * i1 + 2]] > f64[2 * i1]));
          i2 = i2 + 1 + (i32[4 * i2 + 3] & -(x[o2 + i32[4 * i2 + 2]] > f64[2 * i2]));
          i3 = i3 + 1 + (i32[4 * i3 + 3] & -(x[o3 + i32[4 * i3 + 2]] > f64[2 * i3]));
        }
        out[r] += leafValue[i0];
        out[r + 1] += leafValue[i1];
        out[r + 2] += leafValue[i2];
        out[r + 3] += leafValue[i3];
      }
      for (let r = blocked; r < nRows; r++) out[r] += leafValue[this.walk(t, r * nf)];
    }
  }
}
