/**
 * The status page in a real browser (Debian's Chromium through playwright-core) against a real local stack:
 * both colors shown, a release's progress appearing without a reload, the rollback button rolling back.
 */
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COLORS } from '../../src/config/defaults.js';
import { RELEASE_LOG_FILE } from '../../src/release/defaults.js';
import { WINE_EXAMPLE } from '../../src/model/wine.js';
import { readTokenFile } from '../../src/control/auth.js';
import { STATUS_PAGE_PATH } from '../../src/control/status-page.js';
import type { LocalStack } from '../../src/app/root.js';
import { launchChromium, startStackOnFreePorts, trickle } from './browser.js';

describe('status page (Chromium, real stack)', () => {
  let dir: string;
  let stack: LocalStack | undefined;
  let browser: BrowserContext | undefined;
  let page: Page;
  let token: string;
  let logFile: string;
  const stopLoad = new AbortController();
  let loader: Promise<void> = Promise.resolve();
  const screenshot = process.env.STATUS_PAGE_SCREENSHOT ?? path.join(tmpdir(), 'bgserve-status-page.png');

  async function api(method: string, url: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(`${stack!.controlUrl}/api${url}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  }

  function releaseField(name: string) {
    return page.locator(`#release [data-field="${name}"]`);
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bgserve-status-page-'));
    const stateDir = path.join(dir, 'state');
    // A release log damaged by hand before the stack starts: two lines the page must report.
    await mkdir(stateDir, { recursive: true });
    logFile = path.join(stateDir, RELEASE_LOG_FILE);
    await writeFile(logFile, 'garbage {\n{"kind":"event","event":null}\n');
    stack = await startStackOnFreePorts(stateDir, { liveStats: { windowMs: 5_000 } });
    token = await readTokenFile(stack.tokenFile);
    // A light, bounded trickle of live traffic through the router, so the live numbers move.
    loader = trickle(stack.traffic.url, [WINE_EXAMPLE], stopLoad.signal);
    ({ browser, page } = await launchChromium(dir, { width: 1200, height: 1100 }));
    page.on('dialog', (dialog) => void dialog.accept());
    await page.goto(`${stack.controlUrl}${STATUS_PAGE_PATH}#token=${token}`);
    // Set once: still there at the end only if the page was never reloaded.
    await page.evaluate(() => ((globalThis as unknown as { loadedOnce: boolean }).loadedOnce = true));
  }, 120_000);

  afterAll(async () => {
    stopLoad.abort();
    await loader;
    await browser?.close();
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('is public but holds no data; its data and buttons need the token', async () => {
    const res = await fetch(`${stack!.controlUrl}${STATUS_PAGE_PATH}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'sha256-");
    expect(await res.text()).not.toContain(token);
    expect((await fetch(`${stack!.controlUrl}/api/live`)).status).toBe(401);
    expect((await fetch(`${stack!.controlUrl}/api/releases/current/rollback`, { method: 'POST' })).status).toBe(401);
  });

  it('shows both colors with model version, health, weight and live numbers', async () => {
    // Live numbers count live traffic only (not preview or mirrored copies): split it for a moment.
    expect((await api('PUT', '/weights', { blue: 50, green: 50 })).status).toBe(200);
    for (const color of COLORS) {
      const card = page.locator(`.color-card[data-color="${color}"]`);
      await expect.poll(() => card.locator('[data-field="model"]').textContent(), { timeout: 15_000 }).toBe('wine-quality 1.0.0');
      await expect.poll(() => card.locator('[data-field="health"]').getAttribute('class')).toBe('ok');
      // Live request rate from the direct scrape: a number once two snapshots exist.
      await expect.poll(() => card.locator('[data-field="rate"]').textContent(), { timeout: 20_000 }).toMatch(/^\d+(\.\d)? req\/s$/);
      await expect.poll(() => card.locator('[data-field="p99"]').textContent()).toMatch(/ ms$/);
    }
    expect((await api('POST', '/switch', { color: 'blue' })).status).toBe(200);
    await expect.poll(() => page.locator('.color-card[data-color="green"] [data-field="weight"]').textContent()).toBe('0%');
    expect(await page.locator('.color-card[data-color="blue"] [data-field="weight"]').textContent()).toBe('100%');
    expect(await page.locator('.color-card[data-color="green"] [data-field="weight"]').textContent()).toBe('0%');
    expect(await page.locator('#no-release').isVisible()).toBe(true);
  });

  it("shows a release's progress without a reload, then rolls it back with the button", async () => {
    const started = await api('POST', '/releases', {
      bundle: 'models/wine-quality/1.1.0',
      strategy: 'canary',
      steps: [10, 50, 100],
      analysisMs: 120_000,
    });
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    const id: string = started.body.release.spec.id;

    await expect.poll(() => releaseField('id').textContent(), { timeout: 15_000 }).toBe(id);
    expect(await releaseField('model').textContent()).toBe('wine-quality 1.1.0 → green');
    // Loading and smoke take a moment; the page follows them to the first canary step.
    await expect.poll(() => releaseField('phase').textContent(), { timeout: 60_000 }).toBe('step');
    await expect.poll(() => releaseField('step').textContent()).toBe('1 of 3 (10%)');
    await expect.poll(() => page.locator('.color-card[data-color="green"] [data-field="model"]').textContent()).toBe('wine-quality 1.1.0');
    await expect.poll(() => page.locator('.color-card[data-color="green"] [data-field="weight"]').textContent()).toBe('10%');
    await page.screenshot({ path: screenshot, fullPage: true });
    expect((await stat(screenshot)).size).toBeGreaterThan(10_000);

    const rollback = page.locator('button[data-command="rollback"]');
    expect(await rollback.isEnabled()).toBe(true);
    await rollback.click();
    await expect.poll(() => releaseField('status').textContent(), { timeout: 20_000 }).toBe('rolled_back');
    await expect.poll(() => page.locator('.color-card[data-color="green"] [data-field="weight"]').textContent()).toBe('0%');
    expect(await rollback.isEnabled()).toBe(false);
    await expect.poll(() => page.locator('#history').textContent()).toContain(id);

    const status = await api('GET', '/status');
    expect(status.body.weights).toEqual({ blue: 100, green: 0 });
    const current = await api('GET', '/releases/current');
    expect(current.body.release.status).toBe('rolled_back');
    expect(await page.evaluate(() => (globalThis as unknown as { loadedOnce?: boolean }).loadedOnce)).toBe(true);
  });

  it('reports a release log damaged before start, and traffic moved outside the latest release', async () => {
    const damage = page.locator('#log-damage');
    await expect.poll(() => damage.isVisible()).toBe(true);
    expect(await damage.locator('[data-field="summary"]').textContent()).toBe(`2 damaged records skipped in ${logFile}`);
    expect(await page.locator('#damage li').allTextContents()).toEqual([
      expect.stringMatching(/^line 1: not valid JSON/),
      'line 2: event must be object',
    ]);

    expect(await page.locator('#traffic-warning').isVisible()).toBe(false);
    // The release has ended: traffic is anyone's, but the page must not show the outcome as if it still held.
    expect((await api('POST', '/switch', { color: 'green' })).status).toBe(200);
    await expect.poll(() => page.locator('#traffic-warning').isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await page.locator('#traffic-warning').textContent()).toMatch(
      /^Traffic disagrees with the release: live blue 0 \/ green 100, but release r-\S+ \(rolled_back\) wants blue 100 \/ green 0/,
    );
    expect(await releaseField('status').textContent()).toBe('rolled_back (but live traffic disagrees)');
    expect((await api('POST', '/switch', { color: 'blue' })).status).toBe(200);
    await expect.poll(() => page.locator('#traffic-warning').isVisible(), { timeout: 10_000 }).toBe(false);
    expect(await releaseField('status').textContent()).toBe('rolled_back');
  });
});
