/**
 * The router process's control endpoint (router-control.ts) and the driver the controller uses over it
 * (remote-router.ts): changes are in effect when they resolve, mistakes are the same 422 as the in-process
 * driver's, the token is required, metrics and health come through. A real embedded router in front of two
 * plain upstreams, driven over loopback HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { ROUTER_METRICS } from '../../src/config/metric-names.js';
import { startEmbeddedRouter, type EmbeddedRouter } from '../../src/traffic/embedded-router.js';
import { TrafficInputError } from '../../src/traffic/policy.js';
import { RemoteRouter } from '../../src/traffic/remote-router.js';
import { ROUTER_CONTROL_PATH, startRouterControl, type RouterControl } from '../../src/traffic/router-control.js';
import { startColorUpstream, type ColorUpstream } from './fixtures.js';

const TOKEN = 'router-control-test-token-0123456789';
let blue: ColorUpstream;
let green: ColorUpstream;
let router: EmbeddedRouter;
let control: RouterControl;
let remote: RemoteRouter;

beforeAll(async () => {
  blue = await startColorUpstream('blue');
  green = await startColorUpstream('green');
  router = await startEmbeddedRouter({
    host: '127.0.0.1',
    port: 0,
    upstreams: { blue: [{ host: '127.0.0.1', port: blue.port }], green: [{ host: '127.0.0.1', port: green.port }] },
    initial: { weights: { blue: 0, green: 100 } },
    health: { intervalMs: 100 },
  });
  control = await startRouterControl({ driver: router, host: '127.0.0.1', port: 0, token: TOKEN });
  remote = await RemoteRouter.connect({ url: router.url, controlUrl: control.url, token: TOKEN, refreshMs: 50 });
});

afterAll(async () => {
  await remote?.close();
  await control?.close();
  await router?.close();
  await blue?.close();
  await green?.close();
});

async function colors(n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const res = await request(`${router.url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    const color = ((await res.body.json()) as { color: string }).color;
    counts[color] = (counts[color] ?? 0) + 1;
  }
  return counts;
}

describe('RemoteRouter over the router control endpoint', () => {
  it('starts from the router state it reads (here: the initial split the process was given)', async () => {
    expect(remote.state().weights).toEqual({ blue: 0, green: 100 });
    expect(remote.pid).toBe(process.pid);
    expect(await colors(10)).toEqual({ green: 10 });
  });

  it('applies weights and mirror before resolving, and caches the new state', async () => {
    const state = await remote.setWeights({ blue: 70, green: 30 });
    expect(state.weights).toEqual({ blue: 70, green: 30 });
    expect(remote.state().weights).toEqual({ blue: 70, green: 30 });
    expect(router.state().weights).toEqual({ blue: 70, green: 30 });
    expect(await colors(100)).toEqual({ blue: 70, green: 30 });
    await remote.setMirror({ target: 'green', percent: 20 });
    expect(router.state().mirror).toEqual({ target: 'green', percent: 20 });
    await remote.setSticky({ header: 'x-user' });
    expect(router.state().sticky).toEqual({ header: 'x-user' });
    await remote.setSticky(null);
    await remote.setMirror({ target: null, percent: 0 });
  });

  it('refuses a bad change with the same TrafficInputError as the in-process driver, applying nothing', async () => {
    const before = router.state();
    const err = await remote.setWeights({ blue: 70, green: 70 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrafficInputError);
    expect((err as TrafficInputError).code).toBe('invalid_weights');
    // Sent anyway (as another client could), the router itself answers 422 in the control API's error shape.
    const res = await request(`${control.url}${ROUTER_CONTROL_PATH}/weights`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ blue: 1 }),
    });
    expect(res.statusCode).toBe(422);
    expect(await res.body.json()).toMatchObject({ error: 'invalid_weights', message: expect.any(String), details: expect.any(Object) });
    expect(router.state()).toEqual(before);
  });

  it('requires the token: none is 401, a wrong one 403, and connect() fails', async () => {
    const none = await request(`${control.url}${ROUTER_CONTROL_PATH}`);
    expect(none.statusCode).toBe(401);
    await none.body.dump();
    const wrong = await request(`${control.url}${ROUTER_CONTROL_PATH}/weights`, {
      method: 'PUT',
      headers: { authorization: 'Bearer nope' },
      body: '{"blue":0,"green":100}',
    });
    expect(wrong.statusCode).toBe(403);
    await wrong.body.dump();
    await expect(RemoteRouter.connect({ url: router.url, controlUrl: control.url, token: 'nope' })).rejects.toThrow(/answered 403/);
  });

  it("serves the router's metrics and keeps its health report fresh", async () => {
    expect(await remote.metrics.metrics()).toContain(ROUTER_METRICS.requests);
    green.ready = false;
    try {
      const deadline = Date.now() + 5_000;
      while (remote.health().green.healthy && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(remote.health().green).toMatchObject({ healthy: false, lastError: expect.stringContaining('503') });
    } finally {
      green.ready = true;
    }
  });

  it("replaces a color's pool through the control endpoint, and refuses a bad one with 422", async () => {
    const second = await startColorUpstream('green');
    try {
      const pool = [
        { host: '127.0.0.1', port: green.port },
        { host: '127.0.0.1', port: second.port },
      ];
      await remote.setWeights({ blue: 0, green: 100 });
      await remote.setUpstreams({ blue: [{ host: '127.0.0.1', port: blue.port }], green: pool });
      expect(remote.health().green.replicas.map((r) => r.address)).toEqual(pool.map((u) => `${u.host}:${u.port}`));
      const before = second.predicts;
      expect(await colors(20)).toEqual({ green: 20 });
      expect(second.predicts - before).toBeGreaterThan(0);
      const res = await request(`${control.url}${ROUTER_CONTROL_PATH}/upstreams`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ blue: [{ host: '127.0.0.1', port: 0 }], green: [] }),
      });
      expect(res.statusCode).toBe(422);
      expect(await res.body.json()).toMatchObject({ error: 'invalid_upstreams', details: { 'blue[0]': expect.any(String) } });
      expect(router.health().green.replicas).toHaveLength(2);
    } finally {
      await remote.setUpstreams({ blue: [{ host: '127.0.0.1', port: blue.port }], green: [{ host: '127.0.0.1', port: green.port }] });
      await second.close();
    }
  });
});
