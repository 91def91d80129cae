/**
 * The switching scenarios of issue 4, run against real `bgserve serve` instances under continuous load, once
 * per driver (the embedded and nginx test files call this with their driver).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { DEFAULT_BUNDLE, PREVIEW_HEADER, PREVIEW_TOKEN_HEADER, SOURCE_HEADER, type Color } from '../../src/config/defaults.js';
import { INSTANCE_METRICS } from '../../src/config/metric-names.js';
import { WINE_EXAMPLE } from '../../src/model/wine.js';
import { InstancePair, instanceSpecs, startInstance, type CliCommand, type InstanceSpec } from '../../src/stack/instances.js';
import { startEmbeddedRouter } from '../../src/traffic/embedded-router.js';
import { startNginxDriver } from '../../src/traffic/nginx-driver.js';
import type { DriverKind, TrafficDriver, Upstreams } from '../../src/traffic/types.js';
import { CLI_ENTRY, freePort, ROOT } from '../support/processes.js';
import { startLoad, scrapeCounter, windowCounts } from './load.js';

export const TSX_CLI: CliCommand = { command: process.execPath, args: ['--import', 'tsx', CLI_ENTRY] };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PREVIEW_TOKEN = 'scenario-preview-token-0123456789';

async function waitFor(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export function switchingSuite(kind: DriverKind): void {
  describe(`${kind} router with real instances under load`, () => {
    let dir: string;
    let pair: InstancePair;
    let specs: Record<Color, InstanceSpec>;
    let driver: TrafficDriver;

    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), `bgserve-${kind}-`));
      const ports = { blue: await freePort(), green: await freePort() };
      specs = instanceSpecs({
        host: '127.0.0.1',
        ports,
        bundle: path.join(ROOT, DEFAULT_BUNDLE),
        logDir: dir,
        extraArgs: ['--drain-delay-ms', '500', '--log-level', 'warn'],
      });
      pair = await InstancePair.start(specs, { cli: TSX_CLI });
      const upstreams = { blue: [{ host: '127.0.0.1', port: ports.blue }], green: [{ host: '127.0.0.1', port: ports.green }] } as Upstreams;
      const listen = { host: '127.0.0.1', port: await freePort() };
      const health = { intervalMs: 200 };
      driver =
        kind === 'nginx'
          ? await startNginxDriver({
              listen,
              upstreams,
              mode: { kind: 'managed', prefix: path.join(dir, 'nginx') },
              health,
              previewToken: PREVIEW_TOKEN,
            })
          : await startEmbeddedRouter({ ...listen, upstreams, health, previewToken: PREVIEW_TOKEN });
    }, 60_000);

    afterAll(async () => {
      await driver?.close();
      await pair?.stop(5_000);
      await rm(dir, { recursive: true, force: true });
    });

    async function restart(color: Color): Promise<void> {
      const instance = await startInstance(specs[color], TSX_CLI);
      pair.pools[color][0] = instance;
      await instance.waitReady();
      await waitFor(`${color} healthy again`, () => driver.health()[color].healthy);
    }

    it('a. 100/0 -> 0/100 -> 100/0 loses nothing; 90/10 splits within 3 points', async () => {
      const load = startLoad(driver.url, { deadlineMs: 60_000 });
      try {
        await sleep(400);
        await driver.setWeights({ blue: 0, green: 100 });
        await sleep(600);
        await driver.setWeights({ blue: 100, green: 0 });
        await sleep(600);
        await driver.setWeights({ blue: 90, green: 10 });
        await sleep(200);
        // nginx buckets by a random request id: 2000 answers put 3 points at 4.5 standard deviations. Counted
        // by answers rather than by time, so a slow machine waits longer instead of judging fewer.
        const before = load.snapshot();
        let split = windowCounts(before, load.snapshot());
        let total = 0;
        for (const giveUp = Date.now() + 40_000; Date.now() < giveUp; await sleep(100)) {
          split = windowCounts(before, load.snapshot());
          total = (split.blue ?? 0) + (split.green ?? 0);
          if (total >= 2_000) break;
        }
        expect(total).toBeGreaterThanOrEqual(2_000);
        expect(Math.abs((split.green ?? 0) / total - 0.1)).toBeLessThanOrEqual(0.03);
      } finally {
        const result = await load.stop();
        expect(result.errors).toEqual([]);
        expect(result.failed).toBe(0);
        expect(result.byColor.green).toBeGreaterThan(0);
        await driver.setWeights({ blue: 100, green: 0 });
      }
    });

    it('b. SIGTERM to a color after traffic moved away loses nothing', async () => {
      await driver.setWeights({ blue: 0, green: 100 });
      const load = startLoad(driver.url, { deadlineMs: 20_000 });
      await sleep(300);
      const exit = await pair.instances.blue.stop();
      await sleep(700);
      const result = await load.stop();
      expect(exit).toEqual({ code: 0, signal: null });
      expect(result.errors).toEqual([]);
      expect(result.failed).toBe(0);
      expect(result.sent).toBeGreaterThan(50);
      await restart('blue');
      await driver.setWeights({ blue: 100, green: 0 });
    });

    it('c. SIGKILL of a color taking traffic loses nothing, and it is reported unhealthy', async () => {
      await driver.setWeights({ blue: 50, green: 50 });
      const load = startLoad(driver.url, { deadlineMs: 20_000 });
      await sleep(500);
      pair.instances.green.kill('SIGKILL');
      await sleep(1_500);
      expect(driver.health().green.healthy).toBe(false);
      expect(driver.health().green.lastError).toBeTruthy();
      expect(driver.health().blue.healthy).toBe(true);
      const result = await load.stop();
      expect(result.errors).toEqual([]);
      expect(result.failed).toBe(0);
      await restart('green');
      await driver.setWeights({ blue: 100, green: 0 });
    });

    it('d. mirror: the idle color receives the mirrored share, clients get only active answers', async () => {
      const greenUrl = pair.instances.green.url;
      const before = await scrapeCounter(greenUrl, INSTANCE_METRICS.requests);
      await driver.setMirror({ target: 'green', percent: 20 });
      const load = startLoad(driver.url, { deadlineMs: 20_000 });
      await sleep(1_500);
      const result = await load.stop();
      await driver.setMirror({ target: null, percent: 0 });
      await sleep(300);
      const mirrored = (await scrapeCounter(greenUrl, INSTANCE_METRICS.requests)) - before;
      expect(result.failed).toBe(0);
      expect(Object.keys(result.byColor)).toEqual(['blue']);
      expect(mirrored).toBeGreaterThan(result.sent * 0.1);
      expect(mirrored).toBeLessThan(result.sent * 0.3);
    });

    it('e. the preview header with the token reaches the idle color at weight 0, counted there as preview', async () => {
      expect(driver.state().weights).toEqual({ blue: 100, green: 0 });
      const url = (color: Color) => pair.instances[color].url;
      const previews = (color: Color) => scrapeCounter(url(color), INSTANCE_METRICS.requests, 'source="preview"');
      const [greenBefore, blueBefore] = [await previews('green'), await previews('blue')];
      const load = startLoad(driver.url, { deadlineMs: 20_000, concurrency: 4 });
      const seen: string[] = [];
      const post = (headers: Record<string, string>) =>
        request(`${driver.url}/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify(WINE_EXAMPLE),
        });
      for (let i = 0; i < 20; i++) {
        const res = await post({ [PREVIEW_HEADER]: 'green', [PREVIEW_TOKEN_HEADER]: PREVIEW_TOKEN });
        seen.push(((await res.body.json()) as { color: string }).color);
      }
      // Without the token: refused, never reaching green.
      const refused = await post({ [PREVIEW_HEADER]: 'green' });
      expect(refused.statusCode).toBe(403);
      expect(await refused.body.json()).toMatchObject({ error: 'preview_forbidden' });
      // A client labelling its own live request as preview is counted as live all the same.
      const labelled = await post({ [SOURCE_HEADER]: 'preview' });
      expect(labelled.statusCode).toBe(200);
      await labelled.body.dump();
      const result = await load.stop();
      expect(new Set(seen)).toEqual(new Set(['green']));
      expect(result.failed).toBe(0);
      expect(Object.keys(result.byColor)).toEqual(['blue']);
      expect((await previews('green')) - greenBefore).toBe(20);
      expect((await previews('blue')) - blueBefore).toBe(0);
    });
  });
}
