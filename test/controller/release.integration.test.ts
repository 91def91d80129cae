/**
 * Releases on the real local stack under continuous load: real serve processes, the embedded router,
 * the controller with the direct-scrape provider. Each scenario checks the outcome, the recorded reason,
 * the final weights, and that no client request failed (a version answering 500s too: the router replays them).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { DeployError, type DeployOptions, type ReleaseController } from '../../src/controller/controller.js';
import { ROUTER_METRICS } from '../../src/config/metric-names.js';
import { isLive } from '../../src/release/engine.js';
import { stopAll } from '../support/processes.js';
import { deriveBundle, GOOD_BUNDLE } from './bundles.js';
import { releaseUnderLoad, startController, startLoad, startStack, waitFor, type Stack } from './stack.js';

let stack: Stack;
let controller: ReleaseController;
const bundles: Record<string, string> = {};

beforeAll(async () => {
  stack = await startStack({ '1.0.1-errors': { errorRate: 0.25 }, '1.0.1-slow': { latencyMs: 25 } });
  const out = path.join(stack.dir, 'bundles');
  bundles.errors = await deriveBundle(out, { version: '1.0.1-errors' });
  bundles.slow = await deriveBundle(out, { version: '1.0.1-slow' });
  bundles.shifted = await deriveBundle(out, { version: '1.0.1-shifted', shift: 1.5 });
  bundles.corrupt = await deriveBundle(out, { version: '1.0.1-corrupt', corrupt: true });
  ({ controller } = startController(stack));
  await controller.start();
}, 90_000);

afterAll(async () => {
  await controller?.stop();
  await stack?.close();
  await stopAll();
});

/** Deploys under load and waits for the release to end. */
const release = (bundle: string, options: DeployOptions) => releaseUnderLoad(stack, controller, bundle, options);

const SHORT = { analysisMs: 3_000, inconclusiveGraceMs: 5_000 };

describe('releases on the real stack under load', () => {
  it('(a) a good blue-green release of 1.1.0 is promoted with 0 failed requests', async () => {
    const { state, load } = await release(GOOD_BUNDLE, SHORT);
    expect(state.status, state.reason ?? '').toBe('succeeded');
    expect(state.spec.version).toBe('1.1.0');
    expect(stack.router.state().weights).toEqual({ blue: 0, green: 100 });
    expect(load.failed, load.failures.join('\n')).toBe(0);
    expect(load.sent).toBeGreaterThan(100);
    const types = controller.events(state.spec.id).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['bundle-loaded', 'smoke-passed', 'switched', 'analysis-passed', 'succeeded']));
    const smoke = controller.events(state.spec.id).find((e) => e.type === 'smoke-passed');
    expect((smoke?.values?.rmse as { candidate: number } | undefined)?.candidate).toBeLessThan(0.7);
  });

  it('(b) a bundle failing its checksum is refused before any traffic moves, reason recorded', async () => {
    const before = stack.router.state();
    const err = await controller.deploy(bundles.corrupt, SHORT).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeployError);
    expect((err as DeployError).code).toBe('bundle_refused');
    expect((err as DeployError).message).toMatch(/sha256|checksum/i);
    expect(stack.router.state().generation).toBe(before.generation);
    const recorded = controller.history(1)[0];
    expect(recorded).toMatchObject({ status: 'failed' });
    expect(controller.events(recorded.spec.id).map((e) => e.type)).toContain('bundle-refused');
  });

  it('(b) a version that answers errors is rolled back on the error ratio at its first canary step', async () => {
    const { state, load } = await release(bundles.errors, { ...SHORT, strategy: 'canary', steps: [50] });
    expect(state.status).toBe('rolled_back');
    expect(state.reason).toMatch(/error-ratio/);
    expect(stack.router.state().weights).toEqual({ blue: 0, green: 100 });
    // The faulty version answered 500s until the rollback; the router replayed each one on the stable color.
    expect(load.failed, load.failures.join('\n')).toBe(0);
    expect(controller.lastRollback?.releaseId).toBe(state.spec.id);
    // The verdict still saw those 500s: the instance counts what it answered, whatever the router did next.
    const verdict = controller.events(state.spec.id).find((e) => e.type === 'analysis-failed');
    const errorRatio = (verdict?.values?.checks as Array<{ name: string; outcome: string; value: number }> | undefined)?.find(
      (c) => c.name === 'error-ratio',
    );
    expect(errorRatio).toMatchObject({ outcome: 'fail' });
    expect(errorRatio?.value).toBeGreaterThan(0.1);
    const router = await stack.router.metrics.metrics();
    const retried = Number(
      new RegExp(`${ROUTER_METRICS.retries}\\{from="${state.spec.targetColor}",to="${state.spec.stableColor}"\\} (\\d+)`).exec(router)?.[1],
    );
    expect(retried).toBeGreaterThan(0);
  });

  it('(b) a slow version is rolled back on latency against the stable color', async () => {
    const { state, load } = await release(bundles.slow, { ...SHORT, strategy: 'canary', steps: [50] });
    expect(state.status).toBe('rolled_back');
    expect(state.reason).toMatch(/latency/);
    expect(stack.router.state().weights).toEqual({ blue: 0, green: 100 });
    expect(load.failed, load.failures.join('\n')).toBe(0);
  });

  it('(b) shifted predictions are stopped by the golden-set gate before any traffic', async () => {
    const generation = stack.router.state().generation;
    const { state, load } = await release(bundles.shifted, SHORT);
    expect(state.status).toBe('failed');
    expect(state.reason).toMatch(/golden-set RMSE/);
    expect(stack.router.state().generation).toBe(generation);
    expect(load.failed).toBe(0);
  });

  it('(b) shifted predictions past a loose golden gate are caught in the shadow phase, before any switch', async () => {
    const { state, load } = await release(bundles.shifted, { ...SHORT, shadowMs: 3_000, goldenRmseMargin: 10 });
    expect(state.status).toBe('rolled_back');
    expect(state.reason).toMatch(/shadow: .*prediction-(mean-shift|psi)/);
    expect(controller.events(state.spec.id).map((e) => e.type)).not.toContain('switched');
    expect(stack.router.state()).toMatchObject({ weights: { blue: 0, green: 100 }, mirror: { target: null, percent: 0 } });
    expect(load.failed, load.failures.join('\n')).toBe(0);
  });

  it('the new instance dies mid-canary (kill -9): rolled back on its health, 0 failed requests', async () => {
    const load = await startLoad(stack.router.url);
    try {
      const started = await controller.deploy(GOOD_BUNDLE, { strategy: 'canary', steps: [25], analysisMs: 60_000 });
      const target = started.spec.targetColor;
      const stepping = await waitFor(
        'canary step',
        () => {
          const s = controller.current();
          return s && (s.phase === 'step' || !isLive(s.status)) ? s : undefined;
        },
        30_000,
      );
      expect(stepping.phase, `${stepping.status}: ${stepping.reason}`).toBe('step');
      await new Promise((r) => setTimeout(r, 500));
      stack.procs[target].child.kill('SIGKILL');
      const state = await waitFor(
        'rollback',
        () => {
          const s = controller.history(1)[0];
          return !isLive(s.status) ? s : undefined;
        },
        30_000,
      );
      expect(state.status).toBe('rolled_back');
      expect(state.reason).toMatch(new RegExp(`instance ${target} is unhealthy`));
      expect(stack.router.state().weights[started.spec.stableColor]).toBe(100);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await load.stop();
    }
    expect(load.failed, load.failures.join('\n')).toBe(0);
  });

  it('every decision is in the crash-safe log', () => {
    const text = fs.readFileSync(path.join(stack.dir, 'releases.jsonl'), 'utf8');
    const kinds = text
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { kind: string }).kind);
    expect(kinds.filter((k) => k === 'event').length).toBeGreaterThan(20);
  });
});
