import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import { INSTANCE_METRICS } from '../../src/config/metric-names.js';
import { WINE_EXAMPLE } from '../../src/model/wine.js';
import { defaultBundleRoots } from '../../src/model/bundle.js';
import { ADMIN_MODEL_ROUTE } from '../../src/serve/routes/admin.js';
import { appOn, BUNDLE_1_0, BUNDLE_1_1, metricsText, sample } from './helpers.js';

const TOKEN = 's3cret-token';
const auth = { authorization: `Bearer ${TOKEN}` };

function load(app: FastifyInstance, body: unknown, headers: Record<string, string> = auth) {
  return app.inject({ method: 'POST', url: ADMIN_MODEL_ROUTE, payload: body as object, headers });
}

async function predict(app: FastifyInstance): Promise<{ prediction: number; model: { version: string } }> {
  const res = await app.inject({ method: 'POST', url: '/predict', payload: WINE_EXAMPLE });
  expect(res.statusCode).toBe(200);
  return res.json();
}

const adminErrors = (text: string, reason: string) => sample(text, INSTANCE_METRICS.errors, { route: ADMIN_MODEL_ROUTE, reason }) ?? 0;

describe('POST /admin/model: authorization', () => {
  it('answers 403 admin_disabled when no token is configured, and counts it', async () => {
    const app = await appOn();
    try {
      const res = await load(app, { bundle: BUNDLE_1_1 });
      expect(res.statusCode).toBe(403);
      expect(res.json().error).toBe('admin_disabled');
      expect(adminErrors(await metricsText(app), 'admin_disabled')).toBe(1);
      expect((await predict(app)).model.version).toBe('1.0.0');
    } finally {
      await app.close();
    }
  });

  it('answers 401 without a token, with a wrong token or another scheme, before reading the body', async () => {
    const app = await appOn(undefined, { adminToken: TOKEN });
    try {
      for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: `Basic ${TOKEN}` }, { authorization: 'Bearer' }]) {
        const res = await app.inject({
          method: 'POST',
          url: ADMIN_MODEL_ROUTE,
          payload: 'not even json',
          headers: { ...headers, 'content-type': 'application/json' },
        });
        expect(res.statusCode).toBe(401);
        expect(res.json().error).toBe('unauthorized');
        expect(res.headers['www-authenticate']).toBe('Bearer');
      }
      expect(adminErrors(await metricsText(app), 'unauthorized')).toBe(4);
    } finally {
      await app.close();
    }
  });

  it('answers 422 with every problem for a malformed admin body', async () => {
    const app = await appOn(undefined, { adminToken: TOKEN });
    try {
      const res = await load(app, { bundel: BUNDLE_1_1, allowFeatureChange: 'yes' });
      expect(res.statusCode).toBe(422);
      expect(
        res
          .json()
          .details.map((d: { field: string }) => d.field)
          .sort(),
      ).toEqual(['allowFeatureChange', 'bundel', 'bundle']);
      expect(adminErrors(await metricsText(app), 'invalid_input')).toBe(1);
    } finally {
      await app.close();
    }
  });
});

describe('POST /admin/model: loading and swapping', () => {
  let app: FastifyInstance;
  let tmp: string;
  beforeEach(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'bgserve-admin-'));
    app = await appOn(undefined, { adminToken: TOKEN, bundleRoots: [...defaultBundleRoots(BUNDLE_1_0), tmp] });
  });
  afterEach(async () => {
    await app.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it('swaps to 1.1.0: predictions, /health and metrics follow the new version; /ready is 503 during the load', async () => {
    const before = await predict(app);
    const loading = load(app, { bundle: BUNDLE_1_1 });
    const readiness: number[] = [];
    let done = false;
    void loading.then(() => (done = true));
    // Yield to I/O between probes (inject alone never lets the bundle's file reads complete); bounded in time.
    const deadline = Date.now() + 20_000;
    while (!done && Date.now() < deadline) {
      readiness.push((await app.inject({ url: '/ready' })).statusCode);
      await new Promise((r) => setImmediate(r));
    }
    const res = await loading;
    expect(res.statusCode).toBe(200);
    expect(res.json().model).toMatchObject({ name: 'wine-quality', version: '1.1.0', format: 'native-forest' });
    expect(res.json().previous.version).toBe('1.0.0');
    expect(readiness).toContain(503);
    expect((await app.inject({ url: '/ready' })).statusCode).toBe(200);

    const after = await predict(app);
    expect(after.model.version).toBe('1.1.0');
    expect(after.prediction).not.toBe(before.prediction);
    const health = (await app.inject({ url: '/health' })).json();
    expect(health.model.version).toBe('1.1.0');
    expect(health.model.sha256).not.toBe(res.json().previous.sha256);

    const text = await metricsText(app);
    expect(sample(text, INSTANCE_METRICS.modelInfo, { model_version: '1.1.0' })).toBe(1);
    expect(sample(text, INSTANCE_METRICS.modelInfo, { model_version: '1.0.0' })).toBeUndefined();
    expect(sample(text, INSTANCE_METRICS.requests, { model_version: '1.1.0', route: '/predict', status: '200' })).toBe(1);
    expect(sample(text, INSTANCE_METRICS.requests, { model_version: '1.1.0', route: '/predict/batch', status: '200' })).toBe(0);
    expect(sample(text, INSTANCE_METRICS.requests, { model_version: '1.0.0', route: '/predict', status: '200' })).toBe(1);
    expect(sample(text, `${INSTANCE_METRICS.predictionValue}_count`, { model_version: '1.1.0' })).toBe(1);
    expect(sample(text, INSTANCE_METRICS.modelLoads, { outcome: 'loaded' })).toBe(1);
  });

  it('refuses a corrupted copy of 1.1.0 with 422 and the bundle error code; 1.0.0 keeps serving', async () => {
    const copy = path.join(tmp, '1.1.0');
    await cp(BUNDLE_1_1, copy, { recursive: true });
    const forest = path.join(copy, 'forest.bin');
    const bytes = await readFile(forest);
    bytes[bytes.length - 9] ^= 0xff;
    await writeFile(forest, bytes);

    const before = await predict(app);
    const res = await load(app, { bundle: copy });
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ error: 'bundle_refused', details: [{ field: 'bundle', problem: 'checksum_mismatch' }] });
    expect(res.json().message).toContain('forest.bin');
    expect(await predict(app)).toEqual(before);
    expect((await app.inject({ url: '/ready' })).statusCode).toBe(200);
    const text = await metricsText(app);
    expect(sample(text, INSTANCE_METRICS.modelLoads, { outcome: 'refused' })).toBe(1);
    expect(adminErrors(text, 'bundle_refused')).toBe(1);
    expect(sample(text, INSTANCE_METRICS.modelInfo, { model_version: '1.0.0' })).toBe(1);
  });

  it('refuses a missing folder with manifest_missing', async () => {
    const res = await load(app, { bundle: path.join(tmp, 'nothing-here') });
    expect(res.statusCode).toBe(422);
    expect(res.json().details[0].problem).toBe('manifest_missing');
  });

  it('refuses other features unless allowFeatureChange, then validates requests against the new features', async () => {
    const copy = path.join(tmp, 'renamed');
    await cp(BUNDLE_1_0, copy, { recursive: true });
    const manifestFile = path.join(copy, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8'));
    manifest.version = '1.0.0-ph';
    manifest.features.find((f: { name: string }) => f.name === 'pH').name = 'acidity pH';
    await writeFile(manifestFile, JSON.stringify(manifest));

    const refused = await load(app, { bundle: copy });
    expect(refused.statusCode).toBe(422);
    expect(refused.json().details[0].problem).toBe('features_mismatch');

    const accepted = await load(app, { bundle: copy, allowFeatureChange: true });
    expect(accepted.statusCode).toBe(200);
    const old = await app.inject({ method: 'POST', url: '/predict', payload: WINE_EXAMPLE });
    expect(old.statusCode).toBe(422);
    expect(
      old
        .json()
        .details.map((d: { field: string }) => d.field)
        .sort(),
    ).toEqual(['acidity pH', 'pH']);
    const { pH, ...rest } = WINE_EXAMPLE;
    const renamed = await app.inject({ method: 'POST', url: '/predict', payload: { ...rest, 'acidity pH': pH } });
    expect(renamed.statusCode).toBe(200);
    expect(renamed.json().model.version).toBe('1.0.0-ph');
  });
});

describe('POST /admin/model: one load at a time', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await appOn(undefined, { adminToken: TOKEN });
  });
  afterAll(() => app.close());

  it('answers 409 load_in_progress to a second load while the first runs', async () => {
    const [a, b] = await Promise.all([load(app, { bundle: BUNDLE_1_1 }), load(app, { bundle: BUNDLE_1_1 })]);
    expect([a.statusCode, b.statusCode].sort()).toEqual([200, 409]);
    expect([a, b].find((r) => r.statusCode === 409)!.json().error).toBe('load_in_progress');
    expect((await predict(app)).model.version).toBe('1.1.0');
  });
});
