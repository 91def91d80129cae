/**
 * Metrics that cannot be read never roll a release back. On the real stack (serve processes, embedded router)
 * the controller's provider is the direct scrape behind a switch that makes it fail, hang or fail to open:
 * the window is then unavailable, the release waits for the grace and pauses with the reason (events say
 * so), and nothing moves traffic. A person can pause with a reason, move traffic by hand, and resume: the
 * release takes its own traffic back, and goes on once the numbers come back.
 */
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import type { ReleaseController } from '../../src/controller/controller.js';
import type { MetricsProvider } from '../../src/metric-sources/types.js';
import { ScrapeProvider } from '../../src/metric-sources/scrape-provider.js';
import { isLive } from '../../src/release/engine.js';
import type { ReleaseState, WindowStats } from '../../src/release/types.js';
import { stopAll } from '../support/processes.js';
import { BASE_BUNDLE, GOOD_BUNDLE } from './bundles.js';
import { startController, startLoad, startStack, waitFor, type Load, type Stack } from './stack.js';

/** The direct scrape, unless told to fail (as a parse error would), hang, or fail as a window opens. */
class SwitchedProvider implements MetricsProvider {
  readonly kind = 'scrape' as const;
  mode: 'ok' | 'fail' | 'hang' = 'ok';
  failOpen = false;
  windows = 0;
  constructor(private readonly inner: ScrapeProvider) {}

  async open(fromMs: number): Promise<void> {
    if (this.failOpen) throw new Error('metrics of green unreadable: bad sample value "Nan"');
    return this.inner.open(fromMs);
  }

  async window(fromMs: number, toMs: number): Promise<WindowStats> {
    this.windows++;
    if (this.mode === 'fail') throw new Error('metrics of green unreadable: bad sample value "Nan"');
    if (this.mode === 'hang') return new Promise(() => undefined);
    return this.inner.window(fromMs, toMs);
  }
}

let stack: Stack;
let controller: ReleaseController;
let provider: SwitchedProvider;
let load: Load;
let serving = '1.0.0';

beforeAll(async () => {
  stack = await startStack();
  provider = new SwitchedProvider(new ScrapeProvider({ instances: stack.instances }));
  ({ controller } = startController(stack, { provider, analysisTimeoutMs: 1_000 }));
  await controller.start();
  load = await startLoad(stack.router.url, 4, 5 * 60_000);
}, 90_000);

afterAll(async () => {
  await load?.stop();
  await controller?.stop();
  await stack?.close();
  await stopAll();
});

const WINDOWS = { analysisMs: 1_500, inconclusiveGraceMs: 1_500 };

function nextBundle(): string {
  return serving === '1.0.0' ? GOOD_BUNDLE : BASE_BUNDLE;
}

async function settled(id: string, timeoutMs = 30_000): Promise<ReleaseState> {
  return waitFor(
    `release ${id} to pause or end`,
    () => {
      const s = controller.history(1)[0];
      return s?.spec.id === id && (s.status === 'paused' || !isLive(s.status)) ? s : undefined;
    },
    timeoutMs,
  );
}

/** Each scenario starts with no live release, whatever the one before left. */
beforeEach(async () => {
  provider.mode = 'ok';
  provider.failOpen = false;
  const current = controller.current();
  if (current && isLive(current.status)) {
    await controller.command('abort');
    serving = current.spec.stableVersion ?? serving;
  }
});

function eventTypes(id: string): string[] {
  return controller.events(id).map((e) => e.type);
}

describe('analysis that cannot be had pauses, never rolls back', () => {
  it('a provider that keeps failing: unavailable, then paused with the reason; pause with a reason, resume re-applies traffic', async () => {
    provider.mode = 'fail';
    const started = await controller.deploy(nextBundle(), { ...WINDOWS, strategy: 'canary', steps: [50] });
    const paused = await settled(started.spec.id);
    expect(paused.status, paused.reason ?? '').toBe('paused');
    expect(paused.reason).toMatch(
      /analysis unavailable \(metrics of green unreadable: bad sample value "Nan"\) for 1500 ms after the window of step 1\/2 \(50%\)/,
    );
    const types = eventTypes(started.spec.id);
    expect(types).toEqual(expect.arrayContaining(['step-started', 'analysis-unavailable', 'analysis-inconclusive', 'paused']));
    expect(types).not.toContain('rolled-back');
    expect(types).not.toContain('action-failed');
    // Said once per spell, not on every failed attempt.
    expect(types.filter((t) => t === 'analysis-unavailable')).toHaveLength(1);
    const step = { [started.spec.stableColor]: 50, [started.spec.targetColor]: 50 };
    expect(stack.router.state().weights).toEqual(step);

    // Someone moves traffic by hand while it waits; the control API pauses it again with who did it.
    await stack.router.setWeights({ blue: 30, green: 70 });
    const { state } = await controller.command('pause', { reason: 'traffic moved by hand: weights blue=30 (by alice@host)' });
    expect(state.reason).toBe('paused: traffic moved by hand: weights blue=30 (by alice@host)');
    expect(controller.events(started.spec.id).at(-1)).toMatchObject({ type: 'paused', reason: state.reason });

    // Numbers are back; resume takes the release's own traffic back and the release goes on to the end.
    provider.mode = 'ok';
    const resumed = await controller.command('resume');
    expect(resumed.state.status).toBe('running');
    expect(stack.router.state().weights).toEqual(step);
    const done = await settled(started.spec.id);
    expect(done.status, done.reason ?? '').toBe('succeeded');
    serving = done.spec.version;
  }, 60_000);

  it('an analysis window that cannot open is no failed action: the release is promoted once numbers come', async () => {
    provider.failOpen = true;
    const started = await controller.deploy(nextBundle(), { ...WINDOWS, inconclusiveGraceMs: 10_000, strategy: 'canary', steps: [50] });
    const done = await settled(started.spec.id);
    provider.failOpen = false;
    expect(done.status, done.reason ?? '').toBe('succeeded');
    const types = eventTypes(started.spec.id);
    expect(types).toContain('analysis-unavailable');
    expect(types).not.toContain('action-failed');
    expect(types).not.toContain('rolled-back');
    serving = done.spec.version;
  }, 60_000);

  it('a provider that hangs: each measurement is cut short, the release pauses instead of waiting forever', async () => {
    const started = await controller.deploy(nextBundle(), { ...WINDOWS, strategy: 'bluegreen' });
    await waitFor(
      'post-switch window',
      () => controller.current()?.phase === 'post-switch' || !isLive(controller.current()?.status ?? 'running'),
      20_000,
    );
    provider.mode = 'hang';
    const paused = await settled(started.spec.id);
    provider.mode = 'ok';
    expect(paused.status, paused.reason ?? '').toBe('paused');
    expect(paused.reason).toMatch(/analysis window took longer than 1000 ms/);
    expect(eventTypes(started.spec.id)).not.toContain('rolled-back');
    // Commands still go through while the provider hangs: the loop was never stuck.
    const { state } = await controller.command('promote');
    expect(state.status).toBe('succeeded');
    serving = state.spec.version;
    expect(load.failed, load.failures.join('\n')).toBe(0);
  }, 60_000);
});
