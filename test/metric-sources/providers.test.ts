import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/serve/app.js';
import { loadBundle } from '../../src/model/bundle.js';
import { WINE_EXAMPLE } from '../../src/model/wine.js';
import { ScrapeProvider } from '../../src/metric-sources/scrape-provider.js';
import { PrometheusProvider } from '../../src/metric-sources/prometheus-provider.js';
import { startLocalPrometheus, type LocalPrometheus } from '../../src/monitoring/local-prometheus.js';
import { SOURCE_HEADER, type TrafficSource } from '../../src/config/defaults.js';
import { freePort, ROOT } from '../support/processes.js';

const apps: Record<'blue' | 'green', FastifyInstance> = {} as never;
const urls: Record<'blue' | 'green', string> = {} as never;

async function predict(color: 'blue' | 'green', n: number, body: unknown = WINE_EXAMPLE, source?: TrafficSource): Promise<void> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(source ? { [SOURCE_HEADER]: source } : {}) };
  for (let i = 0; i < n; i++) {
    await fetch(`${urls[color]}/predict`, { method: 'POST', headers, body: JSON.stringify(body) });
  }
}

/** An unusual wine: predictions far from the example's, so a window that counted it would show the shift. */
const ODD_WINE = { ...WINE_EXAMPLE, alcohol: 14.5, 'volatile acidity': 1.4, sulphates: 1.8 };

/** A /metrics endpoint answering what `answer` says, call by call (for failures a real instance does not make on demand). */
async function fakeMetrics(
  answer: (call: number) => { status: number; body: string },
): Promise<{ url: string; calls: () => number; close: () => Promise<void> }> {
  let calls = 0;
  const server = http.createServer((_req, res) => {
    const { status, body } = answer(++calls);
    res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls: () => calls,
    close: () => new Promise((r) => server.close(() => r())),
  };
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

  it('counts live traffic only: preview never, mirrored copies apart', async () => {
    const provider = new ScrapeProvider({ instances: urls });
    await provider.open(5000);
    await predict('green', 6);
    await predict('green', 9, ODD_WINE, 'preview');
    await predict('green', 4, WINE_EXAMPLE, 'mirror');
    await predict('green', 3, { alcohol: 'x' }, 'preview');
    const w = await provider.window(5000, 6000);
    expect(w.colors.green.requests).toBe(6);
    expect(w.colors.green.predictions.count).toBe(6);
    expect(w.colors.green.latency.count).toBe(6);
    expect(w.mirrored?.green.requests).toBe(4);
    expect(w.mirrored?.green.predictions.count).toBe(4);
    expect(w.mirrored?.blue.requests).toBe(0);
  });

  it('retries a failed scrape, and reads past lines of families it does not need', async () => {
    const good = (await (await fetch(`${urls.blue}/metrics`)).text()).replaceAll('color="blue"', 'color="green"');
    // What prom-client wrote on the instance in the issue, plus an unparseable line elsewhere.
    const odd = `${good}\nnodejs_eventloop_lag_mean_seconds Nan\nsomething_else{a="b} 1\n`;
    const flaky = await fakeMetrics((call) => (call === 1 ? { status: 503, body: 'starting' } : { status: 200, body: odd }));
    try {
      const provider = new ScrapeProvider({ instances: { blue: urls.blue, green: flaky.url }, retryDelayMs: 10 });
      await provider.open(7000);
      expect(flaky.calls()).toBe(2);
      const w = await provider.window(7000, 8000);
      expect(w.colors.green.requests).toBe(0);
    } finally {
      await flaky.close();
    }
  });

  it('gives up after its attempts with a ScrapeError naming the color', async () => {
    const down = await fakeMetrics(() => ({ status: 500, body: 'no' }));
    try {
      const provider = new ScrapeProvider({ instances: { blue: urls.blue, green: down.url }, attempts: 3, retryDelayMs: 10 });
      await expect(provider.open(0)).rejects.toMatchObject({
        name: 'Error',
        color: 'green',
        message: expect.stringMatching(/scrape of green .* answered 500/),
      });
      expect(down.calls()).toBe(3);
    } finally {
      await down.close();
    }
  });

  it('a window whose baseline could not be taken as it opened starts when the baseline is taken', async () => {
    let failing = true;
    const body = await (await fetch(`${urls.green}/metrics`)).text();
    const late = await fakeMetrics(() => (failing ? { status: 500, body: 'no' } : { status: 200, body }));
    try {
      const provider = new ScrapeProvider({ instances: { blue: urls.blue, green: late.url }, attempts: 1 });
      await expect(provider.open(10_000)).rejects.toThrow();
      failing = false;
      const w = await provider.window(10_000, 14_000);
      expect(w.fromMs).toBe(14_000);
      expect(w.colors.green.requests).toBe(0);
    } finally {
      await late.close();
    }
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
    while (
      Date.now() < deadline &&
      (w.colors.green.requests < 20 || w.colors.blue.requests < 20 || (w.mirrored?.green.requests ?? 0) < 10)
    ) {
      await predict('green', 20);
      await predict('blue', 20);
      // Preview traffic is never counted; mirrored copies are, apart.
      await predict('green', 20, ODD_WINE, 'preview');
      await predict('green', 10, WINE_EXAMPLE, 'mirror');
      await new Promise((r) => setTimeout(r, 500));
      w = await provider.window(from, Date.now());
    }
    expect(w.colors.green.requests).toBeGreaterThanOrEqual(20);
    expect(w.mirrored?.green.requests).toBeGreaterThanOrEqual(10);
    expect(w.mirrored?.green.predictions.count).toBeGreaterThan(0);
    expect(w.colors.green.serverErrors).toBe(0);
    expect(w.colors.green.latency.buckets.at(-1)?.le).toBe(Infinity);
    expect(w.colors.green.predictions.count).toBeGreaterThan(0);
    // The same model answers the same request on both colors (increase() extrapolates sum and count
    // separately at the window's edges, so the means agree closely rather than exactly). Green's preview
    // requests (unusual wines, predicted 6.5 against 5.0) would pull its mean far off: they are left out.
    expect(w.colors.green.predictions.sum / w.colors.green.predictions.count).toBeCloseTo(
      w.colors.blue.predictions.sum / w.colors.blue.predictions.count,
      1,
    );
  });
});
