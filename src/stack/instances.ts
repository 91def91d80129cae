/**
 * Blue and green instances as child processes of `bgserve up`: one or more replicas per color (`up --replicas
 * N`: consecutive ports from the color's port), started by re-running this same CLI with `serve`, waited for
 * until /ready, stopped by PID (SIGTERM, the instance drains, then SIGKILL past the grace). Restart policy: a
 * color of one instance, none (an exit nobody asked for is reported, and the router routes around it); a
 * replica of a color of several is started again (same command line; the controller then puts it back on its
 * color's current bundle), at most RESTARTS_PER_MINUTE times a minute.
 * An instance left running by a crashed `up` can be adopted instead: same supervision, its exit seen by
 * polling its PID (it is no longer anybody's child here).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { COLORS, type Color } from '../config/defaults.js';
import type { InstanceProcessInfo, StackView } from '../control/context.js';
import { liveness, type ProcessIdentity } from './proc.js';
import { replicaRole, type StackRole } from './stack-record.js';

/** A replica that keeps dying is left down past this many restarts in a minute. */
export const RESTARTS_PER_MINUTE = 5;
/** Pause before a replica is started again: a crash loop must not spin. */
export const RESTART_DELAY_MS = 200;

/** How often an adopted instance's PID is checked for its exit. */
export const ADOPTED_POLL_MS = 250;

/** How to run the bgserve CLI: by default the very command this process runs (works from dist and via tsx). */
export interface CliCommand {
  command: string;
  args: string[];
}

export function currentCli(): CliCommand {
  return { command: process.execPath, args: [...process.execArgv, process.argv[1]] };
}

export interface InstanceSpec {
  color: Color;
  /** Its place in the color's pool, from 0 (absent: 0). */
  replica?: number;
  host: string;
  port: number;
  bundle: string;
  adminTokenFile?: string;
  /** Folders the instance may load bundles from through its admin API (`serve --bundle-root`). */
  bundleRoots?: readonly string[];
  /** stdout and stderr go here (appended); the tail is shown when the instance fails to start. */
  logFile: string;
  /** More `serve` flags, e.g. ['--drain-delay-ms', '500']. */
  extraArgs?: string[];
}

/**
 * The bundle roots of a local stack's instances: the models folder under the working directory, the state
 * dir, and any the user adds (`up --bundle-root`), absolute and without repeats.
 */
export function stackBundleRoots(stateDir: string, more: readonly string[] = [], cwd = process.cwd()): string[] {
  return [...new Set([path.resolve(cwd, 'models'), path.resolve(cwd, stateDir), ...more.map((r) => path.resolve(cwd, r))])];
}

interface SpecInput {
  host: string;
  ports: Record<Color, number>;
  bundle: string;
  logDir: string;
  adminTokenFile?: string;
  bundleRoots?: readonly string[];
  extraArgs?: string[];
}

/** Both colors' specs for one host: logs in `logDir/<color>.log`. */
export function instanceSpecs(o: SpecInput): Record<Color, InstanceSpec> {
  const pools = poolSpecs({ ...o, replicas: 1 });
  return { blue: pools.blue[0], green: pools.green[0] };
}

/**
 * Each color's replicas on consecutive ports from its own (blue 8001, 8002, 8003 for three): logs in
 * `logDir/<role>.log` (blue.log, blue-2.log...). Overlapping ranges are refused, naming the flags.
 */
export function poolSpecs(o: SpecInput & { replicas: number }): Record<Color, InstanceSpec[]> {
  if (!Number.isInteger(o.replicas) || o.replicas < 1) throw new Error(`replicas must be a whole number >= 1, not ${o.replicas}`);
  const [low, high] = o.ports.blue <= o.ports.green ? (['blue', 'green'] as const) : (['green', 'blue'] as const);
  if (o.ports[low] + o.replicas > o.ports[high]) {
    throw new Error(
      `--replicas ${o.replicas} puts ${low} on ports ${o.ports[low]}-${o.ports[low] + o.replicas - 1}, which overlaps ${high} from ${o.ports[high]}: ` +
        `choose --${high}-port ${o.ports[low] + o.replicas} or more`,
    );
  }
  const spec = (color: Color, replica: number): InstanceSpec => ({
    color,
    replica,
    host: o.host,
    port: o.ports[color] + replica,
    bundle: o.bundle,
    adminTokenFile: o.adminTokenFile,
    bundleRoots: o.bundleRoots,
    logFile: path.join(o.logDir, `${replicaRole(color, replica)}.log`),
    extraArgs: o.extraArgs,
  });
  const pool = (color: Color) => Array.from({ length: o.replicas }, (_, i) => spec(color, i));
  return { blue: pool('blue'), green: pool('green') };
}

/** A spec's stack.json role: `blue`, `blue-2`... */
export function specRole(spec: InstanceSpec): StackRole {
  return replicaRole(spec.color, spec.replica ?? 0);
}

/** Both null for an adopted process: only a parent learns how a process ended. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** What supervision needs of a process: its PID, its end, a way to signal it. */
export interface ProcessHandle {
  readonly pid: number | null;
  readonly exited: Promise<ExitInfo>;
  kill(signal: NodeJS.Signals): void;
}

function childHandle(child: ChildProcess): ProcessHandle {
  const exited = new Promise<ExitInfo>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { pid: child.pid ?? null, exited, kill: (signal) => void child.kill(signal) };
}

/** A process this one did not start: its end is seen by polling /proc (PID and start time). */
export function adoptedHandle(recorded: ProcessIdentity, pollMs = ADOPTED_POLL_MS): ProcessHandle {
  let gone = false;
  const exited = new Promise<ExitInfo>((resolve) => {
    const poll = async () => {
      if ((await liveness(recorded)) === 'gone') {
        gone = true;
        resolve({ code: null, signal: null });
      } else setTimeout(poll, pollMs).unref();
    };
    void poll();
  });
  return {
    pid: recorded.pid,
    exited,
    kill: (signal) => {
      if (gone) return; // its PID may name another process by now
      try {
        process.kill(recorded.pid, signal);
      } catch {
        // exited meanwhile
      }
    },
  };
}

export class InstanceProcess {
  readonly exited: Promise<ExitInfo>;
  private exit: ExitInfo | null = null;
  private stopping = false;
  private readonly watchers: Array<(color: Color, exit: ExitInfo) => void> = [];

  constructor(
    readonly spec: InstanceSpec,
    private readonly handle: ProcessHandle,
    /** The command line it runs (compared when a later `up` considers adopting it). */
    readonly argv: string[],
    onUnexpectedExit?: (color: Color, exit: ExitInfo) => void,
    /** Left running by a previous `up` and supervised by this one. */
    readonly adopted = false,
  ) {
    this.exited = handle.exited.then((exit) => {
      this.exit = exit;
      if (!this.stopping) {
        onUnexpectedExit?.(spec.color, exit);
        for (const w of this.watchers) w(spec.color, exit);
      }
      return exit;
    });
  }

  /** Also told of an exit nobody asked for. */
  watch(onUnexpectedExit: (color: Color, exit: ExitInfo) => void): void {
    this.watchers.push(onUnexpectedExit);
  }

  get color(): Color {
    return this.spec.color;
  }

  get url(): string {
    return `http://${this.spec.host}:${this.spec.port}`;
  }

  get pid(): number | null {
    return this.handle.pid;
  }

  get running(): boolean {
    return this.exit === null;
  }

  info(): InstanceProcessInfo {
    return { pid: this.pid, running: this.running, exitCode: this.exit?.code ?? null, signal: this.exit?.signal ?? null };
  }

  /** Polls GET /ready until 200; fails with the log tail if the process exits or time runs out. */
  async waitReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer yet';
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`${this.color} exited (${describeExit(this.exit)}) before it was ready:\n${await this.logTail()}`);
      try {
        const res = await request(`${this.url}/ready`, { headersTimeout: 1_000, bodyTimeout: 1_000 });
        await res.body.dump();
        if (res.statusCode === 200) return;
        last = `GET /ready answered ${res.statusCode}`;
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${this.color} was not ready within ${timeoutMs} ms (${last}):\n${await this.logTail()}`);
  }

  /** SIGTERM (the instance drains), SIGKILL after graceMs. */
  async stop(graceMs = 15_000): Promise<ExitInfo> {
    this.stopping = true;
    if (!this.running) return this.exit as ExitInfo;
    this.handle.kill('SIGTERM');
    const timer = setTimeout(() => this.handle.kill('SIGKILL'), graceMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }

  /** A signal, no questions asked (tests kill an instance; killNow). */
  kill(signal: NodeJS.Signals): void {
    if (this.running) this.handle.kill(signal);
  }

  async logTail(lines = 20): Promise<string> {
    try {
      return (await readFile(this.spec.logFile, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

export function describeExit(exit: ExitInfo | null): string {
  if (!exit) return 'running';
  if (exit.signal) return `signal ${exit.signal}`;
  return exit.code === null ? 'exit status unknown: adopted, not a child of this process' : `code ${exit.code}`;
}

/** The command line that runs `serve` for a spec. */
export function serveArgv(spec: InstanceSpec, cli: CliCommand = currentCli()): string[] {
  return [
    cli.command,
    ...cli.args,
    'serve',
    '--bundle',
    spec.bundle,
    '--port',
    String(spec.port),
    '--host',
    spec.host,
    '--color',
    spec.color,
    ...(spec.adminTokenFile ? ['--admin-token-file', spec.adminTokenFile] : []),
    ...(spec.bundleRoots ?? []).flatMap((root) => ['--bundle-root', root]),
    ...(spec.extraArgs ?? []),
  ];
}

export async function startInstance(
  spec: InstanceSpec,
  cli: CliCommand = currentCli(),
  onUnexpectedExit?: (color: Color, exit: ExitInfo) => void,
): Promise<InstanceProcess> {
  await mkdir(path.dirname(spec.logFile), { recursive: true });
  const argv = serveArgv(spec, cli);
  const log = openSync(spec.logFile, 'a');
  try {
    // Own process group: Ctrl-C reaches `up` alone, which then stops the instances in order.
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', log, log], detached: true });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    return new InstanceProcess(spec, childHandle(child), argv, onUnexpectedExit);
  } finally {
    closeSync(log);
  }
}

/** Supervises an instance a crashed `up` left running (the caller verified it: see reclaim.ts). */
export function adoptInstance(
  spec: InstanceSpec,
  recorded: ProcessIdentity & { argv: string[] },
  onUnexpectedExit?: (color: Color, exit: ExitInfo) => void,
): InstanceProcess {
  return new InstanceProcess(spec, adoptedHandle(recorded), recorded.argv, onUnexpectedExit, true);
}

/** What a pool does when a replica of a color of several exits by itself. */
export interface RestartPolicy {
  /** Right after the new process is spawned (record it before it is ready). */
  onSpawn?: (instance: InstanceProcess) => Promise<void>;
  /** Once it answers /ready (the controller puts it back on its color's bundle). */
  onReady?: (instance: InstanceProcess) => void;
  /** A restart that could not be made, or a replica given up on. */
  onGiveUp?: (instance: InstanceProcess, why: string) => void;
}

/** Both colors' pools of replicas, started together and stopped together. */
export class InstancePair implements StackView {
  private stopping = false;
  private readonly restarts = new Map<string, number[]>();

  constructor(readonly pools: Record<Color, InstanceProcess[]>) {}

  /** Each color's first replica (the color's instance when it has one). */
  get instances(): Record<Color, InstanceProcess> {
    return { blue: this.pools.blue[0], green: this.pools.green[0] };
  }

  /** Every replica, blue's first. */
  all(): InstanceProcess[] {
    return COLORS.flatMap((c) => this.pools[c]);
  }

  /**
   * Starts the replicas not given in `adopted` (by role: `blue`, `blue-2`...), then waits until all are ready.
   * `onSpawn` runs right after each spawn (before readiness), so a crash while they start leaves them on record.
   * On failure all are stopped. With `restart`, a replica of a color of several that exits is started again.
   */
  static async start(
    specs: Record<Color, InstanceSpec | InstanceSpec[]>,
    opts: {
      cli?: CliCommand;
      readyTimeoutMs?: number;
      onUnexpectedExit?: (color: Color, exit: ExitInfo) => void;
      adopted?: Partial<Record<StackRole, InstanceProcess>>;
      onSpawn?: (instance: InstanceProcess) => Promise<void>;
      restart?: RestartPolicy;
    } = {},
  ): Promise<InstancePair> {
    const pools = Object.fromEntries(COLORS.map((c) => [c, ([] as InstanceSpec[]).concat(specs[c])])) as Record<Color, InstanceSpec[]>;
    let pair: InstancePair | undefined;
    const restartHook = (spec: InstanceSpec) => (color: Color) => {
      if (pair && opts.restart && pools[color].length > 1) pair.restartLater(spec, opts.cli, opts.restart, exitHook(spec));
    };
    const exitHook = (spec: InstanceSpec) => (color: Color, exit: ExitInfo) => {
      opts.onUnexpectedExit?.(color, exit);
      restartHook(spec)(color);
    };
    const begin = async (spec: InstanceSpec) => {
      const adopted = opts.adopted?.[specRole(spec)];
      if (adopted) {
        // Its exit is reported by the hook it was adopted with; the pool only adds the restart.
        adopted.watch(restartHook(spec));
        return adopted;
      }
      const instance = await startInstance(spec, opts.cli, exitHook(spec));
      try {
        await opts.onSpawn?.(instance);
      } catch (err) {
        await instance.stop();
        throw err;
      }
      return instance;
    };
    const order = COLORS.flatMap((c) => pools[c]);
    const started = await Promise.allSettled(order.map(begin));
    const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failure = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failure) {
      await Promise.all(ok.map((p) => p.stop()));
      throw failure.reason;
    }
    pair = new InstancePair({ blue: ok.slice(0, pools.blue.length), green: ok.slice(pools.blue.length) });
    try {
      await Promise.all(ok.map((p) => p.waitReady(opts.readyTimeoutMs)));
    } catch (err) {
      await pair.stop();
      throw err;
    }
    return pair;
  }

  /** Starts an exited replica again in its place, unless the pool stops or it restarted too often. */
  private restartLater(
    spec: InstanceSpec,
    cli: CliCommand | undefined,
    policy: RestartPolicy,
    onExit: (color: Color, exit: ExitInfo) => void,
  ): void {
    const role = specRole(spec);
    const index = spec.replica ?? 0;
    const now = Date.now();
    const recent = (this.restarts.get(role) ?? []).filter((t) => now - t < 60_000);
    const dead = this.pools[spec.color][index];
    if (recent.length >= RESTARTS_PER_MINUTE) {
      policy.onGiveUp?.(dead, `${role} exited ${recent.length + 1} times within a minute: left down`);
      return;
    }
    this.restarts.set(role, [...recent, now]);
    setTimeout(async () => {
      if (this.stopping) return;
      try {
        const instance = await startInstance(spec, cli, onExit);
        this.pools[spec.color][index] = instance;
        if (this.stopping) {
          await instance.stop();
          return;
        }
        await policy.onSpawn?.(instance);
        await instance.waitReady();
        policy.onReady?.(instance);
      } catch (err) {
        policy.onGiveUp?.(dead, `${role} could not be restarted: ${(err as Error).message}`);
      }
    }, RESTART_DELAY_MS).unref();
  }

  processes(): Record<Color, InstanceProcessInfo> {
    return { blue: this.instances.blue.info(), green: this.instances.green.info() };
  }

  /** Each replica's process, by color, in pool order. */
  replicaProcesses(): Record<Color, Array<InstanceProcessInfo & { address: string }>> {
    const of = (c: Color) => this.pools[c].map((i) => ({ ...i.info(), address: `${i.spec.host}:${i.spec.port}` }));
    return { blue: of('blue'), green: of('green') };
  }

  async stop(graceMs?: number): Promise<void> {
    this.stopping = true;
    await Promise.all(this.all().map((i) => i.stop(graceMs)));
  }

  /** Last resort on process exit: synchronous SIGKILL to any instance still running. */
  killNow(): void {
    this.stopping = true;
    for (const i of this.all()) i.kill('SIGKILL');
  }
}
