/**
 * The direct scrape over colors of several replicas (issue 13), on real in-process instances: a color's window
 * sums its replicas, a replica restarted during the window (its counters reset) counts from its reset, one that
 * cannot be read is left out while its color still answers, and a color none of whose replicas answers is
 * unreadable.
 */
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplicaPools } from '../../src/controller/pools.js';
import { ScrapeProvider } from '../../src/metric-sources/scrape-provider.js';
import { ColorUnreadableError } from '../../src/metric-sources/types.js';
import { loadBundle } from '../../src/model/bundle.js';
import type { LoadedModel } from '../../src/model/types.js';
import { buildApp } from '../../src/serve/app.js';
import { WINE_EXAMPLE } from '../../src/model/wine.js';
import { freePort, ROOT } from '../support/processes.js';

let model: LoadedModel;
const apps = new Map<number, FastifyInstance>();
const ports: Record<'blue' | 'green', number[]> = { blue: [], green: [] };

async function start(color: 'blue' | 'green', port: number): Promise<void> {
  const app = buildApp({ model, color, processMetrics: false });
  await app.listen({ host: '127.0.0.1', port });
  apps.set(port, app);
}

async function stop(port: number): Promise<void> {
  await apps.get(port)?.close();
  apps.delete(port);
}

async function predict(port: number, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await fetch(`http://127.0.0.1:${port}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(WINE_EXAMPLE),
    });
  }
}

beforeAll(async () => {
  model = await loadBundle(path.join(ROOT, 'models/wine-quality/1.0.0'));
  ports.blue.push(await freePort());
  ports.green.push(await freePort(), await freePort());
  await start('blue', ports.blue[0]);
  for (const p of ports.green) await start('green', p);
});
afterAll(async () => {
  await Promise.all([...apps.keys()].map(stop));
});

const poolsOf = () =>
  new ReplicaPools({
    blue: ports.blue.map((port) => ({ host: '127.0.0.1', port })),
    green: ports.green.map((port) => ({ host: '127.0.0.1', port })),
  });

describe('ScrapeProvider over pools', () => {
  it("sums a color's replicas, and counts a restarted replica from its reset", async () => {
    const provider = new ScrapeProvider({ instances: { blue: '', green: '' }, pools: poolsOf(), retryDelayMs: 10 });
    await provider.open(1_000);
    await predict(ports.green[0], 5);
    await predict(ports.green[1], 3);
    await predict(ports.blue[0], 2);
    let w = await provider.window(1_000, 2_000);
    expect(w.colors.green.requests).toBe(8);
    expect(w.colors.blue.requests).toBe(2);
    expect(w.colors.green.latency.count).toBe(8);

    // Replica 2 restarts: its counters start again from 0; it then answers 4 more.
    await stop(ports.green[1]);
    await start('green', ports.green[1]);
    await predict(ports.green[1], 4);
    w = await provider.window(1_000, 3_000);
    expect(w.colors.green.requests).toBe(5 + 4);
  });

  it('leaves out a replica that cannot be read while its color answers; a color with none answering is unreadable', async () => {
    const gone = await freePort();
    const pools = poolsOf();
    pools.set('green', [...pools.replicas('green'), { host: '127.0.0.1', port: gone }]);
    const provider = new ScrapeProvider({ instances: { blue: '', green: '' }, pools, attempts: 1 });
    await provider.open(1_000);
    await predict(ports.green[0], 2);
    expect((await provider.window(1_000, 2_000)).colors.green.requests).toBe(2);

    pools.set('green', [{ host: '127.0.0.1', port: gone }]);
    const err = await provider.window(1_000, 3_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ColorUnreadableError);
    expect((err as ColorUnreadableError).color).toBe('green');
  });
});
