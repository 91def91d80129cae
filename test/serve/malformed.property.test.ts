import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INSTANCE_METRICS } from '../../src/config/metric-names.js';
import { WINE_EXAMPLE, WINE_FEATURES } from '../../src/model/wine.js';
import { appOn, metricsText } from './helpers.js';

/** A request the instance must refuse: where it goes, what it carries, and with which content type. */
interface Malformed {
  url: '/predict' | '/predict/batch';
  contentType?: string;
  payload: string | Uint8Array;
}

const FEATURES: readonly string[] = WINE_FEATURES;
const notANumber = fc.oneof(
  fc.string(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.double()),
  fc.dictionary(fc.string(), fc.integer()),
  fc.double().map((d) => String(d)),
);

/** The original example with at least one fault: a field dropped, a field of the wrong type, an extra key. */
const brokenRow = fc
  .record({
    drop: fc.subarray([...FEATURES]),
    retype: fc.dictionary(fc.constantFrom(...FEATURES), notANumber, { maxKeys: 4 }),
    extra: fc.dictionary(
      fc.string({ minLength: 1 }).filter((k) => !FEATURES.includes(k) && k !== '__proto__'),
      fc.jsonValue(),
      { maxKeys: 3 },
    ),
  })
  .filter((m) => m.drop.length + Object.keys(m.retype).length + Object.keys(m.extra).length > 0)
  .map((m) => {
    const row: Record<string, unknown> = { ...WINE_EXAMPLE };
    for (const f of m.drop) delete row[f];
    return { ...row, ...m.retype, ...m.extra };
  });

const json = (value: unknown) => JSON.stringify(value) ?? 'null';

const malformed: fc.Arbitrary<Malformed> = fc.oneof(
  // Any JSON value at all (none of them is the 11 fields, each a number).
  fc.record({ url: fc.constantFrom('/predict', '/predict/batch'), payload: fc.jsonValue().map(json) }).map((r) => ({
    ...r,
    contentType: 'application/json',
  })),
  // Nearly right rows, alone or inside a batch among good rows.
  brokenRow.map((row) => ({ url: '/predict' as const, contentType: 'application/json', payload: json(row) })),
  fc
    .tuple(fc.array(fc.constant(WINE_EXAMPLE), { maxLength: 3 }), brokenRow, fc.array(fc.constant(WINE_EXAMPLE), { maxLength: 3 }))
    .map(([a, bad, b]) => ({
      url: '/predict/batch' as const,
      contentType: 'application/json',
      payload: json({ instances: [...a, bad, ...b] }),
    })),
  // Batches whose container is wrong.
  fc
    .oneof(
      fc
        .jsonValue()
        .filter((v) => !Array.isArray(v))
        .map((v) => ({ instances: v })),
      fc.constant({ rows: [WINE_EXAMPLE] }),
    )
    .map((body) => ({ url: '/predict/batch' as const, contentType: 'application/json', payload: json(body) })),
  // Random bytes declared as JSON, and JSON text cut short.
  fc.record({
    url: fc.constantFrom('/predict', '/predict/batch'),
    contentType: fc.constant('application/json'),
    payload: fc.uint8Array({ maxLength: 300 }),
  }),
  fc
    .integer({ min: 1, max: json(WINE_EXAMPLE).length - 1 })
    .map((n) => ({ url: '/predict' as const, contentType: 'application/json', payload: json(WINE_EXAMPLE).slice(0, n) })),
  // The right body under the wrong content type, or none.
  fc.record({
    url: fc.constantFrom('/predict', '/predict/batch'),
    contentType: fc.constantFrom(
      undefined,
      'text/plain',
      'application/xml',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/octet-stream',
      'application/jsonx',
    ),
    payload: fc.constant(json(WINE_EXAMPLE)),
  }),
  // Bodies over the size limit (64 KiB in this app).
  fc
    .integer({ min: 65 * 1024, max: 96 * 1024 })
    .map((n) => ({ url: '/predict' as const, contentType: 'application/json', payload: `{"pad":"${'x'.repeat(n)}"}` })),
  // Prototype pollution attempts.
  fc
    .constantFrom('{"__proto__":{"pH":1}}', '{"constructor":{"prototype":{"pH":1}}}')
    .map((payload) => ({ url: '/predict' as const, contentType: 'application/json', payload })),
);

function expectRefusal(status: number, contentType: unknown, body: string): void {
  expect(status).toBeGreaterThanOrEqual(400);
  expect(status).toBeLessThan(500);
  expect(String(contentType)).toContain('application/json');
  const parsed = JSON.parse(body);
  expect(typeof parsed.error).toBe('string');
  expect(typeof parsed.message).toBe('string');
}

async function errorsTotal(app: FastifyInstance): Promise<number> {
  let total = 0;
  for (const line of (await metricsText(app)).split('\n')) {
    if (line.startsWith(`${INSTANCE_METRICS.errors}{`)) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

async function expectHealthy(app: FastifyInstance): Promise<void> {
  expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
  expect((await app.inject({ url: '/ready' })).statusCode).toBe(200);
  const res = await app.inject({ method: 'POST', url: '/predict', payload: WINE_EXAMPLE });
  expect(res.statusCode).toBe(200);
  expect(Number.isFinite(res.json().prediction)).toBe(true);
}

describe('malformed bodies (fast-check): always a 4xx JSON answer, counted, and a healthy instance after', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await appOn(undefined, { bodyLimit: 64 * 1024 });
  });
  afterAll(() => app.close());

  it('refuses 1200 random malformed requests through app.inject', async () => {
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(malformed, async (m) => {
        const headers: Record<string, string> = m.contentType === undefined ? {} : { 'content-type': m.contentType };
        const res = await app.inject({ method: 'POST', url: m.url, payload: Buffer.from(m.payload), headers });
        sent++;
        expectRefusal(res.statusCode, res.headers['content-type'], res.body);
      }),
      { numRuns: 1200 },
    );
    expect(sent).toBeGreaterThanOrEqual(1200);
    expect(await errorsTotal(app)).toBe(sent);
    await expectHealthy(app);
  });

  it('refuses 150 more over a real socket, and the instance still answers', async () => {
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    const before = await errorsTotal(app);
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(malformed, async (m) => {
        const headers: Record<string, string> = m.contentType === undefined ? {} : { 'content-type': m.contentType };
        const res = await request(`${address}${m.url}`, { method: 'POST', body: Buffer.from(m.payload), headers });
        sent++;
        expectRefusal(res.statusCode, res.headers['content-type'], await res.body.text());
      }),
      { numRuns: 150 },
    );
    expect((await errorsTotal(app)) - before).toBe(sent);
    const ok = await request(`${address}/predict`, {
      method: 'POST',
      body: JSON.stringify(WINE_EXAMPLE),
      headers: { 'content-type': 'application/json' },
    });
    expect(ok.statusCode).toBe(200);
    expect((await ok.body.json()) as object).toHaveProperty('prediction');
    await expectHealthy(app);
  });
});
