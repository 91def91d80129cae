/**
 * A private Docker engine for the Docker suite (test/packaging/docker.test.ts): Debian's dockerd started by
 * the suite itself (no systemd here), on its own socket, data root, exec root and pidfile, and stopped by PID.
 *
 * Two ways to run it on the same data root, one at a time:
 *  - `host`: on the machine's network but with no bridge and no iptables rules (it changes nothing on the
 *    host); builds use `--network host` to reach Debian's mirror and the npm registry.
 *  - `netns`: in a network namespace of its own (`unshare --net`), so the stack's published ports (:80,
 *    :8090, ...) are private to the test; it has no way out, which the stack does not need. The test reaches
 *    a published port through a forwarder started inside the namespace (unix sockets cross namespaces).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export const ENGINE_PATHS = {
  dataRoot: process.env.BGSERVE_DOCKER_DATA_ROOT ?? '/var/lib/bgserve-test-docker',
  execRoot: '/run/bgserve-test-docker',
  pidfile: '/run/bgserve-test-docker.pid',
  socket: '/run/bgserve-test-docker.sock',
};

/** Debian's CLI (20.10, BuildKit built in) before any other `docker` on PATH (a newer CLI without buildx). */
export const DOCKER_BIN_DIR = existsSync('/usr/bin/docker') ? '/usr/bin' : '';

function onPath(name: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(path.join(dir, name)));
}

/** Why the suite cannot run here, or null. In CI every reason is a failure, not a skip. */
export function engineUnavailable(): string | null {
  if (!onPath('dockerd') && !existsSync('/usr/sbin/dockerd')) return 'no dockerd binary (apt-get install docker.io)';
  if (!onPath('docker')) return 'no docker CLI';
  if (process.getuid?.() !== 0) return 'dockerd needs root';
  return null;
}

/** The environment every docker, docker-compose and script call gets: our daemon, Debian's CLI first. */
export function dockerEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const PATH = [DOCKER_BIN_DIR, process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'].filter(Boolean).join(':');
  const env: NodeJS.ProcessEnv = { ...process.env, PATH, DOCKER_HOST: `unix://${ENGINE_PATHS.socket}`, ...extra };
  delete env.DOCKER_CONTEXT;
  return env;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; never throws on a non-zero exit (the caller asserts on `code`). */
export function runCommand(
  command: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      command,
      args,
      { cwd: opts.cwd, env: opts.env ?? dockerEnv(), timeout: opts.timeoutMs ?? 300_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** `docker ARGS` against the suite's engine; throws with the output on failure. */
export async function docker(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {},
): Promise<string> {
  const r = await runCommand('docker', args, { ...opts, env: opts.env ?? dockerEnv() });
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}:\n${r.stdout}${r.stderr}`);
  return r.stdout.trim();
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!processAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !processAlive(pid);
}

/**
 * A daemon (and its containerd) left by an earlier run that died before its clean-up: identified by its own
 * pidfile AND a command line naming this suite's paths, then stopped by that PID.
 */
async function stopLeftover(): Promise<void> {
  const candidates = [ENGINE_PATHS.pidfile, path.join(ENGINE_PATHS.execRoot, 'containerd', 'containerd.pid')];
  for (const file of candidates) {
    if (!existsSync(file)) continue;
    const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    if (Number.isInteger(pid) && pid > 1 && processAlive(pid) && cmdline(pid).includes(ENGINE_PATHS.execRoot)) {
      process.kill(pid, 'SIGTERM');
      if (!(await waitGone(pid, 30_000))) process.kill(pid, 'SIGKILL');
    }
    rmSync(file, { force: true });
  }
}

export interface Engine {
  mode: 'host' | 'netns';
  pid: number;
  logFile: string;
  log(): Promise<string>;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
// Last resort if the worker exits without its afterAll: no daemon outlives the test process.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function startEngine(mode: 'host' | 'netns'): Promise<Engine> {
  await stopLeftover();
  await mkdir(ENGINE_PATHS.dataRoot, { recursive: true });
  const logDir = await mkdtemp(path.join(os.tmpdir(), 'bgserve-dockerd-'));
  const logFile = path.join(logDir, `dockerd-${mode}.log`);
  const args = [
    '--data-root',
    ENGINE_PATHS.dataRoot,
    '--exec-root',
    ENGINE_PATHS.execRoot,
    '--pidfile',
    ENGINE_PATHS.pidfile,
    '-H',
    `unix://${ENGINE_PATHS.socket}`,
    ...(mode === 'host' ? ['--bridge=none', '--iptables=false', '--ip-masq=false'] : []),
  ];
  const fd = openSync(logFile, 'a');
  // `unshare` (no --fork) and `sh -c exec` replace themselves: the PID spawned is dockerd's.
  const child =
    mode === 'host'
      ? spawn('dockerd', args, { stdio: ['ignore', fd, fd], env: dockerEnv() })
      : spawn('unshare', ['--net', 'sh', '-c', 'ip link set lo up && exec dockerd "$@"', 'dockerd', ...args], {
          stdio: ['ignore', fd, fd],
          env: dockerEnv(),
        });
  closeSync(fd);
  running.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => running.delete(child));
  const log = () => readFile(logFile, 'utf8').catch(() => '');

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`dockerd (${mode}) exited at start:\n${(await log()).slice(-4000)}`);
    const r = await runCommand('docker', ['version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 });
    if (r.code === 0) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`dockerd (${mode}) did not answer in 60 s:\n${(await log()).slice(-4000)}`);
    }
    await new Promise((res) => setTimeout(res, 250));
  }

  return {
    mode,
    pid: child.pid!,
    logFile,
    log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        // TERM: dockerd stops its containers (their own grace periods) and its containerd, then exits.
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        await exited;
        clearTimeout(timer);
      }
      // Its containerd exits with it; one that did not is stopped by its own pidfile.
      await stopLeftover();
      rmSync(logDir, { recursive: true, force: true });
    },
  };
}

export interface Forwarder {
  /** Host loopback port for a port published inside the engine's namespace. */
  port(published: number): number;
  close(): Promise<void>;
}

/**
 * Loopback ports on this side for ports published inside a `netns` engine: host TCP -> unix socket ->
 * a forwarder inside the namespace -> 127.0.0.1:<published> there (Docker's own published port).
 */
export async function forwardPorts(engine: Engine, published: number[]): Promise<Forwarder> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bgserve-fwd-'));
  const inside = spawn(
    'nsenter',
    [`--net=/proc/${engine.pid}/ns/net`, process.execPath, path.join(HERE, 'netns-forward.mjs'), dir, ...published.map(String)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  running.add(inside);
  inside.once('exit', () => running.delete(inside));
  let out = '';
  inside.stderr.on('data', (c: Buffer) => (out += c.toString()));
  await new Promise<void>((resolve, reject) => {
    inside.stdout.on('data', (c: Buffer) => {
      if (c.toString().includes('ready')) resolve();
    });
    inside.once('exit', (code) => reject(new Error(`port forwarder exited ${code}: ${out}`)));
  });

  const servers = new Map<number, net.Server>();
  const ports = new Map<number, number>();
  const open = new Set<net.Socket>();
  for (const p of published) {
    const server = net.createServer((client) => {
      const upstream = net.connect(path.join(dir, `${p}.sock`));
      open.add(client);
      client.once('close', () => open.delete(client));
      client.pipe(upstream).pipe(client);
      // A reset on one side is a reset on the other: the client sees what Docker's port did.
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    servers.set(p, server);
    ports.set(p, (server.address() as net.AddressInfo).port);
  }
  return {
    port(publishedPort: number) {
      const local = ports.get(publishedPort);
      if (local === undefined) throw new Error(`port ${publishedPort} is not forwarded`);
      return local;
    },
    async close() {
      for (const socket of open) socket.destroy();
      for (const server of servers.values()) {
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
      if (inside.exitCode === null && inside.signalCode === null) {
        const gone = new Promise((resolve) => inside.once('exit', resolve));
        inside.kill('SIGTERM');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
