/**
 * One owner of traffic: manual weights / switch / mirror through the control API while a real release runs
 * (two `bgserve serve` processes, the embedded router, the control plane `up` serves).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { StatusReport } from '../../src/control/traffic-routes.js';
import type { ReleaseController } from '../../src/controller/controller.js';
import { formatStatus } from '../../src/cli/traffic.js';
import { formatReleaseSummary } from '../../src/cli/release.js';
import { stopAll } from '../support/processes.js';
import { GOOD_BUNDLE } from '../controller/bundles.js';
import { startControlPlane, startStack, waitFor, type Stack } from '../controller/stack.js';

const TOKEN = 'control-token-for-traffic-guard';
let stack: Stack;
let controller: ReleaseController;
let app: FastifyInstance;

beforeAll(async () => {
  stack = await startStack();
  ({ controller, app } = await startControlPlane(stack, TOKEN));
}, 60_000);

afterAll(async () => {
  await app?.close();
  await stack?.close();
  await stopAll();
});

const auth = { authorization: `Bearer ${TOKEN}` };

async function call(method: 'GET' | 'PUT' | 'POST', url: string, payload?: unknown, headers: Record<string, string> = {}) {
  const res = await app.inject({
    method,
    url,
    headers: { ...auth, ...headers },
    ...(payload !== undefined ? { payload: payload as object } : {}),
  });
  return { status: res.statusCode, body: res.json() };
}

const status = async () => (await call('GET', '/api/status')).body as StatusReport;

describe('manual traffic changes during a release', () => {
  it('are refused with 409 naming the release, forced ones pause it with who and how, and status tells the truth', async () => {
    const started = await call('POST', '/api/releases', { bundle: GOOD_BUNDLE, strategy: 'canary', steps: [20], analysisMs: 120_000 });
    expect(started.status).toBe(201);
    const id = started.body.release.spec.id as string;
    await waitFor('canary step', () => controller.current()?.phase === 'step', 30_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(controller.events(id).map((e) => `${e.type}: ${e.reason}`))}`);
    });
    expect(stack.router.state().weights).toEqual({ blue: 80, green: 20 });
    expect((await status()).releaseTraffic).toMatchObject({ releaseId: id, agrees: true, message: null });

    for (const [method, url, body] of [
      ['POST', '/api/switch', { color: 'green' }],
      ['PUT', '/api/weights', { blue: 30, green: 70 }],
      ['PUT', '/api/mirror', { target: 'green', percent: 10 }],
    ] as const) {
      const refused = await call(method, url, body);
      expect(refused.status, url).toBe(409);
      expect(refused.body).toMatchObject({ error: 'release_in_progress', details: { release: id, status: 'running', phase: 'step' } });
      expect(refused.body.message).toContain(id);
      expect(refused.body.message).toMatch(/running in step 1\/2/);
      expect(refused.body.message).toMatch(/--force/);
    }
    // Nothing moved, and the release runs on.
    expect(stack.router.state().weights).toEqual({ blue: 80, green: 20 });
    expect(stack.router.state().mirror).toEqual({ target: null, percent: 0 });
    expect(controller.current()?.status).toBe('running');
    // Asking for the traffic already in place fights nobody.
    expect((await call('PUT', '/api/weights', { blue: 80, green: 20 })).status).toBe(200);
    // An invalid forced change is refused before the release is touched.
    expect((await call('PUT', '/api/weights', { blue: 30, green: 30, force: true })).status).toBe(422);
    expect(controller.current()?.status).toBe('running');

    const forced = await call('PUT', '/api/weights', { blue: 30, green: 70, force: true }, { 'x-bgserve-actor': 'ana@ops-box' });
    expect(forced.status).toBe(200);
    expect(forced.body.weights).toEqual({ blue: 30, green: 70 });
    expect(forced.body.release).toMatchObject({
      status: 'paused',
      reason: expect.stringContaining('traffic moved by hand: weights blue=30 green=70 (by ana@ops-box)'),
    });
    expect(stack.router.state().weights).toEqual({ blue: 30, green: 70 });
    expect(controller.current()).toMatchObject({ status: 'paused', phase: 'step' });
    const paused = controller.events(id).filter((e) => e.type === 'paused');
    expect(paused.at(-1)?.reason).toContain('(by ana@ops-box)');

    const report = await status();
    expect(report.releaseTraffic).toMatchObject({
      releaseId: id,
      status: 'paused',
      agrees: false,
      live: { weights: { blue: 30, green: 70 } },
      desired: { weights: { blue: 80, green: 20 } },
    });
    expect(report.releaseTraffic?.message).toContain(`live blue 30 / green 70, but release ${id} (paused) wants blue 80 / green 20`);
    expect(formatStatus(report)).toMatch(/^traffic\s+DISAGREES: live blue 30 \/ green 70/m);

    // Paused already: a second forced move (no actor header: the client address) records the newest mover.
    const again = await call('POST', '/api/switch', { color: 'blue', force: true });
    expect(again.status).toBe(200);
    expect(again.body.release.reason).toMatch(/traffic moved by hand: switch to blue \(by 127\.0\.0\.1\)/);
    expect(stack.router.state().weights).toEqual({ blue: 100, green: 0 });

    // Resuming hands traffic back to the release: status agrees again.
    expect((await call('POST', '/api/releases/current/resume')).status).toBe(200);
    expect(stack.router.state().weights).toEqual({ blue: 80, green: 20 });
    expect((await status()).releaseTraffic).toMatchObject({ agrees: true });
    expect((await call('POST', '/api/releases/current/promote')).body.release.status).toBe('succeeded');

    // Once the release has ended, traffic is anyone's again: no force needed...
    const after = await call('POST', '/api/switch', { color: 'blue' });
    expect(after.status).toBe(200);
    expect(after.body.release).toBeUndefined();
    // ...but status no longer lets the success stand unqualified.
    const final = await status();
    expect(final.releaseTraffic).toMatchObject({ releaseId: id, status: 'succeeded', agrees: false });
    expect(final.releaseTraffic?.message).toContain(`live blue 100 / green 0, but release ${id} (succeeded) wants blue 0 / green 100`);
    const current = (await call('GET', '/api/releases/current')).body.release;
    expect(formatReleaseSummary(current, final.releaseTraffic)).toMatch(/^status\s+SUCCEEDED .*\[BUT live traffic disagrees with it: /m);
    expect(formatReleaseSummary(current)).not.toContain('BUT');
  }, 90_000);

  it('a release forced aside before it moved any traffic (loading, smoke) ends instead of moving traffic later', async () => {
    // Traffic is on blue (set above); the new release loads on green.
    const started = await call('POST', '/api/releases', { bundle: GOOD_BUNDLE, strategy: 'canary', steps: [20], analysisMs: 120_000 });
    expect(started.status).toBe(201);
    expect(['loading', 'smoke']).toContain(controller.current()?.phase);
    const forced = await call('PUT', '/api/mirror', { target: 'green', percent: 5, force: true }, { 'x-bgserve-actor': 'bo@laptop' });
    expect(forced.status).toBe(200);
    expect(forced.body.release).toMatchObject({
      status: 'aborted',
      reason: expect.stringContaining('traffic moved by hand: mirror 5% to green (by bo@laptop)'),
    });
    // Its checks finishing later must not move traffic: it stays where the person put it.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(stack.router.state()).toMatchObject({ weights: { blue: 100, green: 0 }, mirror: { target: 'green', percent: 5 } });
    expect(controller.current()?.status).toBe('aborted');
    expect((await call('PUT', '/api/mirror', { target: null, percent: 0 })).status).toBe(200);
  }, 60_000);
});
