import http from 'node:http';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { PREVIEW_HEADER, PREVIEW_TOKEN_HEADER } from '../../src/config/defaults.js';
import { ROUTER_METRICS } from '../../src/config/metric-names.js';
import { startEmbeddedRouter, type EmbeddedRouter } from '../../src/traffic/embedded-router.js';
import { LINGER_BYTES } from '../../src/traffic/public-errors.js';
import { startColorUpstream, type ColorUpstream } from './fixtures.js';
import { rawRequest } from './raw-http.js';

const PREVIEW_TOKEN = 'embedded-test-preview-token-0123';
const previewTo = (color: string) => ({ [PREVIEW_HEADER]: color, [PREVIEW_TOKEN_HEADER]: PREVIEW_TOKEN });

let blue: ColorUpstream;
let green: ColorUpstream;
let router: EmbeddedRouter;

async function predict(headers: Record<string, string> = {}): Promise<{ status: number; color?: string; body: any }> {
  const res = await request(`${router.url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ alcohol: 9.4 }),
  });
  const body = (await res.body.json()) as any;
  return { status: res.statusCode, color: body.color, body };
}

async function countColors(n: number, headers: Record<string, string> = {}) {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const r = await predict(headers);
    expect(r.status).toBe(200);
    counts[r.color ?? 'none'] = (counts[r.color ?? 'none'] ?? 0) + 1;
  }
  return counts;
}

beforeAll(async () => {
  blue = await startColorUpstream('blue');
  green = await startColorUpstream('green');
  router = await startEmbeddedRouter({
    host: '127.0.0.1',
    port: 0,
    upstreams: { blue: [{ host: '127.0.0.1', port: blue.port }], green: [{ host: '127.0.0.1', port: green.port }] },
    health: { intervalMs: 100, passiveWindowMs: 300 },
    maxBodyBytes: 4096,
    previewToken: PREVIEW_TOKEN,
  });
});

afterAll(async () => {
  await router.close();
  await blue.close();
  await green.close();
});

afterEach(async () => {
  blue.ready = green.ready = true;
  blue.failNext.count = green.failNext.count = 0;
  await router.setWeights({ blue: 100, green: 0 });
  await router.setMirror({ target: null, percent: 0 });
  await router.setSticky(null);
  await new Promise((r) => setTimeout(r, 350));
});

describe('embedded router', () => {
  it('forwards the body and headers and sends everything to blue by default', async () => {
    const r = await predict({ 'x-request-id': 'abc' });
    expect(r.body).toEqual({ prediction: 5.5, color: 'blue', echo: { alcohol: 9.4 } });
    expect(blue.lastHeaders?.['x-request-id']).toBe('abc');
    expect(blue.lastHeaders?.['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('splits 90/10 exactly over 100 requests and moves everything on a switch', async () => {
    await router.setWeights({ blue: 90, green: 10 });
    expect(await countColors(100)).toEqual({ blue: 90, green: 10 });
    await router.setWeights({ blue: 0, green: 100 });
    expect(await countColors(20)).toEqual({ green: 20 });
  });

  it('rejects invalid weights and keeps the old ones', async () => {
    await expect(router.setWeights({ blue: 60, green: 60 })).rejects.toThrow(/sum to 100/);
    await expect(router.setWeights({ blue: -1, green: 101 })).rejects.toThrow(/not valid/);
    expect(router.state().weights).toEqual({ blue: 100, green: 0 });
  });

  it('routes the preview header to the idle color at weight 0 and never retries it elsewhere', async () => {
    expect(await countColors(5, previewTo('green'))).toEqual({ green: 5 });
    green.failNext = { status: 503, count: 1 };
    const r = await predict(previewTo('green'));
    expect(r.status).toBe(503);
  });

  it('retries a 503 once on the other color and counts the retry', async () => {
    blue.failNext = { status: 503, count: 1 };
    const r = await predict();
    expect(r).toMatchObject({ status: 200, color: 'green' });
    const text = await router.metrics.metrics();
    expect(text).toMatch(new RegExp(`${ROUTER_METRICS.retries}\\{from="blue",to="green"\\} 1`));
    // The passive mark keeps blue out for its window, then blue is back.
    expect((await predict()).color).toBe('green');
    await new Promise((r) => setTimeout(r, 400));
    expect((await predict()).color).toBe('blue');
  });

  it('retries a 500 on the other color without taking the answering color out of rotation', async () => {
    const retried = async () =>
      Number(new RegExp(`${ROUTER_METRICS.retries}\\{from="blue",to="green"\\} (\\d+)`).exec(await router.metrics.metrics())?.[1]);
    const before = await retried();
    blue.failNext = { status: 500, count: 1 };
    expect(await predict()).toMatchObject({ status: 200, color: 'green' });
    expect(await retried()).toBe(before + 1);
    // A 500 is one request failing in a running instance: the release analysis judges it, blue keeps its share.
    expect(router.health().blue.healthy).toBe(true);
    expect((await predict()).color).toBe('blue');
  });

  it("shows a preview-pinned request the named color's own 500", async () => {
    green.failNext = { status: 500, count: 1 };
    const before = blue.predicts;
    const r = await predict(previewTo('green'));
    expect(r).toMatchObject({ status: 500, body: { message: 'failing on purpose' } });
    expect(blue.predicts).toBe(before);
  });

  it('never retries a 4xx: the caller gets the answer', async () => {
    blue.failNext = { status: 422, count: 1 };
    const before = green.predicts;
    expect((await predict()).status).toBe(422);
    expect(green.predicts).toBe(before);
    expect(router.health().blue.healthy).toBe(true);
  });

  it('passes a 5xx through when the other color is unhealthy', async () => {
    green.ready = false;
    await new Promise((r) => setTimeout(r, 250));
    expect(router.health().green.healthy).toBe(false);
    const before = green.predicts;
    blue.failNext = { status: 500, count: 1 };
    expect((await predict()).status).toBe(500);
    expect(green.predicts).toBe(before);
  });

  it('takes a color that fails its readiness check out of rotation', async () => {
    await router.setWeights({ blue: 50, green: 50 });
    green.ready = false;
    await new Promise((r) => setTimeout(r, 250));
    expect(router.health().green).toMatchObject({ healthy: false, lastError: 'GET /ready answered 503' });
    expect(await countColors(10)).toEqual({ blue: 10 });
    expect(await router.metrics.metrics()).toContain(`${ROUTER_METRICS.upstreamHealthy}{color="green"} 0`);
    green.ready = true;
    await new Promise((r) => setTimeout(r, 250));
    expect(router.health().green.healthy).toBe(true);
  });

  it('mirrors the asked share to the idle color and answers from the active one', async () => {
    const before = green.mirrored;
    await router.setMirror({ target: 'green', percent: 20 });
    expect(await countColors(50)).toEqual({ blue: 50 });
    await new Promise((r) => setTimeout(r, 100));
    expect(green.mirrored - before).toBe(10);
    expect(await router.metrics.metrics()).toMatch(/bgserve_router_mirror_requests_total\{color="green",outcome="ok"\} 10/);
  });

  it('keeps a sticky key on its color while weights move towards green', async () => {
    await router.setSticky({ header: 'x-user' });
    await router.setWeights({ blue: 70, green: 30 });
    const first = new Map<string, string>();
    for (let i = 0; i < 40; i++) first.set(`user-${i}`, (await predict({ 'x-user': `user-${i}` })).color!);
    const greens = [...first.values()].filter((c) => c === 'green').length;
    expect(greens).toBeGreaterThan(3);
    expect(greens).toBeLessThan(25);
    await router.setWeights({ blue: 40, green: 60 });
    for (const [key, color] of first) {
      const now = (await predict({ 'x-user': key })).color;
      if (color === 'green') expect(now).toBe('green');
    }
  });

  it('answers 413 for a body over the limit without reaching an instance', async () => {
    const before = blue.predicts;
    const res = await request(`${router.url}/predict`, {
      method: 'POST',
      body: 'x'.repeat(10_000),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.statusCode).toBe(413);
    expect(await res.body.json()).toMatchObject({ error: 'payload_too_large' });
    expect(blue.predicts).toBe(before);
  });

  it('reads and drops the rest of a refused body only up to its bound, then cuts the connection', async () => {
    const res = await rawRequest(`${router.url}/predict`, {
      // Past the bound by more than the kernel can hold for a socket nobody reads (tcp_rmem may reach 32 MiB
      // here, plus the sender's 4 MiB): with less, the whole upload fits in buffers and no error can be seen.
      body: Buffer.alloc(LINGER_BYTES + 48 * 1024 * 1024, 'x'),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(413);
    // The answer arrived first; past LINGER_BYTES the router stops reading, so this client's upload is cut.
    expect(res.uploadError).toMatch(/EPIPE|ECONNRESET/);
    expect((await predict()).status).toBe(200);
  });

  it('preview is off without a configured token', async () => {
    const closed = await startEmbeddedRouter({
      host: '127.0.0.1',
      port: 0,
      upstreams: { blue: [{ host: '127.0.0.1', port: blue.port }], green: [{ host: '127.0.0.1', port: green.port }] },
    });
    try {
      const res = await request(`${closed.url}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...previewTo('green') },
        body: '{}',
      });
      expect(res.statusCode).toBe(403);
      expect(await res.body.json()).toMatchObject({ error: 'preview_forbidden' });
    } finally {
      await closed.close();
    }
  });

  it('fails over on a connection error and reports the dead color unhealthy', async () => {
    const deadPort = green.port;
    await green.close();
    try {
      await router.setWeights({ blue: 50, green: 50 });
      expect(await countColors(10)).toEqual({ blue: 10 });
      expect(router.health().green.healthy).toBe(false);
      expect(router.health().green.lastError).toMatch(/ECONNREFUSED/);
    } finally {
      green = await startColorUpstream('green', deadPort);
    }
  });
});

describe('embedded router, a client that leaves before its answer', () => {
  it('does not lose the upstream connection: the next request on a one-connection pool is answered', async () => {
    // Answers /predict after 150 ms, so the client below is gone by the time its answer arrives.
    const slow = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => setTimeout(() => res.end(JSON.stringify({ prediction: 1, color: 'blue' })), 150));
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const port = (slow.address() as net.AddressInfo).port;
    const one = await startEmbeddedRouter({
      host: '127.0.0.1',
      port: 0,
      upstreams: { blue: [{ host: '127.0.0.1', port }], green: [{ host: '127.0.0.1', port }] },
      connectionsPerColor: 1,
      health: { intervalMs: 60_000 },
    });
    try {
      const gone = net.connect(one.port, '127.0.0.1');
      await new Promise((r) => gone.once('connect', r));
      gone.write('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
      await new Promise((r) => setTimeout(r, 50));
      gone.destroy();
      await new Promise((r) => setTimeout(r, 250));
      const res = await request(`${one.url}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
        headersTimeout: 3_000,
      });
      expect(res.statusCode).toBe(200);
      expect(await res.body.json()).toEqual({ prediction: 1, color: 'blue' });
      expect(one.health().blue.healthy).toBe(true);
    } finally {
      await one.close();
      slow.closeAllConnections();
      await new Promise((r) => slow.close(r));
    }
  });
});
