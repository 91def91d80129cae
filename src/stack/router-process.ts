/**
 * A router in a child process of `bgserve up` (`bgserve router --kind <kind>`: the drivers placed so, like the
 * embedded router), detached like the instances so it outlives a crash of `up`; the next `up` adopts it
 * (reclaim.ts) and traffic never stops. Started on the traffic the release log says; stopped by PID (SIGTERM:
 * it closes its listeners, then SIGKILL past the grace). With `--workers` over 1 the embedded router is a primary
 * and its workers (router-cluster.ts): the primary's PID is the one recorded and stopped; the workers exit with
 * it, even when it is killed with -9 (they watch their IPC channel).
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { RouterReady } from '../traffic/router-control.js';
import { formatHostPorts } from '../traffic/registry.js';
import type { DriverKind, TrafficState, Upstreams } from '../traffic/types.js';
import { adoptedHandle, currentCli, type CliCommand, type ExitInfo, type ProcessHandle } from './instances.js';
import type { ProcessIdentity } from './proc.js';

/** Its role in stack.json. */
export const ROUTER_PROCESS_ROLE = 'router';

export interface RouterSpec {
  /** The driver it runs (traffic/registry.ts). */
  kind: DriverKind;
  host: string;
  port: number;
  upstreams: Upstreams;
  /** Bearer token of its control endpoint. */
  controlTokenFile: string;
  /** Where it writes {pid, port, controlPort} once listening. */
  readyFile: string;
  logFile: string;
  /** The preview route's token file (absent: the router refuses preview requests). */
  previewTokenFile?: string;
  /** Worker processes of the embedded router (`--workers`); absent: the router's default. */
  workers?: number;
  /** More `router` flags (kept in the identity a later `up` compares before adopting). */
  extraArgs?: string[];
}

/** How long a router process may take to listen. */
const READY_TIMEOUT_MS = 15_000;

/**
 * The command line that identifies a router process: a later `up` adopts a running one only when it would
 * start the very same. The traffic it starts on (--initial) is appended at spawn and not part of it.
 */
export function routerArgv(spec: RouterSpec, cli: CliCommand = currentCli()): string[] {
  const hp = (c: 'blue' | 'green') => formatHostPorts(spec.upstreams[c]);
  return [
    ...routerCommand(cli),
    'router',
    '--kind',
    spec.kind,
    '--host',
    spec.host,
    '--port',
    String(spec.port),
    '--blue',
    hp('blue'),
    '--green',
    hp('green'),
    '--control-token-file',
    spec.controlTokenFile,
    '--ready-file',
    spec.readyFile,
    ...(spec.previewTokenFile !== undefined ? ['--preview-token-file', spec.previewTokenFile] : []),
    ...(spec.workers !== undefined ? ['--workers', String(spec.workers)] : []),
    ...(spec.extraArgs ?? []),
  ];
}

/**
 * The CLI entry's sibling router-main.js (or .ts under tsx) when there is one: a process that loads the router
 * alone (about 65 MB resident instead of 85). Otherwise the CLI itself, whose hidden `router` command is the same.
 */
function routerCommand(cli: CliCommand): string[] {
  const entry = cli.args[cli.args.length - 1] ?? '';
  const match = /^(.*[\\/])main\.(js|ts)$/.exec(entry);
  const sibling = match ? `${match[1]}router-main.${match[2]}` : '';
  return match && existsSync(sibling) ? [cli.command, ...cli.args.slice(0, -1), sibling] : [cli.command, ...cli.args];
}

export class RouterProcess {
  private exit: ExitInfo | null = null;

  constructor(
    private readonly handle: ProcessHandle,
    readonly argv: string[],
    /** Its control endpoint's port (loopback). */
    readonly controlPort: number,
    readonly adopted: boolean,
  ) {
    void handle.exited.then((exit) => {
      this.exit = exit;
    });
  }

  get pid(): number | null {
    return this.handle.pid;
  }

  get running(): boolean {
    return this.exit === null;
  }

  /** SIGTERM, SIGKILL after graceMs. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.running) return;
    this.handle.kill('SIGTERM');
    const timer = setTimeout(() => this.handle.kill('SIGKILL'), graceMs);
    await this.handle.exited;
    clearTimeout(timer);
  }

  killNow(): void {
    if (this.running) this.handle.kill('SIGKILL');
  }
}

async function logTail(file: string): Promise<string> {
  return (await readFile(file, 'utf8').catch(() => '(no log)')).trimEnd().split('\n').slice(-20).join('\n');
}

/** Spawns `bgserve router` on `initial` and waits until it listens (its ready file names its own PID). */
export async function startRouterProcess(
  spec: RouterSpec,
  initial: Partial<Omit<TrafficState, 'generation'>>,
  cli: CliCommand = currentCli(),
  onSpawn?: (pid: number, argv: string[]) => Promise<void>,
): Promise<RouterProcess> {
  await mkdir(path.dirname(spec.logFile), { recursive: true });
  await rm(spec.readyFile, { force: true });
  const argv = routerArgv(spec, cli);
  const log = openSync(spec.logFile, 'a');
  let child;
  try {
    // Own process group: Ctrl-C reaches `up` alone, which stops the router in order; a kill -9 of `up` leaves it serving.
    child = spawn(argv[0], [...argv.slice(1), '--initial', JSON.stringify(initial)], { stdio: ['ignore', log, log], detached: true });
    await new Promise<void>((resolve, reject) => {
      child!.once('spawn', resolve);
      child!.once('error', reject);
    });
  } finally {
    closeSync(log);
  }
  const exited = new Promise<ExitInfo>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const handle: ProcessHandle = { pid: child.pid ?? null, exited, kill: (signal) => void child.kill(signal) };
  const proc = new RouterProcess(handle, argv, 0, false);
  await onSpawn?.(child.pid ?? -1, argv);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!proc.running) throw new Error(`the router process exited before it listened:\n${await logTail(spec.logFile)}`);
    const ready = await readFile(spec.readyFile, 'utf8')
      .then((t) => JSON.parse(t) as RouterReady)
      .catch(() => null);
    if (ready && ready.pid === child.pid) return new RouterProcess(handle, argv, ready.controlPort, false);
    await new Promise((r) => setTimeout(r, 25));
  }
  await proc.stop();
  throw new Error(`the router process did not listen within ${READY_TIMEOUT_MS} ms:\n${await logTail(spec.logFile)}`);
}

/** Supervises a router process a crashed `up` left running (reclaim.ts verified it answers with its PID). */
export function adoptRouterProcess(recorded: ProcessIdentity & { argv: string[]; controlPort: number }): RouterProcess {
  return new RouterProcess(adoptedHandle(recorded), recorded.argv, recorded.controlPort, true);
}
