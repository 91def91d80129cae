/** A classifier exported to ONNX (TreeEnsembleClassifier, a plain probability tensor), checked, served and imported back. */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { loadBundle } from '../../src/model/bundle.js';
import { readDataset } from '../../src/model/csv.js';
import { exportOnnxBundle } from '../../src/model/onnx/export.js';
import { importOnnxBundle } from '../../src/model/onnx/import.js';
import type { ClassificationMetrics } from '../../src/model/types.js';
import { trainBundle } from '../../src/model/train-bundle.js';
import { buildApp } from '../../src/serve/app.js';
import { ROOT } from '../support/processes.js';
import { runOnnxChecker } from './onnx-support.js';

const FEATURES = ['sepal length (cm)', 'sepal width (cm)', 'petal length (cm)', 'petal width (cm)'];
let root = '';
let native = '';
let exported = '';

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'bgserve-onnx-classifier-'));
  native = path.join(root, 'iris', '1.0.0');
  await trainBundle({ dataFile: path.join(ROOT, 'data/iris/iris.csv'), target: 'species', outDir: native, trees: 40, seed: 2 });
  exported = (await exportOnnxBundle(native)).dir;
}, 60_000);
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('export-onnx of a classifier', () => {
  it('writes Scaler -> TreeEnsembleClassifier with outputs label and probabilities (no ZipMap)', async () => {
    const model = onnxProto.onnx.ModelProto.decode(await readFile(path.join(exported, 'model.onnx')));
    const graph = model.graph!;
    expect(graph.node!.map((n) => n.opType)).toEqual(['Scaler', 'TreeEnsembleClassifier']);
    expect(graph.output!.map((o) => o.name)).toEqual(['label', 'probabilities']);
    const classifier = graph.node![1];
    const labels = classifier.attribute!.find((a) => a.name === 'classlabels_strings')!;
    expect(labels.strings!.map((s) => new TextDecoder().decode(s))).toEqual(['setosa', 'versicolor', 'virginica']);
    const { manifest } = await loadBundle(exported);
    expect(manifest).toMatchObject({ format: 'onnx', task: 'classification', onnx: { input: 'float_input', output: 'probabilities' } });
    expect(manifest.classes).toEqual(['setosa', 'versicolor', 'virginica']);
  });

  it('passes onnx.checker.check_model (Debian python3-onnx)', async () => {
    expect(await runOnnxChecker(path.join(exported, 'model.onnx'))).toMatch(/ir 8 opsets/);
  });

  it('gives the native probabilities within float32 tolerance on every row', async () => {
    const a = await loadBundle(native);
    const b = await loadBundle(exported);
    try {
      const data = await readDataset(path.join(ROOT, 'data/iris/iris.csv'), { features: FEATURES, target: 'species', textLabels: true });
      const pa = await a.runtime.predict(data.x, data.nRows);
      const pb = await b.runtime.predict(data.x, data.nRows);
      expect(b.runtime.nOutputs).toBe(3);
      expect(pb).toHaveLength(150 * 3);
      let max = 0;
      for (let i = 0; i < pa.length; i++) max = Math.max(max, Math.abs(pa[i] - pb[i]));
      expect(max).toBeLessThan(1e-5);
    } finally {
      await b.runtime.close?.();
    }
  });

  it('is served like the native classifier: /predict answers the class and probabilities', async () => {
    const model = await loadBundle(exported);
    const app = await buildApp({ model, color: 'blue', processMetrics: false });
    try {
      const res = await app.inject({
        method: 'POST',
        url: '/predict',
        payload: Object.fromEntries(FEATURES.map((f, j) => [f, [7.7, 3.0, 6.1, 2.3][j]])),
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().prediction).toBe('virginica');
      expect(res.json().probabilities.virginica).toBeGreaterThan(0.8);
    } finally {
      await app.close();
    }
  });

  it('import-onnx takes it back as a classifier: classes from TreeEnsembleClassifier, metrics on the CSV', async () => {
    const out = path.join(root, 'imported', 'iris', '9.0.0');
    const { manifest } = await importOnnxBundle(path.join(exported, 'model.onnx'), {
      name: 'iris',
      version: '9.0.0',
      featuresFrom: path.join(ROOT, 'data/iris/iris.csv'),
      target: 'species',
      outDir: out,
    });
    expect(manifest).toMatchObject({ task: 'classification', classes: ['setosa', 'versicolor', 'virginica'] });
    expect(manifest.onnx).toEqual({ input: 'float_input', output: 'probabilities' });
    expect(manifest.features.map((f) => f.name)).toEqual(FEATURES);
    const metrics = manifest.training.metrics as ClassificationMetrics;
    expect(metrics.rows).toBe(150);
    expect(metrics.accuracy).toBeGreaterThan(0.95);
  });

  it('import-onnx refuses a classifier whose probabilities only leave through ZipMap, saying how to convert it', async () => {
    const model = onnxProto.onnx.ModelProto.decode(await readFile(path.join(exported, 'model.onnx')));
    const graph = model.graph!;
    graph.node!.push({ opType: 'ZipMap', domain: 'ai.onnx.ml', input: ['probabilities'], output: ['output_probability'] });
    graph.output = graph.output!.filter((o) => o.name !== 'probabilities');
    const file = path.join(root, 'zipmap.onnx');
    await writeFile(file, onnxProto.onnx.ModelProto.encode(model).finish());
    await expect(
      importOnnxBundle(file, { name: 'iris', version: '9.0.1', features: FEATURES, outDir: path.join(root, 'zipmap', '9.0.1') }),
    ).rejects.toThrow(
      /probabilities are not a graph output \(ZipMap turns them into maps\): convert with skl2onnx's options=\{'zipmap': False\}/,
    );
  });
});
