/**
 * The release controller: the I/O loop around the pure engine. It ticks, gathers observations (load and
 * smoke results, instance health, analysis windows from a MetricsProvider), feeds them to the engine,
 * persists every step before acting on it, and carries the engine's actions out on the traffic driver and
 * the instances. On start it reconciles: the last release's traffic is restored, and a release caught
 * mid-way is rolled back (the engine's reconcile() says why in an event). It sees the world only through its
 * ports (ports.ts: release log, traffic, instance admin, preview route, metric source, clock), so the same loop
 * runs on real adapters or on in-memory fakes.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Registry } from 'prom-client';
import { COLORS, type Color } from '../config/defaults.js';
import { mirrorConfig } from '../config/traffic-split.js';
import { BundleError, loadBundle } from '../model/bundle.js';
import { ColorUnreadableError } from '../metric-sources/types.js';
import { createRelease, isAnalysisPhase, isLive, reconcile, refusedRelease, step } from '../release/engine.js';
import { buildSpec, SpecError, type ReleaseRequest } from '../release/spec.js';
import type { PairSummary } from '../release/pairing-types.js';
import type { Action, Command, Observation, ReleaseEvent, ReleaseState, StepInput, StepResult } from '../release/types.js';
import { systemClock } from './clock.js';
import {
  ANALYSIS_CALL_TIMEOUT_MS,
  ANALYSIS_EVERY_MS,
  CONTROLLER_TICK_MS,
  HEAL_EVERY_MS,
  READY_POLL_MS,
  READY_TIMEOUT_MS,
  TARGET_UNREADABLE_MS,
} from './defaults.js';
import { ControllerMetrics } from './metrics.js';
import type { Clock, InstanceAdminPort, MetricsProvider, PairingPort, PreviewPort, ReleaseLog, TrafficPort } from './ports.js';
import { runSmoke } from './smoke.js';

export interface ControllerOptions {
  store: ReleaseLog;
  traffic: TrafficPort;
  provider: MetricsProvider;
  admin: InstanceAdminPort;
  preview: PreviewPort;
  /** Timestamps and waits (default: wall time and real timers). */
  clock?: Clock;
  tickMs?: number;
  /** How often an analysis window is measured and judged while one is open. */
  analysisEveryMs?: number;
  /** How long a loaded color may take to answer /ready. */
  readyTimeoutMs?: number;
  /** Longest wait for one analysis measurement before the window counts as unavailable. */
  analysisTimeoutMs?: number;
  log?: (message: string, fields?: Record<string, unknown>) => void;
  /** Where the controller metrics are registered (default: a registry of their own). */
  registry?: Registry;
  /** Pairs both colors' answers to mirrored requests in the shadow phase (absent: the paired checks are skipped). */
  pairing?: PairingPort;
  /** How often replicas that came back are put on their color's bundle (admin.heal); 0: never. */
  healEveryMs?: number;
}

/** Options a user gives to `deploy` (everything else comes from the bundle and the defaults). */
export type DeployOptions = Omit<
  ReleaseRequest,
  'id' | 'bundle' | 'modelName' | 'version' | 'sha256' | 'stableColor' | 'stableBundle' | 'stableVersion' | 'stableSha256'
>;

export class DeployError extends Error {
  constructor(
    readonly code: 'release_in_progress' | 'bundle_refused' | 'invalid_release' | 'no_release',
    message: string,
    readonly details?: Array<{ field: string; problem: string }>,
    readonly release?: ReleaseState,
  ) {
    super(message);
  }
}

export interface RollbackTiming {
  releaseId: string;
  orderedAt: number;
  appliedAt: number;
}

export class ReleaseController {
  readonly metrics: ControllerMetrics;
  private readonly clock: Clock;
  private live: ReleaseState | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly inbox: Array<{ releaseId: string; observation: Observation }> = [];
  private analysisFrom: number | null = null;
  private lastAnalysisAt = 0;
  private targetUnreadableSince: number | null = null;
  /** Stops the tick loop; the loop's promise settles once its last tick has. */
  private ticking: { stop: AbortController; done: Promise<void> } | undefined;
  private readonly listeners = new Set<(event: ReleaseEvent) => void>();
  /** Releases whose latest step is persisted but whose actions are still being carried out: their previous state. */
  private readonly settling = new Map<string, ReleaseState>();
  /** The release whose shadow phase the pairing compares (or last compared). */
  private pairedRelease: string | undefined;
  /** The most recent rollback's timing (verdict or command to weights in effect). */
  lastRollback: RollbackTiming | undefined;

  constructor(private readonly opts: ControllerOptions) {
    this.clock = opts.clock ?? systemClock;
    this.metrics = new ControllerMetrics(opts.registry, () => opts.traffic.state().weights);
  }

  /** The instances' admin side it loads bundles through (the stack heals a restarted replica with it). */
  get admin(): InstanceAdminPort {
    return this.opts.admin;
  }

  private log(message: string, fields?: Record<string, unknown>): void {
    this.opts.log?.(message, fields);
  }

  /** Runs `fn` after every earlier engine step: steps never interleave. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  onEvent(listener: (event: ReleaseEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Reconciles with the store, then starts ticking. */
  async start(): Promise<ReleaseEvent[]> {
    const events = await this.serial(() => this.reconcileLatest());
    const stop = new AbortController();
    this.ticking = { stop, done: Promise.all([this.tickLoop(stop.signal), this.healLoop(stop.signal)]).then(() => undefined) };
    return events;
  }

  /**
   * Beside the ticks (a load takes seconds): a replica that restarted (or a new one) serves its start-up model
   * until it is put back on its color's current bundle here.
   */
  private async healLoop(signal: AbortSignal): Promise<void> {
    const every = this.opts.healEveryMs ?? HEAL_EVERY_MS;
    const heal = this.opts.admin.heal?.bind(this.opts.admin);
    if (!heal || every <= 0) return;
    // A replica that keeps refusing is said once, not every period.
    const refusing = new Map<string, string>();
    while (!signal.aborted) {
      try {
        await this.clock.sleep(every, signal);
      } catch {
        return;
      }
      try {
        for (const h of await heal()) {
          if (h.ok) refusing.delete(h.address);
          else if (refusing.get(h.address) === h.error) continue;
          else refusing.set(h.address, h.error ?? '');
          this.log(h.ok ? "replica put back on its color's bundle" : "replica could not be put on its color's bundle", { ...h });
        }
      } catch (err) {
        this.log('replica heal failed', { error: (err as Error).message });
      }
    }
  }

  /** A tick every tickMs on the controller's clock, a tick never overlapping the next. */
  private async tickLoop(signal: AbortSignal): Promise<void> {
    const every = this.opts.tickMs ?? CONTROLLER_TICK_MS;
    while (!signal.aborted) {
      try {
        await this.clock.sleep(every, signal);
      } catch {
        return;
      }
      await this.tick().catch((err: Error) => this.log('tick failed', { error: err.message }));
    }
  }

  async stop(): Promise<void> {
    const ticking = this.ticking;
    this.ticking = undefined;
    ticking?.stop.abort();
    await ticking?.done;
    await this.chain;
  }

  /** Stops ticking and closes the release log. */
  async close(): Promise<void> {
    await this.stop();
    this.opts.store.close();
  }

  private async reconcileLatest(): Promise<ReleaseEvent[]> {
    const latest = this.opts.store.latest();
    if (!latest) return [];
    const out = reconcile(latest, this.clock.now());
    // The color that ends up active must serve the model the log says it does: after a restart of the whole
    // stack, instances come back with their start-up bundle.
    const { spec } = out.state;
    const active =
      out.state.status === 'succeeded'
        ? { color: spec.targetColor, bundle: spec.bundle, sha256: spec.sha256, version: spec.version }
        : spec.stableBundle && spec.stableSha256
          ? { color: spec.stableColor, bundle: spec.stableBundle, sha256: spec.stableSha256, version: spec.stableVersion ?? '?' }
          : undefined;
    if (active) {
      const serving = await this.opts.admin.model(active.color);
      if (serving?.sha256 === active.sha256) this.opts.admin.expect?.(active.color, active.bundle, active.sha256);
      if (serving && serving.sha256 !== active.sha256) {
        const loaded = await this.opts.admin.load(active.color, active.bundle);
        out.events.push({
          at: this.clock.now(),
          releaseId: spec.id,
          type: 'reconciled',
          phase: 'done',
          reason: loaded.ok
            ? `reloaded ${active.version} on ${active.color} (it served ${serving.version})`
            : `could not reload ${active.version} on ${active.color}: ${loaded.error}`,
          values: { decision: loaded.ok ? 'reloaded' : 'reload-failed', color: active.color },
        });
      }
    }
    await this.apply(out, undefined, latest);
    return out.events;
  }

  /** The color serving (most of) the traffic now. */
  private stableColor(): Color {
    const { weights } = this.opts.traffic.state();
    return weights.green > weights.blue ? 'green' : 'blue';
  }

  /** Verifies the bundle, then starts a release. Nothing moves when the bundle is refused. */
  deploy(bundle: string, options: DeployOptions = {}): Promise<ReleaseState> {
    return this.serial(async () => {
      if (this.live && isLive(this.live.status)) {
        throw new DeployError(
          'release_in_progress',
          `release ${this.live.spec.id} is ${this.live.status} (${this.live.phase}): promote, abort or wait for it first`,
          undefined,
          this.live,
        );
      }
      const dir = path.resolve(bundle);
      const stableColor = this.stableColor();
      const stable = await this.opts.admin.model(stableColor);
      const id = newReleaseId(this.clock.now());
      // Where the stable color's model came from, so a restart can put it back (see reconcileLatest).
      const origin =
        stable &&
        this.opts.store
          .list(10_000)
          .find((r) => r.status === 'succeeded' && r.spec.targetColor === stableColor && r.spec.sha256 === stable.sha256);
      const base = {
        id,
        bundle: dir,
        stableColor,
        ...options,
        ...(stable ? { stableVersion: stable.version, stableSha256: stable.sha256 } : {}),
        ...(origin ? { stableBundle: origin.spec.bundle } : {}),
      };
      let verified;
      try {
        verified = await loadBundle(dir);
        await verified.runtime.close?.();
      } catch (err) {
        if (!(err instanceof BundleError)) throw err;
        const claimed = await readClaimedIdentity(dir);
        const spec = buildSpec({ ...base, ...claimed, sha256: '' });
        const refused = refusedRelease(spec, this.clock.now(), `bundle refused before any traffic moved: ${err.message}`, {
          code: err.code,
        });
        await this.apply(refused);
        throw new DeployError('bundle_refused', err.message, [{ field: 'bundle', problem: err.code }], refused.state);
      }
      let spec;
      try {
        spec = buildSpec({
          ...base,
          modelName: verified.manifest.name,
          version: verified.manifest.version,
          sha256: verified.sha256,
          task: verified.manifest.task,
        });
      } catch (err) {
        if (err instanceof SpecError) throw new DeployError('invalid_release', err.message);
        throw err;
      }
      const out = createRelease(spec, this.clock.now());
      await this.apply(out);
      return out.state;
    });
  }

  /**
   * promote | abort | rollback | pause | resume on the current (or the latest finished) release. `reason`
   * says why (e.g. "traffic moved by hand: switch green (by alice@host)"): it goes into the event and, for a
   * pause, the release's reason.
   */
  command(command: Command, opts: { reason?: string } = {}): Promise<{ state: ReleaseState; events: ReleaseEvent[] }> {
    return this.serial(async () => {
      const target = this.live ?? this.opts.store.latest();
      if (!target) throw new DeployError('no_release', 'there is no release to act on');
      const out = await this.feed(target, { now: this.clock.now(), command, ...(opts.reason ? { reason: opts.reason } : {}) });
      return { state: out.state, events: out.events };
    });
  }

  /** What users see of a release: a step's new state shows once its actions are in effect. */
  private visible(r: ReleaseState): ReleaseState {
    return this.settling.get(r.spec.id) ?? (this.live && r.spec.id === this.live.spec.id ? this.live : r);
  }

  current(): ReleaseState | undefined {
    const latest = this.live ?? this.opts.store.latest();
    return latest && this.visible(latest);
  }

  history(limit = 20): ReleaseState[] {
    return this.opts.store.list(limit).map((r) => this.visible(r));
  }

  /** The latest shadow comparison, with the largest disagreements' inputs (memory only), and its release. */
  shadowPairs(): { releaseId: string; pairs: PairSummary } | undefined {
    const pairs = this.opts.pairing?.latest?.();
    return pairs && this.pairedRelease ? { releaseId: this.pairedRelease, pairs } : undefined;
  }

  events(releaseId: string): ReleaseEvent[] {
    return this.opts.store.events(releaseId);
  }

  /** One tick: pending results, instance health, and (when due) the open analysis window. */
  tick(): Promise<void> {
    return this.serial(async () => {
      for (const item of this.inbox.splice(0)) {
        if (this.live?.spec.id === item.releaseId && isLive(this.live.status))
          await this.feed(this.live, { now: this.clock.now(), observation: item.observation });
      }
      const r = this.live;
      if (!r || !isLive(r.status)) return;
      const health = this.opts.traffic.health();
      const target = health[r.spec.targetColor];
      // The router's view can be a check behind (an admin load makes /ready 503 for a moment): confirm with
      // the instances themselves before calling the color down. A color of several replicas is down when fewer
      // than its minimum are ready (admin.ready), though the router still has one in rotation.
      const replicaDown = (target.replicas ?? []).some((x) => !x.healthy);
      if ((!target.healthy || replicaDown) && !(await this.opts.admin.ready(r.spec.targetColor))) {
        // Down, as the admin side just confirmed, even while the router keeps a replica of it in rotation.
        const healthy = Object.fromEntries(COLORS.map((c) => [c, c !== r.spec.targetColor && health[c].healthy])) as Record<Color, boolean>;
        await this.feed(r, { now: this.clock.now(), observation: { kind: 'health', healthy } });
      }
      const now = this.clock.now();
      const current = this.live as ReleaseState;
      if (
        current.status === 'running' &&
        this.analysisFrom !== null &&
        isAnalysisPhase(current.phase) &&
        now - this.lastAnalysisAt >= (this.opts.analysisEveryMs ?? ANALYSIS_EVERY_MS)
      ) {
        this.lastAnalysisAt = now;
        let stats;
        try {
          stats = await this.bounded(this.opts.provider.window(this.analysisFrom, now), 'analysis window');
        } catch (err) {
          await this.unavailable(current, err as Error, now);
          return;
        }
        this.targetUnreadableSince = null;
        if (current.phase === 'shadow' && this.opts.pairing) {
          const pairs = await this.bounded(this.opts.pairing.summary(), 'paired predictions').catch((err: Error) => {
            this.log('paired predictions unavailable', { error: err.message });
          });
          if (pairs) stats = { ...stats, pairs };
        }
        await this.feed(current, { now, observation: { kind: 'analysis', stats } });
      } else {
        await this.feed(current, { now });
      }
    });
  }

  /** A provider call that gives up after analysisTimeoutMs, so a hung provider cannot stall the loop. */
  private bounded<T>(work: Promise<T>, what: string): Promise<T> {
    const ms = this.opts.analysisTimeoutMs ?? ANALYSIS_CALL_TIMEOUT_MS;
    const done = new AbortController();
    const timeout = this.clock.sleep(ms, done.signal).then((): never => {
      throw new Error(`${what} took longer than ${ms} ms`);
    });
    return Promise.race([work, timeout]).finally(() => done.abort());
  }

  /**
   * The window's numbers could not be had (the provider retried already): the engine hears it as an
   * inconclusive window, never as a verdict. But a new color that cannot even serve /metrics for a while is
   * down, whatever the router has noticed: that is its health, and a rollback.
   */
  private async unavailable(release: ReleaseState, err: Error, now: number): Promise<void> {
    this.log('analysis window unavailable', { error: err.message });
    await this.feed(release, { now, observation: { kind: 'analysis-unavailable', reason: err.message } });
    if (!(err instanceof ColorUnreadableError) || err.color !== release.spec.targetColor) return;
    this.targetUnreadableSince ??= now;
    const current = this.live;
    if (current?.spec.id === release.spec.id && now - this.targetUnreadableSince >= TARGET_UNREADABLE_MS) {
      const healthy = { blue: true, green: true, [err.color]: false } as Record<Color, boolean>;
      await this.feed(current, { now, observation: { kind: 'health', healthy } });
    }
  }

  /** One engine step; must run inside serial(). */
  private async feed(state: ReleaseState, input: StepInput): Promise<StepResult> {
    const out = step(state, input);
    await this.apply(out, state);
    return out;
  }

  /**
   * Persists a step (when it decided anything), then carries its actions out. `previous`: the release as it
   * was before this step (defaults to `before`; a reconcile passes the logged state), to tell a rollback this
   * step ordered from one replayed.
   */
  private async apply(out: StepResult, before?: ReleaseState, previous: ReleaseState | undefined = before): Promise<void> {
    const { state } = out;
    const changed =
      !before || out.events.length > 0 || out.actions.length > 0 || before.status !== state.status || before.phase !== state.phase;
    if (changed) this.opts.store.save(state, out.events);
    this.live = isLive(state.status) ? state : undefined;
    if (changed) {
      this.metrics.release(state);
      if (before && isLive(before.status) && !isLive(state.status)) this.metrics.finished(state);
      for (const e of out.events) for (const l of this.listeners) l(e);
    }
    // Persisted first (crash safety), shown after: `rolled_back` is reported once traffic is back.
    if (before && out.actions.length > 0) this.settling.set(state.spec.id, before);
    try {
      for (const action of out.actions) await this.execute(state, action);
    } finally {
      this.settling.delete(state.spec.id);
    }
    // Each rollback is timed once, by the step that ordered it: re-applying a rolled-back release's traffic
    // (a reconcile after a restart) orders nothing.
    const ordered = state.rollbackOrderedAt !== null && state.rollbackOrderedAt !== (previous?.rollbackOrderedAt ?? null);
    if (ordered && state.rollbackOrderedAt !== null && out.actions.some((a) => a.kind === 'set-weights')) {
      const timing = { releaseId: state.spec.id, orderedAt: state.rollbackOrderedAt, appliedAt: this.clock.now() };
      this.lastRollback = timing;
      this.metrics.rollbackSeconds.observe((timing.appliedAt - timing.orderedAt) / 1000);
      this.log('rolled back', { ...timing, ms: timing.appliedAt - timing.orderedAt });
    }
  }

  private post(releaseId: string, observation: Observation): void {
    this.inbox.push({ releaseId, observation });
  }

  private async execute(state: ReleaseState, action: Action): Promise<void> {
    const id = state.spec.id;
    try {
      switch (action.kind) {
        case 'set-weights':
          await this.opts.traffic.setWeights(action.weights);
          this.metrics.weights(action.weights);
          return;
        case 'set-mirror':
          await this.opts.traffic.setMirror(mirrorConfig(action.mirror));
          return;
        case 'analyze':
          this.analysisFrom = action.fromMs;
          this.targetUnreadableSince = null;
          this.lastAnalysisAt = 0;
          // A baseline that cannot be taken now is taken by the first window that can (the provider's
          // window() does it); meanwhile the window is unavailable, which the engine hears on the next tick.
          await this.bounded(this.opts.provider.open(action.fromMs), 'opening the analysis window').catch((err: Error) => {
            this.log('analysis window could not open', { error: err.message });
            if (isLive(state.status)) this.post(id, { kind: 'analysis-unavailable', reason: err.message });
          });
          if (state.phase === 'shadow' && this.opts.pairing) {
            this.pairedRelease = id;
            const colors = { stable: state.spec.stableColor, target: state.spec.targetColor };
            await this.bounded(this.opts.pairing.open(colors), 'opening the shadow comparison').catch((err: Error) =>
              this.log('shadow comparison could not open', { error: err.message }),
            );
          }
          return;
        case 'load-bundle':
          // Slow work runs beside the loop; its result comes back as an observation on a later tick.
          void this.loadAndWait(action.color, action.bundle).then((observation) => this.post(id, observation));
          return;
        case 'smoke':
          void runSmoke(this.opts.preview, action.color, action.stableColor, action.bundle, state.spec.version).then((result) =>
            this.post(id, { kind: 'smoke', color: action.color, result }),
          );
          return;
      }
    } catch (err) {
      const error = (err as Error).message;
      this.log('action failed', { action: action.kind, error });
      if (isLive(state.status)) this.post(id, { kind: 'action-failed', action: action.kind, error });
      else if (action.kind === 'set-weights') this.log('could not restore traffic after the release ended', { error });
    }
  }

  private async loadAndWait(color: Color, bundle: string): Promise<Observation> {
    const loaded = await this.opts.admin.load(color, bundle);
    if (!loaded.ok) return { kind: 'load', color, ok: false, error: loaded.error };
    const deadline = this.clock.now() + (this.opts.readyTimeoutMs ?? READY_TIMEOUT_MS);
    while (!(await this.opts.admin.ready(color))) {
      if (this.clock.now() > deadline) return { kind: 'load', color, ok: false, error: `${color} not ready after the load` };
      await this.clock.sleep(READY_POLL_MS);
    }
    return { kind: 'load', color, ok: true, sha256: loaded.model.sha256, version: loaded.model.version };
  }
}

/** Name and version a refused bundle's manifest claims, when it can be read at all (for history). */
async function readClaimedIdentity(dir: string): Promise<{ modelName: string; version: string }> {
  try {
    const m = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as { name?: unknown; version?: unknown };
    return { modelName: typeof m.name === 'string' ? m.name : '?', version: typeof m.version === 'string' ? m.version : '?' };
  } catch {
    return { modelName: '?', version: '?' };
  }
}

function newReleaseId(now: number): string {
  const t = new Date(now)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `r-${t}-${randomBytes(2).toString('hex')}`;
}
