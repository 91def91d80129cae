import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalPrometheus, type LocalPrometheus } from '../../src/monitoring/local-prometheus.js';
import { queryInstant } from '../../src/monitoring/prometheus-api.js';
import { JOBS } from '../../src/monitoring/queries.js';
import { freePort } from '../support/processes.js';

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('startLocalPrometheus (real Prometheus)', () => {
  let dataDir: string;
  let prom: LocalPrometheus;
  let deadPorts: number[];

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'bgserve-local-prom-'));
    // Nothing listens on these: Prometheus must still scrape them and report them down, per color.
    deadPorts = [await freePort(), await freePort()];
    prom = await startLocalPrometheus({
      port: await freePort(),
      dataDir,
      scrapeInterval: '1s',
      targets: {
        instances: [
          { color: 'blue', address: `127.0.0.1:${deadPorts[0]}` },
          { color: 'green', address: `127.0.0.1:${deadPorts[1]}` },
        ],
      },
    });
  });

  afterAll(async () => {
    await prom?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('answers on a loopback URL and scrapes the given targets, labelled by color', async () => {
    expect(prom.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const samples = await until('both targets scraped', async () => {
      const r = await queryInstant(prom.url, `up{job="${JOBS.instances}"}`);
      return r.status === 'success' && r.samples.length === 2 ? r.samples : undefined;
    });
    const byColor = Object.fromEntries(samples.map((s) => [s.labels.color, s]));
    expect(byColor.blue.labels.instance).toBe(`127.0.0.1:${deadPorts[0]}`);
    expect(byColor.green.labels.instance).toBe(`127.0.0.1:${deadPorts[1]}`);
    expect(samples.map((s) => s.value)).toEqual([0, 0]);
  });

  it('loads the repository rules', async () => {
    const res = await fetch(`${prom.url}/api/v1/rules`);
    const body = (await res.json()) as { data: { groups: Array<{ name: string; rules: unknown[] }> } };
    expect(body.data.groups.map((g) => g.name).sort()).toEqual(['bgserve-alerts', 'bgserve-recording']);
  });

  it('reports refused PromQL as an error result', async () => {
    const r = await queryInstant(prom.url, 'sum by (color (up)');
    expect(r.status).toBe('error');
  });

  it('fails with the reason when the port is taken, and leaves no process behind', async () => {
    const taken = Number(new URL(prom.url).port);
    const other = await mkdtemp(path.join(tmpdir(), 'bgserve-local-prom-'));
    try {
      await expect(
        startLocalPrometheus({ port: taken, dataDir: other, targets: { instances: [] }, readyTimeoutMs: 5_000 }),
      ).rejects.toThrow(/did not start/);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('stop() ends the process', async () => {
    const other = await mkdtemp(path.join(tmpdir(), 'bgserve-local-prom-'));
    try {
      const p = await startLocalPrometheus({ port: await freePort(), dataDir: other, targets: { instances: [] } });
      await p.stop();
      expect(() => process.kill(p.pid, 0)).toThrow();
      await expect(fetch(`${p.url}/-/ready`)).rejects.toThrow();
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});
