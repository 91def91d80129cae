/**
 * bgserve_rollback_seconds times each rollback once: the step that ordered it observes it, and nothing else
 * does. Restarting the controller after a rolled-back release re-applies that release's traffic (reconcile)
 * without adding a bogus "rollback" of however long the controller was down. The controller runs here on
 * its real release log with stand-ins for the router and instances (no traffic flows in these tests).
 */
import { describe, it, expect, afterEach } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ReleaseController } from '../../src/controller/controller.js';
import type { InstanceAdminPort, TrafficPort } from '../../src/controller/ports.js';
import { PreviewClient } from '../../src/controller/smoke.js';
import type { MetricsProvider } from '../../src/metric-sources/types.js';
import { createRelease, step } from '../../src/release/engine.js';
import { buildSpec } from '../../src/release/spec.js';
import type { ReleaseState, StepResult, Weights } from '../../src/release/types.js';
import { ReleaseStore } from '../../src/store/release-store.js';
import { CONTROLLER_METRICS } from '../../src/config/metric-names.js';
import type { HealthReport, MirrorConfig, TrafficState } from '../../src/traffic/types.js';

const dirs: string[] = [];
const controllers: ReleaseController[] = [];
afterEach(async () => {
  for (const c of controllers.splice(0)) await c.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function logFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bgserve-rollback-metric-'));
  dirs.push(dir);
  return path.join(dir, 'releases.jsonl');
}

/** A router stand-in that applies what it is told at once. */
function router(): TrafficPort & { applied: Weights[] } {
  let state: TrafficState = { weights: { blue: 100, green: 0 }, mirror: { target: null, percent: 0 }, sticky: null, generation: 0 };
  const healthy = { healthy: true, lastError: null, checkedAt: null, replicas: [] };
  const applied: Weights[] = [];
  return {
    applied,
    async setWeights(weights: Weights) {
      applied.push(weights);
      state = { ...state, weights, generation: state.generation + 1 };
      return state;
    },
    async setMirror(mirror: MirrorConfig) {
      state = { ...state, mirror, generation: state.generation + 1 };
      return state;
    },
    state: () => state,
    health: (): HealthReport => ({ blue: healthy, green: healthy }),
  };
}

const provider: MetricsProvider = {
  kind: 'scrape',
  open: async () => undefined,
  window: async () => {
    throw new Error('no analysis in these tests');
  },
};

/** Instances that say nothing about their model (so reconcile reloads nothing) and are always ready. */
const admin: InstanceAdminPort = { model: async () => null, ready: async () => true, load: async () => ({ ok: false, error: 'not here' }) };

/** A controller on `file` with its own metrics registry, as after a restart of `up`. */
async function startOn(file: string): Promise<{ controller: ReleaseController; traffic: ReturnType<typeof router> }> {
  const traffic = router();
  const controller = new ReleaseController({
    store: ReleaseStore.open(file),
    traffic,
    provider,
    admin,
    preview: new PreviewClient('http://127.0.0.1:9'),
    tickMs: 60_000,
  });
  controllers.push(controller);
  await controller.start();
  return { controller, traffic };
}

async function rollbacksObserved(controller: ReleaseController): Promise<number> {
  const metric = await controller.metrics.rollbackSeconds.get();
  return metric.values.find((v) => v.metricName === `${CONTROLLER_METRICS.rollbackSeconds}_count`)?.value ?? 0;
}

/** A canary release at its 50% step, written to the log as the controller would have. */
function releaseAtStep(file: string, t0: number): ReleaseState {
  const spec = buildSpec({
    id: 'r-1',
    bundle: '/bundles/1.1.0',
    modelName: 'wine-quality',
    version: '1.1.0',
    sha256: 'abc',
    stableColor: 'blue',
    strategy: 'canary',
    steps: [50],
  });
  const store = ReleaseStore.open(file);
  const steps: StepResult[] = [createRelease(spec, t0)];
  const next = (input: Parameters<typeof step>[1]) => steps.push(step(steps[steps.length - 1].state, input));
  next({ now: t0 + 100, observation: { kind: 'load', color: 'green', ok: true, sha256: 'abc' } });
  next({
    now: t0 + 200,
    observation: {
      kind: 'smoke',
      color: 'green',
      result: { ok: true, failures: [], rows: 10, rmse: null, agreement: null, meanAbsDelta: null },
    },
  });
  for (const s of steps) store.save(s.state, s.events);
  store.close();
  const state = steps[steps.length - 1].state;
  expect(state).toMatchObject({ status: 'running', phase: 'step', targetWeight: 50 });
  return state;
}

describe('bgserve_rollback_seconds counts each rollback once', () => {
  it('a restart after a rolled-back release re-applies its traffic but observes no rollback', async () => {
    const file = logFile();
    const atStep = releaseAtStep(file, Date.now() - 46_000);
    // Rolled back by a failing verdict 40 s ago, by the controller that ran then.
    const rolled = step(atStep, { now: Date.now() - 40_000, command: 'rollback' });
    const store = ReleaseStore.open(file);
    store.save(rolled.state, rolled.events);
    store.close();

    for (let restart = 0; restart < 3; restart++) {
      const { controller, traffic } = await startOn(file);
      // Reconcile did put the rolled-back release's traffic back...
      expect(traffic.applied).toEqual([{ blue: 100, green: 0 }]);
      // ...which is no rollback: nothing to time.
      expect(await rollbacksObserved(controller)).toBe(0);
      expect(controller.lastRollback).toBeUndefined();
      await controller.close();
    }
  });

  it('a rollback ordered by the reconcile itself (release caught mid-way) is timed once, and not again on the next restart', async () => {
    const file = logFile();
    releaseAtStep(file, Date.now() - 5_000);
    const first = await startOn(file);
    expect(first.controller.current()).toMatchObject({ status: 'rolled_back' });
    expect(await rollbacksObserved(first.controller)).toBe(1);
    await first.controller.close();
    const second = await startOn(file);
    expect(await rollbacksObserved(second.controller)).toBe(0);
  });

  it('a rollback command is timed once, however many steps follow', async () => {
    const file = logFile();
    const atStep = releaseAtStep(file, Date.now() - 5_000);
    const done = step(step(atStep, { now: Date.now() - 4_000, command: 'promote' }).state, { now: Date.now() - 3_000 });
    const store = ReleaseStore.open(file);
    store.save(done.state, done.events);
    store.close();
    const { controller } = await startOn(file);
    expect(controller.current()).toMatchObject({ status: 'succeeded' });
    await controller.command('rollback');
    expect(await rollbacksObserved(controller)).toBe(1);
    await controller.command('rollback');
    await controller.command('pause');
    await controller.tick();
    expect(await rollbacksObserved(controller)).toBe(1);
  });
});
