/**
 * GET /api/history on the control plane `up` and `controller` serve, over a real stack (two `bgserve serve`
 * processes, the embedded router) under a bounded client load while a canary release runs to the end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControlPlane } from '../../src/app/root.js';
import type { HistoryReport } from '../../src/control/history-routes.js';
import { GOOD_BUNDLE } from '../controller/bundles.js';
import { type Load, type Stack, startControlPlane, startLoad, startStack, waitFor } from '../controller/stack.js';

const TOKEN = 'history-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

describe('GET /api/history (real stack, bounded load, canary release)', () => {
  let stack: Stack;
  let plane: ControlPlane;
  let load: Load;

  beforeAll(async () => {
    stack = await startStack();
    plane = await startControlPlane(stack, TOKEN);
    load = await startLoad(stack.router.url, 2, 60_000);
  }, 60_000);

  afterAll(async () => {
    await load?.stop();
    await plane?.app.close();
    await stack?.close();
  });

  async function history(query = ''): Promise<{ status: number; body: HistoryReport & { error?: string } }> {
    const res = await plane.app.inject({ method: 'GET', url: `/api/history${query}`, headers: auth });
    return { status: res.statusCode, body: res.json() };
  }

  it('needs the token and refuses a bad `since` with a JSON error', async () => {
    expect((await plane.app.inject({ method: 'GET', url: '/api/history' })).statusCode).toBe(401);
    const bad = await history('?since=yesterday');
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: 'bad_request', message: expect.stringMatching(/since/) });
  });

  it('charts both colors through a canary, with its events as markers, both distributions and the golden comparison', async () => {
    const started = await plane.app.inject({
      method: 'POST',
      url: '/api/releases',
      headers: auth,
      payload: { bundle: GOOD_BUNDLE, strategy: 'canary', steps: [50, 100], analysisMs: 3_000 },
    });
    expect(started.statusCode, started.body).toBe(201);
    const id: string = started.json().release.spec.id;
    const done = await waitFor('the release to end', () => {
      const r = plane.controller.current();
      return r && r.status !== 'running' && r.status !== 'paused' ? r : undefined;
    });
    expect(done.status, done.reason ?? '').toBe('succeeded');
    // One more sample of green alone after the switch.
    await new Promise((r) => setTimeout(r, 2_500));

    const { status, body } = await history();
    expect(status).toBe(200);
    expect(body.intervalMs).toBe(2_000);
    expect(body.windowMs).toBe(15 * 60_000);
    const points = body.points;
    expect(points.length).toBeGreaterThanOrEqual(4);
    expect(points.every((p, i) => i === 0 || p.at > points[i - 1].at)).toBe(true);

    // Blue served alone, then both at 50/50, then green alone: each shows up in the rates and the weights.
    const rate = (c: 'blue' | 'green') => points.map((p) => p.colors[c].requestRate ?? 0);
    expect(Math.max(...rate('blue'))).toBeGreaterThan(5);
    expect(Math.max(...rate('green'))).toBeGreaterThan(5);
    expect(points.some((p) => p.colors.green.weight === 50 && p.colors.blue.weight === 50)).toBe(true);
    expect(points[points.length - 1].colors.green.weight).toBe(100);
    const last = points[points.length - 1].colors;
    expect(last.green.p99Seconds).toBeGreaterThan(0);
    expect(last.green.p50Seconds).toBeLessThanOrEqual(last.green.p99Seconds as number);
    // The load saw no failure, and neither did the history.
    expect(load.failed, load.failures.join('; ')).toBe(0);
    for (const p of points) for (const c of ['blue', 'green'] as const) expect([null, 0]).toContain(p.colors[c].errorRatio);

    const markers = body.markers.filter((m) => m.releaseId === id).map((m) => m.type);
    // A canary's last step (100%) is a step like the others.
    expect(markers).toEqual(['release-started', 'step-started', 'step-started', 'succeeded']);

    expect(body.distributions.blue).toMatchObject({ version: '1.0.0', total: expect.any(Number) });
    expect(body.distributions.green.version).toBe('1.1.0');
    for (const c of ['blue', 'green'] as const) {
      const d = body.distributions[c];
      expect(d.total).toBeGreaterThan(10);
      expect(d.buckets.reduce((n, b) => n + b.count, 0)).toBe(d.total);
    }

    expect(body.golden).toMatchObject({
      releaseId: id,
      passed: true,
      versions: { candidate: '1.1.0', stable: '1.0.0' },
      rmse: { candidate: expect.any(Number), stable: expect.any(Number) },
      agreement: expect.any(Number),
    });
    expect(body.golden?.rows).toBeGreaterThan(0);

    // `since` returns only the newer points.
    const tail = await history(`?since=${points[points.length - 2].at}`);
    expect(tail.body.points[0].at).toBe(points[points.length - 1].at);
    expect(tail.body.points.length).toBeLessThanOrEqual(2);
  }, 120_000);
});
