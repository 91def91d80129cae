/**
 * `<state-dir>/stack.json`: what a running `bgserve up` started (PIDs with their start times, ports, colors,
 * command lines), so that the next `up` after a crash (kill -9) can find its leftovers and adopt or stop them
 * instead of failing on busy ports. Written after every start (temp file + rename: never half-written),
 * removed on a clean stop.
 */
import { readFileSync, rmSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { COLORS, isColor, type Color } from '../config/defaults.js';
import { commandArgv, identify, type ProcessIdentity } from './proc.js';

export const STACK_RECORD_FILE = 'stack.json';

/**
 * A color's instance (its first replica: `blue`; the others `blue-2`, `blue-3`...), `prometheus`, `router` (the router process, router-process.ts), or the role a driver records the
 * process it manages under (its ManagedProcess.role in traffic/registry.ts, e.g. the managed nginx's master).
 */
export type StackRole = Color | 'prometheus' | (string & {});

/** The stack.json role of a color's replica (0-based): `blue` for the first, as before replicas, then `blue-2`... */
export function replicaRole(color: Color, index: number): StackRole {
  return index === 0 ? color : `${color}-${index + 1}`;
}

/** The color of an instance's role (`green`, `green-3`), or null for any other role. */
export function roleColor(role: StackRole): Color | null {
  if (isColor(role)) return role;
  const match = /^(.+)-(\d+)$/.exec(role);
  return match && isColor(match[1]) && Number(match[2]) >= 2 ? match[1] : null;
}

/** Every instance role, as a function of the pool sizes. */
export function instanceRoles(replicas: Record<Color, number>): StackRole[] {
  return COLORS.flatMap((c) => Array.from({ length: replicas[c] }, (_, i) => replicaRole(c, i)));
}

export interface RecordedProcess extends ProcessIdentity {
  role: StackRole;
  host: string;
  port: number;
  /** The command it was started with (an instance is adopted only if the new one would be the same). */
  argv: string[];
  /** Its graceful stop (a managed nginx: SIGQUIT). */
  stopSignal: NodeJS.Signals;
  startedAt: string;
  /** The router process's loopback control endpoint (role `router` only). */
  controlPort?: number;
}

export interface StackRecord {
  version: 1;
  /** The `up` process that wrote it: while it runs, nobody else may take over its stack. */
  owner: ProcessIdentity & { argv: string[] };
  processes: Partial<Record<StackRole, RecordedProcess>>;
}

export function stackRecordPath(stateDir: string): string {
  return path.join(path.resolve(stateDir), STACK_RECORD_FILE);
}

/** The record left in the state dir, or null; an unreadable one is reported, not trusted. */
export async function readStackRecord(file: string): Promise<StackRecord | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let record: StackRecord | undefined;
  try {
    record = JSON.parse(text) as StackRecord;
  } catch {
    // falls through to the error below
  }
  if (record?.version !== 1 || typeof record.owner?.pid !== 'number' || typeof record.processes !== 'object' || record.processes === null) {
    throw new Error(`${file} is not a bgserve stack record (version 1): stop the processes it names, if any still run, and remove it`);
  }
  return record;
}

/** Keeps `stack.json` in step with what this `up` runs. Writes are serialized; each replaces the file whole. */
export class StackRecorder {
  private writes: Promise<void> = Promise.resolve();
  private removed = false;

  private constructor(
    readonly file: string,
    private readonly record: StackRecord,
  ) {}

  /** Takes the record over for this process (the previous owner's processes are adopted or stopped by now). */
  static async open(file: string, processes: RecordedProcess[] = []): Promise<StackRecorder> {
    await mkdir(path.dirname(file), { recursive: true });
    const owner = { ...(await identify(process.pid)), argv: process.argv };
    const recorder = new StackRecorder(file, { version: 1, owner, processes: Object.fromEntries(processes.map((p) => [p.role, p])) });
    await recorder.flush();
    return recorder;
  }

  get processes(): Partial<Record<StackRole, RecordedProcess>> {
    return structuredClone(this.record.processes);
  }

  /**
   * Records a process just started (call right after spawn: a crash while it starts must not orphan it).
   * Without `argv`, its command line is read from /proc.
   */
  async add(entry: Omit<RecordedProcess, keyof ProcessIdentity | 'startedAt' | 'argv'> & { pid: number; argv?: string[] }): Promise<void> {
    const argv = entry.argv ?? (await commandArgv(entry.pid));
    this.record.processes[entry.role] = { ...entry, argv, ...(await identify(entry.pid)), startedAt: new Date().toISOString() };
    await this.flush();
  }

  /** Clean stop: everything recorded has been stopped. */
  async remove(): Promise<void> {
    this.removed = true;
    await this.writes;
    await rm(this.file, { force: true });
  }

  /** Synchronous variant for the process 'exit' handler, after killing what was recorded. */
  removeSync(): void {
    this.removed = true;
    rmSync(this.file, { force: true });
  }

  private flush(): Promise<void> {
    const text = `${JSON.stringify(this.record, null, 2)}\n`;
    const write = async () => {
      if (this.removed) return;
      const tmp = `${this.file}.${process.pid}.tmp`;
      await writeFile(tmp, text);
      await rename(tmp, this.file);
    };
    this.writes = this.writes.then(write, write);
    return this.writes;
  }
}

/** For tests and tools: the record as a plain object, synchronously. */
export function readStackRecordSync(file: string): StackRecord | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as StackRecord;
  } catch {
    return null;
  }
}
