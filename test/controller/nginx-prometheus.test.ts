/**
 * The production shape: nginx as the router and a real Prometheus as the analysis provider (PromQL over
 * what it scraped from both instances), under continuous load.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import path from 'node:path';
import type { ReleaseController, DeployOptions } from '../../src/controller/controller.js';
import { PrometheusProvider } from '../../src/metric-sources/prometheus-provider.js';
import { startLocalPrometheus, type LocalPrometheus } from '../../src/monitoring/local-prometheus.js';
import { isLive } from '../../src/release/engine.js';
import type { ReleaseState } from '../../src/release/types.js';
import { freePort, stopAll } from '../support/processes.js';
import { deriveBundle, GOOD_BUNDLE } from './bundles.js';
import { startController, startLoad, startStack, waitFor, type Load, type Stack } from './stack.js';

let stack: Stack;
let prom: LocalPrometheus;
let controller: ReleaseController;

beforeAll(async () => {
  stack = await startStack({ '1.0.1-slow': { latencyMs: 25 }, '1.0.1-errors': { errorRate: 0.25 } }, 'nginx');
  prom = await startLocalPrometheus({
    port: await freePort(),
    dataDir: path.join(stack.dir, 'prometheus'),
    scrapeInterval: '1s',
    targets: { instances: (['blue', 'green'] as const).map((color) => ({ color, address: new URL(stack.instances[color]).host })) },
  });
  ({ controller } = startController(stack, {
    provider: new PrometheusProvider({ url: prom.url, minRangeSeconds: 3 }),
    analysisEveryMs: 1_000,
  }));
  await controller.start();
}, 90_000);

afterAll(async () => {
  await controller?.close();
  await prom?.stop();
  await stack?.close();
  await stopAll();
});

async function release(bundle: string, options: DeployOptions): Promise<{ state: ReleaseState; load: Load }> {
  const load = await startLoad(stack.router.url, 4);
  try {
    const started = await controller.deploy(bundle, options);
    const state = await waitFor(
      'release to end',
      () => {
        const s = controller.history(1)[0];
        return s.spec.id === started.spec.id && !isLive(s.status) ? s : undefined;
      },
      90_000,
    );
    return { state, load };
  } finally {
    await load.stop();
  }
}

describe('nginx router + Prometheus analysis', () => {
  it('promotes 1.1.0 with 0 failed requests through nginx, judged on PromQL', async () => {
    const { state, load } = await release(GOOD_BUNDLE, { analysisMs: 6_000 });
    expect(state.status, state.reason ?? '').toBe('succeeded');
    expect(stack.router.state().weights).toEqual({ blue: 0, green: 100 });
    expect(load.failed, load.failures.join('\n')).toBe(0);
    const passed = controller.events(state.spec.id).find((e) => e.type === 'analysis-passed');
    expect((passed?.values?.samples as { target: number } | undefined)?.target).toBeGreaterThanOrEqual(50);
  });

  it('rolls a slow version back on latency against the stable color, 0 failed requests', async () => {
    const slow = await deriveBundle(path.join(stack.dir, 'bundles'), { version: '1.0.1-slow' });
    const { state, load } = await release(slow, { strategy: 'canary', steps: [50], analysisMs: 10_000 });
    expect(state.status).toBe('rolled_back');
    expect(state.reason).toMatch(/latency/);
    expect(stack.router.state().weights).toEqual({ blue: 0, green: 100 });
    expect(load.failed, load.failures.join('\n')).toBe(0);
  });

  it('rolls a version answering 500s back on the error ratio, 0 failed requests (nginx replays each 500)', async () => {
    const errors = await deriveBundle(path.join(stack.dir, 'bundles'), { version: '1.0.1-errors' });
    // nginx counts a replayed 500 as a failed attempt (max_fails): the faulty color sits out fail_timeout after
    // each one and gets far less than its share, so the verdict waits for minSamples past a short window.
    const { state, load } = await release(errors, { strategy: 'canary', steps: [50], analysisMs: 10_000, inconclusiveGraceMs: 60_000 });
    expect(state.status, state.reason ?? '').toBe('rolled_back');
    expect(state.reason).toMatch(/error-ratio/);
    expect(stack.router.state().weights[state.spec.stableColor]).toBe(100);
    expect(load.failed, load.failures.join('\n')).toBe(0);
  });
});
