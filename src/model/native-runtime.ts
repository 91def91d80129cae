import { type FlatForest, LEAF, deserializeForest, predictScaledRow } from './forest.js';
import type { ModelRuntime, Preprocessing } from './types.js';

/**
 * The forest compiled for fast, exact traversal.
 *
 * Thresholds become integer bins: per feature, the sorted distinct thresholds T; a value x gets the bin
 * lowerBound(T, x) (the first k with x <= T[k]), and x <= T[k] holds exactly when bin(x) <= k. So each row is
 * binned once (one binary search per feature) and every node test is an integer comparison.
 *
 * Each node is one int32: right-child distance (high bits, signed) | threshold bin + 1 | feature (low bits).
 * Trees are renumbered in preorder so the left child is i + 1 and the right one i + 1 + distance. A leaf is
 * bin field 0 and distance -1: every row goes "right" onto the leaf itself, and its word is negative. Walks
 * step with masks instead of branches (a mispredicted branch per node costs more than the node) and walk four
 * trees (one row) or four rows (a batch, tree by tree) at once so the CPU overlaps their loads; a group stops
 * when all four words are negative, i.e. all four walks sit on leaves.
 */
export interface CompiledForest {
  nTrees: number;
  nFeatures: number;
  roots: Int32Array;
  /** Depth of each tree: an upper bound on the steps of any walk. */
  depths: Int32Array;
  nodes: Int32Array;
  leafValue: Float64Array;
  /** Sorted distinct thresholds per feature. */
  cuts: Float64Array[];
  featureBits: number;
  /** Masks and shift that decode a node word; see the layout above. */
  featureMask: number;
  binMask: number;
  distanceShift: number;
}

const bitsFor = (maxValue: number): number => Math.max(1, Math.ceil(Math.log2(maxValue + 1)));

/** Compiles a forest, or returns null when it does not fit 32-bit node words (the caller then walks it plainly). */
export function compileForest(forest: FlatForest): CompiledForest | null {
  const n = forest.treeOffsets[forest.nTrees];
  const nf = forest.nFeatures;
  const sets = Array.from({ length: nf }, () => new Set<number>());
  for (let i = 0; i < n; i++) if (forest.feature[i] !== LEAF) sets[forest.feature[i]].add(forest.threshold[i]);
  const cuts = sets.map((s) => Float64Array.from(s).sort());
  let maxDistance = 0;
  for (let t = 0; t < forest.nTrees; t++) maxDistance = Math.max(maxDistance, forest.treeOffsets[t + 1] - forest.treeOffsets[t]);
  const featureBits = bitsFor(nf - 1);
  const binBits = bitsFor(Math.max(...cuts.map((c) => c.length))); // bin + 1, 0 reserved for leaves
  const distanceBits = 32 - featureBits - binBits;
  if (distanceBits < 2 || maxDistance >= 2 ** (distanceBits - 1)) return null;

  const nodes = new Int32Array(n);
  const leafValue = new Float64Array(n);
  const roots = new Int32Array(forest.nTrees);
  const depths = new Int32Array(forest.nTrees);
  const distanceShift = featureBits + binBits;
  let next = 0;
  // Pending nodes as triples: old index, new index of the parent whose right child it is (-1: none), depth.
  const stack: number[] = [];
  for (let t = 0; t < forest.nTrees; t++) {
    roots[t] = next;
    stack.push(forest.treeOffsets[t], -1, 0);
    while (stack.length) {
      const depth = stack.pop()!;
      const parent = stack.pop()!;
      const old = stack.pop()!;
      const i = next++;
      if (parent >= 0) nodes[parent] |= (i - parent - 1) << distanceShift;
      if (depth > depths[t]) depths[t] = depth;
      const f = forest.feature[old];
      if (f === LEAF) {
        nodes[i] = -1 << distanceShift;
        leafValue[i] = forest.value[old];
      } else {
        nodes[i] = ((lowerBound(cuts[f], forest.threshold[old]) + 1) << featureBits) | f;
        // Right is pushed first so that left is popped next and lands at i + 1.
        stack.push(forest.right[old], i, depth + 1);
        stack.push(forest.left[old], -1, depth + 1);
      }
    }
  }
  return {
    nTrees: forest.nTrees,
    nFeatures: nf,
    roots,
    depths,
    nodes,
    leafValue,
    cuts,
    featureBits,
    featureMask: (1 << featureBits) - 1,
    binMask: (1 << binBits) - 1,
    distanceShift,
  };
}

/**
 * First k with x <= sorted[k] (sorted.length when none). Branch-free: each halving adds `half` under a mask,
 * since the comparisons are unpredictable.
 */
export function lowerBound(sorted: Float64Array, x: number): number {
  let n = sorted.length;
  if (n === 0) return 0;
  let base = 0;
  while (n > 1) {
    const half = n >>> 1;
    base += half & -(sorted[base + half - 1] < x);
    n -= half;
  }
  return base + (1 & -(sorted[base] < x));
}

/**
 * The native tree-ensemble runtime: standard scaling, then forest traversal over typed arrays.
 *
 * Exactness: scaling is the trainer's arithmetic, (x - mean) / scale in float64; the bin test is equivalent to
 * x <= threshold; each row sums its trees in tree order before dividing by their number. So predictions equal
 * the trainer's (predictScaledRow) bit for bit.
 */
export class NativeForestRuntime implements ModelRuntime {
  readonly kind = 'native-forest' as const;
  readonly nFeatures: number;
  /** 'compiled' normally; 'plain' for a forest too large for 32-bit node words. */
  readonly layout: 'compiled' | 'plain';
  private readonly compiled: CompiledForest | null;
  private readonly mean: Float64Array;
  private readonly scale: Float64Array;
  private scaled: Float64Array;
  private bins: Int32Array;
  private readonly leaves = new Int32Array(4);

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
    this.compiled = compileForest(forest);
    this.layout = this.compiled ? 'compiled' : 'plain';
    this.scaled = new Float64Array(nf * 64);
    this.bins = new Int32Array(nf * 64);
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
    if (this.scaled.length < nRows * nf) {
      this.scaled = new Float64Array(nRows * nf);
      this.bins = new Int32Array(nRows * nf);
    }
    this.scaleInto(rows, nRows);
    const out = new Float64Array(nRows);
    const c = this.compiled;
    if (c === null) {
      for (let r = 0; r < nRows; r++) out[r] = predictScaledRow(this.forest, this.scaled, r * nf);
      return out;
    }
    this.binInto(c, nRows);
    if (nRows < 8) {
      for (let r = 0; r < nRows; r++) out[r] = this.sumOneRow(c, r * nf);
    } else {
      this.sumBatch(c, nRows, out);
    }
    for (let r = 0; r < nRows; r++) out[r] /= c.nTrees;
    return out;
  }

  private scaleInto(rows: Float64Array, nRows: number): void {
    const nf = this.nFeatures;
    const x = this.scaled;
    const { mean, scale } = this;
    for (let r = 0; r < nRows; r++) {
      const o = r * nf;
      for (let j = 0; j < nf; j++) {
        const v = (rows[o + j] - mean[j]) / scale[j];
        // No split can place NaN (the callers validate inputs; this guards the contract).
        if (v !== v) throw new RangeError(`predict: row ${r}, feature ${j} is NaN`);
        x[o + j] = v;
      }
    }
  }

  private binInto(c: CompiledForest, nRows: number): void {
    const nf = this.nFeatures;
    const x = this.scaled;
    const b = this.bins;
    for (let r = 0; r < nRows; r++) {
      for (let j = 0; j < nf; j++) b[r * nf + j] = lowerBound(c.cuts[j], x[r * nf + j]);
    }
  }

  /**
   * Walks four (tree, row) pairs at once from the given nodes, at most d steps, and leaves the four leaf
   * indices in this.leaves. (bin field - 1 - bin(x)) >> 31 is -1 exactly when x > threshold: it masks in
   * the right-child distance. The four words ANDed are negative only when all four walks sit on leaves.
   */
  private walk4(c: CompiledForest, i0: number, i1: number, i2: number, i3: number, o0: number, o1: number, o2: number, o3: number, d: number): void {
    const { nodes, featureBits: fb, featureMask: fm, binMask: bm, distanceShift: ds } = c;
    const b = this.bins;
    for (let s = 0; s < d; s++) {
      const w0 = nodes[i0];
      const w1 = nodes[i1];
      const w2 = nodes[i2];
      const w3 = nodes[i3];
      if ((w0 & w1 & w2 & w3) < 0) break;
      i0 += 1 + ((w0 >> ds) & ((((w0 >>> fb) & bm) - 1 - b[o0 + (w0 & fm)]) >> 31));
      i1 += 1 + ((w1 >> ds) & ((((w1 >>> fb) & bm) - 1 - b[o1 + (w1 & fm)]) >> 31));
      i2 += 1 + ((w2 >> ds) & ((((w2 >>> fb) & bm) - 1 - b[o2 + (w2 & fm)]) >> 31));
      i3 += 1 + ((w3 >> ds) & ((((w3 >>> fb) & bm) - 1 - b[o3 + (w3 & fm)]) >> 31));
    }
    const leaves = this.leaves;
    leaves[0] = i0;
    leaves[1] = i1;
    leaves[2] = i2;
    leaves[3] = i3;
  }

  /** The leaf reached by tree t for the binned row at offset o. */
  private walk(c: CompiledForest, t: number, o: number): number {
    const { nodes, featureBits: fb, featureMask: fm, binMask: bm, distanceShift: ds } = c;
    const b = this.bins;
    let i = c.roots[t];
    for (let w = nodes[i]; w >= 0; w = nodes[i]) i += 1 + ((w >> ds) & ((((w >>> fb) & bm) - 1 - b[o + (w & fm)]) >> 31));
    return i;
  }

  /** Sum of the trees' leaf values for the binned row at offset o, four trees walked at once. */
  private sumOneRow(c: CompiledForest, o: number): number {
    const { roots, depths, leafValue, nTrees } = c;
    const leaves = this.leaves;
    let sum = 0;
    let t = 0;
    for (; t + 3 < nTrees; t += 4) {
      const d = Math.max(depths[t], depths[t + 1], depths[t + 2], depths[t + 3]);
      this.walk4(c, roots[t], roots[t + 1], roots[t + 2], roots[t + 3], o, o, o, o, d);
      sum += leafValue[leaves[0]];
      sum += leafValue[leaves[1]];
      sum += leafValue[leaves[2]];
      sum += leafValue[leaves[3]];
    }
    for (; t < nTrees; t++) sum += leafValue[this.walk(c, t, o)];
    return sum;
  }

  /** Adds every tree's leaf value to out[r], tree by tree (one tree stays in cache), four rows walked at once. */
  private sumBatch(c: CompiledForest, nRows: number, out: Float64Array): void {
    const { roots, depths, leafValue, nTrees } = c;
    const nf = this.nFeatures;
    const leaves = this.leaves;
    const blocked = nRows - (nRows % 4);
    for (let t = 0; t < nTrees; t++) {
      const root = roots[t];
      for (let r = 0; r < blocked; r += 4) {
        const o = r * nf;
        this.walk4(c, root, root, root, root, o, o + nf, o + 2 * nf, o + 3 * nf, depths[t]);
        out[r] += leafValue[leaves[0]];
        out[r + 1] += leafValue[leaves[1]];
        out[r + 2] += leafValue[leaves[2]];
        out[r + 3] += leafValue[leaves[3]];
      }
      for (let r = blocked; r < nRows; r++) out[r] += leafValue[this.walk(c, t, r * nf)];
    }
  }
}
