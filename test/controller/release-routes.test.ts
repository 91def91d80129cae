/** The release control routes on a real stack (instances + embedded router), through the token-protected API. */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { ReleaseController } from '../../src/controller/controller.js';
import { stopAll } from '../support/processes.js';
import { deriveBundle, GOOD_BUNDLE } from './bundles.js';
import { startControlPlane, startStack, waitFor, type Stack } from './stack.js';

const TOKEN = 'control-token-for-release-routes';
let stack: Stack;
let controller: ReleaseController;
let app: FastifyInstance;

beforeAll(async () => {
  stack = await startStack();
  ({ controller, app } = await startControlPlane(stack, TOKEN));
}, 60_000);

afterAll(async () => {
  await app?.close(); // closes the controller too
  await stack?.close();
  await stopAll();
});

const auth = { authorization: `Bearer ${TOKEN}` };

describe('release routes', () => {
  it('need the token: 401 without it, 403 with a wrong one', async () => {
    expect((await app.inject({ method: 'GET', url: '/api/releases' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/api/releases', headers: { authorization: 'Bearer nope' } })).statusCode).toBe(403);
  });

  it('exports every release outcome at 0 and the weights in force before any release', async () => {
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(/bgserve_releases_total\{strategy="bluegreen",outcome="rolled_back"\} 0/);
    expect(text).toMatch(/bgserve_releases_total\{strategy="canary",outcome="failed"\} 0/);
    expect(text).toMatch(/bgserve_controller_weight\{color="blue"\} 100/);
    expect(text).toMatch(/bgserve_controller_weight\{color="green"\} 0/);
  });

  it('404 with a hint before any release', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/releases/current', headers: auth });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: 'no_release', message: expect.stringMatching(/bgserve deploy/) });
  });

  it('400 for a body that does not match the schema, with per-field details', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/releases',
      headers: auth,
      payload: { bundle: GOOD_BUNDLE, steps: [0], strategy: 'rainbow', extra: 1 },
    });
    expect(res.statusCode).toBe(400);
    expect(Object.keys(res.json().details)).toEqual(expect.arrayContaining(['strategy', 'extra']));
  });

  it('400 for options the strategy does not take, 422 for a refused bundle (with its code)', async () => {
    const bad = await app.inject({
      method: 'POST',
      url: '/api/releases',
      headers: auth,
      payload: { bundle: GOOD_BUNDLE, steps: [50, 10], strategy: 'canary' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'invalid_release', message: expect.stringMatching(/increase/) });
    const corrupt = await deriveBundle(path.join(stack.dir, 'bundles'), { version: '9.9.9-corrupt', corrupt: true });
    const refused = await app.inject({ method: 'POST', url: '/api/releases', headers: auth, payload: { bundle: corrupt } });
    expect(refused.statusCode).toBe(422);
    expect(refused.json()).toMatchObject({ error: 'bundle_refused', details: { bundle: 'checksum_mismatch' } });
  });

  it('201 on deploy, 409 for a second one meanwhile, commands act on the current release, events page by index', async () => {
    const started = await app.inject({
      method: 'POST',
      url: '/api/releases',
      headers: auth,
      payload: { bundle: GOOD_BUNDLE, strategy: 'canary', steps: [20], analysisMs: 60_000 },
    });
    expect(started.statusCode).toBe(201);
    const id = started.json().release.spec.id as string;
    const again = await app.inject({ method: 'POST', url: '/api/releases', headers: auth, payload: { bundle: GOOD_BUNDLE } });
    expect(again.statusCode).toBe(409);
    expect(again.json().error).toBe('release_in_progress');

    await waitFor('canary step', () => controller.current()?.phase === 'step', 30_000);
    const paused = await app.inject({ method: 'POST', url: '/api/releases/current/pause', headers: auth });
    expect(paused.statusCode).toBe(200);
    expect(paused.json().release.status).toBe('paused');
    const pausedAgain = await app.inject({ method: 'POST', url: '/api/releases/current/pause', headers: auth });
    expect(pausedAgain.statusCode).toBe(409);
    expect(pausedAgain.json()).toMatchObject({ error: 'command_refused', message: expect.stringMatching(/already paused/) });
    const promoted = await app.inject({ method: 'POST', url: '/api/releases/current/promote', headers: auth });
    expect(promoted.json().release.status).toBe('succeeded');
    expect(stack.router.state().weights).toEqual({ blue: 0, green: 100 });
    expect((await app.inject({ method: 'POST', url: '/api/releases/current/explode', headers: auth })).statusCode).toBe(404);

    const all = (await app.inject({ method: 'GET', url: `/api/releases/${id}/events`, headers: auth })).json();
    const tail = (await app.inject({ method: 'GET', url: `/api/releases/${id}/events?after=${all.next - 2}`, headers: auth })).json();
    expect(tail.events.map((e: { type: string }) => e.type)).toEqual(['promoted', 'succeeded']);
    const history = (await app.inject({ method: 'GET', url: '/api/releases?limit=2', headers: auth })).json();
    expect(history.releases.map((r: { status: string }) => r.status)).toEqual(['succeeded', 'failed']);
  });

  it('serves the controller metrics on the control API /metrics', async () => {
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(/bgserve_releases_total\{strategy="canary",outcome="succeeded"\} 1/);
    expect(text).toMatch(/bgserve_controller_weight\{color="green"\} 100/);
    // Set by hand, not by a release: the gauge still shows the weights in force.
    await stack.router.setWeights({ blue: 30, green: 70 });
    const after = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(after).toMatch(/bgserve_controller_weight\{color="blue"\} 30/);
  });
});
