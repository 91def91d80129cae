import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { WINE_EXAMPLE } from '../../src/model/wine.js';
import type { StatusReport } from '../../src/control/traffic-routes.js';
import { startCli, stopAll, waitForHttp, type Started, freeUpPorts, upArgv } from '../support/processes.js';

afterAll(stopAll);

async function finished(proc: Started): Promise<{ code: number | null; out: string }> {
  const code = await new Promise<number | null>((resolve) => {
    if (proc.child.exitCode !== null) resolve(proc.child.exitCode);
    else proc.child.once('exit', (c) => resolve(c));
  });
  return { code, out: proc.output() };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.each(['embedded', 'nginx'])('bgserve up --router %s', (router) => {
  it('starts the stack, predicts through the router, switches from the CLI and stops everything on SIGTERM', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bgserve-up-'));
    try {
      const ports = await freeUpPorts();
      const controlUrl = `http://127.0.0.1:${ports.control}`;
      const up = startCli(upArgv(ports, dir, ['--router', router]));
      await waitForHttp(`${controlUrl}/healthz`, { proc: up, timeoutMs: 60_000 });
      expect(up.output()).toContain(`router   http://127.0.0.1:${ports.router}`);
      expect(up.output()).toContain(path.join(dir, 'token'));
      expect((await stat(path.join(dir, 'token'))).mode & 0o777).toBe(0o600);

      const res = await request(`http://127.0.0.1:${ports.router}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(WINE_EXAMPLE),
      });
      expect(res.statusCode).toBe(200);
      expect(await res.body.json()).toMatchObject({ prediction: expect.any(Number), color: 'blue' });

      const cli = ['--control-url', controlUrl, '--state-dir', dir];
      const sw = await finished(startCli(['switch', 'green', ...cli]));
      expect(sw.out).toContain('switched to green');
      expect(sw.code).toBe(0);

      const json = await finished(startCli(['status', '--json', ...cli]));
      const report = JSON.parse(json.out) as StatusReport;
      expect(report).toMatchObject({ active: 'green', router: { kind: router } });
      expect(report.colors.green).toMatchObject({ healthy: true, model: { name: 'wine-quality', version: '1.0.0' } });

      const denied = await finished(startCli(['status', '--control-url', controlUrl, '--token', 'wrong']));
      expect(denied.code).toBe(1);
      expect(denied.out).toContain('the bearer token is not valid');

      const after = await request(`http://127.0.0.1:${ports.router}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(WINE_EXAMPLE),
      });
      expect(await after.body.json()).toMatchObject({ color: 'green' });

      const pids = [report.colors.blue.process?.pid, report.colors.green.process?.pid] as number[];
      expect(pids.every((pid) => typeof pid === 'number' && alive(pid))).toBe(true);
      up.child.kill('SIGTERM');
      const { code, out } = await finished(up);
      expect(code).toBe(0);
      expect(out).toContain('bgserve: stopped');
      expect(pids.filter(alive)).toEqual([]);
      await expect(request(`http://127.0.0.1:${ports.router}/ready`)).rejects.toThrow();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
