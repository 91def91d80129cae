import { type FlatForest, LEAF } from './forest.js';

/**
 * The forest compiled for fast, exact traversal.
 *
 * Thresholds become integer bins: per feature, the sorted distinct thresholds T; a value x gets the bin
 * lowerBound(T, x) (the first k with x <= T[k]), and x <= T[k] holds exactly when bin(x) <= k. So each row is
 * binned once (one binary search per feature) and every node test is an integer comparison.
 *
 * Each node is one int32: right-child distance (high bits, signed) | threshold bin + 1 | feature (low bits).
 * Trees are renumbered in preorder so the left child is i + 1 and the right one i + 1 + distance. A leaf is
 * bin field 0 and distance -1: every row goes "right" onto the leaf itself, and its word is negative. The
 * walk itself (wasm/forest-kernel-wat.ts) steps with masks instead of branches (a mispredicted branch per node
 * costs more than the node) and walks four trees (one row) or four rows (a batch, tree by tree) at once so
 * the CPU overlaps their loads; a group stops when all four words are negative, i.e. all four walks sit on
 * leaves.
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
