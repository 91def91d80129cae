import { endianness } from 'node:os';

/**
 * The flattened regression forest shared by the trainer, the native runtime and the ONNX exporter.
 *
 * Semantics (the same as scikit-learn's RandomForestRegressor, which ONNX TreeEnsembleRegressor with
 * mode BRANCH_LEQ and aggregate_function AVERAGE reproduces):
 * - inputs are already standard-scaled (the manifest's preprocessing is applied before the forest);
 * - at an internal node go to `left` when x[feature] <= threshold, else to `right`;
 * - a node with feature === -1 is a leaf whose prediction is value[node];
 * - the forest's prediction is the mean of its trees' leaf values.
 *
 * Layout: all trees' nodes live in one set of parallel arrays. Tree t owns the node indices
 * [treeOffsets[t], treeOffsets[t + 1]) and its root is treeOffsets[t]. left/right are ABSOLUTE indices into
 * the node arrays (subtract treeOffsets[t] for tree-local ids, as ONNX wants). Nodes are in preorder, so every
 * child index is greater than its parent's and inside its tree's range: traversal always terminates.
 * value is set for every node (the mean target of its training samples); only leaves' values are used.
 */
export interface FlatForest {
  nTrees: number;
  nFeatures: number;
  /** Length nTrees + 1; the last entry is the total number of nodes. */
  treeOffsets: Int32Array;
  /** Split feature index, or LEAF (-1). */
  feature: Int32Array;
  threshold: Float64Array;
  left: Int32Array;
  right: Int32Array;
  /** nNodes values, or nNodes x nOutputs (row-major by node) when nOutputs > 1. */
  value: Float64Array;
  /**
   * Values per node: absent or 1 for a regressor; the number of classes for a classifier, whose node values
   * are its class probabilities (the forest's prediction is then their mean over trees, class by class).
   */
  nOutputs?: number;
}

export const LEAF = -1;

export function outputsOf(forest: FlatForest): number {
  return forest.nOutputs ?? 1;
}

/** Output k of a multi-output forest as a regression forest sharing its structure (no node arrays copied). */
export function outputForest(forest: FlatForest, k: number): FlatForest {
  const K = outputsOf(forest);
  if (!(Number.isInteger(k) && k >= 0 && k < K)) throw new RangeError(`output ${k} of a forest with ${K}`);
  if (K === 1) return forest;
  const n = nodeCount(forest);
  const value = new Float64Array(n);
  for (let i = 0; i < n; i++) value[i] = forest.value[i * K + k];
  const { nOutputs: _k, ...structure } = forest;
  void _k;
  return { ...structure, value };
}

/** Number of nodes of the whole forest. */
export function nodeCount(forest: FlatForest): number {
  return forest.treeOffsets[forest.nTrees];
}

/** Why a forest is structurally unusable, or null when it is sound. */
export function forestProblem(forest: FlatForest): string | null {
  const { nTrees, nFeatures, treeOffsets } = forest;
  if (!Number.isInteger(nTrees) || nTrees < 1) return `nTrees must be a positive integer, got ${nTrees}`;
  if (!Number.isInteger(nFeatures) || nFeatures < 1) return `nFeatures must be a positive integer, got ${nFeatures}`;
  if (treeOffsets.length !== nTrees + 1) return `treeOffsets has ${treeOffsets.length} entries, expected ${nTrees + 1}`;
  if (treeOffsets[0] !== 0) return 'treeOffsets[0] must be 0';
  const n = treeOffsets[nTrees];
  const K = outputsOf(forest);
  if (!Number.isInteger(K) || K < 1) return `nOutputs must be a positive integer, got ${K}`;
  for (const [name, arr, want] of [
    ['feature', forest.feature, n],
    ['threshold', forest.threshold, n],
    ['left', forest.left, n],
    ['right', forest.right, n],
    ['value', forest.value, n * K],
  ] as const) {
    if (arr.length !== want) return `${name} has ${arr.length} entries, expected ${want}`;
  }
  for (let t = 0; t < nTrees; t++) {
    const start = treeOffsets[t];
    const end = treeOffsets[t + 1];
    if (end <= start) return `tree ${t} is empty`;
    for (let i = start; i < end; i++) {
      const f = forest.feature[i];
      if (f === LEAF) {
        for (let k = 0; k < K; k++) if (!Number.isFinite(forest.value[i * K + k])) return `leaf ${i} has a non-finite value`;
        continue;
      }
      if (f < 0 || f >= nFeatures) return `node ${i} splits on feature ${f}, outside 0..${nFeatures - 1}`;
      if (Number.isNaN(forest.threshold[i])) return `node ${i} has a NaN threshold`;
      const l = forest.left[i];
      const r = forest.right[i];
      if (l <= i || l >= end || r <= i || r >= end) return `node ${i} of tree ${t} has children outside its tree or not after it`;
    }
  }
  return null;
}

// ---- forest.bin --------------------------------------------------------------------------------------------
//
// Little-endian. Header (24 bytes):
//   0  magic   8 bytes ASCII "BGFOREST"
//   8  u32     format version (FOREST_BIN_VERSION)
//   12 u32     nTrees
//   16 u32     nFeatures
//   20 u32     nNodes
// Body, in this order: treeOffsets i32[nTrees + 1], feature i32[nNodes], left i32[nNodes], right i32[nNodes],
// threshold f64[nNodes], value f64[nNodes]. Nothing follows.
//
// Version 2 (multi-output forests, i.e. classifiers): the header has a fifth u32 at 24, nOutputs (28 bytes in
// all), and value is f64[nNodes * nOutputs]. Single-output forests are always written as version 1, so
// regression bundles stay byte for byte what they were.

export const FOREST_MAGIC = 'BGFOREST';
export const FOREST_BIN_VERSION = 1;
export const FOREST_BIN_VERSION_MULTI = 2;
const HEADER_BYTES = 24;
const HEADER_BYTES_MULTI = 28;
const LITTLE_ENDIAN_HOST = endianness() === 'LE';

export class ForestFormatError extends Error {
  override name = 'ForestFormatError';
}

function expectedBytes(nTrees: number, nNodes: number, nOutputs = 1): number {
  return (nOutputs > 1 ? HEADER_BYTES_MULTI : HEADER_BYTES) + 4 * (nTrees + 1) + 3 * 4 * nNodes + 8 * nNodes * (1 + nOutputs);
}

export function serializeForest(forest: FlatForest): Buffer {
  const problem = forestProblem(forest);
  if (problem) throw new ForestFormatError(`cannot serialise an invalid forest: ${problem}`);
  const nNodes = nodeCount(forest);
  const K = outputsOf(forest);
  const buf = Buffer.alloc(expectedBytes(forest.nTrees, nNodes, K));
  buf.write(FOREST_MAGIC, 0, 'ascii');
  buf.writeUInt32LE(K > 1 ? FOREST_BIN_VERSION_MULTI : FOREST_BIN_VERSION, 8);
  buf.writeUInt32LE(forest.nTrees, 12);
  buf.writeUInt32LE(forest.nFeatures, 16);
  buf.writeUInt32LE(nNodes, 20);
  if (K > 1) buf.writeUInt32LE(K, 24);
  let off = K > 1 ? HEADER_BYTES_MULTI : HEADER_BYTES;
  for (const arr of [forest.treeOffsets, forest.feature, forest.left, forest.right]) {
    for (let i = 0; i < arr.length; i++, off += 4) buf.writeInt32LE(arr[i], off);
  }
  for (const arr of [forest.threshold, forest.value]) {
    for (let i = 0; i < arr.length; i++, off += 8) buf.writeDoubleLE(arr[i], off);
  }
  return buf;
}

export function deserializeForest(bytes: Uint8Array): FlatForest {
  if (bytes.length < HEADER_BYTES) throw new ForestFormatError(`forest file too short (${bytes.length} bytes)`);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = buf.toString('ascii', 0, 8);
  if (magic !== FOREST_MAGIC) throw new ForestFormatError(`not a forest file (magic ${JSON.stringify(magic)})`);
  const version = buf.readUInt32LE(8);
  if (version !== FOREST_BIN_VERSION && version !== FOREST_BIN_VERSION_MULTI) {
    throw new ForestFormatError(
      `unsupported forest file version ${version} (this build reads ${FOREST_BIN_VERSION} and ${FOREST_BIN_VERSION_MULTI})`,
    );
  }
  const multi = version === FOREST_BIN_VERSION_MULTI;
  if (multi && buf.length < HEADER_BYTES_MULTI) throw new ForestFormatError(`forest file too short (${bytes.length} bytes)`);
  const nTrees = buf.readUInt32LE(12);
  const nFeatures = buf.readUInt32LE(16);
  const nNodes = buf.readUInt32LE(20);
  const nOutputs = multi ? buf.readUInt32LE(24) : 1;
  if (multi && nOutputs < 2) throw new ForestFormatError(`a version ${version} forest file needs 2 or more outputs, got ${nOutputs}`);
  const want = expectedBytes(nTrees, nNodes, nOutputs);
  if (buf.length !== want) {
    throw new ForestFormatError(`forest file has ${buf.length} bytes, header implies ${want}`);
  }
  let off = multi ? HEADER_BYTES_MULTI : HEADER_BYTES;
  // Typed arrays use the host's byte order: on little-endian hosts (nearly all) the bytes are copied as they
  // are; elsewhere each value is decoded.
  const read = <T extends Int32Array | Float64Array>(make: (n: number) => T, n: number, decode: (at: number) => number): T => {
    const out = make(n);
    const bytes = n * out.BYTES_PER_ELEMENT;
    if (LITTLE_ENDIAN_HOST) new Uint8Array(out.buffer).set(buf.subarray(off, off + bytes));
    else for (let i = 0; i < n; i++) out[i] = decode(off + i * out.BYTES_PER_ELEMENT);
    off += bytes;
    return out;
  };
  const readI32 = (n: number) =>
    read(
      (k) => new Int32Array(k),
      n,
      (at) => buf.readInt32LE(at),
    );
  const readF64 = (n: number) =>
    read(
      (k) => new Float64Array(k),
      n,
      (at) => buf.readDoubleLE(at),
    );
  const treeOffsets = readI32(nTrees + 1);
  const feature = readI32(nNodes);
  const left = readI32(nNodes);
  const right = readI32(nNodes);
  const threshold = readF64(nNodes);
  const value = readF64(nNodes * nOutputs);
  const forest: FlatForest = { nTrees, nFeatures, treeOffsets, feature, threshold, left, right, value, ...(multi ? { nOutputs } : {}) };
  const problem = forestProblem(forest);
  if (problem) throw new ForestFormatError(`invalid forest: ${problem}`);
  return forest;
}

/** The leaf tree t sends an already-scaled row to. */
function leafOf(forest: FlatForest, t: number, x: ArrayLike<number>, offset: number): number {
  const { feature, threshold, left, right } = forest;
  let node = forest.treeOffsets[t];
  let f = feature[node];
  while (f !== LEAF) {
    node = x[offset + f] <= threshold[node] ? left[node] : right[node];
    f = feature[node];
  }
  return node;
}

/** Prediction of one already-scaled row: mean of the trees' leaf values (single-output forests). */
export function predictScaledRow(forest: FlatForest, x: ArrayLike<number>, offset = 0): number {
  let sum = 0;
  for (let t = 0; t < forest.nTrees; t++) sum += forest.value[leafOf(forest, t, x, offset)];
  return sum / forest.nTrees;
}

/** Mean over trees of the leaves' value vectors of one already-scaled row (a classifier's probabilities), into out. */
export function predictScaledRowOutputs(forest: FlatForest, x: ArrayLike<number>, offset: number, out: Float64Array, outOffset = 0): void {
  const K = outputsOf(forest);
  for (let k = 0; k < K; k++) out[outOffset + k] = 0;
  for (let t = 0; t < forest.nTrees; t++) {
    const node = leafOf(forest, t, x, offset);
    for (let k = 0; k < K; k++) out[outOffset + k] += forest.value[node * K + k];
  }
  for (let k = 0; k < K; k++) out[outOffset + k] /= forest.nTrees;
}
