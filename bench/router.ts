/**
 * Router benchmark, in one run: autocannon at 64 connections (POST /predict) straight to an instance, through
 * the embedded router and through nginx (same instances); then a switch under load for each router: requests
 * sent and failed, and the time from the switch command until no newly sent request lands on the old color.
 * The embedded router runs in a child process of its own (as in `bgserve up`, not sharing the load
 * generator's event loop); nginx is managed by the nginx driver in a private prefix.
 *
 *   node --import tsx bench/router.ts [--duration 5] [--connections 64]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import { Agent, request } from 'undici';
import { DEFAULT_BUNDLE, type Color } from '../src/config/defaults.js';
import { WINE_EXAMPLE } from '../src/model/wine.js';
import { InstancePair, instanceSpecs, type CliCommand } from '../src/stack/instances.js';
import { startNginxDriver } from '../src/traffic/nginx-driver.js';
import type { Upstreams, Weights } from '../src/traffic/types.js';
import { freePort } from '../test/support/processes.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BODY = JSON.stringify(WINE_EXAMPLE);
export const ROUTER_TARGETS = { embeddedRatio: 0.6, nginxRatio: 0.8, switchMs: 1_000 } as const;

export interface RouterBenchOptions {
  durationSeconds?: number;
  connections?: number;
  /** Seconds of load around each switch (the switch happens after a third of it). */
  switchSeconds?: number;
  /** Run instances and the router from src through tsx even when dist/ is built. */
  fromSource?: boolean;
}

export interface ThroughputRow {
  target: 'direct' | 'embedded' | 'nginx';
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  failures: number;
  /** req/s over direct req/s. */
  ratio: number;
}

export interface SwitchRow {
  router: 'embedded' | 'nginx';
  sent: number;
  failed: number;
  /** How long the switch command took to resolve (it resolves once the change is in effect). */
  commandMs: number;
  /** From the command to the start of the last request that still landed on the old color (0: none did). */
  toNewColorMs: number;
}

export interface RouterBenchResult {
  connections: number;
  durationSeconds: number;
  rows: ThroughputRow[];
  switches: SwitchRow[];
  targets: typeof ROUTER_TARGETS;
  met: { embedded: boolean; nginx: boolean | null; switch: boolean; zeroFailed: boolean };
  runner: 'dist' | 'tsx';
  nginx: string | null;
  loadAverage: number[];
  cpus: number;
}

/** The embedded router in its own process; weights arrive as JSON lines on stdin. */
const ROUTER_CHILD = `
import { createInterface } from 'node:readline';
const { startEmbeddedRouter } = await import(process.env.BGSERVE_ROUTER_MODULE);
const router = await startEmbeddedRouter({ host: '127.0.0.1', port: 0, upstreams: JSON.parse(process.env.BGSERVE_UPSTREAMS) });
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

async function startRouterChild(upstreams: Upstreams, runner: 'dist' | 'tsx'): Promise<RouterChild> {
  const module = runner === 'dist' ? path.join(ROOT, 'dist/traffic/embedded-router.js') : path.join(ROOT, 'src/traffic/embedded-router.ts');
  const args = [...(runner === 'tsx' ? ['--import', 'tsx'] : []), '--input-type=module', '-e', ROUTER_CHILD];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, BGSERVE_ROUTER_MODULE: pathToFileURL(module).href, BGSERVE_UPSTREAMS: JSON.stringify(upstreams) },
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

function cannon(url: string, connections: number, durationSeconds: number): Promise<autocannon.Result> {
  return autocannon({
    url: `${url}/predict`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: BODY,
    connections,
    duration: durationSeconds,
  });
}

async function measure(
  target: ThroughputRow['target'],
  url: string,
  connections: number,
  seconds: number,
): Promise<Omit<ThroughputRow, 'ratio'>> {
  await cannon(url, connections, 1); // warm-up: JIT, keep-alive pools
  const r = await cannon(url, connections, seconds);
  return {
    target,
    reqPerSec: Math.round(r.requests.average),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    failures: r.errors + r.timeouts + r.non2xx,
  };
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
  await setWeights({ blue: 100, green: 0 });
  return { router, sent, failed, commandMs: Math.round(commandMs), toNewColorMs: Math.max(0, Math.round(lastOldStart - switchAt)) };
}

function nginxVersion(): string | null {
  const r = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
  return r.status === 0 ? (r.stderr || r.stdout).trim() : null;
}

export async function runRouterBench(opts: RouterBenchOptions = {}): Promise<RouterBenchResult> {
  const seconds = opts.durationSeconds ?? 5;
  const connections = opts.connections ?? 64;
  const switchSeconds = opts.switchSeconds ?? 3;
  const runner: 'dist' | 'tsx' =
    !opts.fromSource && existsSync(path.join(ROOT, 'dist/cli/main.js')) && existsSync(path.join(ROOT, 'dist/traffic/embedded-router.js'))
      ? 'dist'
      : 'tsx';
  const cli: CliCommand =
    runner === 'dist'
      ? { command: process.execPath, args: [path.join(ROOT, 'dist/cli/main.js')] }
      : { command: process.execPath, args: ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts')] };
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bgserve-bench-router-'));
  const ports = { blue: await freePort(), green: await freePort() };
  const specs = instanceSpecs({
    host: '127.0.0.1',
    ports,
    bundle: path.join(ROOT, DEFAULT_BUNDLE),
    logDir: dir,
    extraArgs: ['--log-level', 'warn', '--drain-delay-ms', '200'],
  });
  const upstreams = { blue: { host: '127.0.0.1', port: ports.blue }, green: { host: '127.0.0.1', port: ports.green } };
  const nginx = nginxVersion();
  const pair = await InstancePair.start(specs, { cli });
  let embedded: RouterChild | undefined;
  let ngx: Awaited<ReturnType<typeof startNginxDriver>> | undefined;
  try {
    embedded = await startRouterChild(upstreams, runner);
    if (nginx) {
      ngx = await startNginxDriver({
        listen: { host: '127.0.0.1', port: await freePort() },
        upstreams,
        mode: { kind: 'managed', prefix: path.join(dir, 'nginx') },
      });
    }
    const raw = [
      await measure('direct', pair.instances.blue.url, connections, seconds),
      await measure('embedded', embedded.url, connections, seconds),
    ];
    if (ngx) raw.push(await measure('nginx', ngx.url, connections, seconds));
    const direct = raw[0].reqPerSec;
    const rows = raw.map((r) => ({ ...r, ratio: Math.round((r.reqPerSec / direct) * 100) / 100 }));

    const router = embedded;
    const switches = [await switchUnderLoad('embedded', router.url, connections, switchSeconds, (w) => router.setWeights(w))];
    if (ngx) {
      const driver = ngx;
      switches.push(
        await switchUnderLoad('nginx', driver.url, connections, switchSeconds, async (w) => {
          const started = performance.now();
          await driver.setWeights(w);
          return performance.now() - started;
        }),
      );
    }
    const ratio = (t: ThroughputRow['target']) => rows.find((r) => r.target === t)?.ratio;
    return {
      connections,
      durationSeconds: seconds,
      rows,
      switches,
      targets: ROUTER_TARGETS,
      met: {
        embedded: (ratio('embedded') ?? 0) >= ROUTER_TARGETS.embeddedRatio,
        nginx: ngx ? (ratio('nginx') ?? 0) >= ROUTER_TARGETS.nginxRatio : null,
        switch: switches.every((s) => s.commandMs <= ROUTER_TARGETS.switchMs && s.toNewColorMs <= ROUTER_TARGETS.switchMs),
        zeroFailed: switches.every((s) => s.failed === 0) && rows.every((r) => r.failures === 0),
      },
      runner,
      nginx,
      loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
      cpus: os.cpus().length,
    };
  } finally {
    await ngx?.close();
    await embedded?.stop();
    await pair.stop(5_000);
    await rm(dir, { recursive: true, force: true });
  }
}

export function formatRouterBench(r: RouterBenchResult): string {
  const lines = [
    `router bench: ${r.connections} connections, ${r.durationSeconds} s each, ${r.runner}, ${r.nginx ?? 'no nginx'}, ${r.cpus} cpus, load ${r.loadAverage.join(' ')}`,
    'target     req/s   p50 ms  p99 ms  failed  ratio',
    ...r.rows.map(
      (row) =>
        `${row.target.padEnd(9)}${String(row.reqPerSec).padStart(7)}${String(row.p50Ms).padStart(9)}${String(row.p99Ms).padStart(8)}${String(row.failures).padStart(8)}${row.ratio.toFixed(2).padStart(7)}`,
    ),
    'switch under load (blue -> green):',
    ...r.switches.map(
      (s) =>
        `  ${s.router.padEnd(9)} sent ${s.sent}, failed ${s.failed}, command ${s.commandMs} ms, 100% on green after ${s.toNewColorMs} ms`,
    ),
    `targets: embedded >= ${r.targets.embeddedRatio} (${r.met.embedded ? 'met' : 'MISSED'}), nginx >= ${r.targets.nginxRatio} (${r.met.nginx === null ? 'not run' : r.met.nginx ? 'met' : 'MISSED'}), switch <= ${r.targets.switchMs} ms (${r.met.switch ? 'met' : 'MISSED'}), 0 failed (${r.met.zeroFailed ? 'met' : 'MISSED'})`,
  ];
  return lines.join('\n');
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  runRouterBench({
    durationSeconds: arg('--duration') ? Number(arg('--duration')) : undefined,
    connections: arg('--connections') ? Number(arg('--connections')) : undefined,
    fromSource: process.argv.includes('--from-source'),
  }).then(
    (r) => process.stdout.write(`${formatRouterBench(r)}\n`),
    (err: unknown) => {
      process.stderr.write(`router bench failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
