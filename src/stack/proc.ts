/**
 * What the stack needs to know about processes it did not (or no longer) parent: are they alive, are they the
 * very process recorded (a PID can be reused: the start time in /proc/<pid>/stat and the boot id tell), what
 * listens on a port, and a graceful stop by PID. Linux /proc where there is one; elsewhere the answers are
 * "unknown" (null) and callers do not act on an unverified PID.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import { createServer } from 'node:net';

/** A process as recorded: PID plus what makes the PID unambiguous on this machine. */
export interface ProcessIdentity {
  pid: number;
  /** Start time in clock ticks since boot (/proc/<pid>/stat field 22); null where /proc is missing. */
  startTime: number | null;
  /** /proc/sys/kernel/random/boot_id at record time: start times only compare within one boot. */
  bootId: string | null;
}

interface ProcStat {
  state: string;
  startTime: number;
}

async function readStat(pid: number): Promise<ProcStat | null> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) is in parentheses and may itself hold spaces or parentheses: split after the last ')'.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0], startTime: Number(rest[19]) };
  } catch {
    return null;
  }
}

export async function bootId(): Promise<string | null> {
  try {
    return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  } catch {
    return null;
  }
}

/** The identity of a running process now (startTime null off Linux). */
export async function identify(pid: number): Promise<ProcessIdentity> {
  const stat = await readStat(pid);
  return { pid, startTime: stat?.startTime ?? null, bootId: await bootId() };
}

/** The process's arguments as /proc shows them (nginx retitles its processes); [] when unknown or gone. */
export async function commandArgv(pid: number): Promise<string[]> {
  try {
    const text = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0+$/, '');
    return text === '' ? [] : text.split('\0');
  } catch {
    return [];
  }
}

/** The command line, arguments joined by spaces ('' when unknown or gone). */
export async function commandLine(pid: number): Promise<string> {
  return (await commandArgv(pid)).join(' ');
}

function signalable(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * 'same': that very process is running. 'gone': it exited (a zombie counts as gone) or the PID now names
 * another process. 'unknown': a process has the PID but nothing here can tell whether it is the recorded one.
 */
export type Liveness = 'same' | 'gone' | 'unknown';

export async function liveness(recorded: ProcessIdentity): Promise<Liveness> {
  if (!signalable(recorded.pid)) return 'gone';
  const stat = await readStat(recorded.pid);
  if (!stat) return recorded.startTime === null ? 'unknown' : 'gone';
  if (stat.state === 'Z' || stat.state === 'X') return 'gone';
  if (recorded.startTime === null) return 'unknown';
  const boot = await bootId();
  if (recorded.bootId !== null && boot !== null && recorded.bootId !== boot) return 'gone';
  return stat.startTime === recorded.startTime ? 'same' : 'gone';
}

/**
 * Stops the recorded process: `signal` (its graceful stop), SIGKILL after graceMs; true once it is gone.
 * Signals nothing unless it is verifiably the same process: by /proc, or `verified` when the caller proved it
 * another way (its /health answered with this PID).
 */
export async function stopProcessByPid(
  recorded: ProcessIdentity,
  signal: NodeJS.Signals,
  graceMs: number,
  verified = false,
): Promise<boolean> {
  const now = await liveness(recorded);
  if (now === 'gone' || (now === 'unknown' && !verified)) return false;
  const send = (s: NodeJS.Signals) => {
    try {
      process.kill(recorded.pid, s);
    } catch {
      // exited meanwhile
    }
  };
  send(signal);
  const gone = async (untilMs: number) => {
    while (Date.now() < untilMs) {
      if ((await liveness(recorded)) === 'gone') return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  };
  if (await gone(Date.now() + graceMs)) return true;
  send('SIGKILL');
  return gone(Date.now() + 2_000);
}

/** True when nothing listens on host:port (tried by binding it for a moment). */
export async function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Inodes of the TCP sockets listening on `port` (IPv4 and IPv6), from /proc/net. */
async function listeningInodes(port: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = await readFile(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is ADDR:PORT in hex; state 0A is LISTEN; field 10 is the inode.
      if (f.length > 9 && f[1].endsWith(`:${hexPort}`) && f[3] === '0A') inodes.add(f[9]);
    }
  }
  return inodes;
}

export interface PortHolder {
  pid: number;
  command: string;
}

/**
 * The processes holding a listening socket on `port` (Linux; best effort: processes of other users are not
 * visible to a non-root caller). Every process sharing the socket is listed, e.g. an nginx master and workers.
 */
export async function portHolders(port: number): Promise<PortHolder[]> {
  const inodes = await listeningInodes(port);
  if (inodes.size === 0) return [];
  const wanted = new Set([...inodes].map((i) => `socket:[${i}]`));
  const holders: PortHolder[] = [];
  let pids: string[] = [];
  try {
    pids = (await readdir('/proc')).filter((d) => /^\d+$/.test(d));
  } catch {
    return [];
  }
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = await readdir(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (wanted.has(target)) {
        holders.push({ pid: Number(pid), command: await commandLine(Number(pid)) });
        break;
      }
    }
  }
  return holders;
}
