/**
 * The demo's bad versions are real models, served by a real instance (no fault injection): the erroring one
 * fails on a share of the live-like rows, never on its golden rows, and the instance answers those failures as
 * the model's fault (500 model_error, on /predict and V2 alike), counted where the error-ratio check reads.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INSTANCE_METRICS } from '../../src/config/metric-names.js';
import { DEMO_LIVE_ROWS, DEMO_VERSIONS, writeDemoBundles, type DemoBundles } from '../../src/demo/bundles.js';
import { loadBundle } from '../../src/model/bundle.js';
import { readDataset } from '../../src/model/csv.js';
import { WINE_FEATURES, WINE_TARGET } from '../../src/model/wine.js';
import { V2_INFER_ROUTES } from '../../src/serve/routes/v2.js';
import { BASE_BUNDLE } from '../controller/bundles.js';
import { appOn, metricsText, sample } from '../serve/helpers.js';
import { ROOT } from '../support/processes.js';

let dir: string;
let made: DemoBundles;
let app: FastifyInstance;
const rows = (csv: string) => readDataset(csv, { features: WINE_FEATURES, target: WINE_TARGET, labelled: false });
const record = (x: Float64Array, r: number) => Object.fromEntries(WINE_FEATURES.map((f, c) => [f, x[r * WINE_FEATURES.length + c]]));

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bgserve-demo-bundles-'));
  made = await writeDemoBundles(BASE_BUNDLE, dir, path.join(ROOT, DEMO_LIVE_ROWS));
  app = await appOn(made.erroring);
});
afterAll(async () => {
  await app?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('demo-bundles: the erroring variant', () => {
  it('fails on a share of the live-like rows, on none of its golden rows, and predicts as the good model elsewhere', async () => {
    expect(path.basename(made.erroring)).toBe(DEMO_VERSIONS.erroring);
    const erroring = await loadBundle(made.erroring);
    const base = await loadBundle(BASE_BUNDLE);
    const live = await rows(path.join(ROOT, DEMO_LIVE_ROWS));
    const golden = await rows(path.join(BASE_BUNDLE, 'golden.csv'));
    const [pl, bl] = [await erroring.runtime.predict(live.x, live.nRows), await base.runtime.predict(live.x, live.nRows)];
    const failing = pl.filter((v) => !Number.isFinite(v)).length / live.nRows;
    expect(failing).toBeCloseTo(made.erroringShare, 6);
    // Enough to fail the 1% error-ratio check by far, few enough that most answers still come.
    expect(failing).toBeGreaterThan(0.05);
    expect(failing).toBeLessThan(0.5);
    expect([...(await erroring.runtime.predict(golden.x, golden.nRows))].every(Number.isFinite)).toBe(true);
    for (let i = 0; i < live.nRows; i++) if (Number.isFinite(pl[i])) expect(Math.abs(pl[i] - bl[i])).toBeLessThan(1e-9);
  });

  it('answers a failing row 500 model_error on /predict and the V2 route, counted as 5xx, and keeps serving', async () => {
    const live = await rows(path.join(ROOT, DEMO_LIVE_ROWS));
    const model = await loadBundle(made.erroring);
    const p = await model.runtime.predict(live.x, live.nRows);
    const bad = p.findIndex((v) => !Number.isFinite(v));
    const good = p.findIndex((v) => Number.isFinite(v));

    const failed = await app.inject({ method: 'POST', url: '/predict', payload: record(live.x, bad) });
    expect(failed.statusCode).toBe(500);
    expect(failed.json()).toMatchObject({ error: 'model_error', message: expect.any(String), details: [{ field: 'body' }] });
    const v2 = await app.inject({
      method: 'POST',
      url: '/v2/models/wine-quality/infer',
      payload: {
        inputs: WINE_FEATURES.map((f, c) => ({ name: f, datatype: 'FP64', shape: [1], data: [live.x[bad * WINE_FEATURES.length + c]] })),
      },
    });
    expect(v2.statusCode).toBe(500);
    const answered = await app.inject({ method: 'POST', url: '/predict', payload: record(live.x, good) });
    expect(answered.statusCode).toBe(200);
    expect(answered.json().prediction).toBeCloseTo(p[good], 9);

    const text = await metricsText(app);
    const labels = { color: 'blue', source: 'live' };
    expect(sample(text, INSTANCE_METRICS.requests, { ...labels, route: '/predict', status: '500' })).toBe(1);
    expect(sample(text, INSTANCE_METRICS.requests, { ...labels, route: V2_INFER_ROUTES[0], status: '500' })).toBe(1);
    expect(sample(text, INSTANCE_METRICS.errors, { route: '/predict', reason: 'model_error' })).toBe(1);
  });
});
