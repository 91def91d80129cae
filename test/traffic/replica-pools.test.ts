/**
 * Colors as pools, the same for both routers (the embedded one, a real managed nginx): a color's share spread
 * over its replicas, a replica that dies or fails taken out of rotation with its requests replayed on the same
 * color, and pools replaced live. Replicas are processes of their own (kill -9 is real); load is bounded.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Color } from '../../src/config/defaults.js';
import { startEmbeddedRouter } from '../../src/traffic/embedded-router.js';
import { startNginxDriver } from '../../src/traffic/nginx-driver.js';
import type { DriverKind, TrafficDriver, Upstreams } from '../../src/traffic/types.js';
import { freePort } from '../support/processes.js';
import { killAllReplicas, startReplica, type ReplicaProcess } from './replica-process.js';

interface Tally {
  sent: number;
  failed: string[];
  /** Answers by replica name. */
  by: Record<string, number>;
}

/** Four keep-alive clients posting predictions until `fn` resolves (and at most 20 s). */
async function underLoad(url: string, fn: (tally: Tally) => Promise<void>): Promise<Tally> {
  const agent = new Agent({ connections: 4, keepAliveTimeout: 60_000 });
  const tally: Tally = { sent: 0, failed: [], by: {} };
  const deadline = Date.now() + 20_000;
  let stop = false;
  const worker = async () => {
    while (!stop && Date.now() < deadline) {
      tally.sent++;
      try {
        const res = await request(`${url}/predict`, {
          method: 'POST',
          dispatcher: agent,
          headers: { 'content-type': 'application/json' },
          body: '{"alcohol":9.4}',
        });
        const body = (await res.body.json()) as { instance?: string };
        if (res.statusCode === 200 && body.instance) tally.by[body.instance] = (tally.by[body.instance] ?? 0) + 1;
        else tally.failed.push(`${res.statusCode} ${JSON.stringify(body)}`);
      } catch (err) {
        tally.failed.push(String((err as Error).cause ?? err));
      }
    }
  };
  const load = Promise.all([worker(), worker(), worker(), worker()]);
  try {
    await fn(tally);
  } finally {
    stop = true;
    await load;
    await agent.close();
  }
  return tally;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Answers per replica between two tallies. */
function since(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, n] of Object.entries(after)) out[name] = n - (before[name] ?? 0);
  return out;
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 8_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(25);
  }
}

describe.each<DriverKind>(['embedded', 'nginx'])('%s router over pools of 3 replicas', (kind) => {
  const pool: Record<Color, ReplicaProcess[]> = { blue: [], green: [] };
  let router: TrafficDriver;
  let prefix: string;

  const upstreamsOf = (blue: ReplicaProcess[], green: ReplicaProcess[] = pool.green): Upstreams => ({
    blue: blue.map((r) => ({ host: '127.0.0.1', port: r.port })),
    green: green.map((r) => ({ host: '127.0.0.1', port: r.port })),
  });
  const replicaHealth = (r: ReplicaProcess) => router.health()[r.color].replicas.find((h) => h.address === `127.0.0.1:${r.port}`);
  const greenAnswers = (t: Tally) => pool.green.reduce((n, r) => n + (t.by[r.name] ?? 0), 0);

  beforeAll(async () => {
    for (const color of ['blue', 'green'] as const) {
      for (let i = 1; i <= 3; i++) pool[color].push(await startReplica(`${color}-${i}`, color));
    }
    const upstreams = upstreamsOf(pool.blue);
    const health = { intervalMs: 100 };
    prefix = await mkdtemp(path.join(tmpdir(), 'bgserve-pools-'));
    router =
      kind === 'nginx'
        ? await startNginxDriver({
            listen: { host: '127.0.0.1', port: await freePort() },
            upstreams,
            mode: { kind: 'managed', prefix },
            render: { workerProcesses: 1 },
            health,
          })
        : await startEmbeddedRouter({ host: '127.0.0.1', port: 0, upstreams, health });
  }, 30_000);

  afterEach(async () => {
    for (const r of pool.blue)
      if (r.proc.exitCode === null && r.proc.signalCode === null) await r.setMode({ status: 200, ready: true, delayMs: 0 });
  });

  afterAll(async () => {
    await router?.close();
    await killAllReplicas();
    await rm(prefix, { recursive: true, force: true });
  });

  it('spreads the active color over all 3 replicas and reports each one', async () => {
    const answered = (t: Tally) => Object.values(t.by).reduce((a, b) => a + b, 0);
    const t = await underLoad(router.url, (tally) => until('150 answers', () => answered(tally) >= 150, 15_000));
    expect(t.failed).toEqual([]);
    const blue = pool.blue.map((r) => t.by[r.name] ?? 0);
    const total = blue.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThanOrEqual(150);
    // Least outstanding (least_conn in nginx) hands a replica whose process gets less CPU on a busy machine fewer
    // requests by design, so a third each is not the claim (CI once saw 13.5%); every replica taking a real share is.
    for (const n of blue) expect(n / total).toBeGreaterThan(0.05);
    expect(greenAnswers(t)).toBe(0);
    const report = router.health();
    expect(report.blue.replicas.map((r) => r.address).sort()).toEqual(pool.blue.map((r) => `127.0.0.1:${r.port}`).sort());
    expect(report.blue.replicas.every((r) => r.healthy)).toBe(true);
    expect(report.green.replicas).toHaveLength(3);
  }, 20_000);

  // Embedded only: nginx's least_conn is per worker, and nginx replays a 500 on the other color (docs/traffic.md).
  if (kind === 'embedded')
    it('sends a slow replica fewer requests (least outstanding; round-robin would give it a third)', async () => {
      const slow = pool.blue[0];
      await slow.setMode({ delayMs: 200 });
      const t = await underLoad(router.url, () => sleep(1_500));
      expect(t.failed).toEqual([]);
      const total = pool.blue.reduce((n, r) => n + (t.by[r.name] ?? 0), 0);
      expect((t.by[slow.name] ?? 0) / total).toBeLessThan(0.25);
    }, 20_000);

  it('replays a replica answering 503 on the same color, takes it out of rotation, and the other color sees none', async () => {
    const bad = pool.blue[0];
    const before = await bad.stats();
    await bad.setMode({ status: 503 });
    const t = await underLoad(router.url, () => sleep(1_200));
    expect(t.failed).toEqual([]);
    expect((await bad.stats()).predicts - before.predicts).toBeGreaterThan(0);
    expect(t.by[bad.name] ?? 0).toBe(0);
    expect(greenAnswers(t)).toBe(0);
    expect((t.by[pool.blue[1].name] ?? 0) + (t.by[pool.blue[2].name] ?? 0)).toBe(t.sent);
  }, 20_000);

  // Embedded only: nginx's least_conn is per worker, and nginx replays a 500 on the other color (docs/traffic.md).
  if (kind === 'embedded')
    it('replays a replica answering 500 on the same color (the other color sees none)', async () => {
      const bad = pool.blue[1];
      const before = await bad.stats();
      await bad.setMode({ status: 500 });
      const t = await underLoad(router.url, () => sleep(1_000));
      expect(t.failed).toEqual([]);
      expect((await bad.stats()).predicts - before.predicts).toBeGreaterThan(0);
      expect(greenAnswers(t)).toBe(0);
    }, 20_000);

  it('survives kill -9 of an active replica under load with 0 failures, drops it, and takes it back when it returns', async () => {
    const victim = pool.blue[2];
    const t = await underLoad(router.url, async (tally) => {
      await sleep(400);
      await victim.kill('SIGKILL');
      await until('the dead replica out of rotation', () => replicaHealth(victim)?.healthy === false);
      const dead = { ...tally.by };
      await sleep(600);
      expect(since(dead, tally.by)[victim.name] ?? 0).toBe(0);
      // Back on the same port, as a restarted replica is.
      const back = await startReplica(victim.name, 'blue', victim.port);
      pool.blue[2] = back;
      await until('the replica back in rotation', () => replicaHealth(back)?.healthy === true);
      const returned = { ...tally.by };
      await until('the returned replica answering again', () => (since(returned, tally.by)[back.name] ?? 0) > 5);
    });
    expect(t.failed).toEqual([]);
    expect(greenAnswers(t)).toBe(0);
  }, 30_000);

  // nginx applies a pool change with a graceful reload, whose old workers close idle keep-alive client connections:
  // a POST written on one at that instant is cut (ECONNRESET), as with any reload. Only connection cuts, then, and at
  // most one per client connection and reload; every answer nginx gave is a 200 from the right replicas.
  it('setUpstreams removes and adds a replica under load (embedded: 0 failures; nginx: only reload cuts)', async () => {
    const [a, b, c] = pool.blue;
    const t = await underLoad(router.url, async (tally) => {
      await sleep(300);
      await router.setUpstreams(upstreamsOf([a, b]));
      expect(router.health().blue.replicas).toHaveLength(2);
      // What was in flight on it when it left still finishes there; nothing new after.
      await sleep(200);
      const removed = { ...tally.by };
      await sleep(600);
      expect(since(removed, tally.by)[c.name] ?? 0).toBe(0);
      await router.setUpstreams(upstreamsOf([a, b, c]));
      const added = { ...tally.by };
      await until('the added replica answering', () => (since(added, tally.by)[c.name] ?? 0) > 5);
    });
    if (kind === 'embedded') expect(t.failed).toEqual([]);
    else {
      expect(t.failed.length).toBeLessThanOrEqual(2 * 4);
      for (const f of t.failed) expect(f).toMatch(/ECONNRESET|other side closed|socket/i);
    }
    expect(greenAnswers(t)).toBe(0);
    expect(router.health().blue.replicas).toHaveLength(3);
  }, 30_000);

  it('sends the whole share to the other color when a color has no replica left, and refuses a bad pool', async () => {
    await router.setUpstreams(upstreamsOf([]));
    expect(router.health().blue).toMatchObject({ healthy: false, replicas: [] });
    const t = await underLoad(router.url, () => sleep(500));
    expect(t.failed).toEqual([]);
    expect(greenAnswers(t)).toBe(t.sent);
    await expect(router.setUpstreams({ blue: [{ host: '127.0.0.1', port: 0 }], green: [] })).rejects.toThrow(/not valid/);
    await router.setUpstreams(upstreamsOf(pool.blue));
    await until('blue back', () => router.health().blue.healthy);
  }, 30_000);
});
