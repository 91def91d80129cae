/**
 * (c) kill -9 of the controller mid-release: `bgserve up` (router + control API + release controller in one
 * process) is killed while a canary holds 50% on blue; `up` again on the same state directory, with nothing
 * stopped by hand, adopts the instances the killed `up` left running, rolls the release back and says so in an
 * event; the stable color, which kept its model, has 100% of the traffic with no mirror. Then the whole stack
 * dies at once (up and instances, as in a reboot): the next `up` starts fresh instances and reloads the stable
 * release's model on the stable color. The first release goes through the CLI (`deploy --wait`, `history`).
 */
import { describe, it, expect, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { StatusReport } from '../../src/control/traffic-routes.js';
import type { ReleaseView } from '../../src/control/release-routes.js';
import { WINE_EXAMPLE } from '../../src/model/wine.js';
import { readStackRecordSync, stackRecordPath } from '../../src/stack/stack-record.js';
import { startCli, stopAll, waitForHttp, type Started, freeUpPorts, upArgv } from '../support/processes.js';
import { GOOD_BUNDLE } from './bundles.js';
import { startLoad } from './stack.js';

const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bgserve-restart-'));
/** Every instance PID of every run: none may be left at the end. */
const pids = new Set<number>();

afterAll(async () => {
  await stopAll();
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  fs.rmSync(stateDir, { recursive: true, force: true });
});

async function api<T>(base: string, route: string, init: RequestInit = {}): Promise<T> {
  const token = fs.readFileSync(path.join(stateDir, 'token'), 'utf8').trim();
  const res = await fetch(`${base}${route}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...init.headers },
  });
  const body = (await res.json()) as T;
  if (res.status >= 400) throw new Error(`${route}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The embedded router's own process, from stack.json (it outlives `up` like the instances). */
function routerProcessPid(): number {
  const pid = readStackRecordSync(stackRecordPath(stateDir))?.processes.router?.pid ?? -1;
  pids.add(pid);
  return pid;
}

function instancePids(report: StatusReport): { blue: number; green: number } {
  const pid = (c: 'blue' | 'green') => report.colors[c].process?.pid ?? -1;
  for (const c of ['blue', 'green'] as const) pids.add(pid(c));
  return { blue: pid('blue'), green: pid('green') };
}

async function exited(proc: Started): Promise<void> {
  if (proc.child.exitCode === null && proc.child.signalCode === null) await new Promise((r) => proc.child.once('exit', r));
}

async function predicts(router: string): Promise<string> {
  const res = await fetch(`${router}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(WINE_EXAMPLE),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { color: string }).color;
}

describe('controller restart mid-release', () => {
  it('CLI release, kill -9 during a canary step, up again (instances adopted): rolled back, reconciled; whole stack killed: fresh instances, stable model reloaded', async () => {
    const ports = await freeUpPorts();
    const args = upArgv(ports, stateDir);
    const control = `http://127.0.0.1:${ports.control}`;
    const router = `http://127.0.0.1:${ports.router}`;
    let up: Started = startCli(args);
    await waitForHttp(`${control}/healthz`, { proc: up, timeoutMs: 40_000 });
    const first = instancePids(await api<StatusReport>(control, '/api/status'));

    const load = await startLoad(router, 2, 90_000);
    try {
      // First a release through the CLI, followed to its end: green serves 1.1.0.
      const env = { BGSERVE_CONTROL_URL: control };
      const cli = startCli(['deploy', GOOD_BUNDLE, '--analysis', '2s', '--wait', '--state-dir', stateDir], env);
      const code = await new Promise((r) => cli.child.once('exit', r));
      expect(code, cli.output()).toBe(0);
      expect(cli.output()).toMatch(/smoke-passed .*golden RMSE/);
      expect(cli.output()).toMatch(/status +SUCCEEDED/);
      const history = startCli(['history', '--json', '--state-dir', stateDir], env);
      await new Promise((r) => history.child.once('exit', r));
      expect(JSON.parse(history.output()).map((r: { status: string }) => r.status)).toEqual(['succeeded']);

      // Then a canary back onto blue, caught at 50% by the kill.
      const started = await api<ReleaseView>(control, '/api/releases', {
        method: 'POST',
        body: JSON.stringify({ bundle: GOOD_BUNDLE, strategy: 'canary', steps: [50], analysisMs: 60_000 }),
      });
      const id = started.release.spec.id;
      const deadline = Date.now() + 30_000;
      let current = started.release;
      while (Date.now() < deadline && !(current.phase === 'step' && current.targetWeight === 50)) {
        await new Promise((r) => setTimeout(r, 200));
        current = (await api<ReleaseView>(control, `/api/releases/${id}`)).release;
      }
      expect(current).toMatchObject({ status: 'running', phase: 'step', targetWeight: 50 });
      expect((await api<StatusReport>(control, '/api/status')).weights).toEqual({ blue: 50, green: 50 });

      up.child.kill('SIGKILL');
      await exited(up);
      // The instances are detached children of `up` and outlive it; nobody stops them by hand: `up` adopts them.
      expect([first.blue, first.green].every(alive)).toBe(true);

      up = startCli(args);
      await waitForHttp(`${control}/healthz`, { proc: up, timeoutMs: 40_000 });
      const after = await api<StatusReport>(control, '/api/status');
      expect(instancePids(after)).toEqual(first);
      expect(up.output()).toContain(`adopted green (pid ${first.green}`);
      expect(up.output()).toMatch(/adopted router \(pid \d+/);
      // Green is stable again and, adopted with the model it had, serves 1.1.0 without a reload.
      expect(after.weights).toEqual({ blue: 0, green: 100 });
      expect(after.colors.green.model?.version).toBe('1.1.0');
      expect(after.mirror).toEqual({ target: null, percent: 0 });
      expect(await predicts(router)).toBe('green');
      let view = await api<ReleaseView>(control, `/api/releases/${id}`);
      expect(view.release.status).toBe('rolled_back');
      expect(view.release.reason).toMatch(/controller restarted during step/);
      const reconciled = view.events.find((e) => e.type === 'reconciled');
      expect(reconciled?.values).toMatchObject({ decision: 'rolled-back', targetWeight: 50 });
      expect(view.events.filter((e) => e.values?.decision === 'reloaded')).toEqual([]);

      // The whole stack dies at once (router process included): its record names processes that are gone; fresh
      // instances start with the start-up bundle and the reconcile puts the stable release's model back on green.
      const routerPid = routerProcessPid();
      up.child.kill('SIGKILL');
      for (const pid of [first.blue, first.green, routerPid]) process.kill(pid, 'SIGKILL');
      await exited(up);
      up = startCli(args);
      await waitForHttp(`${control}/healthz`, { proc: up, timeoutMs: 40_000 });
      const fresh = await api<StatusReport>(control, '/api/status');
      const second = instancePids(fresh);
      expect(second.blue).not.toBe(first.blue);
      expect(second.green).not.toBe(first.green);
      expect(up.output()).not.toContain('adopted');
      expect(fresh.weights).toEqual({ blue: 0, green: 100 });
      expect(fresh.colors.green.model?.version).toBe('1.1.0');
      expect(await predicts(router)).toBe('green');
      view = await api<ReleaseView>(control, `/api/releases/${id}`);
      expect(view.release.status).toBe('rolled_back');
      expect(view.events.find((e) => e.values?.decision === 'reloaded')?.reason).toMatch(/reloaded 1\.1\.0 on green/);
      // A new release can start right away: nothing is left half-way.
      const next = await api<ReleaseView>(control, '/api/releases', {
        method: 'POST',
        body: JSON.stringify({ bundle: GOOD_BUNDLE, analysisMs: 1_000 }),
      });
      expect(next.release.status).toBe('running');

      routerProcessPid();
      up.child.kill('SIGTERM');
      await exited(up);
      expect(up.child.exitCode).toBe(0);
      expect([...pids].filter(alive)).toEqual([]);
      expect(fs.existsSync(path.join(stateDir, 'stack.json'))).toBe(false);
    } finally {
      await load.stop();
    }
  }, 200_000);
});
