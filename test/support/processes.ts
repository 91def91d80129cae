import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI_ENTRY = path.join(ROOT, 'src/cli/main.ts');

/** A free TCP port on loopback, chosen by the kernel. */
/** The ports a `bgserve up` binds. */
export interface UpPorts {
  router: number;
  blue: number;
  green: number;
  control: number;
}

export async function freeUpPorts(): Promise<UpPorts> {
  return { router: await freePort(), blue: await freePort(), green: await freePort(), control: await freePort() };
}

/** `bgserve up` on these loopback ports over `stateDir`; `extra` flags (router, bundle...) follow. */
export function upArgv(p: UpPorts, stateDir: string, extra: readonly string[] = []): string[] {
  return [
    'up',
    ...['--port', String(p.router), '--blue-port', String(p.blue), '--green-port', String(p.green)],
    ...['--control-port', String(p.control), '--state-dir', stateDir],
    ...extra,
  ];
}

/**
 * Ports handed out by freePort come from below the kernel's ephemeral range (32768-60999 on Linux), so no
 * outgoing connection made meanwhile (a router's upstream pool, a load generator) can take the port between the
 * pick and the listen; that race once failed a test with EADDRINUSE. Each process walks its own stretch of the
 * range from an offset set by its PID, so parallel test workers rarely try the same port, and a port still
 * bound is skipped.
 */
const PICK_FROM = 20_000;
const PICK_SPAN = 12_000;
let nextPick = (process.pid * 211) % PICK_SPAN;

export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = PICK_FROM + (nextPick++ % PICK_SPAN);
    if (await canListen(port)) return port;
  }
  throw new Error('no free port found below the ephemeral range');
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export interface Started {
  child: ChildProcess;
  output: () => string;
}

const started = new Set<ChildProcess>();

/** Runs the bgserve CLI from source (tsx), so tests need no build step. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): Started {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI_ENTRY, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const append = (chunk: Buffer) => {
    out += chunk.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  started.add(child);
  child.on('exit', () => started.delete(child));
  return { child, output: () => out };
}

/** Polls a URL until it answers with the wanted status, or fails with the process output. */
export async function waitForHttp(url: string, opts: { status?: number; timeoutMs?: number; proc?: Started } = {}): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 45_000);
  let last = '';
  while (Date.now() < deadline) {
    if (opts.proc && opts.proc.child.exitCode !== null) {
      throw new Error(`process exited (${opts.proc.child.exitCode}) before ${url} answered:\n${opts.proc.output()}`);
    }
    try {
      const res = await fetch(url);
      if (res.status === (opts.status ?? 200)) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${url}: ${last}\n${opts.proc?.output() ?? ''}`);
}

/** Stops a process by its PID: SIGTERM, then SIGKILL after the grace period. */
export async function stopProcess(proc: Started | ChildProcess, graceMs = 5_000): Promise<number | null> {
  const child = 'child' in proc ? proc.child : proc;
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

/** Last-resort cleanup for afterAll: every process this module started and that is still running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...started].map((child) => stopProcess(child)));
}

/** Runs the CLI to completion (bounded in time: stopped by PID after `timeoutMs`) and returns its exit code and output. */
export async function runCli(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; output: string }> {
  const proc = startCli(args);
  const exited = new Promise<number | null>((resolve) => proc.child.once('exit', (code) => resolve(code)));
  const timer = setTimeout(() => void stopProcess(proc), timeoutMs);
  const code = await exited;
  clearTimeout(timer);
  return { code, output: proc.output() };
}
