/**
 * A replica as a process of its own (so a test can kill -9 it): a bare node:http server answering like an
 * instance. POST /predict answers {color, instance}; its answer status, and /ready's, are set through PUT /__mode;
 * GET /__stats counts what it got.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'undici';
import type { Color } from '../../src/config/defaults.js';

const SCRIPT = `
const http = require('node:http');
const [name, color, port] = process.argv.slice(1);
const mode = { status: 200, ready: true, delayMs: 0 };
const stats = { predicts: 0, mirrored: 0 };
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/ready') { res.statusCode = mode.ready ? 200 : 503; return res.end('{}'); }
    if (url.pathname === '/__stats') return res.end(JSON.stringify(stats));
    if (url.pathname === '/__mode') {
      if (url.searchParams.has('status')) mode.status = Number(url.searchParams.get('status'));
      if (url.searchParams.has('ready')) mode.ready = url.searchParams.get('ready') === '1';
      if (url.searchParams.has('delayMs')) mode.delayMs = Number(url.searchParams.get('delayMs'));
      return res.end('{}');
    }
    if (req.headers['x-bgserve-source'] === 'mirror') stats.mirrored++; else stats.predicts++;
    res.statusCode = mode.status;
    const body = JSON.stringify(mode.status === 200 ? { color, instance: name } : { error: 'failing', message: 'on purpose', instance: name });
    if (mode.delayMs > 0) setTimeout(() => res.end(body), mode.delayMs); else res.end(body);
  });
});
server.keepAliveTimeout = 60000;
server.listen(Number(port), '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: server.address().port }) + '\\n'));
`;

export interface ReplicaProcess {
  name: string;
  color: Color;
  port: number;
  proc: ChildProcess;
  /** PUT /__mode: the status /predict answers, whether /ready passes, how long /predict takes. */
  setMode(mode: { status?: number; ready?: boolean; delayMs?: number }): Promise<void>;
  stats(): Promise<{ predicts: number; mirrored: number }>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const started = new Set<ChildProcess>();

/** Starts one replica (port 0: any free one; a port: the same one again, as a restarted replica). */
export async function startReplica(name: string, color: Color, port = 0): Promise<ReplicaProcess> {
  const proc = spawn(process.execPath, ['-e', SCRIPT, name, color, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  started.add(proc);
  proc.once('exit', () => started.delete(proc));
  const [line] = (await Promise.race([
    once(proc.stdout as NodeJS.ReadableStream, 'data'),
    once(proc, 'exit').then(() => {
      throw new Error(`replica ${name} exited before listening`);
    }),
  ])) as [Buffer];
  const listening = (JSON.parse(line.toString().trim()) as { port: number }).port;
  const base = `http://127.0.0.1:${listening}`;
  return {
    name,
    color,
    port: listening,
    proc,
    async setMode(mode) {
      const q = new URLSearchParams();
      if (mode.status !== undefined) q.set('status', String(mode.status));
      if (mode.ready !== undefined) q.set('ready', mode.ready ? '1' : '0');
      if (mode.delayMs !== undefined) q.set('delayMs', String(mode.delayMs));
      await (await request(`${base}/__mode?${q}`, { method: 'PUT' })).body.dump();
    },
    async stats() {
      return (await (await request(`${base}/__stats`)).body.json()) as { predicts: number; mirrored: number };
    },
    async kill(signal = 'SIGKILL') {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = once(proc, 'exit');
      proc.kill(signal);
      await exited;
    },
  };
}

/** Kills every replica still running (a test's afterAll, even after a failure). */
export async function killAllReplicas(): Promise<void> {
  await Promise.all(
    [...started].map(async (proc) => {
      const exited = once(proc, 'exit');
      proc.kill('SIGKILL');
      await exited;
    }),
  );
}
