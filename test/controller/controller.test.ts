/**
 * The release controller's decisions against in-memory fakes of its ports (router, instances, preview route,
 * metric source, release log) on a clock the test moves: a release's minutes in milliseconds, no sockets.
 * The real-process scenarios (release.integration, analysis-unavailable, restart) check the same paths with
 * real instances and routers.
 */
import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DeployError, ReleaseController, type DeployOptions } from '../../src/controller/controller.js';
import { TARGET_UNREADABLE_MS } from '../../src/controller/defaults.js';
import type { ModelIdentity } from '../../src/controller/ports.js';
import { CONTROLLER_METRICS } from '../../src/config/metric-names.js';
import { ColorUnreadableError } from '../../src/metric-sources/types.js';
import type { EventType, ReleaseState, WindowStats } from '../../src/release/types.js';
import {
  FakeInstances,
  FakeMetricSource,
  FakePreview,
  FakeRouter,
  InMemoryReleaseLog,
  ManualClock,
  type WindowAnswer,
} from '../support/fakes/index.js';
import { stats } from '../release/windows.js';
import { BASE_BUNDLE, GOOD_BUNDLE, bundleIdentity, deriveBundle } from './bundles.js';

const TICK_MS = 100;
const CANARY: DeployOptions = { strategy: 'canary', steps: [50], analysisMs: 2_000, inconclusiveGraceMs: 1_000 };

let base: ModelIdentity;
let good: ModelIdentity;
beforeAll(async () => {
  [base, good] = await Promise.all([bundleIdentity(BASE_BUNDLE), bundleIdentity(GOOD_BUNDLE)]);
});

/** Both colors alike, with enough requests for every check to judge: a window that passes. */
const passing: WindowAnswer = (from, to) => stats(from, to, { blue: { requests: 400 }, green: { requests: 400 } });
/** The new color answers 10% of its requests with a 5xx. */
const failing: WindowAnswer = (from, to) => stats(from, to, { blue: { requests: 400 }, green: { requests: 400, errors: 40 } });

interface World {
  clock: ManualClock;
  log: InMemoryReleaseLog;
  router: FakeRouter;
  instances: FakeInstances;
  preview: FakePreview;
  metrics: FakeMetricSource;
  controller: ReleaseController;
  /** Ticks the clock until `done` holds (at most `maxMs` of simulated time). */
  until(what: string, done: () => boolean, maxMs?: number): Promise<void>;
  eventTypes(): EventType[];
}

const controllers: ReleaseController[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const c of controllers.splice(0)) await c.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function world(
  opts: {
    log?: InMemoryReleaseLog;
    router?: FakeRouter;
    instances?: FakeInstances;
    answer?: WindowAnswer;
    analysisTimeoutMs?: number;
    readyTimeoutMs?: number;
  } = {},
): Promise<World> {
  const clock = new ManualClock();
  const log = opts.log ?? new InMemoryReleaseLog();
  const router = opts.router ?? new FakeRouter();
  const instances =
    opts.instances ?? new FakeInstances({ serving: { blue: base, green: base }, catalog: { [BASE_BUNDLE]: base, [GOOD_BUNDLE]: good } });
  const preview = new FakePreview(instances);
  const metrics = new FakeMetricSource(opts.answer ?? passing);
  const controller = new ReleaseController({
    store: log,
    traffic: router,
    provider: metrics,
    admin: instances,
    preview,
    clock,
    tickMs: TICK_MS,
    analysisEveryMs: 500,
    ...(opts.analysisTimeoutMs ? { analysisTimeoutMs: opts.analysisTimeoutMs } : {}),
    ...(opts.readyTimeoutMs ? { readyTimeoutMs: opts.readyTimeoutMs } : {}),
  });
  controllers.push(controller);
  await controller.start();
  return {
    clock,
    log,
    router,
    instances,
    preview,
    metrics,
    controller,
    async until(what, done, maxMs = 30_000) {
      for (let waited = 0; !done(); waited += TICK_MS) {
        if (waited > maxMs)
          throw new Error(`${what}: not within ${maxMs} simulated ms (release: ${JSON.stringify(controller.current()?.reason)})`);
        // The smoke check reads the bundle's golden rows from disk, which takes real time: simulated time
        // must not run ahead of it into the smoke timeout.
        if (controller.current()?.phase === 'smoke') await new Promise((r) => setTimeout(r, 5));
        await clock.advance(TICK_MS);
      }
    },
    eventTypes: () => log.events().map((e) => e.type),
  };
}

const status = (w: World): ReleaseState['status'] | undefined => w.controller.current()?.status;
const phase = (w: World): string | undefined => w.controller.current()?.phase;

describe('ReleaseController against fakes', () => {
  it('a canary release loads the idle color, smokes it, walks its steps and is promoted', async () => {
    const w = await world();
    const started = await w.controller.deploy(GOOD_BUNDLE, CANARY);
    expect(started).toMatchObject({
      status: 'running',
      phase: 'loading',
      spec: { targetColor: 'green', stableColor: 'blue', version: good.version },
    });
    await w.until('succeeded', () => status(w) === 'succeeded');

    expect(w.instances.loads).toEqual([{ color: 'green', bundle: GOOD_BUNDLE }]);
    expect(new Set(w.preview.batches)).toEqual(new Set(['green', 'blue']));
    expect(w.router.weights).toEqual([
      { blue: 50, green: 50 },
      { blue: 0, green: 100 },
    ]);
    expect(w.eventTypes()).toEqual([
      'release-started',
      'bundle-loading',
      'bundle-loaded',
      'smoke-passed',
      'step-started',
      'analysis-passed',
      'step-started',
      'analysis-passed',
      'succeeded',
    ]);
    // Each analysis phase opened its own window, and the verdicts came from windows of at least analysisMs.
    expect(w.metrics.opened).toHaveLength(2);
    expect(w.log.latest()).toMatchObject({ status: 'succeeded', phase: 'done', targetWeight: 100 });
  });

  it('refuses a second deploy while a release is live, and moves nothing for it', async () => {
    const w = await world();
    await w.controller.deploy(GOOD_BUNDLE, CANARY);
    await w.until('first step', () => phase(w) === 'step');
    const refused = await w.controller.deploy(BASE_BUNDLE, CANARY).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(DeployError);
    expect(refused).toMatchObject({ code: 'release_in_progress', release: { status: 'running', phase: 'step' } });
    expect(w.instances.loads).toHaveLength(1);
    expect(w.log.list()).toHaveLength(1);
  });

  it('refuses a bundle that fails verification before any traffic moves, and records why', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bgserve-fake-controller-'));
    dirs.push(dir);
    const corrupt = await deriveBundle(dir, { version: '9.9.9', corrupt: true });
    const w = await world();
    const refused = await w.controller.deploy(corrupt, CANARY).catch((err: unknown) => err);
    expect(refused).toMatchObject({ code: 'bundle_refused', release: { status: 'failed' } });
    expect(w.eventTypes()).toEqual(['bundle-refused']);
    expect(w.log.latest()).toMatchObject({ status: 'failed', spec: { version: '9.9.9' } });
    expect(w.instances.loads).toEqual([]);
    expect(w.router.weights).toEqual([]);
  });

  it('a failing window rolls back at once, and the rollback is timed once (not again after a restart)', async () => {
    const w = await world({ answer: failing });
    await w.controller.deploy(GOOD_BUNDLE, CANARY);
    await w.until('rolled back', () => status(w) === 'rolled_back', 5_000);
    expect(w.router.state().weights).toEqual({ blue: 100, green: 0 });
    expect(w.eventTypes()).toContain('analysis-failed');
    expect(w.controller.current()?.reason).toMatch(/^analysis failed in step 1\/2 \(50%\): .*error/);
    expect(await rollbacksObserved(w.controller)).toBe(1);
    expect(w.controller.lastRollback).toMatchObject({ releaseId: w.controller.current()?.spec.id });

    await w.controller.stop();
    const again = await world({ log: w.log.reopen() });
    expect(again.router.state().weights).toEqual({ blue: 100, green: 0 });
    expect(await rollbacksObserved(again.controller)).toBe(0);
  });

  it('windows whose numbers cannot be had pause the release after its grace, never roll it back', async () => {
    const w = await world({ answer: () => new Error('query to prometheus failed: connect ECONNREFUSED') });
    await w.controller.deploy(GOOD_BUNDLE, CANARY);
    await w.until('paused', () => status(w) === 'paused', 10_000);
    expect(w.controller.current()?.reason).toMatch(/analysis unavailable \(query to prometheus failed/);
    expect(w.router.state().weights).toEqual({ blue: 50, green: 50 });
    expect(w.eventTypes()).not.toContain('rolled-back');
    // Said once per spell, not on every attempt.
    expect(w.eventTypes().filter((t) => t === 'analysis-unavailable')).toHaveLength(1);
  });

  it('a hung metric source counts as unavailable once the call outlasts analysisTimeoutMs on the controller clock', async () => {
    const w = await world({ answer: () => new Promise<WindowStats>(() => undefined), analysisTimeoutMs: 1_000 });
    await w.controller.deploy(GOOD_BUNDLE, CANARY);
    await w.until('unavailable', () => w.eventTypes().includes('analysis-unavailable'), 5_000);
    expect(w.log.events().find((e) => e.type === 'analysis-unavailable')?.reason).toMatch(/analysis window took longer than 1000 ms/);
  });

  it("the new color's metrics unreadable for a while: the instance is down, and the release rolls back", async () => {
    const w = await world({ answer: () => new ColorUnreadableError('green', 'scrape of green failed: connect ECONNREFUSED') });
    await w.controller.deploy(GOOD_BUNDLE, CANARY);
    await w.until('first step', () => phase(w) === 'step');
    const stepAt = w.clock.now();
    await w.until('rolled back', () => status(w) === 'rolled_back', 10_000);
    expect(w.clock.now() - stepAt).toBeGreaterThanOrEqual(TARGET_UNREADABLE_MS);
    expect(w.eventTypes()).toContain('instance-unhealthy');
    expect(w.controller.current()?.reason).toBe('instance green is unhealthy');
    expect(w.router.state().weights).toEqual({ blue: 100, green: 0 });
  });

  it("the stable color's metrics unreadable only make the window unavailable: a pause, not a rollback", async () => {
    const w = await world({ answer: () => new ColorUnreadableError('blue', 'scrape of blue failed: connect ECONNREFUSED') });
    await w.controller.deploy(GOOD_BUNDLE, CANARY);
    await w.until('paused', () => status(w) === 'paused', 10_000);
    expect(w.eventTypes()).not.toContain('instance-unhealthy');
    expect(w.router.state().weights).toEqual({ blue: 50, green: 50 });
  });

  it('the router and the instance both say the new color is down: rolled back', async () => {
    const w = await world({ answer: () => new Error('no numbers yet') });
    await w.controller.deploy(GOOD_BUNDLE, CANARY);
    await w.until('first step', () => phase(w) === 'step');
    w.router.setHealthy('green', false);
    w.instances.setReady('green', false);
    await w.until('rolled back', () => status(w) === 'rolled_back', 1_000);
    expect(w.eventTypes()).toContain('instance-unhealthy');
  });

  it('a color that loads but never turns ready fails the release after readyTimeoutMs, before traffic moves', async () => {
    const w = await world({ readyTimeoutMs: 3_000 });
    w.instances.setReady('green', false);
    await w.controller.deploy(GOOD_BUNDLE, CANARY);
    await w.until('failed', () => status(w) === 'failed', 10_000);
    expect(w.controller.current()?.reason).toBe('bundle refused by green: green not ready after the load');
    expect(w.router.weights).toEqual([]);
  });

  it('pause with a reason holds traffic; resume takes back traffic moved by hand and restarts the window', async () => {
    const w = await world({ answer: () => new Error('no numbers yet') });
    await w.controller.deploy(GOOD_BUNDLE, CANARY);
    await w.until('first step', () => phase(w) === 'step');
    const paused = await w.controller.command('pause', { reason: 'traffic moved by hand: switch blue (by alice@host)' });
    expect(paused.state).toMatchObject({ status: 'paused', reason: 'paused: traffic moved by hand: switch blue (by alice@host)' });

    await w.router.setWeights({ blue: 100, green: 0 });
    await w.clock.advance(1_000);
    expect(w.router.state().weights).toEqual({ blue: 100, green: 0 });

    const opened = w.metrics.opened.length;
    const resumed = await w.controller.command('resume');
    expect(resumed.state.status).toBe('running');
    expect(w.router.state().weights).toEqual({ blue: 50, green: 50 });
    expect(w.metrics.opened).toHaveLength(opened + 1);
  });

  it('on start, a release caught mid-way is rolled back and its traffic put back on the stable color', async () => {
    const first = await world({ answer: () => new Error('no numbers yet') });
    await first.controller.deploy(GOOD_BUNDLE, CANARY);
    await first.until('first step', () => phase(first) === 'step');
    await first.controller.stop();

    // The router kept the half-way split across the controller's restart.
    const w = await world({ log: first.log.reopen(), router: new FakeRouter({ blue: 50, green: 50 }), instances: first.instances });
    expect(w.controller.current()).toMatchObject({ status: 'rolled_back', phase: 'done' });
    expect(w.log.events().at(-2)).toMatchObject({ type: 'reconciled', values: { decision: 'rolled-back', phase: 'step' } });
    expect(w.router.state().weights).toEqual({ blue: 100, green: 0 });
    expect(await rollbacksObserved(w.controller)).toBe(1);
  });

  it('on start, the color a finished release made active is reloaded when it serves another model', async () => {
    const first = await world();
    await first.controller.deploy(GOOD_BUNDLE, CANARY);
    await first.until('succeeded', () => status(first) === 'succeeded');
    await first.controller.stop();

    // A restart of the whole stack: both instances come back with their start-up bundle.
    const instances = new FakeInstances({ serving: { blue: base, green: base }, catalog: first.instances.catalog });
    const w = await world({ log: first.log.reopen(), router: new FakeRouter(), instances });
    expect(instances.loads).toEqual([{ color: 'green', bundle: GOOD_BUNDLE }]);
    expect(
      w.log
        .events()
        .filter((e) => e.type === 'reconciled')
        .map((e) => e.values?.decision),
    ).toEqual(['restored', 'reloaded']);
    expect(w.router.state().weights).toEqual({ blue: 0, green: 100 });
  });
});

async function rollbacksObserved(controller: ReleaseController): Promise<number> {
  const metric = await controller.metrics.rollbackSeconds.get();
  return metric.values.find((v) => v.metricName === `${CONTROLLER_METRICS.rollbackSeconds}_count`)?.value ?? 0;
}
