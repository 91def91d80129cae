import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { predictScaledRow } from '../../src/model/forest.js';
import { forestToOnnx, ONNX_IR_VERSION } from '../../src/model/onnx/writer.js';
import { runOnnxChecker, tinyForest } from './onnx-support.js';

describe('forestToOnnx', () => {
  const forest = tinyForest();
  const mean = [1, 2, 3];
  const std = [2, 0.5, 4];
  const bytes = forestToOnnx(forest, { scaler: { offset: mean, scale: std.map((s) => 1 / s) } });

  it('declares skl2onnx-like names, ir_version 8 and opsets 17 / ai.onnx.ml 3', () => {
    const model = onnxProto.onnx.ModelProto.decode(bytes);
    expect(Number(model.irVersion)).toBe(ONNX_IR_VERSION);
    expect(model.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', 17], ['ai.onnx.ml', 3]]);
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
    const want = rows.map((r) => predictScaledRow(forest, r.map((x, j) => (x - mean[j]) / std[j])));
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
    expect(() => forestToOnnx(forest, { scaler: { offset: [0, 0], scale: [1, 1] } })).toThrow(/2 offsets and 2 scales, forest has 3/);
  });
});
