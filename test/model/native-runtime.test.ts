import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { lowerBound } from '../../src/model/compiled-forest.js';
import { NativeForestRuntime } from '../../src/model/native-runtime.js';
import { deserializeForest, predictScaledRow, LEAF, type FlatForest } from '../../src/model/forest.js';
import { ROOT } from '../support/processes.js';

const V1 = path.join(ROOT, 'models/wine-quality/1.0.0');

async function committedForest(): Promise<{ forest: FlatForest; mean: number[]; scale: number[] }> {
  const forest = deserializeForest(await readFile(path.join(V1, 'forest.bin')));
  const manifest = JSON.parse(await readFile(path.join(V1, 'manifest.json'), 'utf8'));
  return { forest, mean: manifest.preprocessing.mean, scale: manifest.preprocessing.scale };
}

/** The reference: scale like the trainer, then the plain FlatForest walk. */
function reference(forest: FlatForest, mean: number[], scale: number[], rows: Float64Array, nRows: number): Float64Array {
  const nf = forest.nFeatures;
  const out = new Float64Array(nRows);
  const x = new Float64Array(nf);
  for (let r = 0; r < nRows; r++) {
    for (let j = 0; j < nf; j++) x[j] = (rows[r * nf + j] - mean[j]) / scale[j];
    out[r] = predictScaledRow(forest, x);
  }
  return out;
}

describe('NativeForestRuntime', () => {
  it('equals the plain forest walk exactly, single rows and batches of every size (property)', async () => {
    const { forest, mean, scale } = await committedForest();
    const rt = new NativeForestRuntime(forest, { kind: 'standard-scaler', mean, scale });
    const nf = forest.nFeatures;
    // Values around the training ranges (scaled roughly -4..4), including exact split thresholds.
    const value = (j: number) =>
      fc.oneof(
        fc.double({ min: mean[j] - 4 * scale[j], max: mean[j] + 4 * scale[j], noNaN: true }),
        fc.constantFrom(...Array.from(forest.threshold.subarray(0, 50)).map((t) => t * scale[j] + mean[j])),
      );
    const row = fc.tuple(...Array.from({ length: nf }, (_, j) => value(j)));
    fc.assert(
      fc.property(fc.array(row, { minLength: 1, maxLength: 23 }), (rows) => {
        const flat = Float64Array.from(rows.flat());
        const want = reference(forest, mean, scale, flat, rows.length);
        expect(rt.predict(flat, rows.length)).toEqual(want);
        for (let r = 0; r < rows.length; r++) expect(rt.predict(flat.subarray(r * nf), 1)[0]).toBe(want[r]);
      }),
      { numRuns: 150 },
    );
  });

  it('goes left on x == threshold and right just above it', () => {
    // One stump on feature 0 at 0.5 and a 3-level tree, to check the packed layout on both sides.
    const forest: FlatForest = {
      nTrees: 2,
      nFeatures: 2,
      treeOffsets: Int32Array.from([0, 3, 8]),
      feature: Int32Array.from([0, LEAF, LEAF, 1, 0, LEAF, LEAF, LEAF]),
      threshold: Float64Array.from([0.5, 0, 0, 0, -1, 0, 0, 0]),
      left: Int32Array.from([1, -1, -1, 4, 5, -1, -1, -1]),
      right: Int32Array.from([2, -1, -1, 7, 6, -1, -1, -1]),
      value: Float64Array.from([0, 1, 2, 0, 0, 10, 20, 30]),
    };
    const rt = new NativeForestRuntime(forest, { kind: 'none' });
    expect(rt.layout).toBe('compiled');
    const cases: [number, number, number][] = [
      [0.5, 0, (1 + 20) / 2],
      [-1, -3, (1 + 10) / 2],
      [0.6, 1e-9, (2 + 30) / 2],
    ];
    for (const [a, b, want] of cases) expect(rt.predict(Float64Array.from([a, b]), 1)[0]).toBe(want);
    const batch = Float64Array.from(Array.from({ length: 10 }, (_, k) => cases[k % 3].slice(0, 2)).flat());
    expect(Array.from(rt.predict(batch, 10))).toEqual(Array.from({ length: 10 }, (_, k) => cases[k % 3][2]));
  });

  it('walks a forest too large for 32-bit node words plainly, and a deep one compiled, both exact', () => {
    const complete = (depth: number): FlatForest => {
      // A complete tree over feature 0 whose thresholds are the in-order ranks: leaf value = bucket of x.
      const feature: number[] = [];
      const threshold: number[] = [];
      const left: number[] = [];
      const right: number[] = [];
      const value: number[] = [];
      const build = (lo: number, hi: number): number => {
        const i = value.length;
        feature.push(LEAF);
        threshold.push(0);
        left.push(-1);
        right.push(-1);
        value.push(lo);
        if (hi - lo > 1) {
          const mid = (lo + hi) >> 1;
          feature[i] = 0;
          threshold[i] = mid - 0.5;
          left[i] = build(lo, mid);
          right[i] = build(mid, hi);
        }
        return i;
      };
      build(0, 2 ** depth);
      return {
        nTrees: 1,
        nFeatures: 1,
        treeOffsets: Int32Array.from([0, value.length]),
        feature: Int32Array.from(feature),
        threshold: Float64Array.from(threshold),
        left: Int32Array.from(left),
        right: Int32Array.from(right),
        value: Float64Array.from(value),
      };
    };
    for (const [depth, layout] of [
      [16, 'plain'],
      [10, 'compiled'],
    ] as const) {
      const forest = complete(depth);
      const rt = new NativeForestRuntime(forest, { kind: 'none' });
      expect(rt.layout).toBe(layout);
      const xs = Float64Array.from({ length: 200 }, (_, k) => ((k * 7919) % 2 ** depth) + (k % 3) * 0.25 - 0.5);
      const got = rt.predict(xs, xs.length);
      xs.forEach((x, k) => {
        expect(got[k]).toBe(Math.min(2 ** depth - 1, Math.max(0, Math.ceil(x - 0.5))));
      });
    }
  });

  it('is exact for a tree count that is no multiple of four, and as batches grow and shrink its buffers', async () => {
    const { forest: full, mean, scale } = await committedForest();
    // The first seven trees: node indices are absolute, so a prefix of the arrays is a forest of its own.
    const end = full.treeOffsets[7];
    const seven: FlatForest = {
      ...full,
      nTrees: 7,
      treeOffsets: full.treeOffsets.slice(0, 8),
      feature: full.feature.slice(0, end),
      threshold: full.threshold.slice(0, end),
      left: full.left.slice(0, end),
      right: full.right.slice(0, end),
      value: full.value.slice(0, end),
    };
    const nf = full.nFeatures;
    const rows = Float64Array.from({ length: 1500 * nf }, (_, i) => mean[i % nf] + scale[i % nf] * Math.sin(i * 12.9898) * 3);
    for (const forest of [seven, full]) {
      const rt = new NativeForestRuntime(forest, { kind: 'standard-scaler', mean, scale });
      expect(rt.layout).toBe('compiled');
      for (const n of [1000, 3, 1500, 9, 1, 65]) {
        const got = rt.predict(rows, n);
        expect(got).toEqual(reference(forest, mean, scale, rows, n));
      }
      // The plain walk on request (the benchmark's baseline) gives the same answers.
      const plain = new NativeForestRuntime(forest, { kind: 'standard-scaler', mean, scale }, 'plain');
      expect(plain.layout).toBe('plain');
      expect(plain.predict(rows, 65)).toEqual(rt.predict(rows, 65));
    }
  });

  it('handles infinities like the <= rule, refuses NaN and short input', async () => {
    const { forest, mean, scale } = await committedForest();
    const rt = new NativeForestRuntime(forest, { kind: 'standard-scaler', mean, scale });
    const nf = forest.nFeatures;
    for (const v of [Infinity, -Infinity, 1e308, -1e308]) {
      const row = new Float64Array(nf).fill(v);
      expect(rt.predict(row, 1)[0]).toBe(reference(forest, mean, scale, row, 1)[0]);
    }
    const withNaN = new Float64Array(nf).fill(1);
    withNaN[3] = NaN;
    expect(() => rt.predict(withNaN, 1)).toThrow(/row 0, feature 3 is NaN/);
    expect(() => rt.predict(new Float64Array(nf), 2)).toThrow(RangeError);
    expect(rt.predict(new Float64Array(0), 0)).toEqual(new Float64Array(0));
  });
});

describe('lowerBound', () => {
  it('is the first index whose value is >= x, for any sorted array (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ noNaN: true }), { maxLength: 40 }), fc.double({ noNaN: true }), (values, probe) => {
        const sorted = Float64Array.from(new Set(values)).sort();
        for (const x of [probe, ...sorted, Infinity, -Infinity]) {
          const want = sorted.findIndex((v) => x <= v);
          expect(lowerBound(sorted, x)).toBe(want === -1 ? sorted.length : want);
        }
      }),
      { numRuns: 300 },
    );
  });
});
