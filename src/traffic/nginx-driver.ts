/**
 * The nginx driver. Weights and the mirror share are live files (see nginx-config.ts): a change writes a new
 * generation and swaps a symlink, in effect on the next request, no reload. A structural change (the sticky
 * key) renders the whole configuration, checks it with `nginx -t`, swaps it in atomically (temp file +
 * rename) and reloads gracefully. A configuration nginx refuses is never applied; the old one keeps serving.
 * Every change resolves once nginx answers the new generation (and no pre-reload worker still serves).
 *
 * Two modes: `managed` starts a private nginx (prefix, pid, logs and temp files under one directory) as a
 * child process, or adopts the one a crashed `bgserve up` left running (it keeps serving: the new state is
 * written as live files, and the configuration reloaded only if its text changed); `external` drives an nginx
 * someone else runs (config path, test and reload commands given).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';
import type { Registry } from 'prom-client';
import { request } from 'undici';
import { ActiveHealthChecker, describeError, HealthTracker, type HealthOptions } from './health.js';
import { validateUpstreams } from './pools.js';
import { RouterMetrics } from './metrics.js';
import { AccessLogFollower } from './nginx-access-log.js';
import {
  LIVE_CURRENT,
  renderLiveFiles,
  renderNginxConfig,
  VERSION_PATH,
  type NginxPaths,
  type NginxRenderOptions,
} from './nginx-config.js';
import { initialState, TrafficInputError, validateMirror, validateSticky, validateWeights } from './policy.js';
import type { Color } from '../config/defaults.js';
import {
  RouterRefusedError,
  type DriverProcess,
  type HealthReport,
  type MirrorConfig,
  type StickyConfig,
  type TrafficDriver,
  type TrafficState,
  type Upstream,
  type Upstreams,
  type Weights,
} from './types.js';

const run = promisify(execFile);

/** The managed nginx's master process: our child, or an adopted one (its exit seen by polling its PID). */
export interface NginxMaster {
  readonly pid: number | null;
  readonly exited: Promise<unknown>;
  kill(signal: NodeJS.Signals): void;
}

export type NginxMode =
  | {
      kind: 'managed';
      /** Private prefix directory (created). */
      prefix: string;
      nginxBin?: string;
      /** The master a previous run left serving on this prefix and address (verified by the caller): kept, not restarted. */
      adopt?: NginxMaster;
    }
  | {
      kind: 'external';
      configPath: string;
      paths: NginxPaths;
      /** Checks a candidate file; `{config}` is replaced by its path. */
      testCommand: string[];
      /** Makes the running nginx load `configPath`, e.g. ["nginx", "-s", "reload"]. */
      reloadCommand: string[];
    };

export interface NginxDriverOptions {
  listen: Upstream;
  upstreams: Upstreams;
  mode: NginxMode;
  /** Where the driver reaches the router to see a change in effect (default: http://listen). */
  checkUrl?: string;
  /** Public URL of the router, reported to users (default: checkUrl). */
  url?: string;
  initial?: Partial<Omit<TrafficState, 'generation'>>;
  health?: HealthOptions;
  render?: Pick<
    NginxRenderOptions,
    'workerProcesses' | 'maxFails' | 'failTimeoutS' | 'keepaliveConnections' | 'clientMaxBodySize' | 'resolver'
  >;
  /** How long a reload may take to be in effect before the change is reported as failed. */
  inEffectTimeoutMs?: number;
  /** The preview route's credential, rendered into the configuration (absent: preview is off). */
  previewToken?: string;
}

/** nginx refused a rendered configuration (`nginx -t` failed); nothing was applied. */
export class NginxConfigError extends RouterRefusedError {
  constructor(message: string, output: string) {
    super(message, output);
    this.name = 'NginxConfigError';
  }
}

export class NginxDriver implements TrafficDriver {
  readonly kind = 'nginx' as const;
  readonly metrics: Registry;
  readonly url: string;
  private readonly m = new RouterMetrics();
  private readonly tracker: HealthTracker;
  private readonly checker: ActiveHealthChecker;
  private readonly configPath: string;
  private readonly paths: NginxPaths;
  private readonly checkUrl: string;
  private current: TrafficState;
  private master: NginxMaster | null = null;
  private masterRunning = false;
  private follower: AccessLogFollower | null = null;
  /** Workers of the managed nginx before the last reload: a change is in effect once none of them serves. */
  private oldWorkers: number[] = [];
  /** Changes are applied one at a time, in call order. */
  private queue: Promise<unknown> = Promise.resolve();
  /** The pools rendered into the running configuration. */
  private upstreams: Upstreams;

  constructor(private readonly opts: NginxDriverOptions) {
    this.metrics = this.m.registry;
    this.current = initialState(opts.initial);
    this.m.setWeights(this.current.weights);
    if (opts.mode.kind === 'managed') {
      const prefix = path.resolve(opts.mode.prefix);
      this.configPath = path.join(prefix, 'nginx.conf');
      this.paths = {
        pid: path.join(prefix, 'nginx.pid'),
        errorLog: path.join(prefix, 'logs', 'error.log'),
        accessLog: path.join(prefix, 'logs', 'access.log'),
        tempDir: path.join(prefix, 'temp'),
        liveDir: path.join(prefix, 'live'),
      };
    } else {
      this.configPath = opts.mode.configPath;
      this.paths = opts.mode.paths;
    }
    this.checkUrl = opts.checkUrl ?? `http://${opts.listen.host}:${opts.listen.port}`;
    this.url = opts.url ?? this.checkUrl;
    this.upstreams = validateUpstreams(opts.upstreams);
    this.tracker = new HealthTracker(this.upstreams, {
      ...opts.health,
      onChange: (color, healthy) => this.m.setHealthy(color, healthy),
    });
    this.checker = new ActiveHealthChecker(this.tracker, opts.health);
  }

  /** Writes the first configuration and starts nginx (managed) or reloads it (external). */
  async start(): Promise<this> {
    const mode = this.opts.mode;
    // nginx -t refuses a configuration whose temp or log folders are missing. An external nginx's are in its
    // own container (compose), where this process may not even be allowed to create them: only the live files,
    // which this process writes, are ours to make there.
    if (mode.kind === 'managed') {
      await mkdir(path.dirname(this.paths.errorLog), { recursive: true });
      await mkdir(this.paths.tempDir, { recursive: true });
    }
    await mkdir(this.paths.liveDir, { recursive: true });
    // Generations go on from the previous run's: a worker still reading the old `current` never sees a lower one.
    this.current.generation = Math.max(this.current.generation, (await liveGeneration(this.paths.liveDir)) + 1);
    if (mode.kind === 'managed' && mode.adopt && !this.opts.initial) {
      // Nobody says otherwise (no release in the log): the adopted nginx keeps the split it serves.
      const served = await readLiveState(this.paths.liveDir);
      if (served) {
        this.current = { ...this.current, ...served };
        this.m.setWeights(this.current.weights);
      }
    }
    await this.writeLive(this.current);
    if (mode.kind === 'managed' && mode.adopt) {
      // The adopted nginx serves the new weights from its next request on (live files); only a changed
      // configuration text (say, a new bgserve version) needs a graceful reload.
      this.watchMaster(mode.adopt);
      const text = renderNginxConfig(this.current, this.renderOptions());
      if ((await readFile(this.configPath, 'utf8').catch(() => '')) !== text) {
        await this.writeCheckedText(text);
        await this.reload();
      }
    } else {
      await this.writeChecked(this.current);
      if (mode.kind === 'managed') await this.spawnManaged(mode.nginxBin ?? 'nginx', path.resolve(mode.prefix));
      else await this.reload();
    }
    await this.waitInEffect(this.current.generation);
    await this.checker.start();
    if (this.paths.accessLog) {
      this.follower = new AccessLogFollower(this.paths.accessLog, this.upstreams, this.m);
      await this.follower.start();
    }
    return this;
  }

  get configFile(): string {
    return this.configPath;
  }

  get pid(): number | undefined {
    return this.master?.pid ?? undefined;
  }

  /** The managed nginx's master, for the stack to record and kill; none in external mode. */
  get process(): DriverProcess | undefined {
    const pid = this.master?.pid;
    if (this.opts.mode.kind !== 'managed' || !pid) return undefined;
    return { pid, stopSignal: 'SIGQUIT', adopted: this.adopted, killNow: () => this.killNow() };
  }

  /** True when this driver took over a running nginx instead of starting one. */
  get adopted(): boolean {
    return this.opts.mode.kind === 'managed' && this.opts.mode.adopt !== undefined;
  }

  state(): TrafficState {
    return structuredClone(this.current);
  }

  health(): HealthReport {
    return this.tracker.report();
  }

  async setWeights(weights: Weights): Promise<TrafficState> {
    const valid = validateWeights(weights);
    const state = await this.apply({ weights: valid });
    this.m.setWeights(valid);
    return state;
  }

  async setMirror(mirror: MirrorConfig): Promise<TrafficState> {
    return this.apply({ mirror: validateMirror(mirror) });
  }

  async setSticky(sticky: StickyConfig | null): Promise<TrafficState> {
    return this.apply({ sticky: validateSticky(sticky) });
  }

  /**
   * Rewrites the upstream blocks and reloads gracefully (checked with `nginx -t` first; refused, the running
   * pools stay). In-flight requests finish on the old workers.
   */
  async setUpstreams(upstreams: Upstreams): Promise<void> {
    const valid = validateUpstreams(upstreams);
    try {
      renderNginxConfig(this.current, { ...this.renderOptions(), upstreams: valid });
    } catch (err) {
      // A pool this configuration cannot hold (several host:port per color with a resolver): the caller's mistake.
      throw new TrafficInputError('invalid_upstreams', (err as Error).message);
    }
    return this.enqueue(async () => {
      const next: TrafficState = { ...this.current, generation: this.current.generation + 1 };
      const previous = this.upstreams;
      this.upstreams = valid;
      this.oldWorkers = [];
      try {
        await this.writeChecked(next);
      } catch (err) {
        this.upstreams = previous;
        throw err;
      }
      const { next: pools, added } = this.tracker.plan(valid);
      await this.checker.check(added);
      this.tracker.apply(pools);
      if (this.follower) this.follower.upstreams = valid;
      await this.writeLive(next);
      await this.reload();
      this.current = next;
      await this.waitInEffect(next.generation);
    });
  }

  /**
   * Applies configuration text as is (checked, swapped, reloaded), outside the state. For operators and
   * tests: it is how a refused configuration is shown to leave the running one in place.
   */
  applyConfigText(text: string): Promise<void> {
    return this.enqueue(async () => {
      await this.writeCheckedText(text);
      await this.reload();
    });
  }

  /** Synchronous last resort (process exit): SIGKILL to the managed nginx. */
  killNow(): void {
    if (this.master && this.masterRunning) this.master.kill('SIGKILL');
  }

  async close(): Promise<void> {
    await this.checker.close();
    await this.follower?.close();
    const master = this.master;
    if (master && this.masterRunning) {
      // SIGQUIT: graceful shutdown (finish in-flight requests), SIGKILL if that takes too long.
      master.kill('SIGQUIT');
      const timer = setTimeout(() => master.kill('SIGKILL'), 5_000);
      await master.exited;
      clearTimeout(timer);
    }
  }

  private apply(change: Partial<TrafficState>): Promise<TrafficState> {
    return this.enqueue(async () => {
      const next: TrafficState = { ...this.current, ...change, generation: this.current.generation + 1 };
      const structural = JSON.stringify(next.sticky) !== JSON.stringify(this.current.sticky);
      this.oldWorkers = [];
      if (structural) await this.writeChecked(next);
      await this.writeLive(next);
      if (structural) await this.reload();
      // Once nginx has the files, that is the state, even if the workers are slow to show it.
      this.current = next;
      await this.waitInEffect(next.generation);
      return this.state();
    });
  }

  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    const result = this.queue.then(job, job);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private renderOptions(): NginxRenderOptions {
    // A root-started nginx runs workers as `nobody`, which cannot read live files under, say, /root/project/.bgserve.
    // The managed nginx is a local tool started by this user: its workers run as this user too.
    const user = this.opts.mode.kind === 'managed' && process.getuid?.() === 0 ? 'root' : undefined;
    return {
      listen: this.opts.listen,
      upstreams: this.upstreams,
      paths: this.paths,
      user,
      previewToken: this.opts.previewToken,
      ...this.opts.render,
    };
  }

  /** Writes generation directory g<N> and points `current` at it with one atomic rename. */
  private async writeLive(state: TrafficState): Promise<void> {
    const live = this.paths.liveDir;
    const name = `g${state.generation}`;
    const dir = path.join(live, name);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await Promise.all(Object.entries(renderLiveFiles(state)).map(([file, text]) => writeFile(path.join(dir, file), text)));
    const tmp = path.join(live, `${LIVE_CURRENT}.next`);
    await rm(tmp, { force: true });
    await symlink(name, tmp);
    await rename(tmp, path.join(live, LIVE_CURRENT));
    // Keep the previous generation a while (a worker may be checking it right now); drop older ones.
    for (const entry of await readdir(live)) {
      const gen = /^g(\d+)$/.exec(entry);
      if (gen && Number(gen[1]) < state.generation - 1) await rm(path.join(live, entry), { recursive: true, force: true });
    }
  }

  private writeChecked(state: TrafficState): Promise<void> {
    return this.writeCheckedText(renderNginxConfig(state, this.renderOptions()));
  }

  /** Candidate next to the live file (same filesystem, so the rename is atomic), checked before the swap. */
  private async writeCheckedText(text: string): Promise<void> {
    const candidate = `${this.configPath}.next`;
    // Owner-only: the configuration holds the preview token (nginx's master reads it as this user or root).
    await writeFile(candidate, text, { mode: 0o600 });
    try {
      await this.test(candidate);
    } catch (err) {
      await rm(candidate, { force: true });
      throw err;
    }
    await rename(candidate, this.configPath);
  }

  private async test(file: string): Promise<void> {
    const mode = this.opts.mode;
    const [cmd, ...args] =
      mode.kind === 'managed'
        ? [mode.nginxBin ?? 'nginx', '-t', '-q', '-p', path.resolve(mode.prefix), '-c', file]
        : mode.testCommand.map((a) => a.replaceAll('{config}', file));
    try {
      await run(cmd, args, { timeout: 10_000 });
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; code?: string | number };
      if (e.code === 'ENOENT') throw new NginxConfigError(`${cmd} not found: install nginx or use the embedded router`, '');
      const output = `${e.stderr ?? ''}${e.stdout ?? ''}`.trim();
      throw new NginxConfigError(`nginx refused the configuration: ${output || describeError(err)}`, output);
    }
  }

  private async reload(): Promise<void> {
    const mode = this.opts.mode;
    if (mode.kind === 'managed') {
      if (!this.master?.pid || !this.masterRunning) throw new Error('the managed nginx is not running');
      this.oldWorkers = await workerPids(this.master.pid);
      this.master.kill('SIGHUP');
      return;
    }
    // The external master's workers too: a fresh connection may still land on one until it takes the quit. The
    // reload command may also decide not to reload (compose's watcher skips an unchanged file), so waiting for
    // them is bounded (EXTERNAL_OLD_WORKER_WAIT_MS).
    this.oldWorkers = await masterPid(this.paths.pid).then((pid) => (pid === null ? [] : workerPids(pid)));
    const [cmd, ...args] = mode.reloadCommand;
    await run(cmd, args, { timeout: 10_000 });
  }

  private watchMaster(master: NginxMaster): void {
    this.master = master;
    this.masterRunning = true;
    void master.exited.then(() => {
      if (this.master === master) this.masterRunning = false;
    });
  }

  private async spawnManaged(bin: string, prefix: string): Promise<void> {
    // daemon off: nginx stays our child, so it is stopped by PID and its exit is seen.
    // Own process group, like the instances: Ctrl-C reaches `up`, which stops the router before the instances,
    // and a kill -9 of `up` leaves it serving for the next `up` to adopt. Its stderr goes to a file, not a pipe
    // that would close with this process.
    const stderrFile = path.join(path.dirname(this.paths.errorLog), 'stderr.log');
    const stderr = openSync(stderrFile, 'a');
    let child;
    try {
      child = spawn(bin, ['-p', prefix, '-c', this.configPath, '-g', 'daemon off;'], {
        stdio: ['ignore', 'ignore', stderr],
        detached: true,
      });
      await new Promise<void>((resolve, reject) => {
        child!.once('spawn', resolve);
        child!.once('error', reject);
      });
    } finally {
      closeSync(stderr);
    }
    const exited = new Promise<void>((resolve) =>
      child.once('exit', (code, signal) => {
        if (code !== 0 && signal !== 'SIGQUIT') {
          void readFile(stderrFile, 'utf8')
            .catch(() => '')
            .then((text) => process.stderr.write(`bgserve: nginx exited (${code ?? signal}): ${text.slice(-4_000)}\n`));
        }
        resolve();
      }),
    );
    this.watchMaster({ pid: child.pid ?? null, exited, kill: (signal) => void child.kill(signal) });
  }

  /** Polls the version location on fresh connections until the reloaded workers answer the generation. */
  private async waitInEffect(generation: number): Promise<void> {
    const started = Date.now();
    const deadline = started + (this.opts.inEffectTimeoutMs ?? 10_000);
    let last = '';
    while (Date.now() < deadline) {
      try {
        const res = await request(`${this.checkUrl}${VERSION_PATH}`, { reset: true, headersTimeout: 1_000, bodyTimeout: 1_000 });
        const text = (await res.body.text()).trim();
        if (res.statusCode === 200 && Number(text) >= generation) {
          // New workers answer; old ones may still serve their keep-alive clients until they take the quit.
          const serving = await stillServing(this.oldWorkers);
          if (serving.length === 0) return;
          if (this.opts.mode.kind === 'external' && Date.now() - started > EXTERNAL_OLD_WORKER_WAIT_MS) return;
          last = `old workers ${serving.join(', ')} still serving`;
        } else if (res.statusCode === 200) {
          last = `generation ${text}`;
        } else {
          last = `GET ${VERSION_PATH} answered ${res.statusCode} (can nginx's workers read ${this.paths.liveDir}?)`;
        }
      } catch (err) {
        last = describeError(err);
      }
      if (this.opts.mode.kind === 'managed' && !this.masterRunning) throw new Error(`nginx is not running (see ${this.paths.errorLog})`);
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`nginx did not serve generation ${generation} in time (${last}); see ${this.paths.errorLog}`);
  }
}

const EXTERNAL_OLD_WORKER_WAIT_MS = 2_000;

/** The generation the live directory's `current` points at (0 when there is none yet). */
async function liveGeneration(liveDir: string): Promise<number> {
  const target = await readlink(path.join(liveDir, LIVE_CURRENT)).catch(() => '');
  const match = /^g(\d+)$/.exec(target);
  return match ? Number(match[1]) : 0;
}

/** The split and mirror the live files of the current generation stand for (see renderLiveFiles); null without any. */
async function readLiveState(liveDir: string): Promise<Pick<TrafficState, 'weights' | 'mirror'> | null> {
  let files: string[];
  try {
    files = await readdir(path.join(liveDir, LIVE_CURRENT));
  } catch {
    return null;
  }
  const green = files.filter((f) => /^green-\d+$/.test(f)).length;
  const mirrored = files.map((f) => /^mirror-(blue|green)-\d+$/.exec(f)).filter((m) => m !== null);
  const target = mirrored.length > 0 ? (mirrored[0][1] as Color) : null;
  return { weights: { blue: 100 - green, green }, mirror: { target, percent: target ? mirrored.length : 0 } };
}

/** The master's PID from nginx's pid file, or null when there is none (yet) to read. */
async function masterPid(pidFile: string): Promise<number | null> {
  try {
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Worker PIDs of an nginx master (Linux /proc; empty where that is not available). */
async function workerPids(masterPid: number): Promise<number[]> {
  try {
    const text = await readFile(`/proc/${masterPid}/task/${masterPid}/children`, 'utf8');
    return text.split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Old workers still alive and not yet shutting down (nginx retitles a worker once it takes the quit). */
async function stillServing(pids: number[]): Promise<number[]> {
  const serving: number[] = [];
  for (const pid of pids) {
    try {
      const title = await readFile(`/proc/${pid}/cmdline`, 'utf8');
      if (!title.includes('shutting down')) serving.push(pid);
    } catch {
      // gone
    }
  }
  return serving;
}

export async function startNginxDriver(opts: NginxDriverOptions): Promise<NginxDriver> {
  return new NginxDriver(opts).start();
}
