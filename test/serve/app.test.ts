import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INSTANCE_METRICS } from '../../src/config/metric-names.js';
import { WINE_EXAMPLE, WINE_FEATURES } from '../../src/model/wine.js';
import { ApiError } from '../../src/serve/errors.js';
import { assertFinite, BATCH_ROUTE, PREDICT_ROUTE } from '../../src/serve/routes/predict.js';
import { appOn, metricsText, sample } from './helpers.js';

const json = { 'content-type': 'application/json' };

describe('serve app: the original API over HTTP (inject)', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await appOn(undefined, { batchLimit: 5, bodyLimit: 4096 });
  });
  afterAll(() => app.close());

  it('POST /predict answers the original example with a prediction, the model and the color', async () => {
    const res = await app.inject({ method: 'POST', url: '/predict', payload: WINE_EXAMPLE });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(['color', 'model', 'prediction']);
    expect(body.model).toEqual({ name: 'wine-quality', version: '1.0.0' });
    expect(body.color).toBe('blue');
    expect(body.prediction).toBeGreaterThan(3);
    expect(body.prediction).toBeLessThan(8);
  });

  it('POST /predict/batch answers one prediction per row, in order, equal to the single-row answers', async () => {
    const rows = [WINE_EXAMPLE, { ...WINE_EXAMPLE, alcohol: 13.5, sulphates: 0.9 }, { ...WINE_EXAMPLE, 'volatile acidity': 1.2 }];
    const res = await app.inject({ method: 'POST', url: '/predict/batch', payload: { instances: rows } });
    expect(res.statusCode).toBe(200);
    const singles = await Promise.all(
      rows.map(async (r) => (await app.inject({ method: 'POST', url: '/predict', payload: r })).json().prediction),
    );
    expect(res.json().predictions).toEqual(singles);
    expect(new Set(singles).size).toBeGreaterThan(1);
    expect(res.json().model.version).toBe('1.0.0');
  });

  it('GET /health reports status, model name/version/sha256/format, color, uptime and pid', async () => {
    const res = await app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ status: 'ok', state: 'serving', color: 'blue', pid: process.pid });
    expect(body.model).toMatchObject({ name: 'wine-quality', version: '1.0.0', format: 'native-forest' });
    expect(body.model.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(body.uptimeSeconds).toBeGreaterThanOrEqual(0);
  });

  it('GET /ready answers 200 while serving and 503 once draining', async () => {
    const other = await appOn();
    try {
      expect((await other.inject({ url: '/ready' })).json()).toEqual({ ready: true, state: 'serving' });
      other.serving.holder.startDraining();
      const res = await other.inject({ url: '/ready' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ ready: false, state: 'draining' });
    } finally {
      await other.close();
    }
  });

  it('GET /metrics exposes every instance metric labelled with color and model_version', async () => {
    await app.inject({ method: 'POST', url: '/predict', payload: WINE_EXAMPLE });
    const res = await app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    const text = res.body;
    const labels = { color: 'blue', model_version: '1.0.0' };
    expect(sample(text, INSTANCE_METRICS.requests, { ...labels, route: PREDICT_ROUTE, status: '200' })).toBeGreaterThan(0);
    expect(sample(text, `${INSTANCE_METRICS.latency}_count`, { ...labels, route: PREDICT_ROUTE })).toBeGreaterThan(0);
    // Microsecond buckets exist, so fast inference is not lumped into one bucket.
    expect(sample(text, `${INSTANCE_METRICS.latency}_bucket`, { ...labels, le: '0.000005' })).toBeDefined();
    expect(sample(text, `${INSTANCE_METRICS.predictionValue}_count`, labels)).toBeGreaterThan(0);
    expect(sample(text, `${INSTANCE_METRICS.predictionValue}_bucket`, { ...labels, le: '5.25' })).toBeDefined();
    expect(sample(text, INSTANCE_METRICS.modelInfo, { ...labels, model_name: 'wine-quality', format: 'native-forest' })).toBe(1);
    expect(sample(text, INSTANCE_METRICS.modelLoads, { color: 'blue', outcome: 'loaded' })).toBe(0);
  });

  it('includes default process metrics when asked, in a registry of its own per app', async () => {
    const a = await appOn(undefined, { processMetrics: true, color: 'blue' });
    const b = await appOn(undefined, { processMetrics: true, color: 'green' });
    try {
      await a.inject({ method: 'POST', url: '/predict', payload: WINE_EXAMPLE });
      const [ta, tb] = [await metricsText(a), await metricsText(b)];
      expect(sample(ta, 'process_resident_memory_bytes')).toBeGreaterThan(0);
      expect(sample(ta, INSTANCE_METRICS.requests, { color: 'blue', route: PREDICT_ROUTE, status: '200' })).toBe(1);
      expect(sample(tb, INSTANCE_METRICS.requests, { color: 'green', route: PREDICT_ROUTE, status: '200' })).toBe(0);
      expect(tb).not.toContain('color="blue"');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('echoes a well-formed x-request-id and generates one otherwise', async () => {
    const given = await app.inject({ url: '/health', headers: { 'x-request-id': 'abc-123' } });
    expect(given.headers['x-request-id']).toBe('abc-123');
    const generated = await app.inject({ url: '/health', headers: { 'x-request-id': 'bad id with spaces' } });
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const error = await app.inject({ method: 'POST', url: '/predict', payload: 'x', headers: { 'content-type': 'text/plain' } });
    expect(error.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('GET /docs serves Swagger UI and /docs/json the OpenAPI document of both predict routes with the feature names', async () => {
    const ui = await app.inject({ url: '/docs' });
    expect(ui.statusCode).toBe(200);
    expect(ui.headers['content-type']).toContain('text/html');
    expect((await app.inject({ url: '/docs/static/swagger-ui-bundle.js' })).statusCode).toBe(200);
    const doc = (await app.inject({ url: '/docs/json' })).json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info.description).toContain('| 413 | `batch_too_large` |');
    expect(doc.info.description).toContain('| 422 | `invalid_input` |');
    const single = doc.paths[PREDICT_ROUTE].post.requestBody.content['application/json'].schema;
    expect(Object.keys(single.properties)).toEqual([...WINE_FEATURES]);
    expect(single.required).toEqual([...WINE_FEATURES]);
    expect(single.additionalProperties).toBe(false);
    const batch = doc.paths[BATCH_ROUTE].post.requestBody.content['application/json'].schema;
    expect(Object.keys(batch.properties.instances.items.properties)).toEqual([...WINE_FEATURES]);
    expect(doc.paths['/health'].get).toBeDefined();
    expect(doc.paths['/admin/model'].post).toBeDefined();
  });
});

interface ErrorCase {
  name: string;
  request: InjectOptions;
  status: number;
  error: string;
  route: string;
  /** Every field the details must name. */
  fields?: string[];
}

const { alcohol: _dropped, ...withoutAlcohol } = WINE_EXAMPLE;

const ERROR_CASES: ErrorCase[] = [
  {
    name: 'a non-JSON content type (415)',
    request: { method: 'POST', url: '/predict', payload: '7.4', headers: { 'content-type': 'text/plain' } },
    status: 415,
    error: 'unsupported_media_type',
    route: PREDICT_ROUTE,
  },
  {
    name: 'form data (415)',
    request: { method: 'POST', url: '/predict', payload: 'pH=3', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
    status: 415,
    error: 'unsupported_media_type',
    route: PREDICT_ROUTE,
  },
  {
    name: 'malformed JSON (400)',
    request: { method: 'POST', url: '/predict', payload: '{"pH": 3.5', headers: json },
    status: 400,
    error: 'invalid_json',
    route: PREDICT_ROUTE,
  },
  {
    name: 'an empty JSON body (400)',
    request: { method: 'POST', url: '/predict/batch', payload: '', headers: json },
    status: 400,
    error: 'invalid_json',
    route: BATCH_ROUTE,
  },
  {
    name: 'a prototype-poisoning body (400)',
    request: { method: 'POST', url: '/predict', payload: '{"__proto__": {"x": 1}}', headers: json },
    status: 400,
    error: 'invalid_json',
    route: PREDICT_ROUTE,
  },
  {
    name: 'a body over the size limit (413)',
    request: { method: 'POST', url: '/predict', payload: { ...WINE_EXAMPLE, pad: 'x'.repeat(5000) } },
    status: 413,
    error: 'payload_too_large',
    route: PREDICT_ROUTE,
  },
  {
    name: 'a batch over the row limit (413)',
    request: { method: 'POST', url: '/predict/batch', payload: { instances: Array(6).fill(WINE_EXAMPLE) } },
    status: 413,
    error: 'batch_too_large',
    route: BATCH_ROUTE,
    fields: ['instances'],
  },
  {
    name: 'a missing field (422)',
    request: { method: 'POST', url: '/predict', payload: withoutAlcohol },
    status: 422,
    error: 'invalid_input',
    route: PREDICT_ROUTE,
    fields: ['alcohol'],
  },
  {
    name: 'an unknown field, a string number and a missing field at once, all listed (422)',
    request: { method: 'POST', url: '/predict', payload: { ...withoutAlcohol, pH: '3.51', colour: 'red' } },
    status: 422,
    error: 'invalid_input',
    route: PREDICT_ROUTE,
    fields: ['alcohol', 'pH', 'colour'],
  },
  {
    name: 'a non-finite number (JSON overflow to Infinity) (422)',
    request: { method: 'POST', url: '/predict', payload: JSON.stringify(WINE_EXAMPLE).replace('"pH":3.51', '"pH":1e400'), headers: json },
    status: 422,
    error: 'invalid_input',
    route: PREDICT_ROUTE,
    fields: ['pH'],
  },
  {
    name: 'null instead of a number (422)',
    request: { method: 'POST', url: '/predict', payload: { ...WINE_EXAMPLE, density: null } },
    status: 422,
    error: 'invalid_input',
    route: PREDICT_ROUTE,
    fields: ['density'],
  },
  {
    name: 'a JSON array instead of an object (422)',
    request: { method: 'POST', url: '/predict', payload: '[1,2,3]', headers: json },
    status: 422,
    error: 'invalid_input',
    route: PREDICT_ROUTE,
    fields: ['body'],
  },
  {
    name: 'bad rows inside a batch, named by index (422)',
    request: {
      method: 'POST',
      url: '/predict/batch',
      payload: { instances: [WINE_EXAMPLE, { ...WINE_EXAMPLE, pH: 'acid' }, withoutAlcohol] },
    },
    status: 422,
    error: 'invalid_input',
    route: BATCH_ROUTE,
    fields: ['instances[1].pH', 'instances[2].alcohol'],
  },
  {
    name: 'an empty batch (422)',
    request: { method: 'POST', url: '/predict/batch', payload: { instances: [] } },
    status: 422,
    error: 'invalid_input',
    route: BATCH_ROUTE,
    fields: ['instances'],
  },
  {
    name: 'an unknown path, as JSON (404)',
    request: { method: 'GET', url: '/nowhere?x=1' },
    status: 404,
    error: 'not_found',
    route: 'unmatched',
  },
  {
    name: 'a wrong method on a known path (404)',
    request: { method: 'GET', url: '/predict' },
    status: 404,
    error: 'not_found',
    route: 'unmatched',
  },
];

describe('serve app: every error class answers JSON {error, message, details} and is counted', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await appOn(undefined, { batchLimit: 5, bodyLimit: 4096 });
  });
  afterAll(() => app.close());

  for (const c of ERROR_CASES) {
    it(c.name, async () => {
      const labels = { color: 'blue', model_version: '1.0.0', route: c.route };
      const errorsBefore = sample(await metricsText(app), INSTANCE_METRICS.errors, { ...labels, reason: c.error }) ?? 0;
      const res = await app.inject(c.request);
      expect(res.statusCode).toBe(c.status);
      expect(res.headers['content-type']).toContain('application/json');
      const body = res.json();
      expect(body.error).toBe(c.error);
      expect(typeof body.message).toBe('string');
      for (const field of c.fields ?? []) expect(body.details.map((d: { field: string }) => d.field)).toContain(field);
      for (const d of body.details ?? []) expect(typeof d.problem).toBe('string');
      const text = await metricsText(app);
      expect(sample(text, INSTANCE_METRICS.errors, { ...labels, reason: c.error })).toBe(errorsBefore + 1);
      if (c.route !== 'unmatched') {
        expect(sample(text, INSTANCE_METRICS.requests, { ...labels, status: String(c.status) })).toBeGreaterThanOrEqual(1);
      }
    });
  }

  it('lists every missing field of an empty object, one detail per field', async () => {
    const res = await app.inject({ method: 'POST', url: '/predict', payload: {} });
    expect(res.statusCode).toBe(422);
    expect(
      res
        .json()
        .details.map((d: { field: string }) => d.field)
        .sort(),
    ).toEqual([...WINE_FEATURES].sort());
  });

  it('keeps serving after the rejections', async () => {
    const res = await app.inject({ method: 'POST', url: '/predict', payload: WINE_EXAMPLE });
    expect(res.statusCode).toBe(200);
  });
});

describe('assertFinite', () => {
  it('refuses to answer a non-finite prediction, naming the row', () => {
    expect(() => assertFinite(Float64Array.of(5.1, 6))).not.toThrow();
    try {
      assertFinite(Float64Array.of(5.1, Number.POSITIVE_INFINITY));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).statusCode).toBe(500);
      expect((err as ApiError).toBody()).toMatchObject({ error: 'model_error', details: [{ field: 'instances[1]' }] });
    }
  });
});
