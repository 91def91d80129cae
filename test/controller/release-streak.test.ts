/**
 * Good releases are promoted, every time: release after release of a real change (1.1.0 and 1.0.0 in turn,
 * each on the idle color) under 6 concurrent clients, on real `bgserve serve` processes behind the embedded
 * router, judged by the direct-scrape provider. A metrics-reading glitch (prom-client's `Nan`) once became a
 * failed `analyze` action and rolled most of these back; a streak is what shows such a glitch. Windows are
 * short so the streak fits in a few minutes; every wait is bounded.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { DeployOptions, ReleaseController } from '../../src/controller/controller.js';
import { isLive } from '../../src/release/engine.js';
import type { ReleaseState } from '../../src/release/types.js';
import { stopAll } from '../support/processes.js';
import { BASE_BUNDLE, GOOD_BUNDLE } from './bundles.js';
import { startController, startLoad, startStack, waitFor, type Load, type Stack } from './stack.js';

const CANARY_RELEASES = 10;
const SHADOW_RELEASES = 5;
const WORKERS = 6;
/** Short windows; a generous grace so a window short of samples waits instead of pausing. */
const WINDOWS = { analysisMs: 1_500, inconclusiveGraceMs: 10_000 };

let stack: Stack;
let controller: ReleaseController;
let load: Load;
/** The version the stack serves now: each release brings the other one. */
let serving = '1.0.0';

beforeAll(async () => {
  stack = await startStack();
  ({ controller } = startController(stack));
  await controller.start();
  load = await startLoad(stack.router.url, WORKERS, 10 * 60_000);
}, 90_000);

afterAll(async () => {
  await load?.stop();
  await controller?.stop();
  await stack?.close();
  await stopAll();
});

async function releaseNext(options: DeployOptions): Promise<ReleaseState> {
  const bundle = serving === '1.0.0' ? GOOD_BUNDLE : BASE_BUNDLE;
  const started = await controller.deploy(bundle, options);
  const state = await waitFor(
    `release ${started.spec.id} of ${started.spec.version} to end`,
    () => {
      const s = controller.history(1)[0];
      return s && s.spec.id === started.spec.id && !isLive(s.status) ? s : s?.status === 'paused' ? s : undefined;
    },
    40_000,
  );
  const events = controller.events(state.spec.id).map((e) => `${e.type}: ${e.reason}`);
  expect(state.status, `${state.spec.version}: ${state.reason}\n${events.join('\n')}`).toBe('succeeded');
  expect(events.filter((e) => /^(action-failed|analysis-failed|rolled-back|paused)/.test(e))).toEqual([]);
  expect(stack.router.state().weights[state.spec.targetColor]).toBe(100);
  serving = state.spec.version;
  return state;
}

describe('a streak of good releases under load', () => {
  it(`${CANARY_RELEASES} canary releases (steps 10, 50) in a row: all promoted`, async () => {
    const promoted: string[] = [];
    for (let i = 0; i < CANARY_RELEASES; i++) {
      const state = await releaseNext({ ...WINDOWS, strategy: 'canary', steps: [10, 50] });
      promoted.push(`${state.spec.version}@${state.spec.targetColor}`);
    }
    expect(promoted).toHaveLength(CANARY_RELEASES);
    expect(load.failed, load.failures.join('\n')).toBe(0);
  }, 240_000);

  it(`${SHADOW_RELEASES} blue-green releases with a shadow phase in a row: all promoted`, async () => {
    for (let i = 0; i < SHADOW_RELEASES; i++) {
      const state = await releaseNext({ ...WINDOWS, strategy: 'bluegreen', shadowMs: 2_000 });
      const types = controller.events(state.spec.id).map((e) => e.type);
      expect(types).toEqual(expect.arrayContaining(['shadow-started', 'analysis-passed', 'switched', 'succeeded']));
      // The shadow verdict judged the mirrored copies: it saw requests on the new color while it had no weight.
      const shadowVerdict = controller.events(state.spec.id).find((e) => e.type === 'analysis-passed' && e.phase === 'shadow');
      expect((shadowVerdict?.values?.samples as { target: number } | undefined)?.target).toBeGreaterThanOrEqual(50);
    }
    expect(load.failed, load.failures.join('\n')).toBe(0);
    expect(load.sent).toBeGreaterThan(1_000);
  }, 150_000);
});
