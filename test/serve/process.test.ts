import http from 'node:http';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WINE_EXAMPLE } from '../../src/model/wine.js';
import { defaultPort, readAdminToken } from '../../src/cli/serve.js';
import { freePort, startCli, stopAll, stopProcess, waitForHttp, type Started } from '../support/processes.js';
import { BUNDLE_1_0, BUNDLE_1_1 } from './helpers.js';

const BODY = JSON.stringify(WINE_EXAMPLE);

/** Starts a POST /predict and sends only the first half of its body: a request in flight until `finish()`. */
function slowPredict(port: number): { finish: () => void; answer: Promise<{ status: number; body: string }> } {
  const req = http.request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/predict',
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) },
  });
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
  req.write(BODY.slice(0, 40));
  return { finish: () => req.end(BODY.slice(40)), answer };
}

/** Polls until a new connection is refused (the server closed its socket), within the time limit. */
async function refusesConnections(base: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      await fetch(`${base}/health`, { headers: { connection: 'close' } });
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

function exitCode(proc: Started): Promise<number | null> {
  if (proc.child.exitCode !== null) return Promise.resolve(proc.child.exitCode);
  return new Promise((resolve) => proc.child.once('exit', (code) => resolve(code)));
}

function logLines(proc: Started): Record<string, unknown>[] {
  return proc
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

afterAll(() => stopAll());

describe('bgserve serve as a process', () => {
  it('logs JSON with request ids, and on SIGTERM drains: /ready 503, in-flight requests finish, exit 0', async () => {
    const port = await freePort();
    const proc = startCli(['serve', '--port', String(port), '--color', 'green', '--drain-delay-ms', '2000']);
    try {
      const base = `http://127.0.0.1:${port}`;
      await waitForHttp(`${base}/ready`, { proc });
      const startup = logLines(proc);
      expect(startup).toHaveLength(1);
      expect(startup[0]).toMatchObject({
        msg: 'listening',
        color: 'green',
        address: base,
        model: { name: 'wine-quality', version: '1.0.0' },
      });

      const rejected = await fetch(`${base}/predict`, {
        method: 'POST',
        body: '{}',
        headers: { 'content-type': 'application/json', 'x-request-id': 'drain-test-42' },
      });
      expect(rejected.status).toBe(422);
      expect(rejected.headers.get('x-request-id')).toBe('drain-test-42');

      const slow = slowPredict(port);
      const burst = Array.from({ length: 40 }, () =>
        fetch(`${base}/predict`, { method: 'POST', body: BODY, headers: { 'content-type': 'application/json' } }).then((r) => r.status),
      );
      await new Promise((r) => setTimeout(r, 50));
      proc.child.kill('SIGTERM');

      // While the drain delay runs, /ready turns 503 but the instance still answers.
      await waitForHttp(`${base}/ready`, { status: 503, timeoutMs: 1800 });
      const during = await fetch(`${base}/predict`, { method: 'POST', body: BODY, headers: { 'content-type': 'application/json' } });
      expect(during.status).toBe(200);
      expect(proc.child.exitCode).toBeNull();

      // Past the delay the socket stops accepting, but the half-sent request is still in flight: it completes.
      expect(await refusesConnections(base, 10_000)).toBe(true);
      slow.finish();
      const answer = await slow.answer;
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body).model.version).toBe('1.0.0');
      expect(await Promise.all(burst)).toEqual(Array(40).fill(200));

      expect(await exitCode(proc)).toBe(0);
      const logs = logLines(proc);
      expect(logs.find((l) => l.reqId === 'drain-test-42')).toMatchObject({ error: 'invalid_input', status: 422 });
      expect(logs.some((l) => l.msg === 'drained: server closed')).toBe(true);
    } finally {
      await stopProcess(proc);
    }
  });

  it('serves the admin API with a token from --admin-token-file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bgserve-token-'));
    const port = await freePort();
    const tokenFile = path.join(dir, 'token');
    await writeFile(tokenFile, 'file-token\n');
    const proc = startCli(['serve', '--port', String(port), '--admin-token-file', tokenFile, '--drain-delay-ms', '0']);
    try {
      const base = `http://127.0.0.1:${port}`;
      await waitForHttp(`${base}/ready`, { proc });
      const res = await fetch(`${base}/admin/model`, {
        method: 'POST',
        body: JSON.stringify({ bundle: BUNDLE_1_1 }),
        headers: { 'content-type': 'application/json', authorization: 'Bearer file-token' },
      });
      expect(res.status).toBe(200);
      const health = await (await fetch(`${base}/health`)).json();
      expect(health).toMatchObject({ color: 'standalone', model: { version: '1.1.0' } });
      expect(await stopProcess(proc)).toBe(0);
    } finally {
      await stopProcess(proc);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('loads admin bundles from a --bundle-root folder, and from nowhere else outside models/', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bgserve-serve-roots-'));
    const port = await freePort();
    await writeFile(path.join(dir, 'token'), 'root-token\n');
    await cp(BUNDLE_1_1, path.join(dir, 'root', '1.1.0'), { recursive: true });
    await cp(BUNDLE_1_1, path.join(dir, 'elsewhere', '1.1.0'), { recursive: true });
    const proc = startCli([
      'serve',
      '--port',
      String(port),
      '--admin-token-file',
      path.join(dir, 'token'),
      '--bundle-root',
      path.join(dir, 'root'),
      '--drain-delay-ms',
      '0',
    ]);
    try {
      const base = `http://127.0.0.1:${port}`;
      await waitForHttp(`${base}/ready`, { proc });
      const load = (bundle: string) =>
        fetch(`${base}/admin/model`, {
          method: 'POST',
          body: JSON.stringify({ bundle }),
          headers: { 'content-type': 'application/json', authorization: 'Bearer root-token' },
        });
      const refused = await load(path.join(dir, 'elsewhere', '1.1.0'));
      expect(refused.status).toBe(422);
      expect(await refused.json()).toMatchObject({ error: 'bundle_refused', details: [{ field: 'bundle', problem: 'outside_roots' }] });
      expect((await load(path.join(dir, 'root', '1.1.0'))).status).toBe(200);
      // The default roots stay: models/ under the working directory.
      expect((await load(BUNDLE_1_0)).status).toBe(200);
      expect(logLines(proc)[0]).toMatchObject({ msg: 'listening', bundleRoots: expect.arrayContaining([path.join(dir, 'root')]) });
    } finally {
      await stopProcess(proc);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses bad options and a bad bundle with a message and exit code 1', async () => {
    const badColor = startCli(['serve', '--color', 'purple']);
    expect(await exitCode(badColor)).not.toBe(0);
    expect(badColor.output()).toContain('expected one of blue, green');

    const badBundle = startCli(['serve', '--bundle', '/nonexistent/bundle', '--port', String(await freePort())]);
    expect(await exitCode(badBundle)).toBe(1);
    expect(badBundle.output()).toContain('manifest.json');
  });
});

describe('serve CLI helpers', () => {
  it('picks the color port, else the local router port', () => {
    expect(defaultPort('blue')).toBe(8001);
    expect(defaultPort('green')).toBe(8002);
    expect(defaultPort(undefined)).toBe(8080);
  });

  it('reads the admin token from a file first, then the environment, refusing an empty one', async () => {
    expect(await readAdminToken(undefined, { BGSERVE_ADMIN_TOKEN: ' env-token ' })).toBe('env-token');
    expect(await readAdminToken(undefined, {})).toBeUndefined();
    await expect(readAdminToken(undefined, { BGSERVE_ADMIN_TOKEN: '  ' })).rejects.toThrow(/empty/);
    const dir = await mkdtemp(path.join(tmpdir(), 'bgserve-token-'));
    try {
      await writeFile(path.join(dir, 't'), 'from-file\n');
      expect(await readAdminToken(path.join(dir, 't'), { BGSERVE_ADMIN_TOKEN: 'env' })).toBe('from-file');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
