/** A classifier bundle served: /predict, /predict/batch and V2 answer the class and the probabilities. */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { INSTANCE_METRICS } from '../../src/config/metric-names.js';
import { trainBundle } from '../../src/model/train-bundle.js';
import { ROOT } from '../support/processes.js';
import { appOn, metricsText, sample } from './helpers.js';

const FEATURES = ['sepal length (cm)', 'sepal width (cm)', 'petal length (cm)', 'petal width (cm)'];
const SETOSA = [5.1, 3.5, 1.4, 0.2];
const VIRGINICA = [7.7, 3.0, 6.1, 2.3];
const body = (row: number[]) => Object.fromEntries(FEATURES.map((f, j) => [f, row[j]]));

let root = '';
let app: FastifyInstance;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'bgserve-iris-'));
  const out = path.join(root, 'iris', '1.0.0');
  await trainBundle({ dataFile: path.join(ROOT, 'data/iris/iris.csv'), target: 'species', outDir: out, trees: 25, seed: 1 });
  app = await appOn(out, { batchLimit: 10 });
});
afterAll(async () => {
  await app?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

const post = (url: string, payload: object) =>
  app.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/json' } });

describe('a classifier served', () => {
  it('POST /predict answers the class and the probability of each class', async () => {
    const res = await post('/predict', body(SETOSA));
    expect(res.statusCode).toBe(200);
    const answer = res.json();
    expect(Object.keys(answer).sort()).toEqual(['color', 'model', 'prediction', 'probabilities']);
    expect(answer.prediction).toBe('setosa');
    expect(Object.keys(answer.probabilities)).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(answer.probabilities.setosa).toBeGreaterThan(0.9);
    const total = Object.values(answer.probabilities as Record<string, number>).reduce((s, p) => s + p, 0);
    expect(total).toBeCloseTo(1, 12);
  });

  it('POST /predict/batch answers classes and probabilities in row order, equal to single answers', async () => {
    const res = await post('/predict/batch', { instances: [body(SETOSA), body(VIRGINICA)] });
    expect(res.statusCode).toBe(200);
    const { predictions, probabilities } = res.json();
    expect(predictions).toEqual(['setosa', 'virginica']);
    expect(probabilities[1]).toEqual((await post('/predict', body(VIRGINICA))).json().probabilities);
  });

  it('refuses a body without its features, naming them', async () => {
    const res = await post('/predict', { alcohol: 9.4 });
    expect(res.statusCode).toBe(422);
    expect(res.body).toContain('sepal length (cm)');
  });

  it('V2 infer outputs the classes (BYTES) and the probabilities [N, classes]; metadata lists the classes', async () => {
    const res = await post('/v2/models/iris/infer', {
      inputs: [{ name: 'x', shape: [2, 4], datatype: 'FP64', data: [...SETOSA, ...VIRGINICA] }],
    });
    expect(res.statusCode, res.body).toBe(200);
    const [label, proba] = res.json().outputs;
    expect(label).toEqual({ name: 'predict', shape: [2], datatype: 'BYTES', data: ['setosa', 'virginica'] });
    expect(proba.name).toBe('probabilities');
    expect(proba.shape).toEqual([2, 3]);
    expect(proba.data[0]).toBeGreaterThan(0.9);
    expect(proba.data[5]).toBeGreaterThan(0.9);
    const meta = (await app.inject({ url: '/v2/models/iris' })).json();
    expect(meta.parameters.classes).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(meta.outputs.map((o: { name: string }) => o.name)).toEqual(['predict', 'probabilities']);
  });

  it('records the predicted class index as the prediction value (the class frequencies a release compares)', async () => {
    const text = await metricsText(app);
    const labels = { color: 'blue', model_version: '1.0.0' };
    // Six rows were answered above (setosa, setosa + virginica, virginica, setosa + virginica): one value per
    // row, the class index (setosa 0, virginica 2), not three probabilities per row.
    expect(sample(text, `${INSTANCE_METRICS.predictionValue}_count`, labels)).toBe(6);
    expect(sample(text, `${INSTANCE_METRICS.predictionValue}_sum`, labels)).toBe(6);
  });
});
