/**
 * The demo's erroring model: a forest that overflows on part of the input space, and only where the bundle's
 * golden rows never go (so its smoke test passes and live traffic finds the fault, as in production).
 *
 * The forest is the good one with every tree twice (the mean of the doubled trees is the same prediction). In
 * one tree and its copy, the leaves no golden row reaches hold the largest double: a row that lands there adds
 * it twice, the sum overflows to Infinity, and the instance answers 500 model_error. The tree is picked so that
 * about `targetShare` of the live-like rows land there.
 */
import { type FlatForest, LEAF } from '../model/forest.js';
import type { Preprocessing } from '../model/types.js';

/** Rows in raw units, row-major. */
export interface RowTable {
  x: Float64Array;
  nRows: number;
}

export interface ErroringForest {
  forest: FlatForest;
  /** The tree (of the original forest) whose unreached leaves overflow. */
  tree: number;
  /** Share of the live-like rows that now fail. */
  failingShare: number;
}

function scaled(rows: RowTable, nFeatures: number, pre: Preprocessing): Float64Array {
  if (pre.kind !== 'standard-scaler') return rows.x;
  return rows.x.map((v, i) => (v - pre.mean[i % nFeatures]) / pre.scale[i % nFeatures]);
}

/** The leaf of tree t that row r reaches (the same walk as predictScaledRow). */
function leafOf(f: FlatForest, t: number, x: Float64Array, offset: number): number {
  let node = f.treeOffsets[t];
  while (f.feature[node] !== LEAF) node = x[offset + f.feature[node]] <= f.threshold[node] ? f.left[node] : f.right[node];
  return node;
}

function reached(f: FlatForest, t: number, x: Float64Array, nRows: number): number[] {
  return Array.from({ length: nRows }, (_, r) => leafOf(f, t, x, r * f.nFeatures));
}

/** Every tree twice, the copies after the originals (node indices shifted by the node count). */
function doubled(f: FlatForest): FlatForest {
  const n = f.treeOffsets[f.nTrees];
  const twice = <T extends Int32Array | Float64Array>(a: T, shift = 0): T => {
    const out = new (a.constructor as new (k: number) => T)(2 * n);
    out.set(a);
    for (let i = 0; i < n; i++) out[n + i] = shift !== 0 && a[i] >= 0 ? a[i] + shift : a[i];
    return out;
  };
  const treeOffsets = new Int32Array(2 * f.nTrees + 1);
  for (let t = 0; t <= f.nTrees; t++) {
    treeOffsets[t] = f.treeOffsets[t];
    treeOffsets[f.nTrees + t] = n + f.treeOffsets[t];
  }
  return {
    nTrees: 2 * f.nTrees,
    nFeatures: f.nFeatures,
    treeOffsets,
    feature: twice(f.feature),
    threshold: twice(f.threshold),
    // A leaf's children are unused (-1 or 0 by convention): only real child indices move.
    left: twice(f.left, n),
    right: twice(f.right, n),
    value: twice(f.value),
  };
}

export function erroringForest(base: FlatForest, pre: Preprocessing, golden: RowTable, live: RowTable, targetShare = 0.15): ErroringForest {
  const g = scaled(golden, base.nFeatures, pre);
  const l = scaled(live, base.nFeatures, pre);
  let best: { tree: number; share: number; bad: Set<number> } | null = null;
  for (let t = 0; t < base.nTrees; t++) {
    const safe = new Set(reached(base, t, g, golden.nRows));
    const liveLeaves = reached(base, t, l, live.nRows);
    const share = liveLeaves.filter((leaf) => !safe.has(leaf)).length / live.nRows;
    if (share > 0 && (best === null || Math.abs(share - targetShare) < Math.abs(best.share - targetShare))) {
      const bad = new Set<number>();
      for (let i = base.treeOffsets[t]; i < base.treeOffsets[t + 1]; i++) if (base.feature[i] === LEAF && !safe.has(i)) bad.add(i);
      best = { tree: t, share, bad };
    }
  }
  if (best === null) throw new Error('every live-like row reaches only leaves the golden rows reach: no region to fail on');
  const forest = doubled(base);
  const n = base.treeOffsets[base.nTrees];
  for (const leaf of best.bad) {
    forest.value[leaf] = Number.MAX_VALUE;
    forest.value[n + leaf] = Number.MAX_VALUE;
  }
  return { forest, tree: best.tree, failingShare: best.share };
}
