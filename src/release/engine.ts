/**
 * The release state machine: step(state, input) => { state, actions, events }.
 * No I/O, timers, clocks or randomness: time and observations come in, decisions go out, and the
 * controller carries the actions out. Every decision is an event with its reason and values.
 */
import { mirrorConfig, weightsFor, type MirrorConfig } from '../config/traffic-split.js';
import { addWindows, evaluate, describeFailures } from './analysis.js';
import { CATALOGUE, SHADOW_CATALOGUE } from './checks/catalogue.js';
import { DEFAULT_ANALYSIS_DEADLINE_MARGIN_MS } from './defaults.js';
import { goldenGate } from './golden-gate.js';
import type {
  Action,
  Command,
  EventType,
  Observation,
  Phase,
  ReleaseEvent,
  ReleaseSpec,
  ReleaseState,
  ReleaseStatus,
  StepInput,
  StepResult,
  WindowStats,
  Weights,
} from './types.js';

export function isLive(status: ReleaseStatus): boolean {
  return status === 'running' || status === 'paused';
}

/** The phases in which traffic has reached the new color and analysis windows judge it. */
export const ANALYSIS_PHASES: readonly Phase[] = ['shadow', 'step', 'post-switch'];

export function isAnalysisPhase(phase: Phase): boolean {
  return ANALYSIS_PHASES.includes(phase);
}

/** The traffic a release's state stands for, as a router holds it: what the controller restores after a restart. */
export function desiredTraffic(state: ReleaseState): { weights: Weights; mirror: MirrorConfig } {
  if (isLive(state.status)) return { weights: weightsFor(state.spec.targetColor, state.targetWeight), mirror: mirrorConfig(state.mirror) };
  return { weights: weightsFor(state.spec.targetColor, state.status === 'succeeded' ? 100 : 0), mirror: mirrorConfig(null) };
}

/** Traffic as a router reports it (TrafficState has this shape; the engine imports no driver). */
export interface ObservedTraffic {
  weights: Weights;
  mirror: MirrorConfig | null;
}

/**
 * Whether the router's traffic is what the release says it should be (its live phase, or its outcome once
 * finished). Status output uses it so that a release never reads as done while traffic disagrees with it.
 */
export function trafficAgrees(release: ReleaseState, traffic: ObservedTraffic): boolean {
  const want = desiredTraffic(release);
  if (want.weights.blue !== traffic.weights.blue || want.weights.green !== traffic.weights.green) return false;
  const actual = traffic.mirror && traffic.mirror.target !== null && traffic.mirror.percent > 0 ? traffic.mirror : null;
  if (want.mirror.target === null || want.mirror.percent === 0) return actual === null;
  return actual !== null && actual.target === want.mirror.target && actual.percent === want.mirror.percent;
}

/** How long an analysis phase may go without a verdict before the release pauses (from the phase's start). */
export function phaseDeadlineMs(spec: ReleaseSpec, phase: Phase): number {
  const window = phase === 'shadow' ? spec.shadowMs : spec.analysisMs;
  return window + spec.inconclusiveGraceMs + (spec.analysisDeadlineMarginMs ?? DEFAULT_ANALYSIS_DEADLINE_MARGIN_MS);
}

/** Accumulates one step's output so each transition reads as a short sequence of decisions. */
class Step {
  readonly actions: Action[] = [];
  readonly events: ReleaseEvent[] = [];
  constructor(
    public state: ReleaseState,
    readonly now: number,
  ) {}

  update(patch: Partial<ReleaseState>): void {
    this.state = { ...this.state, ...patch, updatedAt: this.now };
  }

  event(type: EventType, reason: string, values?: Record<string, unknown>): void {
    this.events.push({ at: this.now, releaseId: this.state.spec.id, type, phase: this.state.phase, reason, ...(values ? { values } : {}) });
  }

  result(): StepResult {
    return { state: this.state, actions: this.actions, events: this.events };
  }
}

export function createRelease(spec: ReleaseSpec, now: number): StepResult {
  const state: ReleaseState = {
    spec,
    status: 'running',
    phase: 'loading',
    stepIndex: 0,
    phaseStartedAt: now,
    targetWeight: 0,
    mirror: null,
    createdAt: now,
    updatedAt: now,
    inconclusiveSince: null,
    reason: null,
    lastAnalysis: null,
    rollbackOrderedAt: null,
  };
  const s = new Step(state, now);
  s.event('release-started', `${spec.strategy} release of ${spec.modelName} ${spec.version} to ${spec.targetColor}`, {
    bundle: spec.bundle,
    strategy: spec.strategy,
    stableColor: spec.stableColor,
    targetColor: spec.targetColor,
    steps: spec.steps,
    shadowMs: spec.shadowMs,
    analysisMs: spec.analysisMs,
  });
  s.event('bundle-loading', `loading ${spec.bundle} on idle color ${spec.targetColor}`);
  s.actions.push({ kind: 'load-bundle', color: spec.targetColor, bundle: spec.bundle });
  return s.result();
}

/** A release refused before it started (its bundle failed verification): recorded so history shows why. */
export function refusedRelease(spec: ReleaseSpec, now: number, reason: string, values?: Record<string, unknown>): StepResult {
  const started = createRelease(spec, now);
  const s = new Step({ ...started.state, status: 'failed', phase: 'done', reason }, now);
  s.event('bundle-refused', reason, { bundle: spec.bundle, ...values });
  return s.result();
}

export function step(state: ReleaseState, input: StepInput): StepResult {
  const s = new Step(state, input.now);
  if (input.command) applyCommand(s, input.command, input.reason);
  if (input.observation && isLive(s.state.status)) applyObservation(s, input.observation);
  if (s.state.status === 'running') checkTimeouts(s);
  return s.result();
}

/** After a controller restart: a release caught mid-way is rolled back; a finished one has its traffic restored. */
export function reconcile(state: ReleaseState, now: number): StepResult {
  const s = new Step(state, now);
  if (isLive(state.status)) {
    const reason = `controller restarted during ${state.phase}: rolled back to ${state.spec.stableColor} (the analysis evidence did not survive the restart)`;
    s.event('reconciled', reason, { decision: 'rolled-back', phase: state.phase, targetWeight: state.targetWeight });
    rollBack(s, 'rolled_back', reason, {});
    return s.result();
  }
  const traffic = desiredTraffic(state);
  s.event('reconciled', `traffic restored to the last consistent state (release ${state.status})`, {
    decision: 'restored',
    weights: traffic.weights,
  });
  s.actions.push({ kind: 'set-mirror', mirror: null }, { kind: 'set-weights', weights: traffic.weights });
  return s.result();
}

function applyCommand(s: Step, command: Command, given?: string): void {
  const { status, phase } = s.state;
  const refuse = (why: string) => s.event('command-refused', `${command} refused: ${why}`, { command, status, phase });

  if (!isLive(status)) {
    // Blue-green keeps the old color warm: a finished release can still be reverted instantly.
    if (command === 'rollback' && status === 'succeeded') {
      rollBack(s, 'rolled_back', `rollback requested after success: traffic back to ${s.state.spec.stableColor}`, {});
      return;
    }
    refuse(`release is ${status}`);
    return;
  }
  switch (command) {
    case 'abort':
      rollBack(s, 'aborted', given ? `aborted: ${given}` : 'aborted by user', given ? { requested: given } : {});
      return;
    case 'rollback':
      rollBack(s, 'rolled_back', 'rollback requested by user', {});
      return;
    case 'pause': {
      // A paused release may be paused again with a new reason (traffic moved by hand while it waited): the
      // reason is what status shows, so it must say who moved traffic last.
      if (status === 'paused' && !given) return refuse('already paused');
      if (!isAnalysisPhase(phase)) return refuse(`cannot pause while ${phase}; abort instead`);
      const reason = given ? `paused: ${given}` : 'paused by user';
      s.update({ status: 'paused', reason });
      s.event('paused', reason, { targetWeight: s.state.targetWeight, ...(given ? { requested: given } : {}) });
      return;
    }
    case 'resume': {
      if (status !== 'paused') return refuse('not paused');
      // Traffic may have been moved by hand while paused: the release takes its own traffic back first, so
      // the restarted window measures what the release says it does.
      const weights = weightsFor(s.state.spec.targetColor, s.state.targetWeight);
      s.actions.push({ kind: 'set-mirror', mirror: s.state.mirror }, { kind: 'set-weights', weights });
      s.update({ status: 'running', reason: null, phaseStartedAt: s.now, inconclusiveSince: null, analysisUnavailable: null });
      s.event(
        'resumed',
        `resumed ${phaseLabel(s)}: traffic back to ${weights.blue}/${weights.green} (blue/green)${s.state.mirror ? `, mirroring ${s.state.mirror.percent}% to ${s.state.mirror.target}` : ''}; analysis window restarts`,
        {
          targetWeight: s.state.targetWeight,
          weights,
          mirror: s.state.mirror,
          ...(given ? { requested: given } : {}),
        },
      );
      s.actions.push({ kind: 'analyze', fromMs: s.now });
      return;
    }
    case 'promote':
      if (!isAnalysisPhase(phase)) return refuse(`the bundle has not passed loading and smoke checks yet (${phase})`);
      s.event('promoted', 'promoted by user: remaining steps and analysis skipped', { fromWeight: s.state.targetWeight });
      switchFully(s);
      succeed(s, 'promoted by user');
      return;
  }
}

function applyObservation(s: Step, obs: Observation): void {
  const { phase, spec } = s.state;
  const trafficMoved = isAnalysisPhase(phase);
  switch (obs.kind) {
    case 'action-failed': {
      // Opening an analysis window touches no traffic: its failure leaves the window without numbers.
      if (obs.action === 'analyze') return unavailable(s, `analyze failed: ${obs.error}`);
      const reason = `${obs.action} failed: ${obs.error}`;
      s.event('action-failed', reason, { action: obs.action });
      if (trafficMoved || obs.action === 'set-weights' || obs.action === 'set-mirror') rollBack(s, 'rolled_back', reason, {});
      else fail(s, reason);
      return;
    }
    case 'health': {
      // Before traffic moves, a dead instance shows up as a failed load or smoke check instead.
      if (obs.healthy[spec.targetColor] || !trafficMoved) return;
      const reason = `instance ${spec.targetColor} is unhealthy`;
      s.event('instance-unhealthy', reason, { color: spec.targetColor });
      rollBack(s, 'rolled_back', reason, {});
      return;
    }
    case 'load': {
      if (phase !== 'loading' || obs.color !== spec.targetColor) return;
      if (!obs.ok) return fail(s, `bundle refused by ${obs.color}: ${obs.error ?? 'unknown error'}`);
      if (obs.sha256 !== undefined && obs.sha256 !== spec.sha256) {
        return fail(s, `${obs.color} serves sha256 ${obs.sha256}, expected ${spec.sha256}`);
      }
      s.event('bundle-loaded', `${spec.version} loaded and ready on ${obs.color}`, { sha256: obs.sha256, version: obs.version });
      s.update({ phase: 'smoke', phaseStartedAt: s.now });
      s.actions.push({ kind: 'smoke', color: spec.targetColor, stableColor: spec.stableColor, bundle: spec.bundle });
      return;
    }
    case 'smoke': {
      if (phase !== 'smoke' || obs.color !== spec.targetColor) return;
      const r = obs.result;
      const values = {
        rows: r.rows,
        rmse: r.rmse,
        agreement: r.agreement,
        meanAbsDelta: r.meanAbsDelta,
        ...(r.accuracy ? { accuracy: r.accuracy, logLoss: r.logLoss ?? null } : {}),
        margin: spec.goldenRmseMargin,
      };
      if (!r.ok) return fail(s, `smoke checks failed: ${r.failures.join('; ')}`, values);
      const gate = goldenGate(r, spec.goldenRmseMargin);
      if (gate.failure) return fail(s, gate.failure, values);
      s.event('smoke-passed', `smoke checks passed through the preview route${gate.summary}`, values);
      enterFirstTrafficPhase(s);
      return;
    }
    case 'analysis':
      if (s.state.status === 'running' && isAnalysisPhase(phase)) judge(s, obs);
      return;
    case 'analysis-unavailable':
      unavailable(s, obs.reason);
      return;
  }
}

/**
 * The numbers of the window could not be had. Never a verdict: like too few samples, the release waits for
 * the grace after the window, then pauses with the reason. Said once per spell, not on every attempt.
 */
function unavailable(s: Step, reason: string): void {
  const { status, phase, spec, phaseStartedAt } = s.state;
  if (status !== 'running' || !isAnalysisPhase(phase)) return;
  if (!s.state.analysisUnavailable) s.event('analysis-unavailable', `analysis of ${phaseLabel(s)} unavailable: ${reason}`, { reason });
  if (s.state.analysisUnavailable !== reason) s.update({ analysisUnavailable: reason });
  const windowMs = phase === 'shadow' ? spec.shadowMs : spec.analysisMs;
  if (s.now - phaseStartedAt < windowMs) return;
  inconclusive(s, `analysis unavailable (${reason})`, { reason });
}

/** An analysis that cannot decide after its window: wait up to the grace, then pause for a person. */
function inconclusive(s: Step, why: string, values: Record<string, unknown>): void {
  const { spec } = s.state;
  if (s.state.inconclusiveSince === null) {
    s.update({ inconclusiveSince: s.now });
    s.event('analysis-inconclusive', `${why} in ${phaseLabel(s)}: waiting up to ${spec.inconclusiveGraceMs} ms`, values);
  } else if (s.now - s.state.inconclusiveSince >= spec.inconclusiveGraceMs) {
    const reason = `${why} for ${spec.inconclusiveGraceMs} ms after the window of ${phaseLabel(s)}: paused, resume or promote by hand`;
    s.update({ status: 'paused', reason });
    s.event('paused', reason, values);
  }
}

/**
 * The statistics a phase is judged on. Live windows count live traffic only. The shadow phase judges the new
 * color on the mirrored copies it answered (plus any live-counted ones: instances without the `source` label
 * count mirrored requests as live, and the new color has no live weight in shadow) against the stable's live.
 */
function judgedStats(stats: WindowStats, phase: Phase, target: ReleaseSpec['targetColor']): WindowStats {
  if (phase !== 'shadow' || !stats.mirrored) return stats;
  return { ...stats, colors: { ...stats.colors, [target]: addWindows(stats.colors[target], stats.mirrored[target]) } };
}

function judge(s: Step, obs: Extract<Observation, { kind: 'analysis' }>): void {
  const { spec, phase, targetWeight } = s.state;
  const compareWithStable = phase === 'shadow' || (phase === 'step' && targetWeight < 100);
  const verdict = evaluate(
    judgedStats(obs.stats, phase, spec.targetColor),
    spec.analysis,
    { target: spec.targetColor, stable: spec.stableColor, compareWithStable, ...(spec.task ? { task: spec.task } : {}) },
    phase === 'shadow' ? SHADOW_CATALOGUE : CATALOGUE,
  );
  s.update({ lastAnalysis: verdict, analysisUnavailable: null });
  const values = {
    checks: verdict.checks,
    samples: verdict.samples,
    window: verdict.window,
    targetWeight,
    ...(verdict.pairs ? { pairs: verdict.pairs } : {}),
  };

  if (verdict.outcome === 'fail') {
    const reason = `analysis failed in ${phaseLabel(s)}: ${describeFailures(verdict)}`;
    s.event('analysis-failed', reason, values);
    rollBack(s, 'rolled_back', reason, {}, `rolled back after the failed analysis in ${phaseLabel(s)}`);
    return;
  }
  const windowMs = phase === 'shadow' ? spec.shadowMs : spec.analysisMs;
  // A window whose baseline came late (the provider failed as it opened) starts when its numbers do.
  if (s.now - Math.max(s.state.phaseStartedAt, obs.stats.fromMs) < windowMs) return;

  if (verdict.outcome === 'pass') {
    s.event('analysis-passed', `analysis passed in ${phaseLabel(s)} (${verdict.samples.target} requests)`, values);
    advance(s);
    return;
  }
  const pending = verdict.checks.filter((c) => c.outcome === 'inconclusive');
  const why = pending.length > 0 ? `${pending.map((c) => c.name).join(', ')}: ${pending[0].detail}` : `${verdict.samples.target} requests`;
  inconclusive(s, `analysis inconclusive (${why})`, values);
}

function phaseLabel(s: Step): string {
  const { phase, stepIndex, spec } = s.state;
  return phase === 'step' ? `step ${stepIndex + 1}/${spec.steps.length} (${spec.steps[stepIndex]}%)` : phase;
}

function checkTimeouts(s: Step): void {
  const { phase, phaseStartedAt, spec } = s.state;
  const elapsed = s.now - phaseStartedAt;
  if (phase === 'loading' && elapsed > spec.loadTimeoutMs)
    fail(s, `bundle not ready on ${spec.targetColor} after ${spec.loadTimeoutMs} ms`);
  else if (phase === 'smoke' && elapsed > spec.smokeTimeoutMs) fail(s, `smoke checks did not finish within ${spec.smokeTimeoutMs} ms`);
  else if (isAnalysisPhase(phase) && elapsed > phaseDeadlineMs(spec, phase)) {
    const last = s.state.analysisUnavailable
      ? `analysis unavailable: ${s.state.analysisUnavailable}`
      : s.state.lastAnalysis
        ? `last analysis ${s.state.lastAnalysis.outcome} with ${s.state.lastAnalysis.samples.target} requests`
        : 'no analysis came back';
    const reason = `no verdict in ${phaseLabel(s)} within its deadline of ${phaseDeadlineMs(spec, phase)} ms (${last}): paused, resume or promote by hand`;
    s.update({ status: 'paused', reason });
    s.event('paused', reason, { deadlineMs: phaseDeadlineMs(spec, phase), elapsedMs: elapsed });
  }
}

function enterPhase(s: Step, phase: Phase, patch: Partial<ReleaseState> = {}): void {
  s.update({ phase, phaseStartedAt: s.now, inconclusiveSince: null, lastAnalysis: null, analysisUnavailable: null, ...patch });
  s.actions.push({ kind: 'analyze', fromMs: s.now });
}

function enterFirstTrafficPhase(s: Step): void {
  const { spec } = s.state;
  if (spec.strategy === 'canary') return enterStep(s, 0);
  if (spec.shadowMs > 0) {
    const mirror = { target: spec.targetColor, percent: spec.shadowPercent };
    s.actions.push({ kind: 'set-mirror', mirror });
    enterPhase(s, 'shadow', { mirror });
    s.event('shadow-started', `mirroring ${spec.shadowPercent}% of live traffic to ${spec.targetColor} for ${spec.shadowMs} ms`, {
      mirror,
    });
    return;
  }
  enterPostSwitch(s);
}

function enterStep(s: Step, index: number): void {
  const { spec } = s.state;
  const percent = spec.steps[index];
  s.actions.push({ kind: 'set-weights', weights: weightsFor(spec.targetColor, percent) });
  enterPhase(s, 'step', { stepIndex: index, targetWeight: percent });
  s.event('step-started', `canary step ${index + 1}/${spec.steps.length}: ${percent}% to ${spec.targetColor}`, {
    weights: weightsFor(spec.targetColor, percent),
  });
}

function switchFully(s: Step): void {
  const { spec } = s.state;
  if (s.state.mirror) s.actions.push({ kind: 'set-mirror', mirror: null });
  s.actions.push({ kind: 'set-weights', weights: weightsFor(spec.targetColor, 100) });
  s.update({ targetWeight: 100, mirror: null });
}

function enterPostSwitch(s: Step): void {
  switchFully(s);
  enterPhase(s, 'post-switch');
  s.event('switched', `100% to ${s.state.spec.targetColor}; post-switch analysis for ${s.state.spec.analysisMs} ms`, {
    weights: weightsFor(s.state.spec.targetColor, 100),
  });
}

function advance(s: Step): void {
  const { phase, stepIndex, spec } = s.state;
  if (phase === 'shadow') return enterPostSwitch(s);
  if (phase === 'step' && stepIndex + 1 < spec.steps.length) return enterStep(s, stepIndex + 1);
  succeed(s, `${spec.version} serves 100% on ${spec.targetColor}`);
}

function succeed(s: Step, reason: string): void {
  s.update({ status: 'succeeded', phase: 'done', reason });
  s.event('succeeded', `${reason}; ${s.state.spec.stableColor} keeps its model warm for instant rollback`, {
    weights: weightsFor(s.state.spec.targetColor, 100),
  });
}

/** Stopped before live traffic reached the new version: nothing to undo. */
function fail(s: Step, reason: string, values?: Record<string, unknown>): void {
  const type: EventType = s.state.phase === 'loading' ? 'load-failed' : 'smoke-failed';
  s.event(type, reason, values);
  s.update({ status: 'failed', phase: 'done', reason });
}

/** Traffic back to the stable color at once. */
function rollBack(s: Step, status: 'rolled_back' | 'aborted', reason: string, values: Record<string, unknown>, announce = reason): void {
  const { spec } = s.state;
  const weights = weightsFor(spec.targetColor, 0);
  s.actions.push({ kind: 'set-mirror', mirror: null }, { kind: 'set-weights', weights });
  s.event(status === 'aborted' ? 'aborted' : 'rolled-back', `${announce}; 100% back on ${spec.stableColor}`, { ...values, weights });
  s.update({ status, phase: 'done', reason, targetWeight: 0, mirror: null, rollbackOrderedAt: s.now });
}
