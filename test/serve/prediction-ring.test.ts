/**
 * The instance's ring of recent predictions (serve/prediction-ring.ts) and GET /admin/predictions: only
 * requests that carry an id are kept, with their input and source; the ring never holds more than its capacity;
 * the cursor reads each record once, says what was overwritten, and survives an instance restart; the route
 * is the admin API's (bearer token).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { SOURCE_HEADER } from '../../src/config/defaults.js';
import { PredictionRing } from '../../src/serve/prediction-ring.js';
import { ADMIN_PREDICTIONS_ROUTE } from '../../src/serve/routes/admin.js';
import { appOn } from './helpers.js';

const TOKEN = 'ring-test-token-0123456789';
const ROW = {
  'fixed acidity': 7.4,
  'volatile acidity': 0.7,
  'citric acid': 0,
  'residual sugar': 1.9,
  chlorides: 0.076,
  'free sulfur dioxide': 11,
  'total sulfur dioxide': 34,
  density: 0.9978,
  pH: 3.51,
  sulphates: 0.56,
  alcohol: 9.4,
};

describe('PredictionRing', () => {
  const names = ['a', 'b'];
  const put = (ring: PredictionRing, id: string, n = 1) =>
    ring.record(
      { 'x-request-id': id },
      id,
      'live',
      names,
      Float64Array.from({ length: 2 * n }, (_, i) => i),
      Float64Array.from({ length: n }, (_, i) => 5 + i),
    );

  it('keeps only requests that carried their own id, a batch row by row', () => {
    const ring = new PredictionRing(10);
    ring.record({}, 'generated-uuid', 'live', names, Float64Array.of(1, 2), Float64Array.of(5));
    ring.record({ 'x-request-id': 'bad id!' }, 'generated-uuid', 'live', names, Float64Array.of(1, 2), Float64Array.of(5));
    put(ring, 'batch', 2);
    const page = ring.since(0, 10);
    expect(page.records.map((r) => [r.id, r.prediction, r.input])).toEqual([
      ['batch#0', 5, { a: 0, b: 1 }],
      ['batch#1', 6, { a: 2, b: 3 }],
    ]);
    expect(page.next).toBe(2);
  });

  it('holds at most its capacity, reads each record once, and says how many were overwritten unread', () => {
    const ring = new PredictionRing(4);
    for (let i = 0; i < 10; i++) put(ring, `r${i}`);
    const all = ring.since(0, 100);
    expect(all.records.map((r) => r.id)).toEqual(['r6', 'r7', 'r8', 'r9']);
    expect(all.missed).toBe(6);
    expect(ring.since(all.next, 100)).toEqual({ records: [], next: 10, missed: 0 });
    put(ring, 'r10');
    expect(ring.since(all.next, 100).records.map((r) => r.id)).toEqual(['r10']);
    // Paged: at most `limit` a read.
    expect(ring.since(7, 2)).toMatchObject({ next: 9 });
    // limit 0 gives the end: only what comes next will be read.
    expect(ring.since(0, 0)).toEqual({ records: [], next: 11, missed: 0 });
    // A cursor past the end (the instance restarted and counts from 0 again) reads what it has.
    expect(new PredictionRing(4).since(500, 10)).toEqual({ records: [], next: 0, missed: 0 });
  });
});

describe('GET /admin/predictions', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await appOn(undefined, { adminToken: TOKEN });
  });
  afterAll(() => app.close());
  const auth = { authorization: `Bearer ${TOKEN}` };

  it('answers what /predict answered to requests with an id, with input and source, behind the admin token', async () => {
    const mirrored = await app.inject({
      method: 'POST',
      url: '/predict',
      headers: { 'x-request-id': 'req-1', [SOURCE_HEADER]: 'mirror' },
      payload: ROW,
    });
    expect(mirrored.statusCode).toBe(200);
    await app.inject({ method: 'POST', url: '/predict', payload: ROW });
    await app.inject({ method: 'POST', url: '/predict', headers: { 'x-request-id': 'req-2' }, payload: ROW });

    expect((await app.inject({ url: ADMIN_PREDICTIONS_ROUTE })).statusCode).toBe(401);
    const res = await app.inject({ url: `${ADMIN_PREDICTIONS_ROUTE}?since=0`, headers: auth });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.records.map((r: { id: string; source: string }) => [r.id, r.source])).toEqual([
      ['req-1', 'mirror'],
      ['req-2', 'live'],
    ]);
    expect(body.records[0].prediction).toBe(mirrored.json().prediction);
    expect(body.records[0].input).toEqual(ROW);
    expect(body.next).toBe(2);
    expect((await app.inject({ url: `${ADMIN_PREDICTIONS_ROUTE}?since=2`, headers: auth })).json().records).toEqual([]);
    const bad = await app.inject({ url: `${ADMIN_PREDICTIONS_ROUTE}?since=-1`, headers: auth });
    expect(bad.statusCode).toBe(422);
    expect(bad.json().error).toBe('invalid_input');
  });

  it('records V2 inferences too', async () => {
    const before = (await app.inject({ url: `${ADMIN_PREDICTIONS_ROUTE}?limit=0`, headers: auth })).json().next as number;
    const names = Object.keys(ROW);
    const res = await app.inject({
      method: 'POST',
      url: '/v2/models/wine-quality/infer',
      headers: { 'x-request-id': 'v2-1' },
      payload: { inputs: [{ name: 'input', datatype: 'FP64', shape: [1, names.length], data: Object.values(ROW) }] },
    });
    expect(res.statusCode).toBe(200);
    const page = (await app.inject({ url: `${ADMIN_PREDICTIONS_ROUTE}?since=${before}`, headers: auth })).json();
    expect(page.records.map((r: { id: string }) => r.id)).toEqual(['v2-1']);
  });
});
