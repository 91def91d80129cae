/**
 * nginx with a resolver (compose: instances by service name), run for real against a stand-in for Docker's DNS.
 * Colors are servers on their own loopback addresses behind names, as containers are; "recreating" one moves
 * its name to a new address, "stopping" one removes its name (NXDOMAIN), as Docker's DNS does.
 */
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { PREVIEW_HEADER, PREVIEW_TOKEN_HEADER, SOURCE_HEADER, type Color } from '../../src/config/defaults.js';
import { startNginxDriver, type NginxDriver } from '../../src/traffic/nginx-driver.js';
import { freePort } from '../support/processes.js';
import { startFakeDns, type FakeDns } from './dns-fixture.js';

const NAMES: Record<Color, string> = { blue: 'blue.bgserve.test', green: 'green.bgserve.test' };
const PREVIEW_TOKEN = 'resolve-test-preview-token-012345';

/** One "container": a color at an address, answering with its instance name; it can be told to fail. */
interface Instance {
  name: string;
  address: string;
  predicts: number;
  mirrored: number;
  failNext: { status: number; count: number };
  close(): Promise<void>;
}

async function startInstance(color: Color, name: string, address: string, port: number): Promise<Instance> {
  const inst: Instance = { name, address, predicts: 0, mirrored: 0, failNext: { status: 500, count: 0 }, close: async () => undefined };
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.headers[SOURCE_HEADER] === 'mirror') inst.mirrored++;
      else inst.predicts++;
      res.setHeader('content-type', 'application/json');
      if (inst.failNext.count > 0) {
        inst.failNext.count--;
        res.statusCode = inst.failNext.status;
        res.end(JSON.stringify({ error: 'failing', message: 'on purpose', instance: name }));
        return;
      }
      res.end(JSON.stringify({ color, instance: name }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, resolve);
  });
  inst.close = () =>
    new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return inst;
}

let dns: FakeDns;
let driver: NginxDriver;
let prefix: string;
let port: number;
const instances: Instance[] = [];
// Keep-alive client connections, as a load balancer's or a busy client's: what a reload would cut.
const agent = new Agent({ connections: 4, keepAliveTimeout: 60_000 });

async function predict(headers: Record<string, string> = {}): Promise<{ status: number; body: any; ms: number }> {
  const started = Date.now();
  const res = await request(`${driver.url}/predict`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json', ...headers },
    body: '{"alcohol":9.4}',
  });
  return { status: res.statusCode, body: await res.body.json(), ms: Date.now() - started };
}

/** The managed nginx's worker PIDs: a reload replaces them. */
async function workers(): Promise<string> {
  return (await readFile(`/proc/${driver.pid}/task/${driver.pid}/children`, 'utf8')).trim();
}

/** Continuous load from two keep-alive clients while `fn` runs: every answer and failure counted. */
async function underLoad(
  fn: () => Promise<void>,
): Promise<{ sent: number; failed: string[]; by: Record<string, number>; slowestMs: number }> {
  const totals = { sent: 0, failed: [] as string[], by: {} as Record<string, number>, slowestMs: 0 };
  let stop = false;
  const worker = async () => {
    while (!stop) {
      totals.sent++;
      try {
        const r = await predict();
        totals.slowestMs = Math.max(totals.slowestMs, r.ms);
        if (r.status === 200) totals.by[r.body.instance] = (totals.by[r.body.instance] ?? 0) + 1;
        else totals.failed.push(`${r.status} ${JSON.stringify(r.body)}`);
      } catch (err) {
        totals.failed.push(String((err as Error).cause ?? err));
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  };
  const load = Promise.all([worker(), worker()]);
  try {
    await fn();
  } finally {
    stop = true;
    await load;
  }
  return totals;
}

/** Until nginx's cached lookups are stale (valid=1s, counted in whole seconds). */
const expired = () => new Promise((r) => setTimeout(r, 2_100));

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - started;
}

beforeAll(async () => {
  // The same port on every address, as every instance container listens on 8000.
  port = await freePort();
  instances.push(await startInstance('blue', 'blue-1', '127.0.0.2', port), await startInstance('green', 'green-1', '127.0.0.3', port));
  dns = await startFakeDns({ [NAMES.blue]: '127.0.0.2', [NAMES.green]: '127.0.0.3' });
  prefix = await mkdtemp(path.join(tmpdir(), 'bgserve-nginx-resolve-'));
  driver = await startNginxDriver({
    listen: { host: '127.0.0.1', port: await freePort() },
    upstreams: { blue: [{ host: NAMES.blue, port }], green: [{ host: NAMES.green, port }] },
    mode: { kind: 'managed', prefix },
    render: { workerProcesses: 2, resolver: `127.0.0.1:${dns.port}` },
    // The driver's own checker resolves through this machine's resolver, which knows no test names: slow it down.
    health: { intervalMs: 60_000 },
    previewToken: PREVIEW_TOKEN,
  });
}, 30_000);

afterAll(async () => {
  await driver?.close();
  await agent.close();
  await Promise.all(instances.map((i) => i.close()));
  await dns?.close();
  if (prefix) await rm(prefix, { recursive: true, force: true });
});

afterEach(async () => {
  for (const i of instances) i.failNext.count = 0;
  dns.records.set(NAMES.blue, '127.0.0.2');
  await driver.setWeights({ blue: 100, green: 0 });
  await driver.setMirror({ target: null, percent: 0 });
});

describe('nginx with a resolver (instances by name)', () => {
  it('renders no upstream block and resolves names at run time', async () => {
    const conf = await readFile(driver.configFile, 'utf8');
    expect(conf).toContain(`resolver 127.0.0.1:${dns.port} valid=1s ipv6=off;`);
    expect(conf).not.toMatch(/^\s*upstream /m);
    expect((await predict()).body).toEqual({ color: 'blue', instance: 'blue-1' });
    expect(dns.queries.get(NAMES.blue)).toBeGreaterThan(0);
  });

  it('follows a color recreated at a new address under load, with no reload and no failed request', async () => {
    await driver.setWeights({ blue: 0, green: 100 });
    expect((await predict()).body.instance).toBe(instances[1].name);
    const before = await workers();
    let followedMs = 0;
    const totals = await underLoad(async () => {
      await new Promise((r) => setTimeout(r, 300));
      // As compose recreates a container: the old one stops (its name gone), the new one starts elsewhere.
      const old = instances[1];
      dns.records.delete(NAMES.green);
      await old.close();
      await new Promise((r) => setTimeout(r, 300));
      instances[1] = await startInstance('green', 'green-2', '127.0.0.4', port);
      dns.records.set(NAMES.green, '127.0.0.4');
      followedMs = await until('answers from the recreated green', async () => (await predict()).body.instance === 'green-2', 5_000);
      await new Promise((r) => setTimeout(r, 300));
    });
    console.log(
      `nginx resolver: recreated green followed after ${followedMs} ms; load ${JSON.stringify({ ...totals, failed: totals.failed.length })}`,
    );
    expect(totals.failed).toEqual([]);
    expect(totals.sent).toBeGreaterThan(50);
    // While green was away its requests were replayed on blue, at once rather than after a timeout.
    expect(totals.by['blue-1'] ?? 0).toBeGreaterThan(0);
    expect(totals.slowestMs).toBeLessThan(1_000);
    expect(followedMs).toBeLessThan(3_500);
    expect(await workers()).toBe(before);
    for (let i = 0; i < 10; i++) expect((await predict()).body).toEqual({ color: 'green', instance: 'green-2' });
  });

  it('replays a stopped color (NXDOMAIN) or a freed address (refused) on the other color at once', async () => {
    await driver.setWeights({ blue: 0, green: 100 });
    const green = dns.records.get(NAMES.green)!;
    try {
      for (const [how, address] of [
        ['stopped', undefined],
        ['freed address', '127.0.0.5'],
      ] as const) {
        if (address) dns.records.set(NAMES.green, address);
        else dns.records.delete(NAMES.green);
        // nginx keeps a looked-up address valid=1s, counted in whole seconds: 2s at most, then it asks again.
        await expired();
        for (let i = 0; i < 10; i++) {
          const r = await predict();
          expect(r, how).toMatchObject({ status: 200, body: { color: 'blue' } });
          expect(r.ms, how).toBeLessThan(500);
        }
      }
      // The preview reaches the named color only: its failure is a JSON 502 naming it, no replay.
      expect(await predict({ [PREVIEW_HEADER]: 'green', [PREVIEW_TOKEN_HEADER]: PREVIEW_TOKEN })).toMatchObject({
        status: 502,
        body: { error: 'bad_gateway', message: 'no answer from green' },
      });
      expect(await predict({ [PREVIEW_HEADER]: 'green' })).toMatchObject({ status: 403, body: { error: 'preview_forbidden' } });
      // Both colors gone: a JSON 502, naming no address.
      dns.records.delete(NAMES.blue);
      await expired();
      const none = await predict();
      expect(none).toMatchObject({ status: 502, body: { error: 'bad_gateway' } });
      expect(JSON.stringify(none.body)).not.toMatch(/127\.0\.0|bgserve\.test/);
    } finally {
      dns.records.set(NAMES.green, green);
      await expired();
    }
  });

  it('replays 500 and 502-504 answers once on the other color, passes others through, and counts the retries', async () => {
    const [blue, green] = [instances[0], instances[1]];
    const retries = /bgserve_router_retries_total\{from="blue",to="green"\} (\d+)/;
    const count = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
    const before = await driver.metrics.metrics();
    for (const status of [500, 502, 503, 504]) {
      blue.failNext = { status, count: 1 };
      expect(await predict(), String(status)).toMatchObject({ status: 200, body: { color: 'green' } });
    }
    // Both fail: the other color's answer is the client's, unchanged.
    blue.failNext = { status: 503, count: 1 };
    green.failNext = { status: 503, count: 1 };
    expect(await predict()).toMatchObject({ status: 503, body: { error: 'failing', instance: green.name } });
    blue.failNext = { status: 429, count: 1 };
    expect(await predict()).toMatchObject({ status: 429, body: { instance: 'blue-1' } });
    // Router metrics from the access log name the colors, not the addresses nginx looked up.
    await new Promise((r) => setTimeout(r, 2_300));
    const after = await driver.metrics.metrics();
    expect(count(after, retries) - count(before, retries)).toBe(5);
    expect(after).toMatch(/bgserve_router_requests_total\{color="blue",code="429"\} 1/);
    expect(after).toMatch(/bgserve_router_requests_total\{color="green",code="503"\} 1/);
  });

  // Compose's scaled service: one name, an A record per replica. nginx takes one answer for valid=1s, but hands each
  // request its addresses from a random start, so every replica gets its share without a reload.
  it('spreads over every address of a scaled name (one A record per replica)', async () => {
    const replicas = await Promise.all(
      ['127.0.0.5', '127.0.0.6', '127.0.0.7'].map((address, i) => startInstance('blue', `blue-r${i + 1}`, address, port)),
    );
    try {
      dns.records.set(NAMES.blue, replicas.map((r) => r.address).join(','));
      await expired();
      const totals = await underLoad(() => new Promise((r) => setTimeout(r, 1_500)));
      expect(totals.failed).toEqual([]);
      const counts = replicas.map((r) => totals.by[r.name] ?? 0);
      const sum = counts.reduce((a, b) => a + b, 0);
      expect(sum).toBe(totals.sent);
      for (const n of counts) expect(n / sum).toBeGreaterThan(0.15);
      // A pool of several host:port cannot be a resolved name: refused as the caller's mistake, nothing applied.
      const two = [
        { host: '127.0.0.5', port },
        { host: '127.0.0.6', port },
      ];
      await expect(driver.setUpstreams({ blue: two, green: [{ host: NAMES.green, port }] })).rejects.toThrow(/one host:port per color/);
      expect(await readFile(driver.configFile, 'utf8')).not.toContain('127.0.0.5');
    } finally {
      dns.records.set(NAMES.blue, '127.0.0.2');
      await expired();
      await Promise.all(replicas.map((r) => r.close()));
    }
  });

  it('mirrors through the resolved name too', async () => {
    const green = instances[1];
    const mirroredBefore = green.mirrored;
    await driver.setMirror({ target: 'green', percent: 100 });
    for (let i = 0; i < 5; i++) expect((await predict()).body.color).toBe('blue');
    await until('mirrored copies on green', async () => green.mirrored - mirroredBefore >= 5, 3_000);
  });
});
