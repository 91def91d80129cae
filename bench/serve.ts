/**
 * Service benchmark: autocannon against one instance's POST /predict at 1, 16 and 64 connections, and in the
 * same run against a constant-response Fastify route (same JSON body parsed, fixed answer) as the ceiling.
 * Both servers run as child processes so the RSS reported is the instance's own; the load generator shares
 * the machine's cores with them, as a router would. At each connection count the two targets are measured in
 * alternating rounds, and the figures are medians over the rounds: on a machine whose speed drifts within
 * seconds, one measurement of each gives ratios from 60% to 80% for the same code.
 *
 *   node --import tsx bench/serve.ts [--duration 3] [--rounds 3] [--connections 1,16,64] [--from-source] [--node-flags '--max-semi-space-size=8']
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import { DEFAULT_BUNDLE } from '../src/config/defaults.js';
import { WINE_EXAMPLE } from '../src/model/wine.js';
import { median } from './stats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BODY = JSON.stringify(WINE_EXAMPLE);

/** The ceiling: Fastify with its default JSON parser and a fixed answer of the same shape. */
const CONSTANT_SERVER = `
import Fastify from 'fastify';
const app = Fastify({ logger: false });
const answer = { prediction: 5, model: { name: 'constant', version: '0' }, color: 'none' };
app.post('/predict', async () => answer);
const address = await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(JSON.stringify({ event: 'listening', address }) + '\\n');
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
`;

export interface ServeBenchOptions {
  /** Seconds per measurement (default 3). */
  durationSeconds?: number;
  /** Alternating measurements of each target per connection count (default 3). */
  rounds?: number;
  connections?: number[];
  bundle?: string;
  /** Run the instance from src through tsx even when dist/ is built. */
  fromSource?: boolean;
  /** Node flags for the instance, e.g. ['--max-semi-space-size=8'] to trade a little speed for memory. */
  nodeFlags?: string[];
}

export interface BenchRow {
  target: 'predict' | 'constant';
  connections: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Connection errors plus non-2xx answers: must be 0. */
  failures: number;
  /**
   * CPU time the server process spent per answered request, µs: unlike req/s, hardly moved by other
   * processes competing for the cores.
   */
  cpuUsPerRequest: number;
  /** The server's resident memory right after the run, and its peak so far (VmHWM), MB. */
  rssMb: number;
  peakRssMb: number;
}

export interface ServeBenchResult {
  /** Medians over the rounds, per target and connection count. */
  rows: BenchRow[];
  /** Median over the rounds of /predict req/s over the constant route's req/s in the same round, by connection count. */
  ratio: Record<number, number>;
  /** Each round's ratio, by connection count. */
  roundRatios: Record<number, number[]>;
  rounds: number;
  runner: 'dist' | 'tsx';
  nodeFlags: string[];
  loadAverage: number[];
  cpus: number;
}

interface Server {
  child: ChildProcess;
  url: string;
}

/** Starts a child and waits for its JSON "listening" log line. */
function startServer(args: string[]): Promise<Server> {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`server did not start in 30 s:\n${out}`)), 30_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    };
    child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('"listening"')) continue;
        const address = (JSON.parse(line) as { address: string }).address;
        clearTimeout(timer);
        child.stdout?.removeAllListeners('data');
        child.stdout?.resume();
        resolve({ child, url: `${address}/predict` });
        return;
      }
    });
    child.once('exit', (code) => fail(new Error(`server exited (${code}) before listening:\n${out}`)));
  });
}

async function stopServer(server: Server): Promise<void> {
  if (server.child.exitCode !== null) return;
  const exited = new Promise((r) => server.child.once('exit', r));
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** User + system CPU time of a process so far, µs (Linux /proc; clock ticks are 100 Hz on Linux x86-64). */
function cpuTimeUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ", utime and stime are the 12th and 13th fields.
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** VmRSS and VmHWM of a process, MB (Linux /proc). */
function memoryMb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

function cannon(url: string, connections: number, durationSeconds: number): Promise<autocannon.Result> {
  return autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: BODY,
    connections,
    duration: durationSeconds,
  });
}

async function measure(target: BenchRow['target'], server: Server, connections: number, seconds: number): Promise<BenchRow> {
  const cpuBefore = cpuTimeUs(server.child.pid!);
  const r = await cannon(server.url, connections, seconds);
  const cpu = cpuTimeUs(server.child.pid!) - cpuBefore;
  const mem = memoryMb(server.child.pid!);
  return {
    target,
    connections,
    reqPerSec: r.requests.average,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    failures: r.errors + r.non2xx,
    cpuUsPerRequest: cpu / Math.max(1, r.requests.total),
    rssMb: mem.rss,
    peakRssMb: mem.peak,
  };
}

/** One row of medians from the rounds of one target (failures summed, memory from the last round). */
function medianRow(rounds: BenchRow[]): BenchRow {
  const last = rounds[rounds.length - 1];
  const m = (key: 'reqPerSec' | 'p50Ms' | 'p99Ms' | 'cpuUsPerRequest') => median(rounds.map((r) => r[key]));
  return {
    ...last,
    reqPerSec: m('reqPerSec'),
    p50Ms: m('p50Ms'),
    p99Ms: m('p99Ms'),
    cpuUsPerRequest: m('cpuUsPerRequest'),
    failures: rounds.reduce((sum, r) => sum + r.failures, 0),
  };
}

export async function runServeBench(opts: ServeBenchOptions = {}): Promise<ServeBenchResult> {
  const seconds = opts.durationSeconds ?? 3;
  const rounds = opts.rounds ?? 3;
  const connectionCounts = opts.connections ?? [1, 16, 64];
  const dist = path.join(ROOT, 'dist/cli/main.js');
  const runner = !opts.fromSource && existsSync(dist) ? 'dist' : 'tsx';
  const cli = runner === 'dist' ? [dist] : ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts')];
  // At the default info level the instance logs its listening line and rejections only (none here).
  const serveArgs = ['serve', '--bundle', opts.bundle ?? DEFAULT_BUNDLE, '--port', '0', '--drain-delay-ms', '0'];
  const nodeFlags = opts.nodeFlags ?? [];
  const instance = await startServer([...nodeFlags, ...cli, ...serveArgs]);
  const constant = await startServer(['--input-type=module', '-e', CONSTANT_SERVER]);
  try {
    // Warm both up (JIT, connection pools) before measuring.
    await Promise.all([cannon(instance.url, 16, 1), cannon(constant.url, 16, 1)].map((p) => p.catch(() => undefined)));
    const rows: BenchRow[] = [];
    const ratio: Record<number, number> = {};
    const roundRatios: Record<number, number[]> = {};
    for (const c of connectionCounts) {
      const predict: BenchRow[] = [];
      const constantRows: BenchRow[] = [];
      for (let round = 0; round < rounds; round++) {
        predict.push(await measure('predict', instance, c, seconds));
        constantRows.push(await measure('constant', constant, c, seconds));
      }
      rows.push(medianRow(predict), medianRow(constantRows));
      roundRatios[c] = predict.map((p, i) => p.reqPerSec / constantRows[i].reqPerSec);
      ratio[c] = median(roundRatios[c]);
    }
    return { rows, ratio, roundRatios, rounds, runner, nodeFlags, loadAverage: os.loadavg(), cpus: os.cpus().length };
  } finally {
    await Promise.all([stopServer(instance), stopServer(constant)]);
  }
}

export function formatServeBench(result: ServeBenchResult): string {
  const lines = [
    `serve benchmark (instance from ${result.runner}${result.nodeFlags.length ? ` with ${result.nodeFlags.join(' ')}` : ''}; ` +
      `${result.cpus} CPUs, load average ${result.loadAverage.map((l) => l.toFixed(2)).join(' ')}; medians of ${result.rounds} alternating rounds; ` +
      `latency at autocannon's 1 ms resolution)`,
    'target    conns    req/s   p50 ms   p99 ms  failures  CPU us/req  RSS MB  peak MB',
  ];
  for (const r of result.rows) {
    lines.push(
      [
        r.target.padEnd(8),
        String(r.connections).padStart(6),
        r.reqPerSec.toFixed(0).padStart(8),
        r.p50Ms.toFixed(0).padStart(8),
        r.p99Ms.toFixed(0).padStart(8),
        String(r.failures).padStart(9),
        r.cpuUsPerRequest.toFixed(0).padStart(11),
        r.rssMb.toFixed(1).padStart(7),
        r.peakRssMb.toFixed(1).padStart(8),
      ].join(' '),
    );
  }
  for (const [c, ratio] of Object.entries(result.ratio)) {
    const each = result.roundRatios[Number(c)].map((r) => `${(r * 100).toFixed(0)}%`).join(', ');
    lines.push(`/predict vs constant at ${c} connection(s): ${(ratio * 100).toFixed(1)}% (median; rounds: ${each})`);
  }
  return lines.join('\n');
}

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const duration = argValue('--duration');
  const rounds = argValue('--rounds');
  const connections = argValue('--connections');
  runServeBench({
    durationSeconds: duration ? Number(duration) : undefined,
    rounds: rounds ? Number(rounds) : undefined,
    connections: connections ? connections.split(',').map(Number) : undefined,
    fromSource: process.argv.includes('--from-source'),
    nodeFlags: argValue('--node-flags')?.split(' ').filter(Boolean),
  }).then(
    (result) => console.log(formatServeBench(result)),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
