/**
 * A real `bgserve up` started on a damaged release log: it starts, says which lines it skipped and where, and
 * `bgserve status` / GET /api/status show the damage. Then the CLI half of "one owner of traffic": `switch`
 * during a release is refused, `switch --force` moves traffic and pauses the release in the user's name.
 */
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { StatusReport } from '../../src/control/traffic-routes.js';
import { createRelease, step } from '../../src/release/engine.js';
import { buildSpec } from '../../src/release/spec.js';
import { RELEASE_LOG_FILE } from '../../src/release/defaults.js';
import type { ReleaseState } from '../../src/release/types.js';
import { startCli, stopAll, stopProcess, waitForHttp, type Started, freeUpPorts, upArgv } from '../support/processes.js';
import { BASE_BUNDLE, GOOD_BUNDLE } from '../controller/bundles.js';

afterAll(stopAll);

async function finished(proc: Started): Promise<{ code: number | null; out: string }> {
  const code = await new Promise<number | null>((resolve) => {
    if (proc.child.exitCode !== null) resolve(proc.child.exitCode);
    else proc.child.once('exit', (c) => resolve(c));
  });
  return { code, out: proc.output() };
}

/** An earlier release that failed its load (traffic stays on blue), with damage spread through the log. */
function damagedLog(): { lines: string[]; release: ReleaseState; damagedLines: number[] } {
  const spec = buildSpec({
    id: 'r-earlier',
    bundle: GOOD_BUNDLE,
    modelName: 'wine-quality',
    version: '1.1.0',
    sha256: 'abc',
    stableColor: 'blue',
  });
  const started = createRelease(spec, 1_000);
  const failed = step(started.state, { now: 2_000, observation: { kind: 'load', color: 'green', ok: false, error: 'test' } });
  const good = (r: object) => ({ text: JSON.stringify(r), damaged: false });
  const bad = (text: string) => ({ text, damaged: true });
  const entries = [
    good({ kind: 'release', state: started.state }),
    bad('not json at all {'),
    ...started.events.map((event) => good({ kind: 'event', event })),
    bad('{"kind":"release","state":null}'),
    bad('{"kind":"event","event":null}'),
    bad('{"kind":"snapshot","at":3}'),
    good({ kind: 'release', state: failed.state }),
    ...failed.events.map((event) => good({ kind: 'event', event })),
  ];
  const damagedLines = entries.flatMap((e, i) => (e.damaged ? [i + 1] : []));
  return { lines: entries.map((e) => e.text), release: failed.state, damagedLines };
}

describe('bgserve up on a damaged release log', () => {
  it('starts, shows the damage in status, and the CLI needs --force to move traffic during a release', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bgserve-up-log-'));
    let up: Started | undefined;
    try {
      const { lines, release, damagedLines } = damagedLog();
      expect(damagedLines).toHaveLength(4);
      const logFile = path.join(dir, RELEASE_LOG_FILE);
      fs.writeFileSync(logFile, `${lines.join('\n')}\n`);
      const ports = await freeUpPorts();
      const controlUrl = `http://127.0.0.1:${ports.control}`;
      up = startCli(upArgv(ports, dir, ['--bundle', BASE_BUNDLE]));
      await waitForHttp(`${controlUrl}/healthz`, { proc: up, timeoutMs: 60_000 });
      for (const line of damagedLines) expect(up.output()).toContain(`${logFile}:${line}: skipped a damaged record`);

      const cli = ['--control-url', controlUrl, '--state-dir', dir];
      const json = await finished(startCli(['status', '--json', ...cli]));
      expect(json.code, json.out).toBe(0);
      const report = JSON.parse(json.out) as StatusReport & { release: ReleaseState };
      expect(report.releaseLog).toEqual({ file: logFile, damage: damagedLines.map((line) => ({ line, problem: expect.any(String) })) });
      expect(report.release).toEqual(release);
      expect(report.releaseTraffic).toMatchObject({ releaseId: 'r-earlier', agrees: true });
      const text = await finished(startCli(['status', ...cli]));
      expect(text.out).toContain(`log      4 damaged records skipped in ${logFile}`);
      expect(text.out).toMatch(new RegExp(`^\\s+line ${damagedLines[1]}: state must be object$`, 'm'));
      expect(text.out).toMatch(new RegExp(`^\\s+line ${damagedLines[3]}: unknown record kind "snapshot"$`, 'm'));

      const token = fs.readFileSync(path.join(dir, 'token'), 'utf8').trim();
      const api = async (method: 'GET' | 'POST', route: string, body?: unknown) => {
        const res = await request(`${controlUrl}/api${route}`, {
          method,
          headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
          ...(body ? { body: JSON.stringify(body) } : {}),
        });
        return { status: res.statusCode, body: (await res.body.json()) as any };
      };
      const current = await api('GET', '/releases/current');
      expect(current.status).toBe(200);
      expect(current.body.release.spec.id).toBe('r-earlier');
      expect(current.body.events.every((e: { type?: unknown }) => typeof e.type === 'string')).toBe(true);

      // A release on the repaired stack: the CLI may not move its traffic without --force.
      const started = await api('POST', '/releases', { bundle: GOOD_BUNDLE, strategy: 'canary', steps: [50], analysisMs: 120_000 });
      expect(started.status, JSON.stringify(started.body)).toBe(201);
      const id = started.body.release.spec.id as string;
      const deadline = Date.now() + 30_000;
      while ((await api('GET', '/releases/current')).body.release.phase !== 'step') {
        if (Date.now() > deadline) throw new Error(`no canary step: ${JSON.stringify((await api('GET', `/releases/${id}`)).body.events)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const refused = await finished(startCli(['switch', 'green', ...cli]));
      expect(refused.code).toBe(1);
      expect(refused.out).toContain(`release ${id} is running in step 1/2`);
      expect((await api('GET', '/status')).body.weights).toEqual({ blue: 50, green: 50 });

      const forced = await finished(startCli(['switch', 'green', '--force', ...cli]));
      expect(forced.code, forced.out).toBe(0);
      expect(forced.out).toContain('switched to green');
      expect(forced.out).toContain(`release ${id} is now paused`);
      expect(forced.out).toContain(`traffic moved by hand: switch to green (by ${os.userInfo().username}@${os.hostname()})`);
      const after = await finished(startCli(['status', ...cli]));
      expect(after.out).toMatch(
        new RegExp(`^traffic\\s+DISAGREES: live blue 0 / green 100, but release ${id} \\(paused\\) wants blue 50 / green 50`, 'm'),
      );
      expect(after.out).toMatch(/^status\s+PAUSED .*\[BUT live traffic disagrees with it: /m);

      up.child.kill('SIGTERM');
      expect((await finished(up)).code).toBe(0);
    } finally {
      if (up) await stopProcess(up);
      await rm(dir, { recursive: true, force: true });
    }
  }, 150_000);
});
