/**
 * Router benchmark, in one run: POST /predict straight to one instance, through nginx and through the embedded
 * router (both routers at blue/green 50/50 over the same two instances), at 64, 16 and 1 connections, with
 * autocannon and, when installed, wrk (one thread, so the generator's own cost does not hide the router's).
 * Rounds alternate the order of the targets and the figures are medians over rounds: the machine is shared.
 * Then a switch under load for each router: requests sent and failed, and the time from the switch command
 * until no newly sent request lands on the old color.
 * The embedded router runs in a child process of its own (as in `bgserve up`, not sharing the load
 * generator's event loop); nginx is managed by the nginx driver in a private prefix.
 *
 *   node --import tsx bench/router.ts [--duration 3] [--rounds 3] [--connections 64,16,1] [--no-wrk]
 *     [--no-autocannon]  wrk alone
 *     [--baseline <embedded-router.js of another build>]   also measures that router, as "baseline"
 *     [--profile-dir <dir>]                                CPU profiles of the router processes (node --cpu-prof)
 *     [--workers 2]      also `bgserve router --workers N` for each N listed (target "embedded-Nw"; 0: none),
 *                        with the resident memory of its primary and each worker after the load
 *     [--replicas 1,2]   instead: each router over 1 and 2 replicas per color (and the embedded router's
 *                        round-robin beside its least-outstanding rule), req/s and p99 per case, RSS per replica
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import { Agent, request } from 'undici';
import { DEFAULT_BUNDLE, type Color } from '../src/config/defaults.js';
import { WINE_EXAMPLE } from '../src/model/wine.js';
import { InstancePair, instanceSpecs, startInstance, type CliCommand, type InstanceProcess } from '../src/stack/instances.js';
import { startRouterProcess, type RouterProcess } from '../src/stack/router-process.js';
import type { Balance } from '../src/traffic/health.js';
import { startNginxDriver } from '../src/traffic/nginx-driver.js';
import { RemoteRouter } from '../src/traffic/remote-router.js';
import type { RouterSnapshot } from '../src/traffic/router-control.js';
import type { Upstreams, Weights } from '../src/traffic/types.js';
import { freePort } from '../test/support/processes.js';
import { median } from './stats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BODY = JSON.stringify(WINE_EXAMPLE);
const SPLIT: Weights = { blue: 50, green: 50 };
/** Issue 14: embedded >= 0.85 of nginx's req/s at 64 and 16 connections; <= 50 us added to direct p50 at 1. */
export const ROUTER_TARGETS = { embeddedToNginx: 0.85, addedP50Us: 50, switchMs: 1_000 } as const;

/** embedded-Nw: the `bgserve router --workers N` process (`up`'s router); embedded: the router alone in a child. */
type Target = 'direct' | 'nginx' | 'embedded' | 'baseline' | `embedded-${number}w`;
type Generator = 'autocannon' | 'wrk';

export interface RouterBenchOptions {
  durationSeconds?: number;
  rounds?: number;
  connections?: number[];
  /** Seconds of load around each switch (the switch happens after a third of it). */
  switchSeconds?: number;
  /** Run instances and the router from src through tsx even when dist/ is built. */
  fromSource?: boolean;
  wrk?: boolean;
  /** False: wrk alone (when installed). */
  autocannon?: boolean;
  baselineModule?: string;
  profileDir?: string;
  /** `bgserve router --workers N` for each N (default [2]). */
  workers?: number[];
}

interface Sample {
  reqPerSec: number;
  /** Microseconds; autocannon's histogram has whole milliseconds only, wrk's has microseconds. */
  p50Us: number;
  p99Us: number;
  failures: number;
  /** CPU time the router's own processes spent per request, microseconds (null: not a router, or not readable). */
  cpuUs?: number | null;
}

export interface ThroughputRow extends Sample {
  generator: Generator;
  connections: number;
  target: Target;
  /** req/s over nginx's req/s in the same row group. */
  toNginx: number | null;
  /** Mean time per request at this concurrency, 1e6 * connections / req/s: exact where p50 is coarse. */
  meanUs: number;
}

export interface SwitchRow {
  router: 'embedded' | 'nginx' | `embedded-${number}w`;
  sent: number;
  failed: number;
  /** How long the switch command took to resolve (it resolves once the change is in effect). */
  commandMs: number;
  /** From the command to the start of the last request that still landed on the old color (0: none did). */
  toNewColorMs: number;
}

export interface RouterBenchResult {
  durationSeconds: number;
  rounds: number;
  rows: ThroughputRow[];
  switches: SwitchRow[];
  targets: typeof ROUTER_TARGETS;
  runner: 'dist' | 'tsx';
  nginx: string | null;
  wrk: string | null;
  loadAverage: { start: number[]; end: number[] };
  cpus: number;
  /** Resident memory after the load, MB: the embedded child; per `--workers` router its primary and each worker. */
  memoryMb: { embedded: number | null; clusters: Array<{ workers: number; primary: number | null; perWorker: (number | null)[] }> };
}

/** The embedded router in its own process; weights arrive as JSON lines on stdin. */
const ROUTER_CHILD = `
import { createInterface } from 'node:readline';
const { startEmbeddedRouter, EmbeddedRouter } = await import(process.env.BGSERVE_ROUTER_MODULE);
const upstreams = JSON.parse(process.env.BGSERVE_UPSTREAMS);
// A --baseline built before pools (no setUpstreams) takes one upstream per color.
if (!EmbeddedRouter.prototype.setUpstreams) for (const c of ['blue', 'green']) upstreams[c] = upstreams[c][0];
const router = await startEmbeddedRouter({
  host: '127.0.0.1',
  port: 0,
  upstreams,
  initial: { weights: JSON.parse(process.env.BGSERVE_WEIGHTS) },
  ...(process.env.BGSERVE_BALANCE ? { health: { balance: process.env.BGSERVE_BALANCE } } : {}),
});
process.stdout.write(JSON.stringify({ event: 'listening', url: router.url }) + '\\n');
createInterface({ input: process.stdin }).on('line', async (line) => {
  const started = performance.now();
  await router.setWeights(JSON.parse(line));
  process.stdout.write(JSON.stringify({ event: 'applied', ms: performance.now() - started }) + '\\n');
});
process.on('SIGTERM', () => router.close().then(() => process.exit(0)));
`;

interface RouterChild {
  child: ChildProcess;
  url: string;
  setWeights(weights: Weights): Promise<number>;
  stop(): Promise<void>;
}

async function startRouterChild(
  upstreams: Upstreams,
  module: string,
  runner: 'dist' | 'tsx',
  profileDir?: string,
  balance?: Balance,
): Promise<RouterChild> {
  const args = [
    ...(runner === 'tsx' ? ['--import', 'tsx'] : []),
    ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-interval', '100'] : []),
    '--input-type=module',
    '-e',
    ROUTER_CHILD,
  ];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: {
      ...process.env,
      BGSERVE_ROUTER_MODULE: pathToFileURL(module).href,
      BGSERVE_UPSTREAMS: JSON.stringify(upstreams),
      BGSERVE_WEIGHTS: JSON.stringify(SPLIT),
      ...(balance ? { BGSERVE_BALANCE: balance } : {}),
    },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const waiting: Array<(msg: { event: string; url?: string; ms?: number }) => void> = [];
  lines.on('line', (line) => waiting.shift()?.(JSON.parse(line)));
  const next = () => new Promise<{ event: string; url?: string; ms?: number }>((resolve) => waiting.push(resolve));
  const listening = await Promise.race([
    next(),
    new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`embedded router exited (${code})`)))),
  ]);
  return {
    child,
    url: listening.url!,
    setWeights: async (weights) => {
      const reply = next();
      child.stdin!.write(`${JSON.stringify(weights)}\n`);
      return (await reply).ms!;
    },
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** `bgserve router --workers N`, as `up` starts it, driven through its control endpoint. */
interface WorkersRouter {
  workers: number;
  url: string;
  proc: RouterProcess;
  remote: RemoteRouter;
  workerPids(): Promise<number[]>;
  stop(): Promise<void>;
}

async function startWorkersRouter(workers: number, upstreams: Upstreams, cli: CliCommand, dir: string): Promise<WorkersRouter> {
  const token = 'bench-router-control-token-0123456789';
  const tokenFile = path.join(dir, `router-${workers}w-token`);
  await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
  const port = await freePort();
  const proc = await startRouterProcess(
    {
      kind: 'embedded',
      host: '127.0.0.1',
      port,
      upstreams,
      controlTokenFile: tokenFile,
      readyFile: path.join(dir, `router-${workers}w.json`),
      logFile: path.join(dir, `router-${workers}w.log`),
      workers,
    },
    { weights: SPLIT },
    cli,
  );
  const controlUrl = `http://127.0.0.1:${proc.controlPort}`;
  const url = `http://127.0.0.1:${port}`;
  const remote = await RemoteRouter.connect({ url, controlUrl, token, refreshMs: 1_000 });
  return {
    workers,
    url,
    proc,
    remote,
    workerPids: async () => {
      const res = await request(`${controlUrl}/router`, { headers: { authorization: `Bearer ${token}` } });
      const snap = (await res.body.json()) as RouterSnapshot;
      return snap.workers ?? [snap.pid];
    },
    stop: async () => {
      await remote.close();
      await proc.stop();
    },
  };
}

async function cannon(url: string, connections: number, seconds: number): Promise<Sample> {
  const r = await autocannon({
    url: `${url}/predict`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: BODY,
    connections,
    duration: seconds,
  });
  return {
    reqPerSec: Math.round(r.requests.average),
    p50Us: r.latency.p50 * 1000,
    p99Us: r.latency.p99 * 1000,
    failures: r.errors + r.timeouts + r.non2xx,
  };
}

/** wrk's Lua hook prints one JSON line at the end; latencies are microseconds. */
function wrkScript(): string {
  return `wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[${BODY}]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\n{"requests":%d,"us":%d,"p50":%d,"p99":%d,"errors":%d,"status":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
`;
}

function wrkRun(script: string, url: string, connections: number, seconds: number): Sample {
  const r = spawnSync('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '-s', script, `${url}/predict`], { encoding: 'utf8' });
  const line = r.stdout
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (r.status !== 0 || !line) throw new Error(`wrk failed: ${r.stderr || r.stdout}`);
  const j = JSON.parse(line) as { requests: number; us: number; p50: number; p99: number; errors: number; status: number };
  return { reqPerSec: Math.round(j.requests / (j.us / 1e6)), p50Us: j.p50, p99Us: j.p99, failures: j.errors + j.status };
}

/** Continuous load recording each answer's color and start time, with a switch a third of the way in. */
async function switchUnderLoad(
  router: SwitchRow['router'],
  url: string,
  connections: number,
  seconds: number,
  setWeights: (w: Weights) => Promise<number>,
): Promise<SwitchRow> {
  await setWeights({ blue: 100, green: 0 });
  const agent = new Agent({ connections, keepAliveTimeout: 30_000 });
  const deadline = Date.now() + seconds * 1000;
  let sent = 0;
  let failed = 0;
  let switchAt = Infinity;
  let lastOldStart = -Infinity;
  const worker = async () => {
    while (Date.now() < deadline) {
      const started = performance.now();
      sent++;
      try {
        const res = await request(`${url}/predict`, {
          method: 'POST',
          dispatcher: agent,
          headers: { 'content-type': 'application/json' },
          body: BODY,
        });
        const answer = (await res.body.json()) as { color?: Color };
        if (res.statusCode !== 200) failed++;
        else if (answer.color === 'blue' && started > lastOldStart) lastOldStart = started;
      } catch {
        failed++;
      }
    }
  };
  const workers = Array.from({ length: connections }, worker);
  await new Promise((r) => setTimeout(r, (seconds * 1000) / 3));
  switchAt = performance.now();
  const commandMs = await setWeights({ blue: 0, green: 100 });
  await Promise.all(workers);
  await agent.close();
  await setWeights(SPLIT);
  return { router, sent, failed, commandMs: Math.round(commandMs), toNewColorMs: Math.max(0, Math.round(lastOldStart - switchAt)) };
}

function version(command: string, args: string[]): string | null {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  return r.status === 0 || r.status === 1 ? ((r.stderr || r.stdout).trim().split('\n')[0] ?? null) : null;
}

/** dist/ when built (and not told otherwise), else src/ through tsx: the CLI and the embedded router module. */
function runnerFor(opts: RouterBenchOptions): { runner: 'dist' | 'tsx'; cli: CliCommand; module: string } {
  const runner: 'dist' | 'tsx' =
    !opts.fromSource && existsSync(path.join(ROOT, 'dist/cli/main.js')) && existsSync(path.join(ROOT, 'dist/traffic/embedded-router.js'))
      ? 'dist'
      : 'tsx';
  const cli: CliCommand =
    runner === 'dist'
      ? { command: process.execPath, args: [path.join(ROOT, 'dist/cli/main.js')] }
      : { command: process.execPath, args: ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts')] };
  const module = runner === 'dist' ? path.join(ROOT, 'dist/traffic/embedded-router.js') : path.join(ROOT, 'src/traffic/embedded-router.ts');
  return { runner, cli, module };
}

const loadavg = () => os.loadavg().map((l) => Math.round(l * 100) / 100);

export async function runRouterBench(opts: RouterBenchOptions = {}): Promise<RouterBenchResult> {
  const seconds = opts.durationSeconds ?? 3;
  const rounds = opts.rounds ?? 3;
  const connectionsList = opts.connections ?? [64, 16, 1];
  const switchSeconds = opts.switchSeconds ?? 3;
  const loadStart = loadavg();
  const { runner, cli, module } = runnerFor(opts);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bgserve-bench-router-'));
  const ports = { blue: await freePort(), green: await freePort() };
  const specs = instanceSpecs({
    host: '127.0.0.1',
    ports,
    bundle: path.join(ROOT, DEFAULT_BUNDLE),
    logDir: dir,
    extraArgs: ['--log-level', 'warn', '--drain-delay-ms', '200'],
  });
  const upstreams = { blue: [{ host: '127.0.0.1', port: ports.blue }], green: [{ host: '127.0.0.1', port: ports.green }] };
  const nginx = version('nginx', ['-v']);
  const wrk = opts.wrk === false ? null : version('wrk', ['-v']);
  const script = path.join(dir, 'post.lua');
  await writeFile(script, wrkScript());
  const pair = await InstancePair.start(specs, { cli });
  const children: RouterChild[] = [];
  const clustersStarted: WorkersRouter[] = [];
  let ngx: Awaited<ReturnType<typeof startNginxDriver>> | undefined;
  try {
    const embedded = await startRouterChild(upstreams, module, runner, opts.profileDir);
    children.push(embedded);
    const urls: Partial<Record<Target, string>> = { direct: pair.instances.blue.url, embedded: embedded.url };
    const clusters: WorkersRouter[] = [];
    for (const n of opts.workers ?? [2]) {
      if (n < 1) continue;
      const c = await startWorkersRouter(n, upstreams, cli, dir);
      clusters.push(c);
      clustersStarted.push(c);
      urls[`embedded-${n}w`] = c.url;
    }
    if (opts.baselineModule) {
      const baseline = await startRouterChild(upstreams, opts.baselineModule, 'dist', opts.profileDir);
      children.push(baseline);
      urls.baseline = baseline.url;
    }
    if (nginx) {
      ngx = await startNginxDriver({
        listen: { host: '127.0.0.1', port: await freePort() },
        upstreams,
        mode: { kind: 'managed', prefix: path.join(dir, 'nginx') },
      });
      await ngx.setWeights(SPLIT);
      urls.nginx = ngx.url;
    }
    const targets = (Object.keys(urls) as Target[]).filter((t) => urls[t]);
    // The processes whose CPU time is the router's: the child alone; `--workers` routers and nginx with their
    // workers. Read once: asking a router's control endpoint before every sample would only add load.
    const routerPids: Partial<Record<Target, number[]>> = {
      embedded: [embedded.child.pid!],
      ...(children[1] ? { baseline: [children[1].child.pid!] } : {}),
      ...(ngx?.pid ? { nginx: [ngx.pid, ...childPids(ngx.pid)] } : {}),
    };
    for (const c of clusters) routerPids[`embedded-${c.workers}w`] = [...new Set([c.proc.pid!, ...(await c.workerPids())])];
    const generators: Generator[] = wrk ? (opts.autocannon === false ? ['wrk'] : ['wrk', 'autocannon']) : ['autocannon'];
    const samples = new Map<string, Sample[]>();
    for (const t of targets) await cannon(urls[t]!, 16, 1); // warm-up: JIT, keep-alive pools
    for (let round = 0; round < rounds; round++) {
      // Each round starts with a different target, so a burst of load from elsewhere hits none of them always.
      const order = targets.map((_, i) => targets[(i + round) % targets.length]);
      for (const generator of generators) {
        for (const connections of connectionsList) {
          for (const target of order) {
            const url = urls[target]!;
            const pids = routerPids[target] ?? [];
            const cpuBefore = cpuSeconds(pids);
            const s = generator === 'wrk' ? wrkRun(script, url, connections, seconds) : await cannon(url, connections, seconds);
            const cpuAfter = cpuSeconds(pids);
            s.cpuUs = cpuBefore === null || cpuAfter === null ? null : Math.round(((cpuAfter - cpuBefore) * 1e6) / (s.reqPerSec * seconds));
            const key = `${generator}:${connections}:${target}`;
            samples.set(key, [...(samples.get(key) ?? []), s]);
          }
        }
      }
    }
    const rows: ThroughputRow[] = [];
    for (const generator of generators) {
      for (const connections of connectionsList) {
        const group = targets.map((target) => {
          const s = samples.get(`${generator}:${connections}:${target}`)!;
          const reqPerSec = Math.round(median(s.map((x) => x.reqPerSec)));
          return {
            generator,
            connections,
            target,
            reqPerSec,
            p50Us: median(s.map((x) => x.p50Us)),
            p99Us: median(s.map((x) => x.p99Us)),
            failures: s.reduce((sum, x) => sum + x.failures, 0),
            meanUs: Math.round((1e6 * connections) / reqPerSec),
            cpuUs: s.some((x) => x.cpuUs == null) ? null : median(s.map((x) => x.cpuUs!)),
            toNginx: null as number | null,
          };
        });
        const ngxRate = group.find((r) => r.target === 'nginx')?.reqPerSec;
        for (const r of group) r.toNginx = ngxRate ? Math.round((r.reqPerSec / ngxRate) * 100) / 100 : null;
        rows.push(...group);
      }
    }

    const mb = (pid: number | null) => {
      const m = rssMb(pid);
      return m === null ? null : Math.round(m);
    };
    const memoryMb: RouterBenchResult['memoryMb'] = {
      embedded: mb(embedded.child.pid ?? null),
      clusters: await Promise.all(
        clusters.map(async (c) => ({ workers: c.workers, primary: mb(c.proc.pid), perWorker: (await c.workerPids()).map(mb) })),
      ),
    };
    const switches = [await switchUnderLoad('embedded', embedded.url, 64, switchSeconds, (w) => embedded.setWeights(w))];
    for (const c of clusters) {
      switches.push(
        await switchUnderLoad(`embedded-${c.workers}w`, c.url, 64, switchSeconds, async (w) => {
          const started = performance.now();
          await c.remote.setWeights(w);
          return performance.now() - started;
        }),
      );
    }
    if (ngx) {
      const driver = ngx;
      switches.push(
        await switchUnderLoad('nginx', driver.url, 64, switchSeconds, async (w) => {
          const started = performance.now();
          await driver.setWeights(w);
          return performance.now() - started;
        }),
      );
    }
    return {
      durationSeconds: seconds,
      rounds,
      rows,
      switches,
      targets: ROUTER_TARGETS,
      runner,
      nginx,
      wrk,
      loadAverage: { start: loadStart, end: loadavg() },
      cpus: os.cpus().length,
      memoryMb,
    };
  } finally {
    await ngx?.close();
    for (const c of children) await c.stop();
    for (const c of clustersStarted) await c.stop();
    await pair.stop(5_000);
    await rm(dir, { recursive: true, force: true });
  }
}

export interface ReplicaRow {
  replicas: number;
  /** embedded (least outstanding), embedded-rr (round-robin), nginx (least_conn). */
  target: string;
  connections: number;
  reqPerSec: number;
  p99Us: number;
  failures: number;
  /** req/s over the same target's with 1 replica per color. */
  toOne: number | null;
}

export interface ReplicaBenchResult {
  durationSeconds: number;
  rounds: number;
  rows: ReplicaRow[];
  /** Resident memory of one instance (mean over the instances), MB, after the load. */
  instanceRssMb: number;
  generator: Generator;
  runner: 'dist' | 'tsx';
  loadAverage: { start: number[]; end: number[] };
  cpus: number;
}

/** User and system CPU seconds of these processes so far, from /proc (null where it cannot be read). */
function cpuSeconds(pids: number[]): number | null {
  if (pids.length === 0) return null;
  let ticks = 0;
  for (const pid of pids) {
    try {
      // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      return null;
    }
  }
  return ticks / CLOCK_TICKS;
}

/** USER_HZ: what /proc counts CPU time in, 100 on Linux everywhere it runs. */
const CLOCK_TICKS = 100;

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function rssMb(pid: number | null): number | null {
  if (pid === null) return null;
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : null;
}

/**
 * Issue 13: each router over 1 and 2 replicas per color (blue/green 50/50, so every replica serves), in one
 * run, rounds alternating the order of the cases; the memory a replica costs is one instance's RSS.
 */
export async function runReplicaBench(opts: RouterBenchOptions & { replicas: number[] }): Promise<ReplicaBenchResult> {
  const seconds = opts.durationSeconds ?? 3;
  const rounds = opts.rounds ?? 3;
  const connectionsList = opts.connections ?? [64];
  const loadStart = loadavg();
  const { runner, cli, module } = runnerFor(opts);
  const generator: Generator = opts.wrk !== false && version('wrk', ['-v']) ? 'wrk' : 'autocannon';
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bgserve-bench-replicas-'));
  const script = path.join(dir, 'post.lua');
  await writeFile(script, wrkScript());
  const most = Math.max(...opts.replicas);
  const instances: InstanceProcess[] = [];
  const children: RouterChild[] = [];
  const drivers: Array<Awaited<ReturnType<typeof startNginxDriver>>> = [];
  try {
    const pools: Upstreams = { blue: [], green: [] };
    for (let i = 0; i < most; i++) {
      const ports = { blue: await freePort(), green: await freePort() };
      const specs = instanceSpecs({
        host: '127.0.0.1',
        ports,
        bundle: path.join(ROOT, DEFAULT_BUNDLE),
        logDir: path.join(dir, `r${i}`),
        extraArgs: ['--log-level', 'warn', '--drain-delay-ms', '200'],
      });
      for (const color of ['blue', 'green'] as const) {
        instances.push(await startInstance(specs[color], cli));
        pools[color].push({ host: '127.0.0.1', port: ports[color] });
      }
    }
    await Promise.all(instances.map((i) => i.waitReady()));
    const urls = new Map<string, string>();
    for (const n of opts.replicas) {
      const upstreams: Upstreams = { blue: pools.blue.slice(0, n), green: pools.green.slice(0, n) };
      const embedded = await startRouterChild(upstreams, module, runner);
      children.push(embedded);
      urls.set(`${n}:embedded`, embedded.url);
      if (n > 1) {
        const rr = await startRouterChild(upstreams, module, runner, undefined, 'round-robin');
        children.push(rr);
        urls.set(`${n}:embedded-rr`, rr.url);
      }
      if (version('nginx', ['-v'])) {
        const ngx = await startNginxDriver({
          listen: { host: '127.0.0.1', port: await freePort() },
          upstreams,
          mode: { kind: 'managed', prefix: path.join(dir, `nginx-${n}`) },
        });
        drivers.push(ngx);
        await ngx.setWeights(SPLIT);
        urls.set(`${n}:nginx`, ngx.url);
      }
    }
    const cases = [...urls.keys()];
    for (const key of cases) await cannon(urls.get(key)!, 16, 1); // warm-up
    const samples = new Map<string, Sample[]>();
    for (let round = 0; round < rounds; round++) {
      const order = cases.map((_, i) => cases[(i + round) % cases.length]);
      for (const connections of connectionsList) {
        for (const key of order) {
          const url = urls.get(key)!;
          const s = generator === 'wrk' ? wrkRun(script, url, connections, seconds) : await cannon(url, connections, seconds);
          const id = `${key}:${connections}`;
          samples.set(id, [...(samples.get(id) ?? []), s]);
        }
      }
    }
    const rows: ReplicaRow[] = [];
    for (const connections of connectionsList) {
      for (const key of cases) {
        const [n, target] = key.split(':');
        const s = samples.get(`${key}:${connections}`)!;
        rows.push({
          replicas: Number(n),
          target,
          connections,
          reqPerSec: Math.round(median(s.map((x) => x.reqPerSec))),
          p99Us: median(s.map((x) => x.p99Us)),
          failures: s.reduce((sum, x) => sum + x.failures, 0),
          toOne: null,
        });
      }
    }
    for (const row of rows) {
      const base = rows.find((r) => r.replicas === 1 && r.connections === row.connections && r.target === row.target.replace('-rr', ''));
      row.toOne = base ? Math.round((row.reqPerSec / base.reqPerSec) * 100) / 100 : null;
    }
    const rss = instances.map((i) => rssMb(i.pid)).filter((x): x is number => x !== null);
    return {
      durationSeconds: seconds,
      rounds,
      rows,
      instanceRssMb: Math.round(rss.reduce((a, b) => a + b, 0) / Math.max(1, rss.length)),
      generator,
      runner,
      loadAverage: { start: loadStart, end: loadavg() },
      cpus: os.cpus().length,
    };
  } finally {
    for (const d of drivers) await d.close();
    for (const c of children) await c.stop();
    await Promise.all(instances.map((i) => i.stop(5_000)));
    await rm(dir, { recursive: true, force: true });
  }
}

export function formatReplicaBench(r: ReplicaBenchResult): string {
  return [
    `replica bench: blue/green 50/50, ${r.generator}, ${r.durationSeconds} s per measurement, median of ${r.rounds} alternating rounds, ` +
      `${r.runner}, ${r.cpus} cpus, load ${r.loadAverage.start.join(' ')} -> ${r.loadAverage.end.join(' ')}`,
    'replicas/color  target        conns     req/s        p99  failed  /1 replica',
    ...r.rows.map(
      (row) =>
        `${String(row.replicas).padStart(14)}  ${row.target.padEnd(12)}${String(row.connections).padStart(6)}${String(row.reqPerSec).padStart(10)}` +
        `${us(row.p99Us).padStart(11)}${String(row.failures).padStart(8)}${row.toOne === null ? '' : row.toOne.toFixed(2).padStart(12)}`,
    ),
    `memory per replica: ${r.instanceRssMb} MB resident (one instance, after the load)`,
  ].join('\n');
}

const us = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(2)} ms` : `${Math.round(x)} us`);

export function formatRouterBench(r: RouterBenchResult): string {
  const lines = [
    `router bench: blue/green 50/50, ${r.durationSeconds} s per measurement, median of ${r.rounds} alternating rounds, ${r.runner}, ` +
      `${r.nginx ?? 'no nginx'}, ${r.wrk ?? 'no wrk'}, ${r.cpus} cpus, load ${r.loadAverage.start.join(' ')} -> ${r.loadAverage.end.join(' ')}`,
    'generator   conns  target          req/s      p50      p99  mean/req  failed  /nginx  router CPU/req',
    ...r.rows.map(
      (row) =>
        `${row.generator.padEnd(12)}${String(row.connections).padStart(5)}  ${row.target.padEnd(12)}${String(row.reqPerSec).padStart(9)}` +
        `${us(row.p50Us).padStart(9)}${us(row.p99Us).padStart(9)}${us(row.meanUs).padStart(10)}${String(row.failures).padStart(8)}` +
        `${row.toNginx === null ? '' : row.toNginx.toFixed(2).padStart(8)}${row.cpuUs == null ? '' : us(row.cpuUs).padStart(16)}`,
    ),
  ];
  for (const generator of new Set(r.rows.map((row) => row.generator))) {
    const at = (c: number, t: Target) => r.rows.find((row) => row.generator === generator && row.connections === c && row.target === t);
    const parts: string[] = [];
    const routers = [...new Set(r.rows.map((row) => row.target))].filter((t) => t !== 'direct' && t !== 'nginx');
    for (const t of routers) {
      const one = at(1, t);
      const direct = at(1, 'direct');
      if (one && direct) {
        parts.push(`${t} adds ${Math.round(one.p50Us - direct.p50Us)} us at p50, ${one.meanUs - direct.meanUs} us mean at 1 connection`);
      }
    }
    if (parts.length > 0) lines.push(`${generator}: ${parts.join('; ')}`);
  }
  lines.push(
    'switch under load (blue -> green, 64 connections):',
    ...r.switches.map(
      (s) =>
        `  ${s.router.padEnd(12)} sent ${s.sent}, failed ${s.failed}, command ${s.commandMs} ms, 100% on green after ${s.toNewColorMs} ms`,
    ),
    `memory (RSS after the load): embedded router alone ${r.memoryMb.embedded ?? '?'} MB` +
      r.memoryMb.clusters
        .map((c) =>
          c.workers === 1
            ? `; --workers 1: ${c.primary ?? '?'} MB (one process)`
            : `; --workers ${c.workers}: primary ${c.primary ?? '?'} MB, workers ${c.perWorker.map((m) => m ?? '?').join(' + ')} MB`,
        )
        .join(''),
    `targets: embedded >= ${r.targets.embeddedToNginx} of nginx at 64 and 16 connections, <= ${r.targets.addedP50Us} us added at p50 at 1 connection (wrk), switch <= ${r.targets.switchMs} ms`,
  );
  return lines.join('\n');
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Options every run takes from the command line. */
function commonArgs(): RouterBenchOptions {
  return {
    durationSeconds: arg('--duration') ? Number(arg('--duration')) : undefined,
    rounds: arg('--rounds') ? Number(arg('--rounds')) : undefined,
    connections: arg('--connections') ? arg('--connections')!.split(',').map(Number) : undefined,
    fromSource: process.argv.includes('--from-source'),
    wrk: !process.argv.includes('--no-wrk'),
    autocannon: !process.argv.includes('--no-autocannon'),
  };
}

function fail(what: string): (err: unknown) => void {
  return (err) => {
    process.stderr.write(`${what} failed: ${err instanceof Error && err.stack ? err.stack : String(err)}\n`);
    process.exit(1);
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  if (arg('--replicas')) {
    runReplicaBench({ ...commonArgs(), replicas: arg('--replicas')!.split(',').map(Number) }).then(
      (r) => process.stdout.write(`${formatReplicaBench(r)}\n`),
      fail('replica bench'),
    );
  } else {
    runRouterBench({
      ...commonArgs(),
      baselineModule: arg('--baseline'),
      profileDir: arg('--profile-dir'),
      workers: arg('--workers') ? arg('--workers')!.split(',').map(Number) : undefined,
    }).then((r) => process.stdout.write(`${formatRouterBench(r)}\n`), fail('router bench'));
  }
}
