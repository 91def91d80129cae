/**
 * (c) kill -9 of the controller mid-release: `bgserve up` (router + control API + release controller in one
 * process) is killed while a canary holds 50% on blue; after a restart on the same state directory the
 * release is rolled back, says so in an event, the stable color serves its release's model again and has
 * 100% of the traffic with no mirror. The first release goes through the CLI (`deploy --wait`, `history`).
 */
import { describe, it, expect, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { StatusReport } from '../../src/control/traffic-routes.js';
import type { ReleaseView } from '../../src/control/release-routes.js';
import { freePort, startCli, stopAll, waitForHttp, type Started } from '../support/processes.js';
import { GOOD_BUNDLE } from './bundles.js';
import { startLoad } from './stack.js';

const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bgserve-restart-'));
const orphans: number[] = [];

afterAll(async () => {
  await stopAll();
  for (const pid of orphans) {
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
  const res = await fetch(`${base}${route}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...init.headers } });
  const body = (await res.json()) as T;
  if (res.status >= 400) throw new Error(`${route}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

describe('controller restart mid-release', () => {
  it('CLI release, then kill -9 during a canary step, restart: rolled back, reconciled, stable model and traffic restored', async () => {
    const ports = { router: await freePort(), blue: await freePort(), green: await freePort(), control: await freePort() };
    const args = ['up', '--port', String(ports.router), '--blue-port', String(ports.blue), '--green-port', String(ports.green), '--control-port', String(ports.control), '--state-dir', stateDir];
    const control = `http://127.0.0.1:${ports.control}`;
    const router = `http://127.0.0.1:${ports.router}`;
    let up: Started = startCli(args);
    await waitForHttp(`${control}/healthz`, { proc: up, timeoutMs: 40_000 });
    const before = await api<StatusReport>(control, '/api/status');
    for (const c of ['blue', 'green'] as const) if (before.colors[c].process?.pid) orphans.push(before.colors[c].process!.pid!);

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
      await new Promise((r) => up.child.once('exit', r));
      // The instances are detached children of `up` and outlive it: stop them so the restart can bind.
      for (const pid of orphans.splice(0)) process.kill(pid, 'SIGTERM');
      await new Promise((r) => setTimeout(r, 1_500));

      up = startCli(args);
      await waitForHttp(`${control}/healthz`, { proc: up, timeoutMs: 40_000 });
      const after = await api<StatusReport>(control, '/api/status');
      for (const c of ['blue', 'green'] as const) if (after.colors[c].process?.pid) orphans.push(after.colors[c].process!.pid!);
      // Green is stable again and, though its instance restarted with the start-up bundle, serves 1.1.0.
      expect(after.weights).toEqual({ blue: 0, green: 100 });
      expect(after.colors.green.model?.version).toBe('1.1.0');
      expect(after.mirror).toEqual({ target: null, percent: 0 });
      const view = await api<ReleaseView>(control, `/api/releases/${id}`);
      expect(view.release.status).toBe('rolled_back');
      expect(view.release.reason).toMatch(/controller restarted during step/);
      const reconciled = view.events.find((e) => e.type === 'reconciled');
      expect(reconciled?.values).toMatchObject({ decision: 'rolled-back', targetWeight: 50 });
      expect(view.events.find((e) => e.values?.decision === 'reloaded')?.reason).toMatch(/reloaded 1\.1\.0 on green/);
      // A new release can start right away: nothing is left half-way.
      const next = await api<ReleaseView>(control, '/api/releases', { method: 'POST', body: JSON.stringify({ bundle: GOOD_BUNDLE, analysisMs: 1_000 }) });
      expect(next.release.status).toBe('running');
    } finally {
      await load.stop();
    }
  }, 150_000);
});
