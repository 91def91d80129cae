import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTokenFile, tokenMatches } from '../../src/control/auth.js';
import { ControlError } from '../../src/control/context.js';
import { buildControlServer, type ControlServer } from '../../src/control/server.js';
import { trafficRoutes } from '../../src/control/traffic-routes.js';
import { startEmbeddedRouter, type EmbeddedRouter } from '../../src/traffic/embedded-router.js';
import { RouterRefusedError } from '../../src/traffic/types.js';
import { startColorUpstream, type ColorUpstream } from '../traffic/fixtures.js';

let blue: ColorUpstream;
let green: ColorUpstream;
let router: EmbeddedRouter;
let control: ControlServer;
let dir: string;
let token: string;

const auth = () => ({ authorization: `Bearer ${token}` });

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bgserve-control-'));
  token = await ensureTokenFile(path.join(dir, 'state', 'token'));
  blue = await startColorUpstream('blue');
  green = await startColorUpstream('green');
  router = await startEmbeddedRouter({
    host: '127.0.0.1',
    port: 0,
    upstreams: { blue: [{ host: '127.0.0.1', port: blue.port }], green: [{ host: '127.0.0.1', port: green.port }] },
  });
  control = await buildControlServer({
    token,
    traffic: router,
    colors: { blue: { url: `http://127.0.0.1:${blue.port}` }, green: { url: `http://127.0.0.1:${green.port}` } },
    plugins: [
      trafficRoutes,
      async (api, { ctx }) => {
        api.get('/releases/refused', async () => {
          throw new RouterRefusedError('the router refused the configuration', 'line 3: unknown directive');
        });
        api.get('/releases/example', async () => ({ kind: ctx.traffic.kind }));
        api.get('/releases/missing', async () => {
          throw new ControlError(404, 'release_not_found', 'no such release', { id: 'r1' });
        });
      },
    ],
  });
});

afterAll(async () => {
  await control.app.close();
  await router.close();
  await blue.close();
  await green.close();
  await rm(dir, { recursive: true, force: true });
});

describe('control API', () => {
  it('creates the token file once, mode 0600, and keeps it', async () => {
    const file = path.join(dir, 'state', 'token');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await ensureTokenFile(file)).toBe(token);
    expect(token.length).toBeGreaterThanOrEqual(40);
    expect(tokenMatches(token, token)).toBe(true);
    expect(tokenMatches(`${token}x`, token)).toBe(false);
  });

  it('answers 401 without a token and 403 with a wrong one, on plugin routes too', async () => {
    const none = await control.app.inject({ method: 'GET', url: '/api/status' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toContain('Bearer');
    expect(none.json()).toMatchObject({ error: 'unauthorized' });
    const wrong = await control.app.inject({ method: 'GET', url: '/api/releases/example', headers: { authorization: 'Bearer nope' } });
    expect(wrong.statusCode).toBe(403);
    expect(wrong.json()).toMatchObject({ error: 'forbidden' });
    const ok = await control.app.inject({ method: 'GET', url: '/api/releases/example', headers: auth() });
    expect(ok.json()).toEqual({ kind: 'embedded' });
  });

  it('reports both colors with their model version, health and weights', async () => {
    const res = await control.app.inject({ method: 'GET', url: '/api/status', headers: auth() });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ router: { kind: 'embedded', url: router.url }, weights: { blue: 100, green: 0 }, active: 'blue' });
    expect(body.colors.green).toMatchObject({ weight: 0, healthy: true, ok: true, model: { name: 'wine-quality', version: '1.0.0' } });
  });

  it('sets weights, switches and mirrors; the router follows', async () => {
    const w = await control.app.inject({ method: 'PUT', url: '/api/weights', headers: auth(), payload: { blue: 90, green: 10 } });
    expect(w.statusCode).toBe(200);
    expect(w.json()).toMatchObject({ weights: { blue: 90, green: 10 }, inEffectMs: expect.any(Number) });
    const s = await control.app.inject({ method: 'POST', url: '/api/switch', headers: auth(), payload: { color: 'green' } });
    expect(s.json().weights).toEqual({ blue: 0, green: 100 });
    expect(router.state().weights).toEqual({ blue: 0, green: 100 });
    const m = await control.app.inject({ method: 'PUT', url: '/api/mirror', headers: auth(), payload: { target: 'blue', percent: 25 } });
    expect(m.json().mirror).toEqual({ target: 'blue', percent: 25 });
    const st = await control.app.inject({ method: 'PUT', url: '/api/sticky', headers: auth(), payload: { cookie: 'sid' } });
    expect(st.json().sticky).toEqual({ cookie: 'sid' });
  });

  it('gives stable JSON errors: 400 for shape, 422 for meaning, 404 for unknown routes', async () => {
    const shape = await control.app.inject({
      method: 'PUT',
      url: '/api/weights',
      headers: auth(),
      payload: { blue: '90', green: 10, red: 0 },
    });
    expect(shape.statusCode).toBe(400);
    expect(shape.json()).toMatchObject({ error: 'bad_request', details: { blue: expect.any(String), red: 'unknown property' } });
    const sum = await control.app.inject({ method: 'PUT', url: '/api/weights', headers: auth(), payload: { blue: 90, green: 20 } });
    expect(sum.statusCode).toBe(422);
    expect(sum.json()).toMatchObject({ error: 'invalid_weights', message: expect.stringMatching(/sum to 100/), details: { sum: '110' } });
    const sticky = await control.app.inject({ method: 'PUT', url: '/api/sticky', headers: auth(), payload: { header: 'bad header' } });
    expect(sticky.statusCode).toBe(422);
    const color = await control.app.inject({ method: 'POST', url: '/api/switch', headers: auth(), payload: { color: 'red' } });
    expect(color.statusCode).toBe(400);
    const custom = await control.app.inject({ method: 'GET', url: '/api/releases/missing', headers: auth() });
    expect(custom.statusCode).toBe(404);
    expect(custom.json()).toEqual({ error: 'release_not_found', message: 'no such release', details: { id: 'r1' } });
    const missing = await control.app.inject({ method: 'GET', url: '/nope' });
    expect(missing.json()).toMatchObject({ error: 'not_found' });
  });

  it("answers 502 router_refused with the router's own words for any driver's refused configuration", async () => {
    const res = await control.app.inject({ method: 'GET', url: '/api/releases/refused', headers: auth() });
    expect(res.statusCode).toBe(502);
    expect(res.json()).toEqual({
      error: 'router_refused',
      message: 'the router refused the configuration',
      details: { output: 'line 3: unknown directive' },
    });
  });

  it('serves router and process metrics on /metrics without a token', async () => {
    await control.app.inject({ method: 'PUT', url: '/api/weights', headers: auth(), payload: { blue: 70, green: 30 } });
    const res = await control.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    expect(res.body).toContain('bgserve_router_weight{color="green"} 30');
    expect(res.body).toContain('bgserve_control_process_cpu_user_seconds_total');
  });
});
