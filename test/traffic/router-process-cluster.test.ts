/**
 * The router process with two workers (`bgserve router --workers 2`, node:cluster), as `up` spawns it: every
 * change resolves only once both workers apply it, the routing features work whichever worker a connection
 * lands on, metrics are summed exactly, a passive failure one worker saw reaches the health report, a killed
 * worker is replaced on the current state, and a killed primary leaves nothing listening.
 */
import net from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREVIEW_HEADER, PREVIEW_TOKEN_HEADER } from '../../src/config/defaults.js';
import { ROUTER_METRICS } from '../../src/config/metric-names.js';
import { startRouterProcess, type RouterProcess, type RouterSpec } from '../../src/stack/router-process.js';
import { RemoteRouter } from '../../src/traffic/remote-router.js';
import { ROUTER_CONTROL_PATH, type RouterSnapshot } from '../../src/traffic/router-control.js';
import { freePort } from '../support/processes.js';
import { startColorUpstream, type ColorUpstream } from './fixtures.js';
import { TSX_CLI } from './scenarios.js';

const TOKEN = 'router-process-cluster-token-0123456789';
const PREVIEW = 'router-process-cluster-preview-0123456789';
const CONNECTIONS = 16;
let dir: string;
let proc: RouterProcess | undefined;
let remote: RemoteRouter;
let blue: ColorUpstream;
let green: ColorUpstream;
let spec: RouterSpec;
let url: string;
const clients: Client[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bgserve-router-cluster-'));
  blue = await startColorUpstream('blue');
  green = await startColorUpstream('green');
  await writeFile(path.join(dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
  await writeFile(path.join(dir, 'preview'), `${PREVIEW}\n`, { mode: 0o600 });
  spec = {
    kind: 'embedded',
    host: '127.0.0.1',
    port: await freePort(),
    upstreams: { blue: [{ host: '127.0.0.1', port: blue.port }], green: [{ host: '127.0.0.1', port: green.port }] },
    controlTokenFile: path.join(dir, 'token'),
    readyFile: path.join(dir, 'ready.json'),
    logFile: path.join(dir, 'router.log'),
    previewTokenFile: path.join(dir, 'preview'),
    workers: 2,
  };
  proc = await startRouterProcess(spec, { weights: { blue: 100, green: 0 } }, TSX_CLI);
  url = `http://127.0.0.1:${spec.port}`;
  remote = await RemoteRouter.connect({ url, controlUrl: `http://127.0.0.1:${proc.controlPort}`, token: TOKEN, refreshMs: 50 });
  // One connection each: the primary hands connections to the workers in turn, so both serve these.
  for (let i = 0; i < CONNECTIONS; i++) clients.push(new Client(url, { pipelining: 0 }));
}, 30_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await remote?.close();
  await proc?.stop();
  await Promise.all([blue, green].filter(Boolean).map((u) => u.close()));
  await rm(dir, { recursive: true, force: true });
});

async function snapshot(): Promise<RouterSnapshot> {
  const res = await request(`http://127.0.0.1:${proc!.controlPort}${ROUTER_CONTROL_PATH}`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  expect(res.statusCode).toBe(200);
  return (await res.body.json()) as RouterSnapshot;
}

/** `rounds` requests on every client connection at once; the colors that answered, counted. */
async function colors(rounds: number, headers: Record<string, string> = {}): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  await Promise.all(
    clients.map(async (client) => {
      for (let i = 0; i < rounds; i++) {
        const res = await client.request({
          path: '/predict',
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: '{}',
        });
        const body = (await res.body.json()) as { color?: string };
        const key = res.statusCode === 200 ? (body.color ?? '?') : String(res.statusCode);
        counts[key] = (counts[key] ?? 0) + 1;
      }
    }),
  );
  return counts;
}

async function requestsTotal(): Promise<number> {
  const text = await remote.metrics.metrics();
  let total = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${ROUTER_METRICS.requests}{`)) total += Number(line.split(' ').pop());
  return total;
}

describe('the router process with two workers', () => {
  it('runs a primary and two workers, all serving the initial split', async () => {
    const snap = await snapshot();
    expect(snap.pid).toBe(proc!.pid);
    expect(snap.workers).toHaveLength(2);
    expect(new Set(snap.workers).size).toBe(2);
    expect(snap.workers).not.toContain(snap.pid);
    expect(await colors(3)).toEqual({ blue: 3 * CONNECTIONS });
  });

  it('a change is in effect on every worker once it resolves: each switch, then every request on every connection', async () => {
    for (const to of ['green', 'blue', 'green', 'blue'] as const) {
      await remote.setWeights(to === 'green' ? { blue: 0, green: 100 } : { blue: 100, green: 0 });
      expect(await colors(2)).toEqual({ [to]: 2 * CONNECTIONS });
    }
  });

  it('counts every request exactly once, summed over the workers', async () => {
    const before = await requestsTotal();
    await colors(5);
    expect((await requestsTotal()) - before).toBe(5 * CONNECTIONS);
    const text = await remote.metrics.metrics();
    // Gauges are not summed: the weight is the one all workers have, not twice it.
    expect(text).toMatch(new RegExp(`${ROUTER_METRICS.weight}\\{color="blue"\\} 100\\n`));
    expect(text).toMatch(new RegExp(`${ROUTER_METRICS.upstreamHealthy}\\{color="green"\\} 1\\n`));
  });

  it('routes the preview header (with its token) to that color on every worker, and refuses it without', async () => {
    expect(await colors(2, { [PREVIEW_HEADER]: 'green', [PREVIEW_TOKEN_HEADER]: PREVIEW })).toEqual({ green: 2 * CONNECTIONS });
    expect(await colors(1, { [PREVIEW_HEADER]: 'green' })).toEqual({ '403': CONNECTIONS });
  });

  it('mirrors and pins sticky keys on every worker', async () => {
    await remote.setMirror({ target: 'green', percent: 100 });
    const mirroredBefore = green.mirrored;
    await colors(2);
    const deadline = Date.now() + 5_000;
    while (green.mirrored - mirroredBefore < 2 * CONNECTIONS && Date.now() < deadline) await sleep(20);
    expect(green.mirrored - mirroredBefore).toBe(2 * CONNECTIONS);
    await remote.setMirror({ target: null, percent: 0 });

    await remote.setWeights({ blue: 50, green: 50 });
    await remote.setSticky({ header: 'x-user' });
    for (const user of ['ann', 'bob', 'cy', 'dee']) {
      const seen = await colors(2, { 'x-user': user });
      expect(Object.keys(seen)).toHaveLength(1);
    }
    await remote.setSticky(null);
    await remote.setWeights({ blue: 100, green: 0 });
  });

  it('replays a failed request on the other color, and the failure one worker saw reaches the health report', async () => {
    blue.failNext = { status: 503, count: 1 };
    const res = await request(`${url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.statusCode).toBe(200);
    expect(((await res.body.json()) as { color: string }).color).toBe('green');
    const snap = await snapshot();
    expect(snap.health.blue).toMatchObject({ healthy: false, lastError: expect.stringContaining('503') });
    expect(snap.health.blue.replicas[0]).toMatchObject({ healthy: false });
    // The passive window (2 s) passes and blue is back in every worker.
    const deadline = Date.now() + 5_000;
    while (!(await snapshot()).health.blue.healthy && Date.now() < deadline) await sleep(100);
    expect((await snapshot()).health.blue.healthy).toBe(true);
  });

  it("replaces a color's pool on every worker", async () => {
    const second = await startColorUpstream('green');
    try {
      const pool = [
        { host: '127.0.0.1', port: green.port },
        { host: '127.0.0.1', port: second.port },
      ];
      await remote.setUpstreams({ blue: spec.upstreams.blue, green: pool });
      await remote.setWeights({ blue: 0, green: 100 });
      expect((await snapshot()).health.green.replicas.map((r) => r.address)).toEqual(pool.map((u) => `${u.host}:${u.port}`));
      const before = second.predicts;
      expect(await colors(2)).toEqual({ green: 2 * CONNECTIONS });
      expect(second.predicts - before).toBeGreaterThan(0);
      await remote.setUpstreams(spec.upstreams);
      const after = second.predicts;
      expect(await colors(2)).toEqual({ green: 2 * CONNECTIONS });
      expect(second.predicts).toBe(after);
    } finally {
      await remote.setUpstreams(spec.upstreams);
      await second.close();
    }
  });

  it('a worker killed with -9 under load is replaced on the current state and serves again', async () => {
    await remote.setWeights({ blue: 0, green: 100 });
    const [victim, survivor] = (await snapshot()).workers!;
    let ok = 0;
    let failed = 0;
    let stop = false;
    // Bounded load: four connections for at most a few seconds.
    const load = Promise.all(
      Array.from({ length: 4 }, async () => {
        const deadline = Date.now() + 6_000;
        while (!stop && Date.now() < deadline) {
          try {
            const res = await request(`${url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
            await res.body.dump();
            if (res.statusCode === 200) ok++;
            else failed++;
          } catch {
            failed++;
          }
        }
      }),
    );
    await sleep(300);
    process.kill(victim, 'SIGKILL');
    let workers: number[] = [];
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      workers = (await snapshot()).workers ?? [];
      if (workers.length === 2 && !workers.includes(victim)) break;
      await sleep(100);
    }
    const okAtRestart = ok;
    await sleep(300);
    stop = true;
    await load;
    expect(workers).toHaveLength(2);
    expect(workers).toContain(survivor);
    expect(workers).not.toContain(victim);
    expect(ok).toBeGreaterThan(okAtRestart);
    // Only what the dead worker had in flight may be lost (one per connection at most).
    expect(failed).toBeLessThanOrEqual(4);
    // Fresh connections reach the new worker too: all green, as set before it started.
    await Promise.all(clients.map((c) => c.close()));
    clients.length = 0;
    for (let i = 0; i < CONNECTIONS; i++) clients.push(new Client(url, { pipelining: 0 }));
    expect(await colors(2)).toEqual({ green: 2 * CONNECTIONS });
  }, 30_000);

  it('a primary killed with -9 leaves no worker behind and nothing listening on the port', async () => {
    const { workers } = await snapshot();
    proc!.killNow();
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    const refused = () =>
      new Promise<boolean>((resolve) => {
        const socket = net.connect(spec.port, '127.0.0.1');
        socket.once('connect', () => {
          socket.destroy();
          resolve(false);
        });
        socket.once('error', () => resolve(true));
      });
    const deadline = Date.now() + 5_000;
    while ((workers!.some(alive) || !(await refused())) && Date.now() < deadline) await sleep(50);
    expect(workers!.filter(alive)).toEqual([]);
    expect(await refused()).toBe(true);
  });
});

describe('the router process with --workers 1', () => {
  it('is one process, as before workers: no worker PIDs, and it serves', async () => {
    const one: RouterSpec = {
      ...spec,
      port: await freePort(),
      readyFile: path.join(dir, 'ready-1.json'),
      logFile: path.join(dir, 'router-1.log'),
      workers: 1,
    };
    const single = await startRouterProcess(one, { weights: { blue: 0, green: 100 } }, TSX_CLI);
    try {
      const res = await request(`http://127.0.0.1:${single.controlPort}${ROUTER_CONTROL_PATH}`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      const snap = (await res.body.json()) as RouterSnapshot;
      expect(snap.pid).toBe(single.pid);
      expect(snap.workers).toBeUndefined();
      const answer = await request(`http://127.0.0.1:${one.port}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      expect(((await answer.body.json()) as { color: string }).color).toBe('green');
    } finally {
      await single.stop();
    }
  }, 30_000);
});
