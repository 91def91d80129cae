/**
 * The registry of traffic drivers, keyed by kind: the one place a router's kind becomes a driver. Each entry
 * says how to start its router for `bgserve controller` (in this process, or driving one run elsewhere) and
 * how `bgserve up` runs it (in a router process of its own, or in `up` with a process it manages), plus the
 * options it takes. The composition root (app/root.ts) and the CLI read entries; they name no driver.
 * Adding a router is one entry here (drivers.ts lists the built-in ones) plus the driver itself.
 */
import type { DriverKind, TrafficDriver, TrafficState, Upstream, Upstreams } from './types.js';

/** The traffic a router starts on (the release log's say), before any request. */
export type InitialTraffic = Partial<Omit<TrafficState, 'generation'>>;

/** An option a driver takes on `bgserve controller` (e.g. nginx's files and commands). */
export interface DriverOption {
  /** Commander flags, e.g. '--nginx-config <file>'; the value is found under the camel-cased name (nginxConfig). */
  flags: string;
  description: string;
  default?: unknown;
  /** Parses the text given (throws a plain Error with what was expected). */
  parse?: (value: string) => unknown;
  /** This kind cannot start without it. */
  required?: boolean;
}

export interface StartContext {
  /** Where its router listens: the `--router-host`/`--router-port` of `controller`, the router process's own. */
  listen: Upstream;
  upstreams: Upstreams;
  /** The preview route's credential (absent: preview requests are refused). */
  previewToken?: string;
  initial?: InitialTraffic;
  /** Values of its DriverOptions, by camel-cased name. */
  options: Readonly<Record<string, unknown>>;
}

/** A process a previous run left serving (verified by the stack) for the driver to take over. */
export interface AdoptedProcess {
  readonly pid: number | null;
  readonly exited: Promise<unknown>;
  kill(signal: NodeJS.Signals): void;
}

export interface LocalContext {
  listen: Upstream;
  upstreams: Upstreams;
  previewToken: string;
  initial?: InitialTraffic;
  /** Its own folder in the state dir. */
  dir: string;
  /** The process it manages, left serving by a crashed `up` and verified as its own: keep it, do not start one. */
  adopt?: AdoptedProcess;
}

/** How a router's own process is found again after a crash of `up` (see stack/reclaim.ts). */
export interface ManagedProcess {
  /** Its role in <state-dir>/stack.json, and the name of its folder in the state dir. */
  role: string;
  /** Its name in the log: "managed nginx". */
  name: string;
  /** What it is, for messages: "the master of this state dir's managed nginx". */
  what: string;
  stopSignal: NodeJS.Signals;
  /** Its command line (/proc) shows it is this placement's process on `dir`. */
  recognise(commandLine: string, dir: string): boolean;
  /** A pid file it writes under `dir` as it starts: finds one a crash left before it was recorded (`why`: the log's reason). */
  pidFile?: { path(dir: string): string; why(dir: string): string };
}

/** How `bgserve up` runs a router. */
export type LocalPlacement =
  /** start() in a `bgserve router` process of its own, which outlives a crash of `up`: the next `up` adopts it. */
  | { run: 'router-process' }
  /**
   * In `up`'s own process. A process the driver starts beside it (TrafficDriver.process) is recorded as
   * `process.role`, and adopted by the next `up` after a crash when it recognises it.
   */
  | { run: 'in-stack'; start(ctx: LocalContext): Promise<TrafficDriver>; process?: ManagedProcess };

export interface TrafficDriverEntry {
  kind: DriverKind;
  /** Its words in `controller --router`'s help, e.g. "in this process". */
  about: string;
  options?: readonly DriverOption[];
  /** Its router for `bgserve controller` (and in the router process of `bgserve up`). */
  start(ctx: StartContext): Promise<TrafficDriver>;
  local: LocalPlacement;
}

/** camelCase name commander gives an option's value: '--nginx-check-url <url>' → nginxCheckUrl. */
export function optionKey(flags: string): string {
  const long = /--([a-z0-9-]+)/.exec(flags)?.[1] ?? flags;
  return long.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

export function optionFlag(flags: string): string {
  return /--[a-z0-9-]+/.exec(flags)?.[0] ?? flags;
}

export class DriverRegistry {
  private readonly entries = new Map<DriverKind, TrafficDriverEntry>();

  constructor(entries: readonly TrafficDriverEntry[] = []) {
    for (const entry of entries) this.register(entry);
  }

  register(entry: TrafficDriverEntry): this {
    if (this.entries.has(entry.kind)) throw new Error(`a traffic driver of kind ${entry.kind} is registered already`);
    this.entries.set(entry.kind, entry);
    return this;
  }

  has(kind: string): boolean {
    return this.entries.has(kind);
  }

  get(kind: string): TrafficDriverEntry {
    const entry = this.entries.get(kind);
    if (!entry) throw new Error(`no traffic driver of kind ${kind}: ${this.choices()}`);
    return entry;
  }

  kinds(): DriverKind[] {
    return [...this.entries.keys()];
  }

  all(): TrafficDriverEntry[] {
    return [...this.entries.values()];
  }

  /** "embedded or nginx", "a, b or c". */
  choices(): string {
    const kinds = this.kinds();
    return kinds.length < 2 ? kinds.join('') : `${kinds.slice(0, -1).join(', ')} or ${kinds[kinds.length - 1]}`;
  }

  /** Every placement's own process: the stack looks for each one's leftovers, whichever router it runs now. */
  managedProcesses(): ManagedProcess[] {
    return this.all().flatMap((e) => (e.local.run === 'in-stack' && e.local.process ? [e.local.process] : []));
  }

  /** The flags of this kind's required options that `values` lacks. */
  missingOptions(kind: string, values: Readonly<Record<string, unknown>>): string[] {
    return (this.get(kind).options ?? [])
      .filter((o) => o.required && values[optionKey(o.flags)] === undefined)
      .map((o) => optionFlag(o.flags));
  }
}

/** host:port, as driver options and the router process take addresses (throws Error('expected host:port')). */
export function parseHostPort(value: string): Upstream {
  const match = /^(.+):(\d{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65_535) throw new Error('expected host:port');
  return { host: match[1], port };
}

/** A pool on a command line: `host:port[,host:port...]`. */
export function parseHostPorts(value: string): Upstream[] {
  return value.split(',').map((one) => parseHostPort(one.trim()));
}

export function formatHostPorts(pool: readonly Upstream[]): string {
  return pool.map((u) => `${u.host}:${u.port}`).join(',');
}
