/** `bgserve up --prometheus`: a real Prometheus for the local stack, started and stopped with it. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { queryInstant } from '../../src/monitoring/prometheus-api.js';
import { JOBS } from '../../src/monitoring/queries.js';
import { freePort, startCli, stopAll, stopProcess, waitForHttp, type Started } from '../support/processes.js';

async function until<T>(what: string, probe: () => Promise<T | undefined>, proc: Started, timeoutMs = 45_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`bgserve up exited (${proc.child.exitCode}):\n${proc.output()}`);
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}:\n${proc.output()}`);
}

async function upArgs(dir: string): Promise<{ args: string[]; control: string }> {
  const control = await freePort();
  const args = [
    'up',
    '--port',
    String(await freePort()),
    '--blue-port',
    String(await freePort()),
    '--green-port',
    String(await freePort()),
  ];
  args.push('--control-port', String(control), '--state-dir', path.join(dir, 'state'));
  return { args, control: `http://127.0.0.1:${control}` };
}

describe('bgserve up --prometheus', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await stopAll();
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('starts a Prometheus that scrapes both colors and the control API, prints its URL, and stops with the stack', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bgserve-up-prom-'));
    dirs.push(dir);
    const promPort = await freePort();
    const { args } = await upArgs(dir);
    const proc = startCli([...args, '--prometheus', '--prometheus-port', String(promPort)]);
    const url = `http://127.0.0.1:${promPort}`;
    await until('the banner', async () => (proc.output().includes(`prometheus ${url}`) ? true : undefined), proc, 60_000);

    const up = await until(
      'three targets up',
      async () => {
        const r = await queryInstant(url, `up{job=~"${JOBS.instances}|${JOBS.control}"} == 1`);
        return r.status === 'success' && r.samples.length === 3 ? r.samples : undefined;
      },
      proc,
    );
    expect(up.map((s) => s.labels.color ?? s.labels.job).sort()).toEqual(['bgserve-control', 'blue', 'green']);
    const rules = (await (await fetch(`${url}/api/v1/rules`)).json()) as { data: { groups: Array<{ name: string }> } };
    expect(rules.data.groups.map((g) => g.name).sort()).toEqual(['bgserve-alerts', 'bgserve-recording']);

    expect(await stopProcess(proc, 20_000)).toBe(0);
    await expect(fetch(`${url}/-/ready`)).rejects.toThrow();
  }, 120_000);

  it('goes on without Prometheus when it is not installed, and says so', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bgserve-up-prom-'));
    dirs.push(dir);
    const { args, control } = await upArgs(dir);
    // No prometheus on this PATH (node is run by its absolute path).
    const proc = startCli([...args, '--prometheus'], { PATH: path.join(dir, 'empty-bin') });
    await waitForHttp(`${control}/healthz`, { proc, timeoutMs: 60_000 });
    await until('the warning', async () => (proc.output().includes('prometheus is not installed') ? true : undefined), proc);
    expect(proc.output()).not.toContain('  prometheus http');
    expect(await stopProcess(proc, 20_000)).toBe(0);
  }, 120_000);
});
