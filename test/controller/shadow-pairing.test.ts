/**
 * Paired shadow comparison on the real stack under bounded load: two `bgserve serve` processes, the embedded
 * router mirroring live requests to the new color with a shared request id, the controller pulling both
 * instances' prediction rings and pairing the answers. A shadow of 1.1.0 against 1.0.0 agrees as the golden
 * rows say it should; a shifted version the distribution checks are told to tolerate is caught by pairing alone.
 */
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROLLER_METRICS } from '../../src/config/metric-names.js';
import { buildControlServer } from '../../src/control/server.js';
import { shadowRoutes, type ShadowPairsView } from '../../src/control/shadow-routes.js';
import type { DeployOptions, ReleaseController } from '../../src/controller/controller.js';
import { PredictionFeed } from '../../src/controller/prediction-feed.js';
import { ShadowPairing } from '../../src/controller/shadow-pairs.js';
import type { PairSummary } from '../../src/release/pairing.js';
import type { ReleaseState } from '../../src/release/types.js';
import { stopAll } from '../support/processes.js';
import { BASE_BUNDLE, deriveBundle, GOOD_BUNDLE } from './bundles.js';
import { goldenPairs } from './shadow-pairing-golden.js';
import { releaseUnderLoad, startController, startStack, type Stack } from './stack.js';

let stack: Stack;
let controller: ReleaseController;
let registry: Registry;
let pairing: ShadowPairing;
let shifted: string;

beforeAll(async () => {
  stack = await startStack();
  shifted = await deriveBundle(path.join(stack.dir, 'bundles'), { version: '1.0.1-shifted', shift: 1 });
  registry = new Registry();
  pairing = new ShadowPairing({
    feed: new PredictionFeed({ urls: (color) => [stack.instances[color]], token: stack.token }),
    registry,
  });
  ({ controller } = startController(stack, { pairing, registry }));
  await controller.start();
}, 90_000);

afterAll(async () => {
  await controller?.close();
  await stack?.close();
  await stopAll();
});

/** Deploys under a bounded load (2 clients) and waits for the release to end. */
async function release(bundle: string, options: DeployOptions): Promise<ReleaseState> {
  const { state, load } = await releaseUnderLoad(stack, controller, bundle, options, {
    workers: 2,
    loadMs: 60_000,
    settleMs: 200,
    timeoutMs: 60_000,
  });
  expect(load.failed, load.failures.join('\n')).toBe(0);
  return state;
}

/** The pairs the shadow phase's verdict recorded in the decision log. */
function shadowPairs(state: ReleaseState, type: 'analysis-passed' | 'analysis-failed'): PairSummary {
  const e = controller.events(state.spec.id).find((x) => x.type === type && x.phase === 'shadow');
  expect(e, `no ${type} event in shadow`).toBeDefined();
  return e?.values?.pairs as PairSummary;
}

describe('paired shadow comparison on the embedded router', () => {
  it('a shadow of 1.1.0 against 1.0.0 agrees as the golden rows do (agreement within 2 points, class within 6), and the metrics show it', async () => {
    const golden = await goldenPairs(BASE_BUNDLE, GOOD_BUNDLE);
    const state = await release(GOOD_BUNDLE, { shadowMs: 5_000, shadowPercent: 100, analysisMs: 2_000, inconclusiveGraceMs: 5_000 });
    expect(state.status, state.reason ?? '').toBe('succeeded');
    const live = shadowPairs(state, 'analysis-passed');
    // The load cycles through the golden rows: the paired requests are those rows, a few hundred times over.
    expect(live.pairs).toBeGreaterThanOrEqual(150);
    expect(Math.abs((live.agreement ?? 0) - (golden.agreement ?? 0))).toBeLessThanOrEqual(0.02);
    // A class flips on 8% of the rows: a partial cycle of the rows moves that share by a few points.
    expect(Math.abs((live.classAgreement ?? 0) - (golden.classAgreement ?? 0))).toBeLessThanOrEqual(0.06);
    expect(Math.abs((live.meanAbsDelta ?? 0) - (golden.meanAbsDelta ?? 0))).toBeLessThanOrEqual(0.02);
    // Mirror copies dropped or in flight leave a few halves unpaired, never most of them.
    expect(live.unpaired.target).toBeLessThan(live.pairs / 10);
    const checks = controller.events(state.spec.id).find((x) => x.type === 'analysis-passed' && x.phase === 'shadow')?.values
      ?.checks as Array<{ name: string; outcome: string }>;
    expect(checks.filter((c) => c.name.startsWith('paired-')).map((c) => c.outcome)).toEqual(['pass', 'pass', 'pass']);
    // The last summary in memory keeps the largest disagreements' inputs, and the control API serves it; the log does not.
    expect(live.largest.every((d) => d.input === undefined)).toBe(true);
    const control = await buildControlServer({
      token: 'shadow-test-token',
      traffic: stack.router,
      colors: { blue: { url: stack.instances.blue }, green: { url: stack.instances.green } },
      plugins: [shadowRoutes(controller)],
    });
    try {
      const res = await control.app.inject({ url: '/api/shadow/pairs', headers: { authorization: 'Bearer shadow-test-token' } });
      expect(res.statusCode).toBe(200);
      const view = res.json() as ShadowPairsView;
      expect(view.releaseId).toBe(state.spec.id);
      expect(view.pairs.pairs).toBeGreaterThanOrEqual(live.pairs);
      expect(Object.keys(view.pairs.largest[0]?.input ?? {})).toContain('alcohol');
    } finally {
      await control.app.close();
    }
    const text = await registry.metrics();
    const total = Number(new RegExp(`^${CONTROLLER_METRICS.shadowPairs} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(total).toBeGreaterThanOrEqual(live.pairs);
    const agreement = Number(new RegExp(`^${CONTROLLER_METRICS.shadowAgreement} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(agreement).toBeGreaterThan(0.9);
    console.log(
      `shadow 1.1.0 vs 1.0.0: ${live.pairs} pairs, agreement ${live.agreement} (golden ${golden.agreement}), class ${live.classAgreement} (golden ${golden.classAgreement}), mean |delta| ${live.meanAbsDelta} (golden ${golden.meanAbsDelta}), p95 ${live.p95AbsDelta} (golden ${golden.p95AbsDelta})`,
    );
  });

  it('a version whose every answer moved by one point is caught in the shadow phase by pairing, before any switch', async () => {
    // The distribution checks are told to tolerate any shift and the golden gate any RMSE: only pairing can see it.
    const state = await release(shifted, {
      shadowMs: 4_000,
      shadowPercent: 100,
      analysisMs: 2_000,
      inconclusiveGraceMs: 5_000,
      goldenRmseMargin: 10,
      analysis: { maxMeanShiftStd: 100, maxPsi: 100 },
    });
    expect(state.status).toBe('rolled_back');
    expect(state.reason).toMatch(/analysis failed in shadow: paired-disagreement/);
    const pairs = shadowPairs(state, 'analysis-failed');
    expect(pairs.pairs).toBeGreaterThanOrEqual(50);
    expect(pairs.agreement).toBeLessThan(0.1);
    expect(controller.events(state.spec.id).map((e) => e.type)).not.toContain('switched');
    expect(stack.router.state().mirror.target).toBeNull();
  });
});
