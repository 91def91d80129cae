import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { PREVIEW_HEADER, PREVIEW_TOKEN_HEADER } from '../../src/config/defaults.js';
import { NginxConfigError, startNginxDriver, type NginxDriver } from '../../src/traffic/nginx-driver.js';
import { freePort } from '../support/processes.js';
import { startColorUpstream, type ColorUpstream } from './fixtures.js';

let blue: ColorUpstream;
let green: ColorUpstream;
let driver: NginxDriver;
let prefix: string;

const PREVIEW_TOKEN = 'nginx-test-preview-token-0123456';
const previewTo = (color: string) => ({ [PREVIEW_HEADER]: color, [PREVIEW_TOKEN_HEADER]: PREVIEW_TOKEN });

async function predict(headers: Record<string, string> = {}) {
  const res = await request(`${driver.url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ alcohol: 9.4 }),
  });
  const body = (await res.body.json()) as any;
  return { status: res.statusCode, color: body.color as string | undefined, body };
}

async function colors(n: number, headers: Record<string, string> = {}) {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const r = await predict(headers);
    expect(r.status).toBe(200);
    counts[r.color!] = (counts[r.color!] ?? 0) + 1;
  }
  return counts;
}

beforeAll(async () => {
  blue = await startColorUpstream('blue');
  green = await startColorUpstream('green');
  prefix = await mkdtemp(path.join(tmpdir(), 'bgserve-nginx-'));
  driver = await startNginxDriver({
    listen: { host: '127.0.0.1', port: await freePort() },
    upstreams: { blue: [{ host: '127.0.0.1', port: blue.port }], green: [{ host: '127.0.0.1', port: green.port }] },
    mode: { kind: 'managed', prefix },
    render: { workerProcesses: 1, failTimeoutS: 1 },
    health: { intervalMs: 200 },
    previewToken: PREVIEW_TOKEN,
  });
});

afterAll(async () => {
  const pid = driver?.pid;
  await driver?.close();
  if (pid) expect(() => process.kill(pid, 0)).toThrow();
  await blue.close();
  await green.close();
  await rm(prefix, { recursive: true, force: true });
});

afterEach(async () => {
  blue.failNext.count = green.failNext.count = 0;
  await driver.setWeights({ blue: 100, green: 0 });
  await driver.setMirror({ target: null, percent: 0 });
  await driver.setSticky(null);
});

describe('nginx driver (managed nginx)', () => {
  it('serves the weights it renders and switches in effect when setWeights resolves', async () => {
    expect(await colors(10)).toEqual({ blue: 10 });
    // How fast a switch takes effect is measured by `npm run bench`; here: in effect once setWeights resolves.
    await driver.setWeights({ blue: 0, green: 100 });
    expect(await colors(10)).toEqual({ green: 10 });
    await driver.setWeights({ blue: 90, green: 10 });
    // Buckets come from a random request id: 2000 requests put 3 points at 4.5 standard deviations.
    const split = await colors(2000);
    expect(Math.abs((split.green ?? 0) / 2000 - 0.1)).toBeLessThanOrEqual(0.03);
  });

  it('routes the preview header to the color at weight 0', async () => {
    expect(await colors(5, previewTo('green'))).toEqual({ green: 5 });
  });

  it('keeps the configuration, which holds the preview token, readable by its owner only', async () => {
    expect(await readFile(driver.configFile, 'utf8')).toContain(PREVIEW_TOKEN);
    expect((await stat(driver.configFile)).mode & 0o077).toBe(0);
  });

  it('shows a preview request the real 500 of the named color, without a replay', async () => {
    green.failNext = { status: 500, count: 1 };
    const before = blue.predicts;
    const res = await predict(previewTo('green'));
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: 'unavailable', message: 'failing on purpose' });
    expect(blue.predicts).toBe(before);
  });

  it('passes a 4xx through without a replay, its body unchanged', async () => {
    blue.failNext = { status: 422, count: 1 };
    const before = green.predicts;
    const res = await predict();
    expect(res.status).toBe(422);
    expect(res.body).toEqual({ error: 'unavailable', message: 'failing on purpose' });
    expect(green.predicts).toBe(before);
  });

  it('replays a 500 on the other color (body included) and keeps the failing color in rotation', async () => {
    blue.failNext = { status: 500, count: 1 };
    const res = await predict();
    expect(res).toMatchObject({ status: 200, color: 'green' });
    expect(res.body.echo).toEqual({ alcohol: 9.4 });
    // Not a failed attempt for max_fails: the very next request goes to blue again.
    expect(await predict()).toMatchObject({ status: 200, color: 'blue' });
    // With blue at 0% (backup in bgserve_green_first) the replay goes the other way.
    await driver.setWeights({ blue: 0, green: 100 });
    green.failNext = { status: 500, count: 1 };
    expect(await predict()).toMatchObject({ status: 200, color: 'blue' });
    expect(await predict()).toMatchObject({ status: 200, color: 'green' });
  });

  it('answers the second 500 when both colors fail', async () => {
    blue.failNext = { status: 500, count: 1 };
    green.failNext = { status: 500, count: 1 };
    const res = await predict();
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: 'unavailable', message: 'failing on purpose' });
  });

  it.each([503, 504])('replays a POST answered %i on the other color', async (status) => {
    blue.failNext = { status, count: 1 };
    expect(await predict()).toMatchObject({ status: 200, color: 'green' });
    // Passive health: blue sits out fail_timeout (1 s here), its share going to the backup, then returns.
    expect(await predict()).toMatchObject({ status: 200, color: 'green' });
    const deadline = Date.now() + 3_000;
    let back = false;
    while (!back && Date.now() < deadline) {
      back = (await predict()).color === 'blue';
      if (!back) await new Promise((r) => setTimeout(r, 100));
    }
    expect(back).toBe(true);
  });

  it('mirrors a share to the idle color, clients get only the active answers', async () => {
    const before = green.mirrored;
    await driver.setMirror({ target: 'green', percent: 50 });
    expect(await colors(40)).toEqual({ blue: 40 });
    await new Promise((r) => setTimeout(r, 200));
    const mirrored = green.mirrored - before;
    expect(mirrored).toBeGreaterThan(5);
    expect(mirrored).toBeLessThan(35);
  });

  it('splits by a sticky key (a reload) and keeps keys on one color', async () => {
    await driver.setSticky({ header: 'x-user' });
    await driver.setWeights({ blue: 50, green: 50 });
    for (const user of ['a', 'b', 'c', 'd']) {
      const first = (await predict({ 'x-user': user })).color;
      expect(await colors(3, { 'x-user': user })).toEqual({ [first!]: 3 });
    }
    expect(await readFile(driver.configFile, 'utf8')).toContain('map $http_x_user $bgserve_split_key');
  });

  it('never applies a configuration nginx refuses: the old one keeps serving', async () => {
    const before = await readFile(driver.configFile, 'utf8');
    await expect(driver.applyConfigText('http { upstream { }')).rejects.toBeInstanceOf(NginxConfigError);
    await expect(driver.setWeights({ blue: 30, green: 30 })).rejects.toThrow(/sum to 100/);
    expect(await readFile(driver.configFile, 'utf8')).toBe(before);
    expect(await colors(5)).toEqual({ blue: 5 });
    expect(driver.state().weights).toEqual({ blue: 100, green: 0 });
  });

  it('feeds router metrics from the access log', async () => {
    await colors(5);
    await new Promise((r) => setTimeout(r, 2_300));
    const text = await driver.metrics.metrics();
    const match = /bgserve_router_requests_total\{color="blue",code="200"\} (\d+)/.exec(text);
    expect(Number(match?.[1])).toBeGreaterThanOrEqual(5);
    expect(text).toContain('bgserve_router_weight{color="blue"} 100');
  });

  it('counts a replayed 500 as a retry and a 200 of the color that answered', async () => {
    const count = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
    const retries = /bgserve_router_retries_total\{from="blue",to="green"\} (\d+)/;
    const greenOk = /bgserve_router_requests_total\{color="green",code="200"\} (\d+)/;
    const before = await driver.metrics.metrics();
    blue.failNext = { status: 500, count: 1 };
    expect(await predict()).toMatchObject({ status: 200, color: 'green' });
    await new Promise((r) => setTimeout(r, 2_300));
    const after = await driver.metrics.metrics();
    expect(count(after, retries) - count(before, retries)).toBe(1);
    expect(count(after, greenOk) - count(before, greenOk)).toBe(1);
    const blue500 = /bgserve_router_requests_total\{color="blue",code="500"\} (\d+)/;
    expect(count(after, blue500)).toBe(count(before, blue500));
  });
});
