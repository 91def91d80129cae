/**
 * What clients see at the routers' edges, the same for both (a real managed nginx, the embedded router): the
 * private preview route, the traffic-source label instances get, and the JSON errors the routers answer
 * themselves (too-large bodies and headers, no upstream) naming a color but never an address.
 */
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREVIEW_HEADER, PREVIEW_TOKEN_HEADER, SOURCE_HEADER, type Color } from '../../src/config/defaults.js';
import { startEmbeddedRouter } from '../../src/traffic/embedded-router.js';
import { startNginxDriver } from '../../src/traffic/nginx-driver.js';
import type { DriverKind, TrafficDriver } from '../../src/traffic/types.js';
import { freePort } from '../support/processes.js';
import { startColorUpstream, type ColorUpstream } from './fixtures.js';
import { outcomes, rawRequest, type RawAnswer } from './raw-http.js';

const PREVIEW_TOKEN = 'edge-test-preview-token-0123456789';
/** The issue's body: 45 MB against the routers' default 1 MiB limit. */
const OVERSIZED = Buffer.alloc(45 * 1024 * 1024, 'x');
/** An internal address or connection error in a public answer. */
const LEAK = /\d+\.\d+\.\d+\.\d+|localhost|:\d{2,5}\b|ECONN|connect/i;

describe.each<DriverKind>(['embedded', 'nginx'])('%s router edges', (kind) => {
  const up = {} as Record<Color, ColorUpstream>;
  let router: TrafficDriver;
  let prefix: string;

  const predict = (headers: Record<string, string> = {}, body = '{"alcohol":9.4}'): Promise<RawAnswer> =>
    rawRequest(`${router.url}/predict`, { headers: { 'content-type': 'application/json', ...headers }, body: Buffer.from(body) });
  const json = (res: RawAnswer) => {
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    return JSON.parse(res.text) as { error?: string; message?: string; color?: string };
  };

  beforeAll(async () => {
    up.blue = await startColorUpstream('blue');
    up.green = await startColorUpstream('green');
    const upstreams = { blue: [{ host: '127.0.0.1', port: up.blue.port }], green: [{ host: '127.0.0.1', port: up.green.port }] };
    const health = { intervalMs: 100 };
    prefix = await mkdtemp(path.join(tmpdir(), 'bgserve-edges-'));
    router =
      kind === 'nginx'
        ? await startNginxDriver({
            listen: { host: '127.0.0.1', port: await freePort() },
            upstreams,
            mode: { kind: 'managed', prefix },
            render: { workerProcesses: 1 },
            health,
            previewToken: PREVIEW_TOKEN,
          })
        : await startEmbeddedRouter({ host: '127.0.0.1', port: 0, upstreams, health, previewToken: PREVIEW_TOKEN });
  }, 30_000);

  afterAll(async () => {
    await router?.close();
    await Promise.all(Object.values(up).map((u) => u.close()));
    await rm(prefix, { recursive: true, force: true });
  });

  it('refuses the preview header without the token, with a wrong one, and never forwards it', async () => {
    const before = up.green.predicts + up.blue.predicts;
    const attempts: Array<Record<string, string>> = [
      { [PREVIEW_HEADER]: 'green' },
      { [PREVIEW_HEADER]: 'green', [PREVIEW_TOKEN_HEADER]: 'wrong-token-0123456789' },
      // Same characters, other case: the comparison is exact.
      { [PREVIEW_HEADER]: 'green', [PREVIEW_TOKEN_HEADER]: PREVIEW_TOKEN.toUpperCase() },
      { [PREVIEW_HEADER]: 'green', [PREVIEW_TOKEN_HEADER]: '' },
    ];
    for (const headers of attempts) {
      const res = await predict(headers);
      expect(res.status).toBe(403);
      expect(json(res)).toEqual({ error: 'preview_forbidden', message: expect.stringContaining(PREVIEW_TOKEN_HEADER) });
    }
    const unknown = await predict({ [PREVIEW_HEADER]: 'purple', [PREVIEW_TOKEN_HEADER]: PREVIEW_TOKEN });
    expect(unknown.status).toBe(400);
    expect(json(unknown).error).toBe('invalid_preview');
    expect(up.green.predicts + up.blue.predicts).toBe(before);
  });

  it('with the token, reaches the named color at weight 0, labelled preview, the token not passed on', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await predict({ [PREVIEW_HEADER]: 'green', [PREVIEW_TOKEN_HEADER]: PREVIEW_TOKEN, [SOURCE_HEADER]: 'live' });
      expect(res.status).toBe(200);
      expect(json(res).color).toBe('green');
    }
    expect(up.green.lastHeaders?.[SOURCE_HEADER]).toBe('preview');
    expect(up.green.lastHeaders?.[PREVIEW_TOKEN_HEADER]).toBeUndefined();
  });

  it('strips a client-sent source label and token from live traffic; mirrored copies are labelled mirror', async () => {
    const res = await predict({ [SOURCE_HEADER]: 'preview', [PREVIEW_TOKEN_HEADER]: PREVIEW_TOKEN, 'x-request-id': 'edge-1' });
    expect(json(res).color).toBe('blue');
    expect(up.blue.lastHeaders?.['x-request-id']).toBe('edge-1');
    expect(up.blue.lastHeaders?.[SOURCE_HEADER]).toBeUndefined();
    expect(up.blue.lastHeaders?.[PREVIEW_TOKEN_HEADER]).toBeUndefined();

    await router.setMirror({ target: 'green', percent: 100 });
    try {
      const mirroredBefore = up.green.mirrored;
      for (let i = 0; i < 5; i++) expect(json(await predict({ [SOURCE_HEADER]: 'preview' })).color).toBe('blue');
      const deadline = Date.now() + 2_000;
      while (up.green.mirrored - mirroredBefore < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(up.green.mirrored - mirroredBefore).toBe(5);
      expect(up.green.lastHeaders?.[SOURCE_HEADER]).toBe('mirror');
      expect(up.blue.lastHeaders?.[SOURCE_HEADER]).toBeUndefined();
    } finally {
      await router.setMirror({ target: null, percent: 0 });
    }
  });

  it('answers 20 oversized bodies from node:http with 20 JSON 413s (no reset, no HTML)', async () => {
    const before = up.blue.predicts;
    const seen = await outcomes(20, () =>
      rawRequest(`${router.url}/predict/batch`, { headers: { 'content-type': 'application/json' }, body: OVERSIZED }),
    );
    expect(seen).toEqual(Array(20).fill('413 payload_too_large'));
    expect(up.blue.predicts).toBe(before);
    // The router is still fine afterwards.
    expect((await predict()).status).toBe(200);
  }, 60_000);

  it("passes an instance's own 413 through unchanged (say, a batch over its row limit)", async () => {
    up.blue.failNext = { status: 413, count: 1 };
    const res = await predict();
    expect(res.status).toBe(413);
    expect(json(res)).toEqual({ error: 'unavailable', message: 'failing on purpose' });
  });

  it('refuses an oversized body announced with Expect: 100-continue before the client sends it', async () => {
    const answer = await new Promise<{ status: number; continued: boolean; body: string }>((resolve, reject) => {
      let continued = false;
      const req = http.request(`${router.url}/predict/batch`, {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': String(OVERSIZED.length), expect: '100-continue' },
      });
      req.on('continue', () => {
        continued = true;
        req.end(OVERSIZED);
      });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, continued, body });
          req.destroy();
        });
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    expect(answer).toMatchObject({ status: 413, continued: false });
    expect(JSON.parse(answer.body).error).toBe('payload_too_large');
  });

  it('takes 10 KiB of headers and answers 20 KiB with the same JSON 431', async () => {
    const ok = await predict({ 'x-big': 'a'.repeat(10 * 1024) });
    expect(ok.status).toBe(200);
    const seen = await outcomes(3, () => predict({ 'x-big': 'a'.repeat(20 * 1024) }));
    expect(seen).toEqual(Array(3).fill('431 headers_too_large'));
    const res = await predict({ 'x-big': 'a'.repeat(20 * 1024) });
    expect(json(res)).toEqual({ error: 'headers_too_large', message: 'request line and headers must fit in 16 KiB' });
    // The limit is on all headers together, not on each one.
    const two = await predict({ 'x-big-1': 'a'.repeat(10 * 1024), 'x-big-2': 'a'.repeat(10 * 1024) });
    expect(two.status).toBe(431);
    expect(json(two).error).toBe('headers_too_large');
  });

  it('answers 502 naming the color, never its address', async () => {
    const greenPort = up.green.port;
    await up.green.close();
    try {
      const preview = await predict({ [PREVIEW_HEADER]: 'green', [PREVIEW_TOKEN_HEADER]: PREVIEW_TOKEN });
      expect(preview.status).toBe(502);
      const body = json(preview);
      expect(body).toEqual({ error: 'bad_gateway', message: 'no answer from green' });

      const bluePort = up.blue.port;
      await up.blue.close();
      try {
        const live = await predict();
        expect(live.status).toBe(502);
        const liveBody = json(live);
        expect(liveBody.error).toBe('bad_gateway');
        expect(liveBody.message).toMatch(/^no answer from (blue|green|blue or green)$/);
        expect(live.text).not.toMatch(LEAK);
      } finally {
        up.blue = await startColorUpstream('blue', bluePort);
      }
    } finally {
      up.green = await startColorUpstream('green', greenPort);
    }
  });
});
