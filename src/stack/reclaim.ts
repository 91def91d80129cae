/**
 * `bgserve up` after a crash: the previous `up` was killed (kill -9, OOM) and its detached instances, its router
 * (the router process or the managed nginx) or its Prometheus may still run, holding their ports. Before
 * starting anything, the new `up` reads `<state-dir>/stack.json` and, for each recorded process that is
 * verifiably the one recorded:
 *   - an instance started with the very command line this `up` would use, answering /health with its color and
 *     PID and accepting the current admin token, is ADOPTED: it keeps serving (and keeps its loaded model, which
 *     the release reconcile then checks). One that refuses the token (admin-token was changed) is replaced:
 *     adopted, it would fail every release with 401;
 *   - the router is ADOPTED when this `up` would run the same one: the router process with the same command line,
 *     answering its control endpoint with its PID and the router token; or the process a driver manages (the
 *     managed nginx's master) when its command line shows it is that driver's on this state dir, on the same
 *     address (its driver then takes it over: traffic/registry.ts, ManagedProcess). Traffic never stops;
 *   - anything else of ours (Prometheus, a router of the other kind, an instance with other options or not
 *     answering) is stopped gracefully (its stop signal, then SIGKILL) and started fresh.
 * A PID that may have been reused is never signalled. A port held by a process that is not ours is an error
 * naming the port and its holder; bgserve never stops a foreign process.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import type { ManagedProcess } from '../traffic/registry.js';
import { ROUTER_CONTROL_PATH } from '../traffic/router-control.js';
import { commandLine, identify, liveness, portHolders, portIsFree, stopProcessByPid, type Liveness } from './proc.js';
import { ROUTER_PROCESS_ROLE } from './router-process.js';
import { readStackRecord, roleColor, type RecordedProcess, type StackRecord, type StackRole } from './stack-record.js';

/** How long a leftover gets to stop by itself before SIGKILL: instances drain first, the rest stop at once. */
const INSTANCE_GRACE_MS = 15_000;
const OTHER_GRACE_MS = 5_000;

export interface HealthAnswer {
  pid: number;
  color: string;
  state: string;
}

export interface Probe {
  liveness: Liveness;
  /** An instance's GET /health on its recorded port (null: no answer). */
  health?: HealthAnswer | null;
  /** An instance: does it accept the current admin token (null: not asked, or no clear answer)? */
  tokenAccepted?: boolean | null;
  /** The router process: the PID its control endpoint reports with the router token (null: no answer). */
  control?: { pid: number } | null;
  /** A process a driver manages: its command line shows it is that driver's on this state dir (the managed nginx's master). */
  recognised?: boolean;
}

/** What this `up` would run for a color. */
export interface WantedInstance {
  argv: string[];
  host: string;
  port: number;
}

/** The router this `up` would run. */
export type WantedRouter =
  /** The router process: the same command line, answering its control endpoint with its PID. */
  | { role: string; argv: string[]; host: string; port: number }
  /** A process a driver manages, recognised by its command line as `process` (e.g. "the master of this state dir's managed nginx"). */
  | { role: string; host: string; port: number; process: string };

export type Verdict = { action: 'adopt' } | { action: 'stop'; reason: string; verified: boolean } | { action: 'leave'; reason: string };

/** The pure decision for one recorded process. `wanted`: what this `up` would run in its role, if anything. */
export function judge(entry: RecordedProcess, probe: Probe, wanted?: WantedInstance | WantedRouter): Verdict {
  if (probe.liveness === 'gone') return { action: 'leave', reason: 'exited' };
  const color = roleColor(entry.role);
  const answers = color
    ? !!probe.health && probe.health.pid === entry.pid && probe.health.color === color
    : entry.role === ROUTER_PROCESS_ROLE && probe.control?.pid === entry.pid;
  if (probe.liveness === 'unknown' && !answers) {
    return {
      action: 'leave',
      reason: `PID ${entry.pid} cannot be verified as the recorded ${entry.role} (no /proc start time, no matching /health): left alone`,
    };
  }
  const stop = (reason: string): Verdict => ({ action: 'stop', reason, verified: answers });
  if (!wanted || entry.role === 'prometheus') return stop('left running by the previous `up`');
  const argv = 'argv' in wanted ? wanted.argv : undefined;
  if (wanted.host !== entry.host || wanted.port !== entry.port || (argv && JSON.stringify(argv) !== JSON.stringify(entry.argv))) {
    return stop('started with other options than this `up` uses');
  }
  if ('process' in wanted) return probe.recognised ? { action: 'adopt' } : stop(`it is not ${wanted.process}`);
  if (!answers) {
    return stop(
      entry.role === ROUTER_PROCESS_ROLE
        ? `does not answer its control endpoint (port ${entry.controlPort ?? '?'}) as pid ${entry.pid} with the router token`
        : `does not answer /health on ${entry.host}:${entry.port} as ${entry.role} pid ${entry.pid}`,
    );
  }
  if (probe.health?.state === 'draining') return stop('it is draining');
  if (probe.tokenAccepted === false)
    return stop(
      'it refuses the current admin token (admin-token changed since it started): replaced, or every release would fail with 401',
    );
  return { action: 'adopt' };
}

async function health(entry: RecordedProcess): Promise<HealthAnswer | null> {
  try {
    const res = await request(`http://${entry.host}:${entry.port}/health`, { headersTimeout: 2_000, bodyTimeout: 2_000 });
    if (res.statusCode !== 200) {
      await res.body.dump();
      return null;
    }
    const body = (await res.body.json()) as Partial<HealthAnswer>;
    return typeof body.pid === 'number' && typeof body.color === 'string'
      ? { pid: body.pid, color: body.color, state: String(body.state) }
      : null;
  } catch {
    return null;
  }
}

/**
 * Does the instance accept `token`? POST /admin/model with an empty body has no effect: the token is checked
 * before the body, so 401/403 is a refusal and anything else (400: the body is invalid) means accepted.
 */
async function acceptsToken(entry: RecordedProcess, token: string): Promise<boolean | null> {
  try {
    const res = await request(`http://${entry.host}:${entry.port}/admin/model`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}',
      headersTimeout: 2_000,
      bodyTimeout: 2_000,
    });
    await res.body.dump();
    return res.statusCode !== 401 && res.statusCode !== 403;
  } catch {
    return null;
  }
}

/** The PID a router process reports on its control endpoint, with the router token; null when it does not. */
async function routerControl(entry: RecordedProcess, token: string | undefined): Promise<{ pid: number } | null> {
  if (token === undefined || !entry.controlPort) return null;
  try {
    const res = await request(`http://127.0.0.1:${entry.controlPort}${ROUTER_CONTROL_PATH}`, {
      headers: { authorization: `Bearer ${token}` },
      headersTimeout: 2_000,
      bodyTimeout: 2_000,
    });
    if (res.statusCode !== 200) {
      await res.body.dump();
      return null;
    }
    const body = (await res.body.json()) as { pid?: unknown };
    return typeof body.pid === 'number' ? { pid: body.pid } : null;
  } catch {
    return null;
  }
}

/** A process some driver manages (whichever router this `up` runs) and its folder in the state dir. */
export interface ManagedLeftover {
  process: ManagedProcess;
  dir: string;
}

/** Refuses to take over a stack whose `up` still runs. */
export async function assertOwnerGone(record: StackRecord, file: string): Promise<void> {
  if (record.owner.pid === process.pid) return;
  if ((await liveness(record.owner)) === 'same') {
    throw new Error(
      `another bgserve up (pid ${record.owner.pid}) is running on ${path.dirname(file)}: stop it first (Ctrl-C, or kill -TERM ${record.owner.pid}), or use another --state-dir`,
    );
  }
}

export interface ReclaimOptions {
  /** <state-dir>/stack.json */
  file: string;
  /** What this `up` would run for each instance role (`blue`, `blue-2`...: stack-record.ts replicaRole). */
  wanted: Partial<Record<StackRole, WantedInstance>>;
  /**
   * Every process a driver may manage, with its folder: a recorded one is recognised by its command line, and
   * its pid file finds one started just before a crash, recorded or not.
   */
  managed: readonly ManagedLeftover[];
  /** The router this `up` runs: a previous one just like it is adopted, any other stopped (see stopRouter). */
  router?: WantedRouter;
  /** The instances' admin token now: an instance refusing it is replaced, not adopted. */
  adminToken?: string;
  /** The router process's control token. */
  routerToken?: string;
  graceMs?: Partial<Record<StackRole, number>>;
  log?: (message: string) => void;
}

export interface Reclaimed {
  /** The instances to adopt (their records), by role. */
  adopted: Partial<Record<StackRole, RecordedProcess>>;
  /** The previous router, to adopt (router process or a driver's managed process): it keeps serving throughout. */
  router?: RecordedProcess;
  /**
   * Stops a previous router that is not adopted, left to the caller: it keeps serving while the instances are
   * adopted or replaced (same ports), and is stopped just before the new router binds its port.
   */
  stopRouter(): Promise<void>;
}

/** Adopts or stops what a crashed `up` left (a router not adopted is stopped later: Reclaimed.stopRouter). */
export async function reclaimStack(o: ReclaimOptions): Promise<Reclaimed> {
  const log = o.log ?? (() => undefined);
  const record = await readStackRecord(o.file);
  const adopted: Partial<Record<StackRole, RecordedProcess>> = {};
  let router: RecordedProcess | undefined;
  const stops: Promise<void>[] = [];
  const routerStops: (() => Promise<void>)[] = [];
  const grace = (role: StackRole) => o.graceMs?.[role] ?? (roleColor(role) ? INSTANCE_GRACE_MS : OTHER_GRACE_MS);
  const managed = (role: StackRole) => o.managed.find((m) => m.process.role === role);
  const stop = (
    what: string,
    entry: Pick<RecordedProcess, 'pid' | 'startTime' | 'bootId' | 'stopSignal' | 'role'>,
    reason: string,
    verified: boolean,
  ) => {
    const run = async () => {
      const stopped = await stopProcessByPid(entry, entry.stopSignal, grace(entry.role), verified);
      log(stopped ? `stopped ${what} (pid ${entry.pid}): ${reason}` : `${what} (pid ${entry.pid}) had already exited`);
    };
    if (entry.role === ROUTER_PROCESS_ROLE || managed(entry.role)) routerStops.push(run);
    else stops.push(run());
  };

  if (record) {
    await assertOwnerGone(record, o.file);
    for (const entry of Object.values(record.processes)) {
      if (!entry) continue;
      const probe: Probe = { liveness: await liveness(entry) };
      const instance = roleColor(entry.role) !== null;
      if (instance) {
        probe.health = await health(entry);
        if (probe.health && o.adminToken !== undefined) probe.tokenAccepted = await acceptsToken(entry, o.adminToken);
      } else if (entry.role === ROUTER_PROCESS_ROLE) {
        probe.control = await routerControl(entry, o.routerToken);
      } else {
        const m = managed(entry.role);
        if (m) probe.recognised = m.process.recognise(await commandLine(entry.pid), m.dir);
      }
      const wanted = instance ? o.wanted[entry.role] : o.router?.role === entry.role ? o.router : undefined;
      const verdict = judge(entry, probe, wanted);
      if (verdict.action === 'adopt') {
        if (instance) adopted[entry.role] = entry;
        else router = entry;
        log(`adopted ${entry.role} (pid ${entry.pid}, ${entry.host}:${entry.port}) left running by the previous \`up\`: it keeps serving`);
      } else if (verdict.action === 'stop') {
        stop(`the previous ${entry.role}`, entry, verdict.reason, verdict.verified);
      } else if (verdict.reason !== 'exited') {
        log(`${entry.role}: ${verdict.reason}`);
      }
    }
  }

  // A managed process writes its pid file as it starts: a crash before it was recorded is covered.
  for (const { process: p, dir } of o.managed) {
    if (!p.pidFile) continue;
    const pid = Number((await readFile(p.pidFile.path(dir), 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== record?.processes[p.role]?.pid && p.recognise(await commandLine(pid), dir)) {
      stop(p.name, { ...(await identify(pid)), role: p.role, stopSignal: p.stopSignal }, p.pidFile.why(dir), true);
    }
  }
  await Promise.all(stops);
  return { adopted, router, stopRouter: async () => void (await Promise.all(routerStops.splice(0).map((run) => run()))) };
}

export interface PortUse {
  /** e.g. "blue instance" */
  what: string;
  /** The option that changes it, e.g. "--blue-port". */
  flag: string;
  host: string;
  port: number;
}

export class PortInUseError extends Error {
  constructor(
    readonly use: PortUse,
    readonly holders: { pid: number; command: string }[],
  ) {
    const who = holders.length
      ? `pid ${holders[0].pid} (${holders[0].command || 'command unknown'})${holders.length > 1 ? ` and ${holders.length - 1} more` : ''}`
      : `a process this user cannot see (ss -ltnp 'sport = :${use.port}' shows it)`;
    super(
      `port ${use.port} (${use.what}) on ${use.host} is in use by ${who}, which is not part of this bgserve stack; ` +
        `bgserve leaves it alone: stop it or choose another port with ${use.flag}`,
    );
    this.name = 'PortInUseError';
  }
}

/** Fails on the first port something else listens on, naming the port and its holder. */
export async function assertPortsFree(uses: PortUse[]): Promise<void> {
  for (const use of uses) {
    if (!(await portIsFree(use.host, use.port))) throw new PortInUseError(use, await portHolders(use.port));
  }
}
