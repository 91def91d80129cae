import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/serve/app.js';
import { loadBundle } from '../../src/model/bundle.js';
import { WINE_EXAMPLE } from '../../src/model/wine.js';
import { ScrapeProvider } from '../../src/analysis/scrape-provider.js';
import { PrometheusProvider } from '../../src/analysis/prometheus-provider.js';
import { startLocalPrometheus, type LocalPrometheus } from '../../src/monitoring/local-prometheus.js';
import { freePort, ROOT } from '../support/processes.js';

const apps: Record<'blue' | 'green', FastifyInstance> = {} as never;
const urls: Record<'blue' | 'green', string> = {} as never;

async function predict(color: 'blue' | 'green', n: number, body: unknown = WINE_EXAMPLE): Promise<void> {
  for (let i = 0; i < n; i++) {
    await fetch(`${urls[color]}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  }
}

beforeAll(async () => {
  const model = await loadBundle(path.join(ROOT, 'models/wine-quality/1.0.0'));
  for (const color of ['blue', 'green'] as const) {
    apps[color] = buildApp({ model, color, processMetrics: false });
    const port = await freePort();
    await apps[color].listen({ host: '127.0.0.1', port });
    urls[color] = `http://127.0.0.1:${port}`;
  }
});
afterAll(async () => {
  await Promise.all(Object.values(apps).map((a) => a.close()));
});

describe('ScrapeProvider on real instances', () => {
  it('counts exactly what each color answered since the window opened', async () => {
    await predict('blue', 5);
    const provider = new ScrapeProvider({ instances: urls });
    await provider.open(1000);
    await predict('blue', 7);
    await predict('green', 3);
    await predict('green', 2, { alcohol: 'x' });
    const w = await provider.window(1000, 2000);
    expect(w.colors.blue.requests).toBe(7);
    expect(w.colors.green.requests).toBe(5);
    // 400s are the caller's mistakes, not server errors.
    expect(w.colors.green.serverErrors).toBe(0);
    expect(w.colors.blue.predictions.count).toBe(7);
    expect(w.colors.blue.latency.count).toBe(7);
    expect(w.colors.blue.predictions.sum / 7).toBeGreaterThan(3);
  });

  it('throws when an instance cannot be scraped', async () => {
    const provider = new ScrapeProvider({ instances: { ...urls, green: `http://127.0.0.1:${await freePort()}` }, timeoutMs: 500 });
    await expect(provider.window(0, 1)).rejects.toThrow();
  });
});

describe('PrometheusProvider on a real Prometheus', () => {
  let prom: LocalPrometheus | undefined;
  let dataDir = '';
  afterAll(async () => {
    await prom?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('gives the same window statistics through PromQL increase()', async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bgserve-prom-'));
    prom = await startLocalPrometheus({
      port: await freePort(),
      dataDir,
      scrapeInterval: '1s',
      targets: { instances: (['blue', 'green'] as const).map((color) => ({ color, address: new URL(urls[color]).host })) },
    });
    const provider = new PrometheusProvider({ url: prom.url, minRangeSeconds: 3 });
    const from = Date.now();
    const deadline = Date.now() + 40_000;
    await predict('green', 5);
    // Shorter than the minimum range: empty (inconclusive), never a range reaching back before `from`.
    let w = await provider.window(from, from + 2_999);
    expect(w.colors.green.requests).toBe(0);
    // Load for a few seconds, until Prometheus has scraped enough of it.
    while (Date.now() < deadline && (w.colors.green.requests < 20 || w.colors.blue.requests < 20)) {
      await predict('green', 20);
      await predict('blue', 20);
      await new Promise((r) => setTimeout(r, 500));
      w = await provider.window(from, Date.now());
    }
    expect(w.colors.green.requests).toBeGreaterThanOrEqual(20);
    expect(w.colors.green.serverErrors).toBe(0);
    expect(w.colors.green.latency.buckets.at(-1)?.le).toBe(Infinity);
    expect(w.colors.green.predictions.count).toBeGreaterThan(0);
    // The same model answers the same request on both colors (increase() extrapolates sum and count
    // separately at the window's edges, so the means agree closely rather than exactly).
    expect(w.colors.green.predictions.sum / w.colors.green.predictions.count).toBeCloseTo(
      w.colors.blue.predictions.sum / w.colors.blue.predictions.count,
      1,
    );
  });
});
