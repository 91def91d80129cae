/**
 * The router as a process of its own (`bgserve router`, as `up` spawns it) over pools: started with a color's
 * replicas on its command line, it spreads over them, and its control endpoint replaces a pool live.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routerArgv, startRouterProcess, type RouterProcess, type RouterSpec } from '../../src/stack/router-process.js';
import { RemoteRouter } from '../../src/traffic/remote-router.js';
import { freePort } from '../support/processes.js';
import { startColorUpstream, type ColorUpstream } from './fixtures.js';
import { TSX_CLI } from './scenarios.js';

const TOKEN = 'router-process-pools-token-0123456789';
let dir: string;
let proc: RouterProcess | undefined;
let remote: RemoteRouter | undefined;
const blue: ColorUpstream[] = [];
let green: ColorUpstream;
let spec: RouterSpec;

const at = (u: ColorUpstream) => ({ host: '127.0.0.1', port: u.port });

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bgserve-router-pools-'));
  for (let i = 0; i < 3; i++) blue.push(await startColorUpstream('blue'));
  green = await startColorUpstream('green');
  await writeFile(path.join(dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
  spec = {
    kind: 'embedded',
    host: '127.0.0.1',
    port: await freePort(),
    upstreams: { blue: [at(blue[0]), at(blue[1])], green: [at(green)] },
    controlTokenFile: path.join(dir, 'token'),
    readyFile: path.join(dir, 'ready.json'),
    logFile: path.join(dir, 'router.log'),
  };
  proc = await startRouterProcess(spec, {}, TSX_CLI);
  remote = await RemoteRouter.connect({
    url: `http://127.0.0.1:${spec.port}`,
    controlUrl: `http://127.0.0.1:${proc.controlPort}`,
    token: TOKEN,
    refreshMs: 50,
  });
}, 30_000);

afterAll(async () => {
  await remote?.close();
  await proc?.stop();
  await Promise.all([...blue, green].filter(Boolean).map((u) => u.close()));
  await rm(dir, { recursive: true, force: true });
});

async function predict(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await request(`http://127.0.0.1:${spec.port}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
  }
}

describe('the router process over pools', () => {
  it('takes each color as a host:port list on its command line', () => {
    const argv = routerArgv(spec, TSX_CLI);
    expect(argv[argv.indexOf('--blue') + 1]).toBe(`127.0.0.1:${blue[0].port},127.0.0.1:${blue[1].port}`);
    expect(argv[argv.indexOf('--green') + 1]).toBe(`127.0.0.1:${green.port}`);
  });

  it('spreads blue over its replicas, and a pool set through its control endpoint takes effect', async () => {
    await predict(20);
    expect(blue[0].predicts).toBeGreaterThan(0);
    expect(blue[1].predicts).toBeGreaterThan(0);
    expect(blue[0].predicts + blue[1].predicts).toBe(20);
    await remote?.setUpstreams({ blue: [at(blue[1]), at(blue[2])], green: [at(green)] });
    expect(remote?.health().blue.replicas.map((r) => r.address)).toEqual([blue[1], blue[2]].map((u) => `127.0.0.1:${u.port}`));
    const first = blue[0].predicts;
    await predict(20);
    expect(blue[0].predicts).toBe(first);
    expect(blue[2].predicts).toBeGreaterThan(0);
  });
});
