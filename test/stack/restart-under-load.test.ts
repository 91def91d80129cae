/**
 * Restarts lose nothing (issue 10, item 4): with 1.1.0 promoted to green (the release log says so), `bgserve up`
 * is killed with kill -9 under continuous load from 3 clients and started again on the same state dir. The
 * router (the embedded router's own process, or the managed nginx) is adopted and keeps serving throughout,
 * on the weights of the log: not one request fails and every answer comes from 1.1.0.
 * And tokens across restarts (item 8): the admin token file is rotated between two runs; the instances, which
 * hold the old token, are replaced instead of adopted, and a release goes through.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { alive } from './pids.js';
import { afterAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { WINE_EXAMPLE } from '../../src/model/wine.js';
import { readStackRecordSync, stackRecordPath } from '../../src/stack/stack-record.js';
import { GOOD_BUNDLE } from '../controller/bundles.js';
import { startLoad } from '../controller/stack.js';
import { startCli, stopAll, type Started, freeUpPorts, upArgv, type UpPorts } from '../support/processes.js';
import { writeRelease } from './release-log.js';

/** Every PID any run here recorded (instances, router process, nginx): none may survive the tests. */
const seen = new Set<number>();

async function gone(pids: number[], timeoutMs = 20_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && pids.some(alive)) await new Promise((r) => setTimeout(r, 100));
  return pids.filter(alive);
}

afterAll(async () => {
  await stopAll();
  // SIGTERM first: an nginx master stops its workers then; SIGKILL whatever is left.
  const left = [...seen].filter(alive);
  for (const pid of left) process.kill(pid, 'SIGTERM');
  for (const pid of await gone(left, 5_000)) process.kill(pid, 'SIGKILL');
});

async function exited(proc: Started, timeoutMs = 60_000): Promise<number | null> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return proc.child.exitCode;
  return Promise.race([
    new Promise<number | null>((resolve) => proc.child.once('exit', (code) => resolve(code))),
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`still running after ${timeoutMs} ms:\n${proc.output()}`)), timeoutMs),
    ),
  ]);
}

/** The banner's last line comes once everything is started, recorded and reconciled. */
async function upAndRunning(proc: Started, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!proc.output().includes('Ctrl-C stops everything')) {
    if (proc.child.exitCode !== null || Date.now() > deadline) throw new Error(`bgserve up did not come up:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function recorded(dir: string): Record<string, number> {
  const record = readStackRecordSync(stackRecordPath(dir));
  const pids = Object.fromEntries(Object.entries(record?.processes ?? {}).map(([role, p]) => [role, p!.pid]));
  for (const pid of Object.values(pids)) seen.add(pid);
  return pids;
}

interface VersionLoad {
  sent: number;
  failed: number;
  errors: string[];
  byVersion: Record<string, number>;
  /** Longest time between two consecutive successful answers (ms). */
  longestGapMs: number;
}

/** `clients` keep-alive clients posting /predict until stopped (or 60 s), counting answers by model version. */
function versionLoad(url: string, clients: number): { stop(): Promise<VersionLoad> } {
  const agent = new Agent({ connections: clients, keepAliveTimeout: 30_000 });
  const counts: VersionLoad = { sent: 0, failed: 0, errors: [], byVersion: {}, longestGapMs: 0 };
  const deadline = Date.now() + 60_000;
  let lastOk = Date.now();
  let running = true;
  const body = JSON.stringify(WINE_EXAMPLE);
  const worker = async () => {
    while (running && Date.now() < deadline) {
      counts.sent++;
      try {
        const res = await request(`${url}/predict`, {
          method: 'POST',
          dispatcher: agent,
          headers: { 'content-type': 'application/json' },
          body,
        });
        const text = await res.body.text();
        if (res.statusCode !== 200) throw new Error(`${res.statusCode} ${text.slice(0, 200)}`);
        const version = (JSON.parse(text) as { model?: { version?: string } }).model?.version ?? '?';
        counts.byVersion[version] = (counts.byVersion[version] ?? 0) + 1;
        const now = Date.now();
        counts.longestGapMs = Math.max(counts.longestGapMs, now - lastOk);
        lastOk = now;
      } catch (err) {
        counts.failed++;
        if (counts.errors.length < 10) counts.errors.push((err as Error).message);
      }
    }
  };
  const workers = Array.from({ length: clients }, worker);
  return {
    stop: async () => {
      running = false;
      await Promise.all(workers);
      await agent.close();
      return counts;
    },
  };
}

async function servedVersion(routerUrl: string): Promise<string | undefined> {
  try {
    const res = await request(`${routerUrl}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(WINE_EXAMPLE),
    });
    return ((await res.body.json()) as { model?: { version?: string } }).model?.version;
  } catch {
    return undefined;
  }
}

function rssMiB(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  return Math.round((kb / 1024) * 10) / 10;
}

const ports = freeUpPorts;

function upArgs(p: UpPorts, dir: string, router: string): string[] {
  return upArgv(p, dir, ['--router', router]);
}

describe.each(['embedded', 'nginx'])('kill -9 of `bgserve up --router %s` under load, and up again', (router) => {
  it('adopts the router: 0 failed requests, every answer from the promoted 1.1.0', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bgserve-restart-load-'));
    try {
      await writeRelease(dir, GOOD_BUNDLE, { stableColor: 'blue', status: 'succeeded' });
      const p = await ports();
      const routerUrl = `http://127.0.0.1:${p.router}`;
      const first = startCli(upArgs(p, dir, router));
      await upAndRunning(first);
      const before = recorded(dir);
      const routerRole = router === 'nginx' ? 'nginx' : 'router';
      // The first start reconciles: 1.1.0 loaded on green, which has all the traffic.
      const deadline = Date.now() + 30_000;
      while ((await servedVersion(routerUrl)) !== '1.1.0' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(await servedVersion(routerUrl)).toBe('1.1.0');

      const load = versionLoad(routerUrl, 3);
      let counts: VersionLoad;
      let gapMs = 0;
      let again: Started | undefined;
      try {
        await new Promise((r) => setTimeout(r, 1_000));
        const killedAt = Date.now();
        first.child.kill('SIGKILL');
        await exited(first);
        again = startCli(upArgs(p, dir, router));
        await upAndRunning(again);
        gapMs = Date.now() - killedAt;
        await new Promise((r) => setTimeout(r, 1_500));
      } finally {
        counts = await load.stop();
      }
      const after = recorded(dir);
      const routerRss = after[routerRole] ? rssMiB(after[routerRole]) : NaN;
      console.log(
        `[restart ${router}] sent ${counts.sent}, failed ${counts.failed}, by version ${JSON.stringify(counts.byVersion)}, ` +
          `up down-and-back ${gapMs} ms, longest gap between answers ${counts.longestGapMs} ms, ${routerRole} pid ${after[routerRole]} RSS ${routerRss} MiB`,
      );
      expect(counts.failed, counts.errors.join('\n')).toBe(0);
      expect(Object.keys(counts.byVersion)).toEqual(['1.1.0']);
      expect(counts.sent).toBeGreaterThan(100);
      // The very processes of the first run go on serving: router and both instances adopted.
      expect(Object.keys(before).sort()).toEqual(['blue', 'green', routerRole].sort());
      expect(after).toEqual(before);
      expect(again.output()).toContain(`adopted ${routerRole} (pid ${before[routerRole]}`);

      again.child.kill('SIGTERM');
      expect(await exited(again)).toBe(0);
      expect(await gone(Object.values(after))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 150_000);
});

describe('bgserve up after the admin token file changed', () => {
  it('replaces the instances that hold the old token (not adopted), and a release goes through', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bgserve-token-rotation-'));
    try {
      const p = await ports();
      const first = startCli(upArgs(p, dir, 'embedded'));
      await upAndRunning(first);
      const before = recorded(dir);
      first.child.kill('SIGKILL');
      await exited(first);
      writeFileSync(path.join(dir, 'admin-token'), `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });

      const again = startCli(upArgs(p, dir, 'embedded'));
      await upAndRunning(again);
      const after = recorded(dir);
      expect(again.output()).toContain(`stopped the previous blue (pid ${before.blue}): it refuses the current admin token`);
      expect(again.output()).toContain(`stopped the previous green (pid ${before.green}): it refuses the current admin token`);
      expect(after.blue).not.toBe(before.blue);
      expect(after.green).not.toBe(before.green);
      // The router holds no admin token: it is adopted as usual.
      expect(after.router).toBe(before.router);
      expect(await gone([before.blue, before.green])).toEqual([]);

      const load = await startLoad(`http://127.0.0.1:${p.router}`, 2, 60_000);
      const deploy = startCli(['deploy', GOOD_BUNDLE, '--analysis', '1s', '--wait', '--state-dir', dir], {
        BGSERVE_CONTROL_URL: `http://127.0.0.1:${p.control}`,
      });
      const code = await exited(deploy, 90_000);
      await load.stop();
      expect(code, deploy.output()).toBe(0);
      expect(deploy.output()).toMatch(/status +SUCCEEDED/);

      again.child.kill('SIGTERM');
      expect(await exited(again)).toBe(0);
      expect(await gone(Object.values(after))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 150_000);
});
