/**
 * The status page's charts in a real browser (Debian's Chromium through playwright-core) against a real local
 * stack during a canary release: every chart holds data for both colors AND has drawn it (pixels of each
 * color's stroke on its canvas), the release's events are drawn as markers, the uPlot files come from the
 * control API itself (no network beyond it), and the replicas and the golden-set comparison are shown. Then a
 * release with a shadow phase: the scatter of stable vs new prediction per paired request appears and is drawn.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../src/app/root.js';
import { readTokenFile } from '../../src/control/auth.js';
import { STATUS_PAGE_PATH } from '../../src/control/status-page.js';
import { readGoldenSet } from '../../src/controller/smoke.js';
import { BASE_BUNDLE } from '../controller/bundles.js';
import { launchChromium, startStackOnFreePorts, trickle } from './browser.js';

const TIME_CHARTS = ['rate', 'errors', 'latency', 'weight'] as const;
/** The page's stroke colors (status-page-charts.ts), the markers' (non-failure) color and the scatter's points. */
const RGB = { blue: [47, 111, 214], green: [31, 157, 85], marker: [138, 90, 0], pair: [123, 63, 160] } as const;

interface ChartFacts {
  /** Per series (x excluded): how many non-null values, and the largest. */
  series: Array<{ label: string; values: number; max: number }>;
  markersDrawn: number;
  /** Canvas pixels close to each color. */
  pixels: Record<keyof typeof RGB, number>;
}

describe('status page charts (Chromium, real stack, canary release)', () => {
  let dir: string;
  let stack: LocalStack | undefined;
  let browser: BrowserContext | undefined;
  let page: Page;
  let token: string;
  const requested: string[] = [];
  /**
   * Console errors: a Content-Security-Policy or integrity refusal, a script error. Not the 4xx answers the page
   * expects (GET /api/releases/current is 404 before the first release, there is no favicon).
   */
  const consoleErrors: string[] = [];
  const stopLoad = new AbortController();
  let loader: Promise<void> = Promise.resolve();
  const screenshot = process.env.STATUS_PAGE_CHARTS_SCREENSHOT ?? path.join(tmpdir(), 'bgserve-status-page-canary.png');

  /** What a chart holds and what its canvas shows, read in the page. */
  function chartFacts(name: string): Promise<ChartFacts> {
    return page.evaluate(
      ({ name, rgb }) => {
        const u = (globalThis as any).bgCharts[name];
        const series = u.series.slice(1).map((s: { label: string }, i: number) => {
          const vals = (u.data[i + 1] as Array<number | null>).filter((v) => v !== null && v !== undefined) as number[];
          return { label: s.label, values: vals.length, max: vals.length ? Math.max(...vals) : 0 };
        });
        const canvas = u.ctx.canvas as { width: number; height: number };
        const data = u.ctx.getImageData(0, 0, canvas.width, canvas.height).data as Uint8ClampedArray;
        const pixels: Record<string, number> = {};
        for (const [key, [r, g, b]] of Object.entries(rgb as Record<string, readonly number[]>)) {
          let n = 0;
          for (let p = 0; p < data.length; p += 4) {
            if (data[p + 3] > 200 && Math.abs(data[p] - r) < 24 && Math.abs(data[p + 1] - g) < 24 && Math.abs(data[p + 2] - b) < 24) n++;
          }
          pixels[key] = n;
        }
        return { series, markersDrawn: u.bgMarkersDrawn ?? 0, pixels } as ChartFacts;
      },
      { name, rgb: RGB },
    );
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bgserve-status-charts-'));
    stack = await startStackOnFreePorts(path.join(dir, 'state'));
    token = await readTokenFile(stack.tokenFile);
    // Live traffic so both colors have rates: the golden rows in turn, so predictions spread over a real distribution.
    loader = trickle(stack.traffic.url, (await readGoldenSet(BASE_BUNDLE))?.rows ?? [], stopLoad.signal, 15, 110_000);
    ({ browser, page } = await launchChromium(dir, { width: 1200, height: 1000 }));
    page.on('request', (r) => requested.push(r.url()));
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) consoleErrors.push(m.text());
    });
    await page.goto(`${stack.controlUrl}${STATUS_PAGE_PATH}#token=${token}`);
  }, 120_000);

  afterAll(async () => {
    stopLoad.abort();
    await loader;
    await browser?.close();
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('draws every chart for both colors during a canary, with the release events as markers', async () => {
    const res = await fetch(`${stack!.controlUrl}/api/releases`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      // A long first step: the page is looked at while 20% of live traffic goes to the new version.
      body: JSON.stringify({ bundle: 'models/wine-quality/1.1.0', strategy: 'canary', steps: [20, 50, 100], analysisMs: 600_000 }),
    });
    expect(res.status).toBe(201);
    await expect.poll(() => page.locator('#release [data-field="phase"]').textContent(), { timeout: 60_000 }).toBe('step');

    // Rates need two samples of green taking traffic: wait until every time chart has a line for both colors.
    await expect
      .poll(
        async () => {
          const facts = await Promise.all(TIME_CHARTS.map((c) => chartFacts(c)));
          return facts.every((f) => f.series.every((s) => s.values >= 2)) && (await chartFacts('rate')).series[1].max > 0;
        },
        { timeout: 30_000, interval: 1_000 },
      )
      .toBe(true);
    // Markers: the release's start and its first step, drawn on every time chart.
    expect(await page.evaluate(() => (globalThis as any).bgMarkers.map((m: { type: string }) => m.type))).toEqual([
      'release-started',
      'step-started',
    ]);

    for (const name of TIME_CHARTS) {
      const f = await chartFacts(name);
      expect(f.series.length, name).toBeGreaterThanOrEqual(2);
      for (const s of f.series) expect(s.values, `${name} ${s.label}`).toBeGreaterThanOrEqual(2);
      expect(f.markersDrawn, name).toBe(2);
      expect(f.pixels.marker, `${name}: marker pixels`).toBeGreaterThan(20);
      // The 5xx ratio is 0 for both: one line on top of the other, so only one color need show.
      if (name === 'errors') expect(f.pixels.blue + f.pixels.green, name).toBeGreaterThan(50);
      else {
        expect(f.pixels.blue, `${name}: blue pixels`).toBeGreaterThan(50);
        expect(f.pixels.green, `${name}: green pixels`).toBeGreaterThan(50);
      }
    }
    const weight = await chartFacts('weight');
    expect(weight.series.map((s) => s.max)).toEqual([100, 20]);
    const rate = await chartFacts('rate');
    expect(rate.series[0].max).toBeGreaterThan(rate.series[1].max);

    // Both versions' predictions, overlaid.
    await expect.poll(async () => (await chartFacts('distribution')).series.every((s) => s.max > 0), { timeout: 10_000 }).toBe(true);
    const dist = await chartFacts('distribution');
    expect(dist.pixels.blue).toBeGreaterThan(50);
    expect(dist.pixels.green).toBeGreaterThan(50);
    expect(await page.locator('#distribution-caption').textContent()).toMatch(/blue 1\.0\.0: \d+, green 1\.1\.0: \d+/);

    // Each color's replicas (one each here), with the version each serves.
    expect(await page.locator('.color-card[data-color="green"] .replicas li').allTextContents()).toEqual([
      expect.stringMatching(/^127\.0\.0\.1:\d+ {2}1\.1\.0 {2}in rotation/),
    ]);

    // The smoke phase's golden-set comparison.
    expect(await page.locator('#golden').isVisible()).toBe(true);
    expect(await page.locator('#golden [data-field="candidate"]').textContent()).toMatch(/^\d\.\d{4} {2}\(green, 1\.1\.0\)$/);
    expect(await page.locator('#golden [data-field="agreement"]').textContent()).toMatch(/%$/);

    // Everything the page loaded came from the control API (uPlot included): it works offline.
    const origin = new URL(stack!.controlUrl).origin;
    expect(requested.some((u) => u.endsWith('/status/uplot.js'))).toBe(true);
    expect(requested.every((u) => u.startsWith(origin))).toBe(true);
    expect(consoleErrors).toEqual([]);

    await page.screenshot({ path: screenshot, fullPage: true });
    expect((await stat(screenshot)).size).toBeGreaterThan(20_000);
  }, 150_000);

  it('draws the scatter of stable vs new prediction for paired requests during a shadow phase, hidden before', async () => {
    const headers = { authorization: `Bearer ${token}` };
    // The canary above is left at its first step: end it, so the next release can start.
    const status = async (): Promise<string> =>
      ((await fetch(`${stack!.controlUrl}/api/releases/current`, { headers }).then((r) => r.json())) as { release: { status: string } })
        .release.status;
    if (['running', 'paused'].includes(await status())) {
      expect((await fetch(`${stack!.controlUrl}/api/releases/current/abort`, { method: 'POST', headers })).status).toBe(200);
    }
    await expect.poll(status, { timeout: 30_000 }).not.toMatch(/^(running|paused)$/);
    // No shadow comparison yet: no empty chart.
    await page.waitForTimeout(2_500);
    expect(await page.locator('[data-chart="scatter"]').count()).toBe(1);
    expect(await page.locator('[data-chart="scatter"]').isHidden()).toBe(true);

    const stopShadowLoad = new AbortController();
    const shadowLoad = trickle(stack!.traffic.url, (await readGoldenSet(BASE_BUNDLE))?.rows ?? [], stopShadowLoad.signal, 15, 60_000);
    try {
      const res = await fetch(`${stack!.controlUrl}/api/releases`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        // A long shadow phase mirroring every live request: the page is looked at while the pairs accumulate.
        body: JSON.stringify({
          bundle: 'models/wine-quality/1.1.0',
          strategy: 'bluegreen',
          shadowMs: 40_000,
          shadowPercent: 100,
          analysisMs: 600_000,
        }),
      });
      expect(res.status, await res.text()).toBe(201);
      await expect.poll(() => page.locator('#release [data-field="phase"]').textContent(), { timeout: 60_000 }).toBe('shadow');
      await expect
        .poll(async () => (await page.locator('[data-chart="scatter"]').isVisible()) && (await chartFacts('scatter')).series[0].values, {
          timeout: 30_000,
          interval: 1_000,
        })
        .toBeGreaterThan(20);
      const scatter = await chartFacts('scatter');
      expect(scatter.pixels.pair, 'scatter: point pixels').toBeGreaterThan(50);
      const drawn = await page.evaluate(() => {
        const u = (globalThis as any).bgCharts.scatter;
        return { diagonal: u.bgDiagonalDrawn === true, x: u.data[0] as number[], y: u.data[1] as number[] };
      });
      expect(drawn.diagonal).toBe(true);
      // Each point is a pair of wine-quality predictions, sorted by the stable one, mostly near the diagonal.
      expect(drawn.x.every((v, i) => i === 0 || v >= drawn.x[i - 1])).toBe(true);
      expect([...drawn.x, ...drawn.y].every((v) => v > 2 && v < 9)).toBe(true);
      const near = drawn.x.filter((v, i) => Math.abs(drawn.y[i] - v) < 0.5).length;
      expect(near / drawn.x.length).toBeGreaterThan(0.8);
      expect(await page.locator('#scatter-caption').textContent()).toMatch(/\d+ of \d+ paired requests; agreement \d+(\.\d+)?% within/);
      await page.screenshot({ path: screenshot.replace(/\.png$/, '-shadow.png'), fullPage: true });
    } finally {
      stopShadowLoad.abort();
      await shadowLoad;
    }
  }, 150_000);
});
