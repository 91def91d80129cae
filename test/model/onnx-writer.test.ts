import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { LEAF, predictScaledRow, type FlatForest } from '../../src/model/forest.js';
import { float32Thresholds, forestToOnnx, nextFloat32, ONNX_IR_VERSION, shortestDecimalOfFloat32 } from '../../src/model/onnx/writer.js';
import { runOnnxChecker, tinyForest } from './onnx-support.js';

describe('forestToOnnx', () => {
  const forest = tinyForest();
  const mean = [1, 2, 3];
  const std = [2, 0.5, 4];
  const bytes = forestToOnnx(forest, { scaler: { mean, std } });

  it('declares skl2onnx-like names, ir_version 8 and opsets 17 / ai.onnx.ml 3', () => {
    const model = onnxProto.onnx.ModelProto.decode(bytes);
    expect(Number(model.irVersion)).toBe(ONNX_IR_VERSION);
    expect(model.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([
      ['', 17],
      ['ai.onnx.ml', 3],
    ]);
    expect(model.graph?.node?.map((n) => n.opType)).toEqual(['Scaler', 'TreeEnsembleRegressor']);
    expect(model.graph?.input?.[0].name).toBe('float_input');
    expect(model.graph?.output?.[0].name).toBe('variable');
  });

  it('predicts what the native forest predicts, on both sides of every threshold', async () => {
    const session = await ort.InferenceSession.create(bytes);
    // Raw values chosen so the scaled ones land on, just below and just above each threshold.
    const rows: number[][] = [];
    for (const a of [1.4, 1.5, 1.6]) for (const b of [2.7, 2.75, 2.8]) for (const c of [0.9, 1, 1.1]) rows.push([a, b, c]);
    const flat = Float32Array.from(rows.flat());
    const out = await session.run({ float_input: new ort.Tensor('float32', flat, [rows.length, 3]) });
    const got = Array.from(out.variable.data as Float32Array);
    const want = rows.map((r) =>
      predictScaledRow(
        forest,
        r.map((x, j) => (x - mean[j]) / std[j]),
      ),
    );
    expect(out.variable.dims).toEqual([rows.length, 1]);
    expect(got).toEqual(want);
    await session.release();
  });

  it('passes onnx.checker.check_model of Debian python3-onnx', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'bgserve-onnx-')), 'tiny.onnx');
    writeFileSync(file, bytes);
    await expect(runOnnxChecker(file)).resolves.toMatch(/^onnx 1\.\d+/);
  });

  it('refuses a scaler whose width differs from the forest', () => {
    expect(() => forestToOnnx(forest, { scaler: { mean: [0, 0], std: [1, 1] } })).toThrow(/2 means and 2 deviations, forest has 3/);
  });
});

describe('float32Thresholds', () => {
  // One stump on feature 0 (scaled by mean 0.0874, std 0.047, as chlorides): left 1, right 2.
  const mean = [0.0874];
  const std = [0.047];
  const stump = (threshold: number): FlatForest => ({
    nTrees: 1,
    nFeatures: 1,
    treeOffsets: Int32Array.from([0, 3]),
    feature: Int32Array.from([0, LEAF, LEAF]),
    threshold: Float64Array.from([threshold, 0, 0]),
    left: Int32Array.from([1, 0, 0]),
    right: Int32Array.from([2, 0, 0]),
    value: Float64Array.from([0, 1, 2]),
  });
  const scaled = (x: number) => (x - mean[0]) / std[0];

  it('finds the shortest decimal of a float32 and steps between float32 neighbours', () => {
    expect(shortestDecimalOfFloat32(Math.fround(0.079))).toBe(0.079);
    const x = Math.fround(0.079);
    expect(nextFloat32(nextFloat32(x, true), false)).toBe(x);
    expect(nextFloat32(x, true)).toBeGreaterThan(x);
    expect(Math.fround(nextFloat32(x, true))).toBe(nextFloat32(x, true));
  });

  // A threshold on a data value, one float64 ulp below it and one above: float32 cannot tell these apart
  // by rounding alone, the cell rule sends 0.079 where float64 does.
  for (const [label, nudge] of [
    ['on', 0],
    ['one ulp below', -1],
    ['one ulp above', 1],
  ] as const) {
    it(`sends the typed value where float64 does for a threshold ${label} it`, async () => {
      const s = scaled(0.079);
      const t = nudge === 0 ? s : s + nudge * Number.EPSILON * Math.abs(s);
      const forest = stump(t);
      const session = await ort.InferenceSession.create(forestToOnnx(forest, { scaler: { mean, std } }));
      const xs = [0.078, 0.079, 0.08];
      const out = await session.run({ float_input: new ort.Tensor('float32', Float32Array.from(xs), [3, 1]) });
      expect(Array.from(out.variable.data as Float32Array)).toEqual(xs.map((x) => predictScaledRow(forest, [scaled(x)])));
      expect(float32Thresholds(forest, { mean, std })[0]).not.toBe(0);
      await session.release();
    });
  }
});
