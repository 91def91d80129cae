/**
 * `bgserve up` after a crash: the previous `up` was killed (kill -9, OOM) and its detached instances, its managed
 * nginx or its Prometheus may still run, holding their ports. Before starting anything, the new `up` reads
 * `<state-dir>/stack.json` and, for each recorded process that is verifiably the one recorded:
 *   - an instance started with the very command line this `up` would use, answering /health with its color and
 *     PID, is ADOPTED: it keeps serving (and keeps its loaded model, which the release reconcile then checks);
 *   - anything else of ours (nginx, Prometheus, an instance with other options or not answering) is stopped
 *     gracefully (its stop signal, then SIGKILL) and started fresh.
 * A PID that may have been reused is never signalled. A port held by a process that is not ours is an error
 * naming the port and its holder; bgserve never stops a foreign process.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { isColor, type Color } from '../config/defaults.js';
import { commandLine, identify, liveness, portHolders, portIsFree, stopProcessByPid, type Liveness } from './proc.js';
import { readStackRecord, type RecordedProcess, type StackRecord, type StackRole } from './stack-record.js';

/** How long each kind of leftover gets to stop by itself before SIGKILL (instances drain first). */
export const RECLAIM_GRACE_MS: Record<StackRole, number> = { blue: 15_000, green: 15_000, nginx: 5_000, prometheus: 5_000 };

export interface HealthAnswer {
  pid: number;
  color: string;
  state: string;
}

export interface Probe {
  liveness: Liveness;
  /** An instance's GET /health on its recorded port (null: no answer). */
  health?: HealthAnswer | null;
}

/** What this `up` would run for a color. */
export interface WantedInstance {
  argv: string[];
  host: string;
  port: number;
}

export type Verdict = { action: 'adopt' } | { action: 'stop'; reason: string; verified: boolean } | { action: 'leave'; reason: string };

/** The pure decision for one recorded process. */
export function judge(entry: RecordedProcess, probe: Probe, wanted?: WantedInstance): Verdict {
  if (probe.liveness === 'gone') return { action: 'leave', reason: 'exited' };
  const answers = !!probe.health && probe.health.pid === entry.pid && probe.health.color === entry.role;
  if (probe.liveness === 'unknown' && !answers) {
    return { action: 'leave', reason: `PID ${entry.pid} cannot be verified as the recorded ${entry.role} (no /proc start time, no matching /health): left alone` };
  }
  const stop = (reason: string): Verdict => ({ action: 'stop', reason, verified: answers });
  if (!isColor(entry.role)) return stop('left running by the previous `up`');
  if (!wanted || wanted.host !== entry.host || wanted.port !== entry.port || JSON.stringify(wanted.argv) !== JSON.stringify(entry.argv)) {
    return stop('started with other options than this `up` uses');
  }
  if (!answers) return stop(`does not answer /health on ${entry.host}:${entry.port} as ${entry.role} pid ${entry.pid}`);
  if (probe.health?.state === 'draining') return stop('it is draining');
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
    return typeof body.pid === 'number' && typeof body.color === 'string' ? { pid: body.pid, color: body.color, state: String(body.state) } : null;
  } catch {
    return null;
  }
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
  wanted: Record<Color, WantedInstance>;
  /** The managed nginx's prefix: its pid file finds an nginx started just before a crash, recorded or not. */
  nginxPrefix: string;
  graceMs?: Partial<Record<StackRole, number>>;
  log?: (message: string) => void;
}

export interface Reclaimed {
  /** The instances to adopt (their records). */
  adopted: Partial<Record<Color, RecordedProcess>>;
  /**
   * Stops the previous router (the managed nginx), left to the caller: it keeps serving while the instances are
   * adopted or replaced (same ports), and is stopped just before the new router binds its port.
   */
  stopRouter(): Promise<void>;
}

/** Adopts or stops what a crashed `up` left (all but the router, see Reclaimed.stopRouter). */
export async function reclaimStack(o: ReclaimOptions): Promise<Reclaimed> {
  const log = o.log ?? (() => undefined);
  const record = await readStackRecord(o.file);
  const adopted: Partial<Record<Color, RecordedProcess>> = {};
  const stops: Promise<void>[] = [];
  const routerStops: (() => Promise<void>)[] = [];
  const grace = (role: StackRole) => o.graceMs?.[role] ?? RECLAIM_GRACE_MS[role];
  const stop = (what: string, entry: Pick<RecordedProcess, 'pid' | 'startTime' | 'bootId' | 'stopSignal' | 'role'>, reason: string, verified: boolean) => {
    const run = async () => {
      const stopped = await stopProcessByPid(entry, entry.stopSignal, grace(entry.role), verified);
      log(stopped ? `stopped ${what} (pid ${entry.pid}): ${reason}` : `${what} (pid ${entry.pid}) had already exited`);
    };
    if (entry.role === 'nginx') routerStops.push(run);
    else stops.push(run());
  };

  if (record) {
    await assertOwnerGone(record, o.file);
    for (const entry of Object.values(record.processes)) {
      if (!entry) continue;
      const probe: Probe = { liveness: await liveness(entry), ...(isColor(entry.role) ? { health: await health(entry) } : {}) };
      const verdict = judge(entry, probe, isColor(entry.role) ? o.wanted[entry.role] : undefined);
      if (verdict.action === 'adopt') {
        if (isColor(entry.role)) adopted[entry.role] = entry;
        log(`adopted ${entry.role} (pid ${entry.pid}, ${entry.host}:${entry.port}) left running by the previous \`up\`: it keeps serving`);
      } else if (verdict.action === 'stop') {
        stop(`the previous ${entry.role}`, entry, verdict.reason, verdict.verified);
      } else if (verdict.reason !== 'exited') {
        log(`${entry.role}: ${verdict.reason}`);
      }
    }
  }

  // The managed nginx writes its pid file under the prefix as it starts: a crash before it was recorded is covered.
  const pidText = await readFile(path.join(o.nginxPrefix, 'nginx.pid'), 'utf8').catch(() => '');
  const nginxPid = Number(pidText.trim());
  if (Number.isInteger(nginxPid) && nginxPid > 0 && nginxPid !== record?.processes.nginx?.pid) {
    const command = await commandLine(nginxPid);
    if (command.startsWith('nginx: master process') && command.includes(`-p ${path.resolve(o.nginxPrefix)} `)) {
      stop('managed nginx', { ...(await identify(nginxPid)), role: 'nginx', stopSignal: 'SIGQUIT' }, `its prefix is ${o.nginxPrefix}`, true);
    }
  }
  await Promise.all(stops);
  return { adopted, stopRouter: async () => void (await Promise.all(routerStops.splice(0).map((run) => run()))) };
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
