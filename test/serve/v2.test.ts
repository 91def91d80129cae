import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { WINE_EXAMPLE, WINE_FEATURES } from '../../src/model/wine.js';
import { V2_INFER_ROUTES } from '../../src/serve/routes/v2.js';
import { appOn, metricsText, sample } from './helpers.js';

const ROUTE = V2_INFER_ROUTES[0];
const URL = '/v2/models/wine-quality/infer';
const row1 = WINE_FEATURES.map((f) => WINE_EXAMPLE[f]);
const row2 = [7.8, 0.88, 0, 2.6, 0.098, 25, 67, 0.9968, 3.2, 0.68, 9.8];

let app: FastifyInstance;
let want: number[];

beforeAll(async () => {
  app = await appOn(undefined, { batchLimit: 50 });
  const res = await app.inject({
    method: 'POST',
    url: '/predict/batch',
    payload: { instances: [row1, row2].map((r) => Object.fromEntries(WINE_FEATURES.map((f, j) => [f, r[j]]))) },
  });
  want = res.json().predictions;
});
afterAll(async () => app?.close());

const infer = (payload: unknown, url = URL) =>
  app.inject({
    method: 'POST',
    url,
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    headers: { 'content-type': 'application/json' },
  });

const matrix = (datatype: string, data: unknown, shape = [2, 11]) => ({ inputs: [{ name: 'input-0', shape, datatype, data }] });
const perFeature = (shape: (n: number) => number[], rows = [row1, row2], datatype = 'FP64') => ({
  inputs: WINE_FEATURES.map((f, j) => ({ name: f, shape: shape(rows.length), datatype, data: rows.map((r) => r[j]) })),
});

describe('V2 metadata and health', () => {
  it('GET /v2 names the server', async () => {
    const res = await app.inject({ url: '/v2' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ name: 'bgserve', extensions: [] });
    expect(res.json().version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('health live and ready answer 200; ready answers 503 while a model loads', async () => {
    expect((await app.inject({ url: '/v2/health/live' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/v2/health/ready' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/v2/models/wine-quality/ready' })).json()).toEqual({ name: 'wine-quality', ready: true });
    const { holder } = app.serving;
    expect(holder.beginLoad()).toBe(true);
    try {
      const ready = await app.inject({ url: '/v2/health/ready' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toEqual({ error: 'not ready: the instance is loading' });
      expect((await app.inject({ url: '/v2/models/wine-quality/versions/1.0.0/ready' })).statusCode).toBe(503);
    } finally {
      holder.endLoad();
    }
  });

  it('model metadata lists the version, the [-1, 11] input and the features', async () => {
    for (const url of ['/v2/models/wine-quality', '/v2/models/wine-quality/versions/1.0.0']) {
      const body = (await app.inject({ url })).json();
      expect(body).toMatchObject({ name: 'wine-quality', versions: ['1.0.0'], platform: 'bgserve_native_forest' });
      expect(body.inputs).toEqual([{ name: 'input', datatype: 'FP64', shape: [-1, 11] }]);
      expect(body.outputs).toEqual([{ name: 'predict', datatype: 'FP64', shape: [-1, 1] }]);
      expect(body.parameters.features).toEqual(WINE_FEATURES);
    }
  });

  it('404 for an unknown model or version, on every model route', async () => {
    for (const url of [
      '/v2/models/iris',
      '/v2/models/iris/ready',
      '/v2/models/wine-quality/versions/9.9.9',
      '/v2/models/wine-quality/versions/9.9.9/ready',
    ]) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(404);
      expect(typeof res.json().error).toBe('string');
    }
    expect((await infer(matrix('FP64', [...row1, ...row2]), '/v2/models/iris/infer')).json()).toEqual({
      error: "unknown model 'iris': this instance serves 'wine-quality'",
    });
    const res = await infer(matrix('FP64', [...row1, ...row2]), '/v2/models/wine-quality/versions/2.0.0/infer');
    expect(res.statusCode).toBe(404);
    expect(res.json().error).toMatch(/has no version '2.0.0' here: this instance serves version '1.0.0'/);
  });
});

describe('V2 infer: every request shape', () => {
  it('one [2, 11] FP64 tensor, flat data: FP64 [2, 1] equal to /predict/batch', async () => {
    const res = await infer({ id: 'req-1', ...matrix('FP64', [...row1, ...row2]) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      model_name: 'wine-quality',
      model_version: '1.0.0',
      id: 'req-1',
      outputs: [{ name: 'predict', shape: [2, 1], datatype: 'FP64', data: want }],
    });
  });

  it('nested data and the versioned path give the same answer', async () => {
    const res = await infer(matrix('FP64', [row1, row2]), '/v2/models/wine-quality/versions/1.0.0/infer');
    expect(res.json().outputs[0].data).toEqual(want);
  });

  it('FP32 in, FP32 out (values rounded to float32)', async () => {
    const res = await infer(matrix('FP32', [...row1, ...row2]));
    expect(res.json().outputs[0]).toEqual({ name: 'predict', shape: [2, 1], datatype: 'FP32', data: want.map(Math.fround) });
  });

  it('one tensor per feature, shape [N]: output shape [N]', async () => {
    const res = await infer(perFeature((n) => [n]));
    expect(res.json().outputs[0]).toEqual({ name: 'predict', shape: [2], datatype: 'FP64', data: want });
  });

  it('one tensor per feature, shape [N, 1], in any order: output shape [N, 1]', async () => {
    const body = perFeature((n) => [n, 1]);
    body.inputs.reverse();
    const res = await infer(body);
    expect(res.json().outputs[0]).toMatchObject({ shape: [2, 1], data: want });
  });

  it('integer datatypes carry integer values ("total sulfur dioxide" as INT64)', async () => {
    const body = perFeature((n) => [n]);
    body.inputs[6].datatype = 'INT64';
    const res = await infer(body);
    expect(res.statusCode).toBe(200);
    expect(res.json().outputs[0]).toMatchObject({ datatype: 'FP64', data: want });
  });

  it('asking for the "predict" output is accepted', async () => {
    const res = await infer({ ...matrix('FP64', [...row1, ...row2]), outputs: [{ name: 'predict' }] });
    expect(res.statusCode).toBe(200);
  });
});

describe('V2 infer: every error, counted as /predict counts them', () => {
  const bad: [string, unknown, RegExp][] = [
    ['no inputs', { inputs: [] }, /inputs must be a non-empty array/],
    ['not an object', [1, 2], /must be a JSON object/],
    [
      'a non-number in data',
      matrix('FP64', [...row1.slice(0, 10), 'NaN', ...row2]),
      /input 'input-0': data\[10\] must be a finite number, got "NaN"/,
    ],
    ['null in data', matrix('FP64', [...row1.slice(0, 10), null, ...row2]), /data\[10\] must be a finite number, got null/],
    ['too few values', matrix('FP64', [...row1, ...row2.slice(1)]), /data has 21 values, shape \[2, 11\] needs 22/],
    ['nested data that does not fit the shape', matrix('FP64', [row1, row2.slice(1)]), /data\[1\] must be an array of 11/],
    ['10 columns', matrix('FP64', [...row1.slice(1), ...row2.slice(1)], [2, 10]), /shape \[2, 10\] must be \[N, 11\]/],
    ['an unsupported datatype', matrix('BOOL', [...row1, ...row2]), /datatype "BOOL" is not supported/],
    ['a fraction in an INT32 tensor', matrix('INT32', [...row1, ...row2]), /data\[0\] = 7.4 is not a INT32/],
    ['a value FP32 cannot hold', matrix('FP32', [1e39, ...row1.slice(1), ...row2]), /overflows FP32/],
    [
      'an unknown output',
      { ...matrix('FP64', [...row1, ...row2]), outputs: [{ name: 'probabilities' }] },
      /unknown output "probabilities"/,
    ],
    ['a missing feature tensor', { inputs: perFeature((n) => [n]).inputs.slice(1) }, /missing feature tensors: fixed acidity/],
    [
      'a feature tensor twice',
      { inputs: [...perFeature((n) => [n]).inputs, perFeature((n) => [n]).inputs[0]] },
      /input 'fixed acidity' is given twice/,
    ],
    [
      'an unknown tensor beside feature tensors',
      { inputs: [...perFeature((n) => [n]).inputs, { name: 'colour', shape: [2], datatype: 'FP64', data: [1, 2] }] },
      /input 'colour' is not a feature of this model/,
    ],
    [
      'feature tensors of different lengths',
      { inputs: perFeature((n) => [n]).inputs.map((t, j) => (j === 3 ? { ...t, shape: [1], data: [t.data[0]] } : t)) },
      /all feature tensors must have the same shape/,
    ],
    [
      'a [N, 2] feature tensor',
      { inputs: perFeature((n) => [n]).inputs.map((t, j) => (j === 0 ? { ...t, shape: [1, 2] } : t)) },
      /shape \[1, 2\] must be \[N\] or \[N, 1\]/,
    ],
    ['zero rows', matrix('FP64', [], [0, 11]), /no rows/],
    ['a negative dimension', matrix('FP64', [...row1, ...row2], [-2, 11]), /shape must be a non-empty array of non-negative integers/],
    ['a numeric id', { id: 7, ...matrix('FP64', [...row1, ...row2]) }, /id must be a string/],
    ['invalid JSON', '{"inputs": [', /not valid JSON/],
  ];
  for (const [what, body, message] of bad) {
    it(`400 for ${what}`, async () => {
      const res = await infer(body);
      expect(res.statusCode).toBe(400);
      expect(Object.keys(res.json())).toEqual(['error']);
      expect(res.json().error).toMatch(message);
    });
  }

  it('413 for more rows than the batch limit', async () => {
    const rows = Array.from({ length: 51 }, () => row1);
    const res = await infer(matrix('FP64', rows, [51, 11]));
    expect(res.statusCode).toBe(413);
    expect(res.json().error).toMatch(/at most 50 rows; this one has 51/);
  });

  it('415 for a body that is not JSON', async () => {
    const res = await app.inject({ method: 'POST', url: URL, payload: 'x', headers: { 'content-type': 'text/plain' } });
    expect(res.statusCode).toBe(415);
    expect(typeof res.json().error).toBe('string');
  });

  it('counts answers and rejections in the /predict series, labelled by route', async () => {
    const labels = { route: ROUTE, model_version: '1.0.0', color: 'blue' };
    const before = await metricsText(app);
    await infer(matrix('FP64', [...row1, ...row2]));
    await infer(matrix('FP64', [...row1, 'x', ...row2.slice(1)]));
    const after = await metricsText(app);
    const delta = (name: string, extra: Record<string, string>) =>
      (sample(after, name, { ...labels, ...extra }) ?? 0) - (sample(before, name, { ...labels, ...extra }) ?? 0);
    expect(delta('predict_requests_total', { status: '200' })).toBe(1);
    expect(delta('predict_requests_total', { status: '400' })).toBe(1);
    expect(delta('predict_errors_total', { reason: 'invalid_input' })).toBe(1);
    expect(delta('prediction_latency_seconds_count', {})).toBe(1);
    // The versioned infer route has its series from the start, like /predict's.
    expect(sample(after, 'predict_requests_total', { route: V2_INFER_ROUTES[1], status: '200' })).toBeGreaterThanOrEqual(0);
  });
});
