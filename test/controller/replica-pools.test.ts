/**
 * A color of several replicas in the release controller (issue 13), against fakes: a replica out of the router's
 * rotation does not fail a release while its color keeps its minimum of ready replicas (the admin side counts
 * them), and rolls it back once the color falls below; replicas that came back are healed on the heal period.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ReleaseController, type DeployOptions } from '../../src/controller/controller.js';
import type { ModelIdentity } from '../../src/controller/ports.js';
import { FakeInstances, FakeMetricSource, FakePreview, FakeRouter, InMemoryReleaseLog, ManualClock } from '../support/fakes/index.js';
import { stats } from '../release/windows.js';
import { BASE_BUNDLE, GOOD_BUNDLE, bundleIdentity } from './bundles.js';

const TICK_MS = 100;
const CANARY: DeployOptions = { strategy: 'canary', steps: [50], analysisMs: 2_000, inconclusiveGraceMs: 1_000 };

let base: ModelIdentity;
let good: ModelIdentity;
beforeAll(async () => {
  [base, good] = await Promise.all([bundleIdentity(BASE_BUNDLE), bundleIdentity(GOOD_BUNDLE)]);
});

const controllers: ReleaseController[] = [];
afterEach(async () => {
  for (const c of controllers.splice(0)) await c.close();
});

async function world() {
  const clock = new ManualClock();
  const router = new FakeRouter();
  const instances = new FakeInstances({ serving: { blue: base, green: base }, catalog: { [BASE_BUNDLE]: base, [GOOD_BUNDLE]: good } });
  const controller = new ReleaseController({
    store: new InMemoryReleaseLog(),
    traffic: router,
    provider: new FakeMetricSource((from, to) => stats(from, to, { blue: { requests: 400 }, green: { requests: 400 } })),
    admin: instances,
    preview: new FakePreview(instances),
    clock,
    tickMs: TICK_MS,
    analysisEveryMs: 500,
    healEveryMs: 1_000,
  });
  controllers.push(controller);
  await controller.start();
  const until = async (done: () => boolean, maxMs = 30_000) => {
    for (let waited = 0; !done(); waited += TICK_MS) {
      if (waited > maxMs) throw new Error(`not within ${maxMs} ms: ${JSON.stringify(controller.current()?.reason)}`);
      if (controller.current()?.phase === 'smoke') await new Promise((r) => setTimeout(r, 5));
      await clock.advance(TICK_MS);
    }
  };
  return { clock, router, instances, controller, until };
}

const three = (down: number[]) => [0, 1, 2].map((i) => ({ address: `127.0.0.1:${9001 + i}`, healthy: !down.includes(i) }));

describe('a release over a color of several replicas', () => {
  it('carries on while one green replica is out of rotation and green keeps its minimum of ready replicas', async () => {
    const w = await world();
    await w.controller.deploy(GOOD_BUNDLE, CANARY);
    await w.until(() => w.controller.current()?.phase === 'step');
    w.router.setReplicas('green', three([1])); // the admin side still counts 2 of 3 ready: its minimum
    await w.until(() => w.controller.current()?.status !== 'running');
    expect(w.controller.current()?.status).toBe('succeeded');
  });

  it('rolls back once the color falls below its minimum, though the router still has a replica in rotation', async () => {
    const w = await world();
    await w.controller.deploy(GOOD_BUNDLE, CANARY);
    await w.until(() => w.controller.current()?.phase === 'step');
    w.router.setReplicas('green', three([1, 2]));
    w.instances.setReady('green', false); // fewer than minReady replicas answer /ready
    await w.until(() => w.controller.current()?.status !== 'running', 2_000);
    expect(w.controller.current()).toMatchObject({ status: 'rolled_back' });
    expect(w.controller.current()?.reason).toMatch(/green/);
    expect(w.router.state().weights).toEqual({ blue: 100, green: 0 });
  });

  it('asks the admin side to heal replicas every heal period, beside the ticks', async () => {
    const w = await world();
    await w.clock.advance(3_000);
    expect(w.instances.heals).toBe(3);
    await w.controller.stop();
    await w.clock.advance(3_000);
    expect(w.instances.heals).toBe(3);
  });
});
