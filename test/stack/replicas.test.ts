/**
 * Colors as pools of real processes (issue 13): `bgserve up --replicas 3` runs three `serve` replicas per color
 * on consecutive ports, records each in stack.json, and releases go through all of them under a bounded client
 * load that must see no failed request:
 *   - a canary release is promoted with the bundle on all 3 green replicas (each replica's own /health says so);
 *   - kill -9 of an idle-color replica mid-release: `up` restarts it, the controller puts it on the release's
 *     bundle, and the release carries on (2 of 3 ready is the color's minimum) to its promotion;
 *   - kill -9 of a replica of the active color under load: its requests are replayed on its siblings (0 failed), and
 *     it comes back on the color's bundle;
 *   - kill -9 of 2 of the 3 replicas of the new color mid-release: below its minimum (all but one ready), the
 *     release rolls back; the replicas come back on the color's bundle;
 *   - a replica that refuses the bundle (restarted with a rotated admin token the controller does not have) refuses
 *     the release: nothing is half-loaded, the other replicas are put back on what they served, the error names it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { alive } from './pids.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusReport } from '../../src/control/traffic-routes.js';
import type { ReleaseState } from '../../src/release/types.js';
import { readStackRecordSync, stackRecordPath } from '../../src/stack/stack-record.js';
import { GOOD_BUNDLE, deriveBundle } from '../controller/bundles.js';
import { type Load, startLoad, waitFor } from '../controller/stack.js';
import { freePort, startCli, stopProcess, type Started } from '../support/processes.js';

const N = 3;
let dir: string;
let up: Started;
let load: Load | undefined;
let controlUrl: string;
let routerUrl: string;
let token: string;
const ports = { blue: 0, green: 0 };
const seen = new Set<number>();

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** `n` consecutive free loopback ports. */
async function freeRun(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    let ok = true;
    for (let p = base; p < base + n && ok; p++) ok = await portFree(p);
    if (ok) return base;
  }
  throw new Error(`no ${n} consecutive free ports`);
}

function recorded(): Record<string, { pid: number; port: number }> {
  const record = readStackRecordSync(stackRecordPath(dir));
  const out: Record<string, { pid: number; port: number }> = {};
  for (const [role, p] of Object.entries(record?.processes ?? {})) {
    if (!p) continue;
    out[role] = { pid: p.pid, port: p.port };
    seen.add(p.pid);
  }
  return out;
}

async function api<T>(method: string, route: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${controlUrl}/api${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as T };
}

async function version(port: number): Promise<string | null> {
  try {
    const body = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { model?: { version: string } };
    return body.model?.version ?? null;
  } catch {
    return null;
  }
}

/** Waits until `up` has started `role` again (a new PID on its port, recorded), then until it serves `want`. */
async function cameBack(role: string, victim: { pid: number; port: number }, want: (v: string | null) => boolean): Promise<void> {
  await waitFor(`${role} restarted`, () => {
    const now = recorded()[role];
    return now && now.pid !== victim.pid && alive(now.pid);
  });
  const deadline = Date.now() + 30_000;
  while (!want(await version(victim.port))) {
    if (Date.now() > deadline) throw new Error(`${role} did not come back as expected:\n${up.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const colorPorts = (color: 'blue' | 'green') => Array.from({ length: N }, (_, i) => ports[color] + i);

async function finished(id: string, timeoutMs = 90_000): Promise<ReleaseState> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await api<{ release: ReleaseState }>('GET', `/releases/${id}`);
    if (!['running', 'paused'].includes(body.release.status)) return body.release;
    if (Date.now() > deadline) throw new Error(`release ${id} still ${body.release.status} (${body.release.phase})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bgserve-replicas-'));
  ports.blue = await freeRun(2 * N);
  ports.green = ports.blue + N;
  const router = await freePort();
  const control = await freePort();
  routerUrl = `http://127.0.0.1:${router}`;
  controlUrl = `http://127.0.0.1:${control}`;
  up = startCli([
    'up',
    ...['--replicas', String(N), '--port', String(router), '--blue-port', String(ports.blue), '--green-port', String(ports.green)],
    ...['--control-port', String(control), '--state-dir', dir, '--bundle-root', dir],
  ]);
  const deadline = Date.now() + 90_000;
  while (!up.output().includes('Ctrl-C stops everything')) {
    if (up.child.exitCode !== null || Date.now() > deadline) throw new Error(`bgserve up did not come up:\n${up.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  token = readFileSync(path.join(dir, 'token'), 'utf8').trim();
  // Two sequential clients for the whole file, counted per test.
  load = await startLoad(routerUrl, 2, 300_000);
}, 120_000);

afterAll(async () => {
  await load?.stop();
  if (up) await stopProcess(up, 30_000);
  for (const pid of [...seen].filter(alive)) process.kill(pid, 'SIGKILL');
  await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('bgserve up --replicas 3', () => {
  it('starts 3 replicas per color on consecutive ports, each in stack.json and in status', async () => {
    const roles = recorded();
    for (const color of ['blue', 'green'] as const) {
      expect([color, `${color}-2`, `${color}-3`].map((r) => roles[r]?.port)).toEqual(colorPorts(color));
    }
    const { body } = await api<StatusReport>('GET', '/status');
    expect(body.colors.green.replicas?.map((r) => r.address)).toEqual(colorPorts('green').map((p) => `127.0.0.1:${p}`));
    expect(body.colors.blue.replicas?.every((r) => r.ready && r.model?.version === '1.0.0')).toBe(true);
    expect(up.output()).toContain(`replica 3/3`);
  });

  it('promotes a canary release with the bundle on all 3 green replicas, 0 failed requests', async () => {
    const failedBefore = load?.failed ?? 0;
    const { status, body } = await api<{ release: ReleaseState }>('POST', '/releases', {
      bundle: GOOD_BUNDLE,
      strategy: 'canary',
      steps: [50],
      analysisMs: 2_000,
    });
    expect(status).toBe(201);
    const done = await finished(body.release.spec.id);
    expect(done.status, done.reason ?? '').toBe('succeeded');
    for (const p of colorPorts('green')) expect(await version(p)).toBe('1.1.0');
    expect((load?.failed ?? 0) - failedBefore, load?.failures.join('\n')).toBe(0);
  }, 120_000);

  it('kill -9 of an idle replica mid-release: it comes back on the new bundle and the release is promoted', async () => {
    const failedBefore = load?.failed ?? 0;
    const next = await deriveBundle(dir, { version: '1.2.0' });
    const { body } = await api<{ release: ReleaseState }>('POST', '/releases', {
      bundle: next,
      strategy: 'canary',
      steps: [30, 60],
      analysisMs: 3_000,
    });
    const id = body.release.spec.id;
    const deadline = Date.now() + 60_000;
    while ((await api<{ release: ReleaseState }>('GET', `/releases/${id}`)).body.release.phase !== 'step') {
      if (Date.now() > deadline) throw new Error('no canary step');
      await new Promise((r) => setTimeout(r, 100));
    }
    const victim = recorded()['blue-2'];
    process.kill(victim.pid, 'SIGKILL');
    // Restarted by `up` (a new PID on the same port), then put on the release's bundle by the controller.
    await cameBack('blue-2', victim, (v) => v === '1.2.0');
    const done = await finished(id);
    expect(done.status, done.reason ?? '').toBe('succeeded');
    for (const p of colorPorts('blue')) expect(await version(p)).toBe('1.2.0');
    expect((load?.failed ?? 0) - failedBefore, load?.failures.join('\n')).toBe(0);
  }, 150_000);

  it('kill -9 of a replica of the active color under load: 0 failed requests, and it comes back on its bundle', async () => {
    const failedBefore = load?.failed ?? 0;
    const sentBefore = load?.sent ?? 0;
    const victim = recorded()['blue-3'];
    process.kill(victim.pid, 'SIGKILL');
    await cameBack('blue-3', victim, (v) => v === '1.2.0');
    await new Promise((r) => setTimeout(r, 1_000));
    expect((load?.sent ?? 0) - sentBefore).toBeGreaterThan(50);
    expect((load?.failed ?? 0) - failedBefore, load?.failures.join('\n')).toBe(0);
  }, 90_000);

  it('kill -9 of 2 of 3 green replicas mid-release: green is below its minimum, and the release rolls back', async () => {
    const failedBefore = load?.failed ?? 0;
    const next = await deriveBundle(dir, { version: '1.3.0' });
    const { body } = await api<{ release: ReleaseState }>('POST', '/releases', {
      bundle: next,
      strategy: 'canary',
      steps: [30, 60],
      analysisMs: 5_000,
    });
    const id = body.release.spec.id;
    const deadline = Date.now() + 60_000;
    while ((await api<{ release: ReleaseState }>('GET', `/releases/${id}`)).body.release.phase !== 'step') {
      if (Date.now() > deadline) throw new Error('no canary step');
      await new Promise((r) => setTimeout(r, 100));
    }
    const victims = ['green', 'green-2'].map((role) => ({ role, ...recorded()[role] }));
    for (const v of victims) process.kill(v.pid, 'SIGKILL');
    const done = await finished(id);
    expect(done.status).toBe('rolled_back');
    expect(done.reason).toMatch(/green/);
    const { body: status } = await api<StatusReport>('GET', '/status');
    expect(status.weights).toEqual({ blue: 100, green: 0 });
    // Both come back, put on green's bundle (the rolled-back one stays loaded on the idle color).
    for (const v of victims) await cameBack(v.role, v, (x) => x === '1.3.0');
    expect((load?.failed ?? 0) - failedBefore, load?.failures.join('\n')).toBe(0);
  }, 150_000);

  it('one replica refusing the bundle refuses the release, names it, and leaves nothing half-loaded', async () => {
    const failedBefore = load?.failed ?? 0;
    // green-3 restarts with a rotated admin token the running controller does not have: its admin API refuses.
    writeFileSync(path.join(dir, 'admin-token'), 'a-rotated-token-the-controller-never-read', { mode: 0o600 });
    const victim = recorded()['green-3'];
    process.kill(victim.pid, 'SIGKILL');
    await cameBack('green-3', victim, (v) => v !== null);
    const before = await Promise.all(colorPorts('green').map(version));
    const next = await deriveBundle(dir, { version: '1.4.0' });
    const { body } = await api<{ release: ReleaseState }>('POST', '/releases', { bundle: next, strategy: 'bluegreen', analysisMs: 1_000 });
    const done = await finished(body.release.spec.id);
    expect(done.status).toBe('failed');
    expect(done.reason).toContain(`green replica 127.0.0.1:${victim.port}: 401`);
    expect(await Promise.all(colorPorts('green').map(version))).toEqual(before);
    expect(before).toEqual(['1.3.0', '1.3.0', '1.0.0']);
    const { body: status } = await api<StatusReport>('GET', '/status');
    expect(status.weights).toEqual({ blue: 100, green: 0 });
    expect((load?.failed ?? 0) - failedBefore, load?.failures.join('\n')).toBe(0);
  }, 120_000);
});
