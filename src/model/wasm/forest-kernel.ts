/**
 * The WebAssembly tree walk (forest-kernel-wat.ts) bound to one compiled forest: the forest is copied into the
 * instance's own memory once; each prediction writes binned rows into that memory and reads the sums back.
 */
import type { CompiledForest } from '../compiled-forest.js';
import { FOREST_KERNEL_BASE64 } from './forest-kernel.wasm.js';

interface KernelExports {
  layout(nodes: number, leaf: number, roots: number, depths: number, nTrees: number, fb: number, fm: number, bm: number, ds: number): void;
  sumRow(binsAt: number): number;
  sumRows(binsAt: number, stride: number, nRows: number, outAt: number): void;
}

const PAGE = 65536;
const align = (bytes: number) => (bytes + 63) & ~63;

let compiled: WebAssembly.Module | undefined;

/** Compiled once per process; synchronously, as the module is under two kilobytes. */
function kernelModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(Buffer.from(FOREST_KERNEL_BASE64, 'base64'));
  return compiled;
}

export class ForestKernel {
  private readonly memory: WebAssembly.Memory;
  private readonly kernel: KernelExports;
  private readonly nFeatures: number;
  /** Where the binned rows start; the sums follow them. */
  private readonly binsAt: number;
  private capacity = 0;
  private outAt = 0;
  private bins = new Int32Array(0);
  private sums = new Float64Array(0);

  constructor(forest: CompiledForest) {
    const n = forest.nodes.length;
    const nodesAt = 0;
    const leafAt = align(nodesAt + 4 * n);
    const rootsAt = align(leafAt + 8 * n);
    const depthsAt = align(rootsAt + 4 * forest.nTrees);
    this.binsAt = align(depthsAt + 4 * forest.nTrees);
    this.nFeatures = forest.nFeatures;
    this.memory = new WebAssembly.Memory({ initial: Math.ceil(this.binsAt / PAGE) + 1 });
    const buffer = this.memory.buffer;
    new Int32Array(buffer, nodesAt, n).set(forest.nodes);
    new Float64Array(buffer, leafAt, n).set(forest.leafValue);
    new Int32Array(buffer, rootsAt, forest.nTrees).set(forest.roots);
    new Int32Array(buffer, depthsAt, forest.nTrees).set(forest.depths);
    this.kernel = new WebAssembly.Instance(kernelModule(), { env: { memory: this.memory } }).exports as unknown as KernelExports;
    this.kernel.layout(
      nodesAt,
      leafAt,
      rootsAt,
      depthsAt,
      forest.nTrees,
      forest.featureBits,
      forest.featureMask,
      forest.binMask,
      forest.distanceShift,
    );
    this.reserve(64);
  }

  /** The bins of nRows rows (row-major, nFeatures each), to be filled before sumRow/sumRows. */
  binsFor(nRows: number): Int32Array {
    if (nRows > this.capacity) this.reserve(nRows);
    return this.bins;
  }

  /** Sum over the trees, in tree order, of row r's leaf values. */
  sumRow(r: number): number {
    return this.kernel.sumRow(this.binsAt + 4 * this.nFeatures * r);
  }

  /** Sums over the trees, in tree order, of the first nRows rows' leaf values (a view, valid until the next call). */
  sumRows(nRows: number): Float64Array {
    this.kernel.sumRows(this.binsAt, 4 * this.nFeatures, nRows, this.outAt);
    return this.sums.subarray(0, nRows);
  }

  private reserve(rows: number): void {
    const outAt = align(this.binsAt + 4 * this.nFeatures * rows);
    const end = outAt + 8 * rows;
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    // A grown memory detaches the old views.
    this.capacity = rows;
    this.outAt = outAt;
    this.bins = new Int32Array(this.memory.buffer, this.binsAt, this.nFeatures * rows);
    this.sums = new Float64Array(this.memory.buffer, outAt, rows);
  }
}
