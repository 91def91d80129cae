import { describe, it, expect } from 'vitest';
import { createRelease, desiredTraffic, phaseDeadlineMs, reconcile, step, trafficAgrees } from '../../src/release/engine.js';
import { buildSpec, type ReleaseRequest } from '../../src/release/spec.js';
import type { Action, Command, ReleaseEvent, ReleaseState, SmokeResult, Weights } from '../../src/release/types.js';
import { colorWindow, stats } from './windows.js';

const GOOD_SMOKE: SmokeResult = {
  ok: true,
  failures: [],
  rows: 160,
  rmse: { candidate: 0.56, stable: 0.57 },
  agreement: 0.9,
  meanAbsDelta: 0.2,
};

/** A simulated world: a steady request rate split by the weights the engine set, and how the new color behaves. */
interface World {
  rps: number;
  loadOk?: boolean;
  smoke?: SmokeResult;
  target?: { errorRate?: number; latencySeconds?: number; predictionMean?: number };
  /** The new color's instance stops answering health checks from this time on. */
  targetDiesAt?: number;
  commands?: Array<{ at: number; command: Command; reason?: string }>;
  /** The provider cannot give numbers from `from` (ms) until `to`: the controller reports the window unavailable. */
  unavailable?: { from: number; to?: number; reason?: string };
  /** The provider never answers at all (hangs): no analysis observation ever comes. */
  silentProvider?: boolean;
  /** Opening each analysis window fails (the controller's `analyze` action). */
  analyzeFails?: boolean;
  /** Instances label mirrored requests (source="mirror"): they come apart from live ones in the window. */
  sourceLabels?: boolean;
  /** Simulated seconds to run. */
  seconds: number;
}

interface Run {
  state: ReleaseState;
  events: ReleaseEvent[];
  actions: Action[];
  weights: Weights;
  states: ReleaseState[];
}

const BASE: ReleaseRequest = {
  id: 'r1',
  bundle: 'models/wine-quality/1.1.0',
  modelName: 'wine-quality',
  version: '1.1.0',
  sha256: 'abc',
  stableColor: 'blue',
};

/** Drives the engine as the controller does: one tick per simulated 250 ms, actions carried out at once. */
function simulate(req: Partial<ReleaseRequest>, world: World, from?: Run): Run {
  const spec = buildSpec({ ...BASE, analysisMs: 10_000, inconclusiveGraceMs: 5_000, ...req });
  let run: Run;
  if (from) run = from;
  else {
    const first = createRelease(spec, 0);
    run = {
      state: first.state,
      events: [...first.events],
      actions: [...first.actions],
      weights: { blue: 100, green: 0 },
      states: [first.state],
    };
  }
  let pending: Action[] = [...run.actions];
  let windowFrom = 0;
  const start = run.state.updatedAt;
  for (let now = start + 250; now <= start + world.seconds * 1000; now += 250) {
    const observations = [];
    for (const a of pending) {
      if (a.kind === 'set-weights') run.weights = a.weights;
      if (a.kind === 'analyze') {
        windowFrom = a.fromMs;
        if (world.analyzeFails)
          observations.push({ kind: 'action-failed' as const, action: 'analyze' as const, error: 'connect ECONNREFUSED' });
      }
      if (a.kind === 'load-bundle')
        observations.push({
          kind: 'load' as const,
          color: a.color,
          ok: world.loadOk ?? true,
          sha256: 'abc',
          ...(world.loadOk === false ? { error: 'checksum mismatch' } : {}),
        });
      if (a.kind === 'smoke') observations.push({ kind: 'smoke' as const, color: a.color, result: world.smoke ?? GOOD_SMOKE });
    }
    pending = [];
    const t = run.state.spec.targetColor;
    const dead = world.targetDiesAt !== undefined && now >= world.targetDiesAt;
    observations.push({ kind: 'health' as const, healthy: { blue: true, green: true, [t]: !dead } });
    const secs = (now - windowFrom) / 1000;
    const mirrorShare = run.state.mirror ? run.state.mirror.percent / 100 : 0;
    const targetShare = run.weights[t] / 100 + (world.sourceLabels ? 0 : mirrorShare);
    const stableShare = run.weights[run.state.spec.stableColor] / 100;
    const targetShape = (requests: number) => ({
      requests,
      errors: Math.floor(requests * (world.target?.errorRate ?? 0)),
      latencySeconds: world.target?.latencySeconds,
      predictionMean: world.target?.predictionMean,
    });
    const shaped = {
      [t]: targetShape(Math.floor(world.rps * secs * targetShare)),
      [run.state.spec.stableColor]: { requests: Math.floor(world.rps * secs * stableShare) },
    } as { blue: { requests: number }; green: { requests: number } };
    const window = stats(windowFrom, now, shaped);
    if (world.sourceLabels) {
      window.mirrored = { blue: colorWindow({ requests: 0 }), green: colorWindow({ requests: 0 }) };
      window.mirrored[t] = colorWindow(targetShape(Math.floor(world.rps * secs * mirrorShare)));
    }
    const down = world.unavailable && now >= world.unavailable.from && now < (world.unavailable.to ?? Infinity);
    if (down)
      observations.push({
        kind: 'analysis-unavailable' as const,
        reason: world.unavailable?.reason ?? 'scrape of green failed: connect ECONNREFUSED',
      });
    else if (!world.silentProvider) observations.push({ kind: 'analysis' as const, stats: window });
    const given = world.commands?.find((c) => c.at === now);
    const command = given ? { command: given.command, ...(given.reason ? { reason: given.reason } : {}) } : {};
    let first = true;
    for (const observation of observations) {
      const out = step(run.state, { now, observation, ...(first ? command : {}) });
      first = false;
      run.state = out.state;
      run.events.push(...out.events);
      run.actions.push(...out.actions);
      run.states.push(out.state);
      pending.push(...out.actions);
    }
  }
  for (const a of pending) if (a.kind === 'set-weights') run.weights = a.weights;
  return run;
}

const types = (run: Run) => run.events.map((e) => e.type);

interface Scenario {
  name: string;
  req?: Partial<ReleaseRequest>;
  world: World;
  status: ReleaseState['status'];
  reason?: RegExp;
  weights: Weights;
  events: string[];
  /** Event types that must never appear. */
  never?: string[];
}

const scenarios: Scenario[] = [
  {
    name: 'good blue-green release promotes after the post-switch window',
    world: { rps: 100, seconds: 15 },
    status: 'succeeded',
    weights: { blue: 0, green: 100 },
    events: ['release-started', 'bundle-loading', 'bundle-loaded', 'smoke-passed', 'switched', 'analysis-passed', 'succeeded'],
    never: ['rolled-back', 'paused'],
  },
  {
    name: 'good blue-green release with a shadow phase mirrors, then switches',
    req: { shadowMs: 5_000, shadowPercent: 50 },
    world: { rps: 100, seconds: 20 },
    status: 'succeeded',
    weights: { blue: 0, green: 100 },
    events: ['smoke-passed', 'shadow-started', 'analysis-passed', 'switched', 'analysis-passed', 'succeeded'],
  },
  {
    name: 'good canary release walks every step',
    req: { strategy: 'canary', steps: [10, 25, 50] },
    world: { rps: 200, seconds: 50 },
    status: 'succeeded',
    weights: { blue: 0, green: 100 },
    events: [
      'step-started',
      'analysis-passed',
      'step-started',
      'analysis-passed',
      'step-started',
      'analysis-passed',
      'step-started',
      'analysis-passed',
      'succeeded',
    ],
  },
  {
    name: 'error spike on a canary step rolls back at once',
    req: { strategy: 'canary', steps: [10, 50] },
    world: { rps: 200, seconds: 30, target: { errorRate: 0.2 } },
    status: 'rolled_back',
    reason: /error-ratio 0\.2 > 0\.01/,
    weights: { blue: 100, green: 0 },
    events: ['step-started', 'analysis-failed', 'rolled-back'],
    never: ['succeeded'],
  },
  {
    name: 'latency regression after a blue-green switch rolls back on the absolute limit',
    world: { rps: 100, seconds: 15, target: { latencySeconds: 0.4 } },
    status: 'rolled_back',
    reason: /latency-p95/,
    weights: { blue: 100, green: 0 },
    events: ['switched', 'analysis-failed', 'rolled-back'],
  },
  {
    name: 'latency regression against the stable color during a canary step',
    req: { strategy: 'canary', steps: [50] },
    world: { rps: 200, seconds: 15, target: { latencySeconds: 0.02 } },
    status: 'rolled_back',
    reason: /latency-p99-vs-stable/,
    weights: { blue: 100, green: 0 },
    events: ['analysis-failed', 'rolled-back'],
  },
  {
    name: 'prediction shift against the stable color in the shadow phase rolls back before any switch',
    req: { shadowMs: 10_000 },
    world: { rps: 100, seconds: 15, target: { predictionMean: 6.6 } },
    status: 'rolled_back',
    reason: /prediction-mean-shift|prediction-psi/,
    weights: { blue: 100, green: 0 },
    events: ['shadow-started', 'analysis-failed', 'rolled-back'],
    never: ['switched'],
  },
  {
    name: 'no traffic: inconclusive, waits, then pauses (never promotes, never fails)',
    req: { strategy: 'canary', steps: [10] },
    world: { rps: 0, seconds: 30 },
    status: 'paused',
    reason: /inconclusive/,
    weights: { blue: 90, green: 10 },
    events: ['step-started', 'analysis-inconclusive', 'paused'],
    never: ['analysis-passed', 'analysis-failed', 'rolled-back', 'succeeded'],
  },
  {
    name: 'metrics unavailable for the whole canary step: inconclusive, waits, then pauses with the reason (never rolls back)',
    req: { strategy: 'canary', steps: [10, 50] },
    world: { rps: 200, seconds: 40, unavailable: { from: 500, reason: 'metrics of green unreadable: bad sample value' } },
    status: 'paused',
    reason: /analysis unavailable \(metrics of green unreadable: bad sample value\) for 5000 ms after the window of step 1\/3 \(10%\)/,
    weights: { blue: 90, green: 10 },
    events: ['step-started', 'analysis-unavailable', 'analysis-inconclusive', 'paused'],
    never: ['analysis-failed', 'rolled-back', 'action-failed', 'succeeded'],
  },
  {
    name: 'metrics unavailable for a while, then back: the release goes on and is promoted',
    req: { strategy: 'canary', steps: [10, 50] },
    world: { rps: 200, seconds: 60, unavailable: { from: 2_000, to: 12_000 } },
    status: 'succeeded',
    weights: { blue: 0, green: 100 },
    events: [
      'step-started',
      'analysis-unavailable',
      'analysis-inconclusive',
      'analysis-passed',
      'step-started',
      'analysis-passed',
      'succeeded',
    ],
    never: ['rolled-back', 'paused'],
  },
  {
    name: 'opening the analysis window fails: unavailable, never a rollback',
    req: { strategy: 'canary', steps: [10] },
    world: { rps: 200, seconds: 40, analyzeFails: true, silentProvider: true },
    status: 'paused',
    reason: /no verdict in step 1\/2 \(10%\) .*analysis unavailable: analyze failed: connect ECONNREFUSED/,
    weights: { blue: 90, green: 10 },
    events: ['step-started', 'analysis-unavailable', 'paused'],
    never: ['rolled-back', 'action-failed'],
  },
  {
    name: 'a provider that never answers: the phase deadline pauses the release',
    req: { strategy: 'canary', steps: [25], analysisDeadlineMarginMs: 3_000 },
    world: { rps: 200, seconds: 40, silentProvider: true },
    status: 'paused',
    reason: /no verdict in step 1\/2 \(25%\) within its deadline of 18000 ms \(no analysis came back\)/,
    weights: { blue: 75, green: 25 },
    events: ['step-started', 'paused'],
    never: ['rolled-back', 'analysis-passed', 'succeeded'],
  },
  {
    name: 'shadow phase judges the new color on its mirrored requests (labelled apart from live)',
    req: { shadowMs: 5_000, shadowPercent: 50 },
    world: { rps: 100, seconds: 20, sourceLabels: true },
    status: 'succeeded',
    weights: { blue: 0, green: 100 },
    events: ['shadow-started', 'analysis-passed', 'switched', 'analysis-passed', 'succeeded'],
  },
  {
    name: 'shifted predictions on mirrored requests roll the shadow phase back',
    req: { shadowMs: 10_000 },
    world: { rps: 100, seconds: 15, sourceLabels: true, target: { predictionMean: 6.6 } },
    status: 'rolled_back',
    reason: /shadow: .*prediction-(mean-shift|psi)/,
    weights: { blue: 100, green: 0 },
    events: ['shadow-started', 'analysis-failed', 'rolled-back'],
    never: ['switched'],
  },
  {
    name: 'the new instance dies mid-canary: rolled back',
    req: { strategy: 'canary', steps: [25] },
    world: { rps: 100, seconds: 10, targetDiesAt: 3_000 },
    status: 'rolled_back',
    reason: /green is unhealthy/,
    weights: { blue: 100, green: 0 },
    events: ['step-started', 'instance-unhealthy', 'rolled-back'],
  },
  {
    name: 'manual abort during a canary step',
    req: { strategy: 'canary', steps: [25] },
    world: { rps: 100, seconds: 10, commands: [{ at: 2_000, command: 'abort' }] },
    status: 'aborted',
    reason: /aborted by user/,
    weights: { blue: 100, green: 0 },
    events: ['step-started', 'aborted'],
  },
  {
    name: 'manual promote skips the remaining canary steps',
    req: { strategy: 'canary', steps: [10, 25, 50] },
    world: { rps: 100, seconds: 5, commands: [{ at: 2_000, command: 'promote' }] },
    status: 'succeeded',
    reason: /promoted by user/,
    weights: { blue: 0, green: 100 },
    events: ['step-started', 'promoted', 'succeeded'],
  },
  {
    name: 'bundle refused on load: failed, no traffic moved',
    world: { rps: 100, seconds: 3, loadOk: false },
    status: 'failed',
    reason: /checksum mismatch/,
    weights: { blue: 100, green: 0 },
    events: ['bundle-loading', 'load-failed'],
    never: ['set-weights'],
  },
  {
    name: 'golden-set gate: a worse RMSE stops the release before traffic',
    world: { rps: 100, seconds: 3, smoke: { ...GOOD_SMOKE, rmse: { candidate: 0.8, stable: 0.57 } } },
    status: 'failed',
    reason: /golden-set RMSE 0\.8000 is worse than stable 0\.5700/,
    weights: { blue: 100, green: 0 },
    events: ['bundle-loaded', 'smoke-failed'],
  },
];

describe('release engine scenarios', () => {
  for (const sc of scenarios) {
    it(sc.name, () => {
      const run = simulate(sc.req ?? {}, sc.world);
      expect(run.state.status).toBe(sc.status);
      if (sc.reason) expect(run.state.reason).toMatch(sc.reason);
      expect(run.weights).toEqual(sc.weights);
      // Expected events appear in this order (others may interleave).
      const seen = types(run);
      let at = 0;
      for (const t of sc.events) {
        const i = seen.indexOf(t as ReleaseEvent['type'], at);
        expect(i, `event ${t} after position ${at} in ${seen.join(',')}`).toBeGreaterThanOrEqual(0);
        at = i + 1;
      }
      for (const t of sc.never ?? []) {
        expect(seen).not.toContain(t);
        expect(run.actions.map((a) => a.kind).filter((k) => k === t)).toEqual([]);
      }
      // Every decision carries a reason.
      for (const e of run.events) expect(e.reason.length).toBeGreaterThan(0);
    });
  }

  it('a failing verdict carries the measured values of every check', () => {
    const run = simulate({ strategy: 'canary', steps: [50] }, { rps: 200, seconds: 15, target: { errorRate: 0.5 } });
    const failed = run.events.find((e) => e.type === 'analysis-failed');
    const checks = failed?.values?.checks as Array<{ name: string; outcome: string; value: number }>;
    expect(checks.find((c) => c.name === 'error-ratio')).toMatchObject({ outcome: 'fail', value: 0.5 });
    expect(run.state.rollbackOrderedAt).toBe(failed?.at);
  });

  it('rollback is ordered in the same step as the failing verdict', () => {
    const run = simulate({ strategy: 'canary', steps: [50] }, { rps: 200, seconds: 15, target: { errorRate: 0.5 } });
    const i = run.states.findIndex((s) => s.status === 'rolled_back');
    expect(i).toBeGreaterThan(0);
    expect(run.states[i].updatedAt).toBe(run.events.find((e) => e.type === 'analysis-failed')?.at);
  });

  it('pause holds the weights; resume restarts the window and the release completes', () => {
    let run = simulate({ strategy: 'canary', steps: [25] }, { rps: 200, seconds: 3, commands: [{ at: 1_000, command: 'pause' }] });
    expect(run.state.status).toBe('paused');
    expect(run.weights).toEqual({ blue: 75, green: 25 });
    const resumed = step(run.state, { now: 20_000, command: 'resume' });
    expect(resumed.state.status).toBe('running');
    // Its own traffic first (it may have been moved by hand meanwhile), then a fresh window.
    expect(resumed.actions).toEqual([
      { kind: 'set-mirror', mirror: null },
      { kind: 'set-weights', weights: { blue: 75, green: 25 } },
      { kind: 'analyze', fromMs: 20_000 },
    ]);
    run = { ...run, state: resumed.state, actions: resumed.actions };
    run = simulate({ strategy: 'canary', steps: [25] }, { rps: 200, seconds: 25 }, run);
    expect(run.state.status).toBe('succeeded');
  });

  it('phase deadline: its window + the inconclusive grace + the margin, with a default for older records', () => {
    const spec = buildSpec({ ...BASE, analysisMs: 10_000, inconclusiveGraceMs: 5_000, analysisDeadlineMarginMs: 1_000 });
    expect(phaseDeadlineMs(spec, 'post-switch')).toBe(16_000);
    expect(phaseDeadlineMs({ ...spec, shadowMs: 3_000 }, 'shadow')).toBe(9_000);
    // Releases recorded before the deadline existed get the default margin.
    const { analysisDeadlineMarginMs: _m, ...old } = spec;
    void _m;
    expect(phaseDeadlineMs(old, 'step')).toBe(10_000 + 5_000 + 15_000);
  });

  it('pause carries a reason into the event and the state, in any phase where traffic moved, paused or not', () => {
    const run = simulate({ strategy: 'canary', steps: [25] }, { rps: 200, seconds: 2 });
    expect(run.state.phase).toBe('step');
    const by = 'traffic moved by hand: switch green (by alice@host)';
    const paused = step(run.state, { now: 3_000, command: 'pause', reason: by });
    expect(paused.state).toMatchObject({ status: 'paused', reason: `paused: ${by}` });
    expect(paused.events).toEqual([
      expect.objectContaining({ type: 'paused', reason: `paused: ${by}`, values: expect.objectContaining({ requested: by }) }),
    ]);
    expect(paused.actions).toEqual([]);
    // Paused already (say, inconclusive) and traffic moved again: the newer reason is what status shows.
    const again = step(paused.state, { now: 4_000, command: 'pause', reason: 'traffic moved by hand: weights blue=30 (by bob@host)' });
    expect(again.state.reason).toMatch(/blue=30 \(by bob@host\)/);
    expect(again.events[0].type).toBe('paused');
    // Without a reason a second pause is refused, as before.
    expect(step(paused.state, { now: 4_000, command: 'pause' }).events[0].type).toBe('command-refused');
    // Shadow and post-switch too.
    const shadow = simulate({ shadowMs: 10_000 }, { rps: 100, seconds: 2 });
    expect(shadow.state.phase).toBe('shadow');
    expect(step(shadow.state, { now: 3_000, command: 'pause', reason: by }).state.status).toBe('paused');
  });

  it('resume re-applies the phase traffic (weights and mirror) before restarting the window', () => {
    const shadow = simulate({ shadowMs: 10_000, shadowPercent: 50 }, { rps: 100, seconds: 2 });
    const paused = step(shadow.state, { now: 3_000, command: 'pause', reason: 'traffic moved by hand' });
    const resumed = step(paused.state, { now: 9_000, command: 'resume' });
    expect(resumed.actions).toEqual([
      { kind: 'set-mirror', mirror: { target: 'green', percent: 50 } },
      { kind: 'set-weights', weights: { blue: 100, green: 0 } },
      { kind: 'analyze', fromMs: 9_000 },
    ]);
    expect(resumed.state).toMatchObject({ status: 'running', phase: 'shadow', phaseStartedAt: 9_000, reason: null });
    expect(resumed.events[0]).toMatchObject({
      type: 'resumed',
      reason: expect.stringMatching(/traffic back to 100\/0 .*mirroring 50% to green/),
    });
  });

  it('trafficAgrees: the router agrees with a release only on its weights and mirror', () => {
    const mirrorOff = { target: null, percent: 0 };
    const step25 = simulate({ strategy: 'canary', steps: [25] }, { rps: 200, seconds: 2 }).state;
    expect(trafficAgrees(step25, { weights: { blue: 75, green: 25 }, mirror: mirrorOff })).toBe(true);
    expect(trafficAgrees(step25, { weights: { blue: 0, green: 100 }, mirror: mirrorOff })).toBe(false);
    const shadow = simulate({ shadowMs: 10_000, shadowPercent: 50 }, { rps: 100, seconds: 2 }).state;
    expect(trafficAgrees(shadow, { weights: { blue: 100, green: 0 }, mirror: { target: 'green', percent: 50 } })).toBe(true);
    expect(trafficAgrees(shadow, { weights: { blue: 100, green: 0 }, mirror: mirrorOff })).toBe(false);
    expect(trafficAgrees(shadow, { weights: { blue: 100, green: 0 }, mirror: { target: 'green', percent: 100 } })).toBe(false);
    const done = simulate({}, { rps: 100, seconds: 15 }).state;
    expect(done.status).toBe('succeeded');
    expect(trafficAgrees(done, { weights: { blue: 0, green: 100 }, mirror: mirrorOff })).toBe(true);
    // The case: a release that says green serves 100% while traffic is 30/70.
    expect(trafficAgrees(done, { weights: { blue: 30, green: 70 }, mirror: mirrorOff })).toBe(false);
    expect(trafficAgrees(done, { weights: { blue: 0, green: 100 }, mirror: { target: 'blue', percent: 10 } })).toBe(false);
  });

  it('refuses commands that make no sense in the current state, with an event', () => {
    const { state } = createRelease(buildSpec(BASE), 0);
    for (const command of ['promote', 'pause', 'resume'] as const) {
      const out = step(state, { now: 1, command });
      expect(out.state.status).toBe('running');
      expect(out.actions).toEqual([]);
      expect(out.events.map((e) => e.type)).toEqual(['command-refused']);
    }
  });

  it('rollback after a successful blue-green release switches back to the warm old color', () => {
    const run = simulate({}, { rps: 100, seconds: 15 });
    expect(run.state.status).toBe('succeeded');
    const out = step(run.state, { now: 100_000, command: 'rollback' });
    expect(out.state.status).toBe('rolled_back');
    expect(out.actions).toContainEqual({ kind: 'set-weights', weights: { blue: 100, green: 0 } });
    expect(step(out.state, { now: 100_001, command: 'rollback' }).events[0].type).toBe('command-refused');
  });

  it('controller restart mid-release: replayed state is rolled back and traffic restored to stable', () => {
    const run = simulate({ strategy: 'canary', steps: [50] }, { rps: 200, seconds: 4 });
    expect(run.state.status).toBe('running');
    // What the store hands back after a crash is the persisted JSON.
    const replayed = JSON.parse(JSON.stringify(run.state)) as ReleaseState;
    const out = reconcile(replayed, 50_000);
    expect(out.state.status).toBe('rolled_back');
    expect(out.events[0]).toMatchObject({ type: 'reconciled', values: { decision: 'rolled-back', targetWeight: 50 } });
    expect(out.actions).toContainEqual({ kind: 'set-weights', weights: { blue: 100, green: 0 } });
    expect(desiredTraffic(out.state).weights).toEqual({ blue: 100, green: 0 });
  });

  it('controller restart after a finished release re-applies its traffic', () => {
    const run = simulate({}, { rps: 100, seconds: 15 });
    const out = reconcile(run.state, 99_000);
    expect(out.state.status).toBe('succeeded');
    expect(out.actions).toEqual([
      { kind: 'set-mirror', mirror: null },
      { kind: 'set-weights', weights: { blue: 0, green: 100 } },
    ]);
  });

  it('is pure: the same inputs give the same outputs and the input state is not mutated', () => {
    const { state } = createRelease(buildSpec(BASE), 0);
    const frozen = JSON.stringify(state);
    const input = { now: 10, observation: { kind: 'load' as const, color: 'green' as const, ok: true, sha256: 'abc' } };
    expect(step(state, input)).toEqual(step(state, input));
    expect(JSON.stringify(state)).toBe(frozen);
  });
});
