import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BundleError, loadBundle, writeBundle } from '../../src/model/bundle.js';
import { deserializeForest, type FlatForest } from '../../src/model/forest.js';
import { forestToOnnx, type OnnxForestOptions } from '../../src/model/onnx/writer.js';
import { checkOnnxSignature, type ValueMetadata } from '../../src/model/onnx/signature.js';
import type { LoadedModel, Manifest } from '../../src/model/types.js';
import { tempDir, wineData, writeNativeWineBundle } from './onnx-support.js';

let root: string;
let native: LoadedModel;
let forest: FlatForest;
let scaler: { mean: number[]; std: number[] };
let n = 0;

beforeAll(async () => {
  root = tempDir();
  native = await loadBundle(await writeNativeWineBundle(path.join(root, 'native'), { trees: 8, maxDepth: 6 }));
  forest = deserializeForest(readFileSync(path.join(native.dir, native.manifest.modelFile)));
  const pre = native.manifest.preprocessing;
  if (pre.kind !== 'standard-scaler') throw new Error('the test bundle is scaled');
  scaler = { mean: pre.mean, std: pre.scale };
});

afterAll(async () => {
  await native?.runtime.close?.();
});

/** Writes an ONNX bundle around `bytes` with the native bundle's schema, patched by `patch`. */
async function onnxBundle(bytes: Uint8Array, patch: Partial<Manifest> = {}): Promise<string> {
  const dir = path.join(root, `onnx-${++n}`);
  const { files: _files, goldenFile: _golden, ...rest } = native.manifest;
  void _files;
  void _golden;
  await writeBundle(dir, {
    manifest: { ...rest, format: 'onnx', modelFile: 'model.onnx', preprocessing: { kind: 'none' }, ...patch },
    files: { 'model.onnx': bytes },
  });
  return dir;
}

const exportBytes = (opts: Partial<OnnxForestOptions> = {}) => forestToOnnx(forest, { scaler, ...opts });

async function refusal(dir: string): Promise<BundleError> {
  const err = await loadBundle(dir).then(
    (m) => m.runtime.close?.().then(() => null),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BundleError);
  return err as BundleError;
}

describe('ONNX runtime', () => {
  it('loads an exported forest and predicts a batch as the native runtime does (float32 tolerance)', async () => {
    const model = await loadBundle(await onnxBundle(exportBytes(), { onnx: { input: 'float_input', output: 'variable' } }));
    try {
      expect(model.runtime.kind).toBe('onnx');
      const data = await wineData();
      const want = await native.runtime.predict(data.x, data.nRows);
      const got = await model.runtime.predict(data.x, data.nRows);
      expect(got).toHaveLength(data.nRows);
      for (let i = 0; i < data.nRows; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-4);
    } finally {
      await model.runtime.close?.();
    }
  });

  it('applies the manifest scaler itself for a graph without a Scaler node', async () => {
    const model = await loadBundle(await onnxBundle(exportBytes({ scaler: null }), { preprocessing: native.manifest.preprocessing }));
    try {
      // Two real rows: every feature at its training minimum, then at its maximum.
      const two = Float64Array.from([...native.manifest.features.map((f) => f.min), ...native.manifest.features.map((f) => f.max)]);
      const want = await native.runtime.predict(two, 2);
      const got = await model.runtime.predict(two, 2);
      expect(got).toHaveLength(2);
      expect(Math.max(...Array.from(got, (v, i) => Math.abs(v - want[i])))).toBeLessThan(1e-4);
    } finally {
      await model.runtime.close?.();
    }
  });

  it('refuses a model whose input width differs from the manifest', async () => {
    const err = await refusal(await onnxBundle(forestToOnnx(forest, { scaler, inputWidth: 10 })));
    expect(err.message).toMatch(/input 'float_input' has 10 columns, manifest has 11 features/);
  });

  it('refuses a model whose output has two targets', async () => {
    const err = await refusal(await onnxBundle(exportBytes({ nTargets: 2 })));
    expect(err.message).toMatch(/output 'variable' has shape \[None, 2\], expected \[None, 1\] or \[None\]/);
  });

  it('refuses a model whose input element type is not float32', async () => {
    const err = await refusal(await onnxBundle(exportBytes({ inputType: 'float64' })));
    expect(err.message).toMatch(/input 'float_input' has element type float64, expected float32/);
  });

  it('refuses input and output names other than those the manifest records', async () => {
    const err = await refusal(
      await onnxBundle(exportBytes({ inputName: 'X', outputName: 'Y' }), { onnx: { input: 'float_input', output: 'variable' } }),
    );
    expect(err.message).toMatch(/the manifest names input 'float_input', the model's inputs are 'X'/);
    expect(err.message).toMatch(/the manifest names output 'variable', the model's outputs are 'Y'/);
    expect(err.details).toHaveLength(2);
  });

  it('refuses bytes that are not an ONNX model', async () => {
    const err = await refusal(await onnxBundle(new TextEncoder().encode('not a model')));
    expect(err.code).toBe('model_invalid');
    expect(err.message).toMatch(/model\.onnx is not a model onnxruntime can load/);
  });
});

describe('checkOnnxSignature', () => {
  const tensor = (name: string, type: string, shape: (number | string)[]): ValueMetadata =>
    ({ name, isTensor: true, type, shape }) as ValueMetadata;

  it("accepts skl2onnx's regressor signature and a rank-1 output", () => {
    expect(checkOnnxSignature(11, [tensor('float_input', 'float32', ['N', 11])], [tensor('variable', 'float32', ['N', 1])])).toEqual({
      ok: true,
      io: { input: 'float_input', output: 'variable' },
    });
    expect(checkOnnxSignature(11, [tensor('x', 'float32', [-1, 11])], [tensor('y', 'float64', [-1])]).ok).toBe(true);
  });

  it('asks for a name when the model has several outputs (a classifier: label + probabilities)', () => {
    const outputs = [tensor('label', 'int64', ['N']), tensor('probabilities', 'float32', ['N', 6])];
    const check = checkOnnxSignature(11, [tensor('float_input', 'float32', ['N', 11])], outputs);
    expect(check).toEqual({
      ok: false,
      problems: ["the model has 2 outputs ('label', 'probabilities'); name one in the manifest's onnx.output"],
    });
    const named = checkOnnxSignature(11, [tensor('float_input', 'float32', ['N', 11])], outputs, { output: 'label' });
    expect(named).toEqual({ ok: false, problems: ["output 'label' has element type int64, expected float32 or float64"] });
  });

  it('refuses a fixed batch size and a rank-3 input', () => {
    const fixed = checkOnnxSignature(11, [tensor('x', 'float32', [1, 11])], [tensor('y', 'float32', ['N', 1])]);
    expect(fixed).toEqual({ ok: false, problems: ["input 'x' has a fixed batch size 1, expected a dynamic one (None)"] });
    const rank3 = checkOnnxSignature(11, [tensor('x', 'float32', ['N', 11, 1])], [tensor('y', 'float32', ['N', 1])]);
    expect(rank3).toEqual({ ok: false, problems: ["input 'x' has shape [None, 11, 1], expected [None, 11]"] });
  });
});
