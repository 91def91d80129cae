import { describe, it, expect, afterAll } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadBundle } from '../../src/model/bundle.js';
import { argmaxRows, trainClassifier } from '../../src/model/classifier.js';
import { classIndices, classesOf } from '../../src/model/columns.js';
import { parseDataset, readDataset } from '../../src/model/csv.js';
import { LEAF, deserializeForest, forestProblem, outputForest, serializeForest } from '../../src/model/forest.js';
import { classificationMetrics } from '../../src/model/metrics.js';
import { NativeClassifierRuntime } from '../../src/model/native-classifier.js';
import { trainBundle } from '../../src/model/train-bundle.js';
import type { ClassificationMetrics } from '../../src/model/types.js';
import { ROOT } from '../support/processes.js';

const IRIS = path.join(ROOT, 'data/iris/iris.csv');
const IRIS_FEATURES = ['sepal length (cm)', 'sepal width (cm)', 'petal length (cm)', 'petal width (cm)'];
const roots: string[] = [];
afterAll(async () => {
  await Promise.all(roots.map((d) => rm(d, { recursive: true, force: true })));
});

/** Three classes by a: "lo" below 0.3, "mid" to 0.7, "hi" above; b is noise. */
function bands(n = 60) {
  const lines = ['a,b,y'];
  for (let i = 0; i < n; i++) {
    const a = i / (n - 1);
    lines.push(`${a},${(i * 7) % 5},${a < 0.3 ? 'lo' : a < 0.7 ? 'mid' : 'hi'}`);
  }
  const data = parseDataset(lines.join('\n'), { features: ['a', 'b'], target: 'y', textLabels: true });
  const classes = classesOf(data.labelTexts!);
  data.y = classIndices(data.labelTexts!, classes, 'bands', 'y');
  return { data, classes };
}

describe('classifier trainer', () => {
  it('orders classes as scikit-learn does: numbers numerically, text by code point', () => {
    expect(classesOf(['9', '10', '3', '9'])).toEqual(['3', '9', '10']);
    expect(classesOf(['virginica', 'setosa', 'Zebra'])).toEqual(['Zebra', 'setosa', 'virginica']);
    expect(() => classIndices(['a', 'c'], ['a', 'b'], 't.csv', 'y')).toThrow(
      /t\.csv: row 2 has y "c", a class the training data does not have \(a, b\)/,
    );
  });

  it('grows Gini trees whose leaves are pure class shares and finds both cut points', () => {
    const { data, classes } = bands();
    expect(classes).toEqual(['hi', 'lo', 'mid']);
    const m = trainClassifier(data, classes, { trees: 5, maxFeatures: 'all', seed: 3 });
    expect(forestProblem(m.forest)).toBeNull();
    expect(m.forest.nOutputs).toBe(3);
    const f = m.forest;
    for (let i = 0; i < f.feature.length; i++) {
      const shares = Array.from(f.value.subarray(i * 3, i * 3 + 3));
      expect(shares.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 12);
      // Noise-free bands: every leaf is one class.
      if (f.feature[i] === LEAF) expect(shares.filter((v) => v === 1)).toHaveLength(1);
      else expect(f.feature[i]).toBe(0);
    }
    expect(m.metrics.accuracy).toBe(1);
    // Bootstrap samples place the cut points a little differently: rows near them get shared votes.
    expect(m.metrics.logLoss).toBeLessThan(0.2);
    // Probabilities of each test row sum to 1 and its class is their argmax.
    for (let r = 0; r < m.testRows.length; r++) {
      const p = m.testProbabilities.subarray(r * 3, r * 3 + 3);
      expect(p.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 12);
      expect(m.testPredictions[r]).toBe(argmaxRows(p, 1, 3)[0]);
    }
  });

  it('accuracy and log-loss: ties go to the first class, probabilities clipped at 1e-15', () => {
    const m: ClassificationMetrics = classificationMetrics([0, 1, 1], [0.5, 0.5, 0.2, 0.8, 1, 0], 2);
    expect(m.accuracy).toBeCloseTo(2 / 3, 12);
    expect(m.logLoss).toBeCloseTo((Math.log(2) + -Math.log(0.8) + -Math.log(1e-15)) / 3, 12);
    expect(m.rows).toBe(3);
  });

  it('forest.bin: a classifier round-trips as version 2; a regressor stays version 1', () => {
    const { data, classes } = bands(30);
    const { forest } = trainClassifier(data, classes, { trees: 3, seed: 1 });
    const bytes = serializeForest(forest);
    expect(bytes.readUInt32LE(8)).toBe(2);
    expect(bytes.readUInt32LE(24)).toBe(3);
    expect(deserializeForest(bytes)).toEqual(forest);
    const single = outputForest(forest, 2);
    expect(single.nOutputs).toBeUndefined();
    expect(serializeForest(single).readUInt32LE(8)).toBe(1);
    expect(() => deserializeForest(Buffer.concat([bytes, Buffer.alloc(8)]))).toThrow(/header implies/);
  });
});

describe('classifier bundles', () => {
  it('iris: a bundle with classes, text golden labels, and a runtime equal to the trainer bit for bit', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'bgserve-classifier-'));
    roots.push(root);
    const out = path.join(root, 'iris', '1.0.0');
    const { manifest, model } = await trainBundle({ dataFile: IRIS, target: 'species', outDir: out, seed: 5, trees: 30 });
    expect(manifest.task).toBe('classification');
    expect(manifest.classes).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(manifest.features.map((f) => f.name)).toEqual(IRIS_FEATURES);
    // scikit-learn's classifier default: sqrt of the features per split.
    expect(manifest.training.params).toMatchObject({
      algorithm: 'random-forest-classifier',
      criterion: 'gini',
      maxFeatures: 'sqrt',
      featuresPerSplit: 2,
    });
    const metrics = manifest.training.metrics as ClassificationMetrics;
    expect(metrics.accuracy).toBeGreaterThan(0.85);
    expect(metrics.rows).toBe(30);

    const golden = (await readFile(path.join(out, 'golden.csv'), 'utf8')).trim().split('\n');
    expect(golden[0]).toBe([...IRIS_FEATURES, 'species'].join(','));
    expect(golden.slice(1).every((l) => /,(setosa|versicolor|virginica)$/.test(l))).toBe(true);

    const loaded = await loadBundle(out);
    expect(loaded.runtime).toBeInstanceOf(NativeClassifierRuntime);
    expect(loaded.runtime.nOutputs).toBe(3);
    const rows = await readDataset(path.join(out, 'golden.csv'), { features: IRIS_FEATURES, target: 'species', textLabels: true });
    const probabilities = await loaded.runtime.predict(rows.x, rows.nRows);
    expect(probabilities).toEqual((model as { testProbabilities: Float64Array }).testProbabilities);
  });

  it('refuses a one-class table and a test table with an unseen class', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'bgserve-classifier-'));
    roots.push(root);
    const { writeFile } = await import('node:fs/promises');
    const one = path.join(root, 'one.csv');
    await writeFile(one, 'a,y\n1,x\n2,x\n3,x\n');
    await expect(trainBundle({ dataFile: one, target: 'y', outDir: path.join(root, 'o', '1') })).rejects.toThrow(
      /one\.csv: target "y" has one class \(x in every row\): nothing to learn/,
    );
    const two = path.join(root, 'two.csv');
    await writeFile(two, 'a,y\n1,x\n2,z\n3,x\n4,z\n');
    const unseen = path.join(root, 'unseen.csv');
    await writeFile(unseen, 'a,y\n1,x\n2,w\n');
    await expect(trainBundle({ dataFile: two, target: 'y', testDataFile: unseen, outDir: path.join(root, 'u', '1') })).rejects.toThrow(
      /unseen\.csv: row 2 has y "w", a class the training data does not have \(x, z\)/,
    );
  });
});
