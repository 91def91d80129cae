/**
 * Blue and green instances as child processes of `bgserve up`: started by re-running this same CLI with
 * `serve`, waited for until /ready, stopped by PID (SIGTERM, the instance drains, then SIGKILL past the
 * grace). Restart policy: none. An exit nobody asked for is reported, and the router routes around it.
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

/** Both colors' specs for one host: logs in `logDir/<color>.log`. */
export function instanceSpecs(o: {
  host: string;
  ports: Record<Color, number>;
  bundle: string;
  logDir: string;
  adminTokenFile?: string;
  bundleRoots?: readonly string[];
  extraArgs?: string[];
}): Record<Color, InstanceSpec> {
  const spec = (color: Color): InstanceSpec => ({
    color,
    host: o.host,
    port: o.ports[color],
    bundle: o.bundle,
    adminTokenFile: o.adminTokenFile,
    bundleRoots: o.bundleRoots,
    logFile: path.join(o.logDir, `${color}.log`),
    extraArgs: o.extraArgs,
  });
  return { blue: spec('blue'), green: spec('green') };
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
      if (!this.stopping) onUnexpectedExit?.(spec.color, exit);
      return exit;
    });
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

/** Both colors, started together and stopped together. */
export class InstancePair implements StackView {
  constructor(readonly instances: Record<Color, InstanceProcess>) {}

  /**
   * Starts the colors not given in `adopted`, then waits until both are ready. `onSpawn` runs right after each
   * spawn (before readiness), so a crash while they start leaves them on record. On failure both are stopped.
   */
  static async start(
    specs: Record<Color, InstanceSpec>,
    opts: {
      cli?: CliCommand;
      readyTimeoutMs?: number;
      onUnexpectedExit?: (color: Color, exit: ExitInfo) => void;
      adopted?: Partial<Record<Color, InstanceProcess>>;
      onSpawn?: (instance: InstanceProcess) => Promise<void>;
    } = {},
  ): Promise<InstancePair> {
    const begin = async (c: Color) => {
      const adopted = opts.adopted?.[c];
      if (adopted) return adopted;
      const instance = await startInstance(specs[c], opts.cli, opts.onUnexpectedExit);
      try {
        await opts.onSpawn?.(instance);
      } catch (err) {
        await instance.stop();
        throw err;
      }
      return instance;
    };
    const started = await Promise.allSettled(COLORS.map(begin));
    const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failure = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failure) {
      await Promise.all(ok.map((p) => p.stop()));
      throw failure.reason;
    }
    const pair = new InstancePair({ blue: ok[0], green: ok[1] });
    try {
      await Promise.all(ok.map((p) => p.waitReady(opts.readyTimeoutMs)));
    } catch (err) {
      await pair.stop();
      throw err;
    }
    return pair;
  }

  processes(): Record<Color, InstanceProcessInfo> {
    return { blue: this.instances.blue.info(), green: this.instances.green.info() };
  }

  async stop(graceMs?: number): Promise<void> {
    await Promise.all(COLORS.map((c) => this.instances[c].stop(graceMs)));
  }

  /** Last resort on process exit: synchronous SIGKILL to any instance still running. */
  killNow(): void {
    for (const c of COLORS) this.instances[c].kill('SIGKILL');
  }
}
