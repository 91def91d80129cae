import { describe, it, expect, afterAll } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadBundle } from '../../src/model/bundle.js';
import { parseDataset, readDataset } from '../../src/model/csv.js';
import { LEAF, deserializeForest, forestProblem } from '../../src/model/forest.js';
import { regressionMetrics } from '../../src/model/metrics.js';
import { recordedTrainOptions, resolveCreatedAt, trainBundle } from '../../src/model/train-bundle.js';
import { type MaxFeatures, TrainOptionsError, resolveMaxFeatures, splitRows, trainModel } from '../../src/model/trainer.js';
import type { Manifest, RegressionMetrics } from '../../src/model/types.js';
import { WINE_FEATURES, WINE_TARGET } from '../../src/model/wine.js';
import { ROOT } from '../support/processes.js';

const RED = path.join(ROOT, 'data/wine-quality/winequality-red.csv');
const BUNDLES = ['1.0.0', '1.1.0'].map((v) => path.join(ROOT, 'models/wine-quality', v));
const tmpRoots: string[] = [];
afterAll(async () => {
  await Promise.all(tmpRoots.map((d) => rm(d, { recursive: true, force: true })));
});

async function manifestOf(dir: string): Promise<Manifest> {
  return JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
}

/** A tiny labelled table: y is 10 when x0 > 0.5, else 0; x1 is noise. */
function stepData(n = 40) {
  const lines = ['a,b,y'];
  for (let i = 0; i < n; i++) {
    const a = i / (n - 1);
    lines.push(`${a},${(i * 7) % 5},${a > 0.5 ? 10 : 0}`);
  }
  return parseDataset(lines.join('\n'), { features: ['a', 'b'], target: 'y' });
}

describe('trainer on small data', () => {
  it('finds the exact step with a midpoint threshold in scaled units', () => {
    const data = stepData();
    const m = trainModel(data, { trees: 5, maxDepth: 1, maxFeatures: 'all', seed: 3 });
    expect(forestProblem(m.forest)).toBeNull();
    for (let t = 0; t < 5; t++) {
      const root = m.forest.treeOffsets[t];
      expect(m.forest.feature[root]).toBe(0);
      // The threshold lies strictly between the largest 0-labelled and smallest 10-labelled scaled values.
      const thr = m.forest.threshold[root] * m.scaler.scale[0] + m.scaler.mean[0];
      expect(thr).toBeGreaterThan(0.49);
      expect(thr).toBeLessThan(0.53);
      expect(m.forest.feature[m.forest.left[root]]).toBe(LEAF);
      expect(m.forest.value[m.forest.left[root]]).toBe(0);
      expect(m.forest.value[m.forest.right[root]]).toBe(10);
    }
    expect(m.metrics.rmse).toBe(0);
  });

  it('respects maxDepth and minSamplesLeaf', () => {
    const data = stepData(60);
    const m = trainModel(data, { trees: 3, maxDepth: 2, minSamplesLeaf: 4, seed: 1 });
    const { forest } = m;
    const depthOf = (node: number, d: number): number =>
      forest.feature[node] === LEAF ? d : Math.max(depthOf(forest.left[node], d + 1), depthOf(forest.right[node], d + 1));
    for (let t = 0; t < 3; t++) expect(depthOf(forest.treeOffsets[t], 0)).toBeLessThanOrEqual(2);
  });

  it('splits 80/20 deterministically by seed, disjoint and complete', () => {
    const a = splitRows(1599, 0.2, 4);
    expect(a.test.length).toBe(320);
    expect(a.train.length).toBe(1279);
    expect(new Set([...a.train, ...a.test]).size).toBe(1599);
    expect(splitRows(1599, 0.2, 4)).toEqual(a);
    expect(splitRows(1599, 0.2, 5).test).not.toEqual(a.test);
  });

  it.each<[MaxFeatures, number]>([
    ['all', 11],
    ['sqrt', 3],
    ['log2', 3],
    [1, 11],
    [0.34, 3],
    [5, 5],
    [40, 11],
  ])('maxFeatures %s resolves to %i of 11', (mf, n) => {
    expect(resolveMaxFeatures(mf, 11)).toBe(n);
  });

  it('refuses bad options with a message', () => {
    const data = stepData();
    expect(() => trainModel(data, { trees: 0 })).toThrow(TrainOptionsError);
    expect(() => trainModel(data, { maxFeatures: 2.5 })).toThrow(/maxFeatures/);
    expect(() => trainModel(data, { minSamplesLeaf: 1.5 })).toThrow(/minSamplesLeaf must be a positive integer/);
    expect(() => trainModel(data, { testFraction: 1 })).toThrow(/testFraction/);
    const unlabelled = parseDataset('a,b\n1,2\n3,4\n', { features: ['a', 'b'], target: 'y', labelled: false });
    expect(() => trainModel(unlabelled)).toThrow(/no label column/);
  });

  it('with a separate test table: trains on every row, scores every test row, holds nothing out', () => {
    const data = stepData(40);
    const test = parseDataset('a,b,y\n0.1,3,0\n0.9,1,10\n0.7,0,10\n', { features: ['a', 'b'], target: 'y' });
    const m = trainModel(data, { trees: 5, seed: 2, testFraction: 0 }, test);
    expect(Array.from(m.trainRows)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(Array.from(m.testRows)).toEqual([0, 1, 2]);
    expect(Array.from(m.testPredictions)).toEqual([0, 10, 10]);
    expect(m.metrics.rows).toBe(3);
    expect(() => trainModel(data, { testFraction: 0 })).toThrow(/testFraction must be in \(0, 1\) without a separate test table/);
    expect(() => trainModel(data, { testFraction: 0.2 }, test)).toThrow(/nothing is held out: testFraction must be 0/);
    const other = parseDataset('b,a,y\n1,2,3\n', { features: ['b', 'a'], target: 'y' });
    expect(() => trainModel(data, { testFraction: 0 }, other)).toThrow(/same order/);
  });
});

describe('committed bundles', () => {
  it.each(BUNDLES)('%s meets the quality target on its held-out rows, recomputed from golden.csv', async (dir) => {
    const model = await loadBundle(dir, { expectedFeatures: WINE_FEATURES });
    const recorded = model.manifest.training.metrics as RegressionMetrics;
    expect(recorded.rmse).toBeLessThanOrEqual(0.55);
    expect(recorded.mae).toBeLessThanOrEqual(0.43);
    const golden = await readDataset(path.join(dir, model.manifest.goldenFile!), { features: WINE_FEATURES, target: WINE_TARGET });
    expect(golden.nRows).toBe(model.manifest.training.split!.testRows);
    const metrics = regressionMetrics(golden.y!, await model.runtime.predict(golden.x, golden.nRows));
    expect(metrics).toEqual(recorded);
    const data = await readDataset(RED, { features: WINE_FEATURES, target: WINE_TARGET });
    expect(model.manifest.training.data.sha256).toBe(data.sha256);
    expect(model.manifest.training.data.rows).toBe(1599);
  });

  it('1.0.0 retrains byte-identically from the data and its recorded options, within 10 s', async () => {
    const dir = BUNDLES[0];
    const recorded = await manifestOf(dir);
    const root = await mkdtemp(path.join(tmpdir(), 'bgserve-retrain-'));
    tmpRoots.push(root);
    const out = path.join(root, 'wine-quality', '1.0.0');
    const { manifest, model } = await trainBundle({
      dataFile: path.join(ROOT, recorded.training.data.file),
      outDir: out,
      ...recordedTrainOptions(recorded),
    });
    expect(manifest.files).toEqual(recorded.files);
    expect({
      ...manifest,
      training: { ...manifest.training, data: { ...manifest.training.data, file: recorded.training.data.file } },
    }).toEqual(recorded);
    for (const f of ['forest.bin', 'golden.csv']) {
      expect((await readFile(path.join(out, f))).equals(await readFile(path.join(dir, f)))).toBe(true);
    }

    // The committed runtime predicts exactly what the trainer predicted in memory for the held-out rows.
    const loaded = await loadBundle(dir);
    const data = await readDataset(RED, { features: WINE_FEATURES, target: WINE_TARGET });
    const nf = WINE_FEATURES.length;
    const rows = new Float64Array(model.testRows.length * nf);
    model.testRows.forEach((r, k) => {
      rows.set(data.x.subarray(r * nf, (r + 1) * nf), k * nf);
    });
    const runtimePredictions = await loaded.runtime.predict(rows, model.testRows.length);
    expect(runtimePredictions).toEqual(model.testPredictions);
    expect(deserializeForest(await readFile(path.join(dir, 'forest.bin'))).nTrees).toBe(recorded.training.params?.trees);
  });

  it('the same seed gives the same forest, another seed another one', () => {
    const data = stepData(80);
    const a = trainModel(data, { trees: 4, seed: 1, maxFeatures: 1 });
    expect(trainModel(data, { trees: 4, seed: 1, maxFeatures: 1 }).forest).toEqual(a.forest);
    expect(trainModel(data, { trees: 4, seed: 2, maxFeatures: 1 }).forest.value).not.toEqual(a.forest.value);
  });
});

describe('resolveCreatedAt', () => {
  it('prefers the option, then SOURCE_DATE_EPOCH, else now', () => {
    expect(resolveCreatedAt('2025-01-01T00:00:00Z', {})).toBe('2025-01-01T00:00:00.000Z');
    expect(resolveCreatedAt(undefined, { SOURCE_DATE_EPOCH: '86400' })).toBe('1970-01-02T00:00:00.000Z');
    expect(Date.parse(resolveCreatedAt(undefined, {}))).toBeGreaterThan(Date.parse('2024-01-01'));
    expect(() => resolveCreatedAt('soon', {})).toThrow(/ISO date-time/);
    expect(() => resolveCreatedAt(undefined, { SOURCE_DATE_EPOCH: 'x' })).toThrow(/SOURCE_DATE_EPOCH/);
  });
});
