/**
 * The compose deployment's router path, run natively: a real nginx under deploy/nginx/watch-config.sh (the
 * nginx container's entrypoint), driven by the real nginx traffic driver in external mode as the controller
 * drives it in compose (no nginx binary on the controller's side: test and reload commands are no-ops; weights
 * are live files in the shared state directory; a configuration change goes through the watcher). Only the
 * container paths and ports are moved to a private directory and loopback ports.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { request } from 'undici';
import path from 'node:path';
import { ROOT, freePort, stopProcess, waitForHttp, type Started } from '../support/processes.js';
import { COMPOSE_NGINX_OPTIONS, renderComposeSeed } from '../../deploy/nginx/compose.js';
import { renderNginxConfig, VERSION_PATH, type NginxRenderOptions } from '../../src/traffic/nginx-config.js';
import { initialState } from '../../src/traffic/policy.js';
import { startNginxDriver, type NginxDriver } from '../../src/traffic/nginx-driver.js';
import type { Color } from '../../src/config/defaults.js';

/** An upstream that names its color: enough to see where nginx sends a request. */
async function colorServer(color: Color, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ color }));
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}

/**
 * Colors answering n requests, each on a new connection: a reload is in effect for new connections (old
 * workers finish what kept-alive connections already sent them), which is what the driver waits for too.
 */
async function colorsSeen(url: string, n: number): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const res = await request(url, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' }, reset: true });
    expect(res.statusCode).toBe(200);
    const { color } = (await res.body.json()) as { color: string };
    seen[color] = (seen[color] ?? 0) + 1;
  }
  return seen;
}

/**
 * Waits until `streak` new connections in a row are answered with the generation. nginx's old workers keep
 * accepting for a moment after a reload (they share the listening sockets with the new ones until they get
 * the graceful-stop signal), so one answer from a new worker does not yet mean every worker is new.
 */
async function settled(url: string, generation: number, streak = 10, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let run = 0;
  while (run < streak) {
    if (Date.now() > deadline) throw new Error(`generation ${generation} not served by every worker within ${timeoutMs} ms`);
    const res = await request(`${url}${VERSION_PATH}`, { reset: true });
    run = Number((await res.body.text()).trim()) === generation ? run + 1 : 0;
  }
}

describe('compose nginx: controller render -> watch-config.sh -> nginx reload', () => {
  let tmp: string;
  let routerUrl: string;
  let rendered: string;
  let options: NginxRenderOptions;
  let watcher: Started;
  let driver: NginxDriver | undefined;
  const upstreams: Server[] = [];

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'bgserve-compose-nginx-'));
    // nginx's workers (nobody, under a root master) read the live files: open like the volume in compose.
    await chmod(tmp, 0o755);
    const [routerPort, bluePort, greenPort] = [await freePort(), await freePort(), await freePort()];
    upstreams.push(await colorServer('blue', bluePort), await colorServer('green', greenPort));
    const prefix = path.join(tmp, 'prefix');
    await mkdir(path.join(prefix, 'logs'), { recursive: true });
    await mkdir(path.join(prefix, 'temp'), { recursive: true });
    await mkdir(path.join(tmp, 'state/nginx/live'), { recursive: true });
    options = {
      ...COMPOSE_NGINX_OPTIONS,
      listen: { host: '127.0.0.1', port: routerPort },
      upstreams: { blue: [{ host: '127.0.0.1', port: bluePort }], green: [{ host: '127.0.0.1', port: greenPort }] },
      paths: {
        pid: path.join(prefix, 'nginx.pid'),
        errorLog: path.join(prefix, 'logs/error.log'),
        accessLog: null,
        tempDir: path.join(prefix, 'temp'),
        liveDir: path.join(tmp, 'state/nginx/live'),
      },
    };
    const seed = path.join(tmp, 'seed.conf');
    await writeFile(seed, renderNginxConfig(initialState(), options));
    rendered = path.join(tmp, 'state/nginx/nginx.conf');
    routerUrl = `http://127.0.0.1:${routerPort}`;

    const child = spawn('sh', [path.join(ROOT, 'deploy/nginx/watch-config.sh')], {
      env: {
        ...process.env,
        BGSERVE_NGINX_RENDERED: rendered,
        BGSERVE_NGINX_ACTIVE: path.join(tmp, 'active/nginx.conf'),
        BGSERVE_NGINX_SEED: seed,
        BGSERVE_NGINX_ARGS: `-p ${prefix}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    watcher = { child, output: () => out };
    await waitForHttp(`${routerUrl}/nginx_status`, { proc: watcher, timeoutMs: 15_000 });
  });

  afterAll(async () => {
    await driver?.close();
    if (watcher) await stopProcess(watcher);
    // Should the watcher have been killed hard, its nginx would outlive it: stop that master by its pid file.
    const pid = Number((await readFile(options.paths.pid, 'utf8').catch(() => '')).trim());
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        // already gone: the graceful stop worked
      }
    }
    await Promise.all(upstreams.map((s) => new Promise((r) => s.close(r))));
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('commits a seed that is the renderer output for the compose services (all traffic on blue)', async () => {
    const committed = await readFile(path.join(ROOT, 'deploy/nginx/seed.conf'), 'utf8');
    expect(committed).toBe(renderComposeSeed());
    // The service names are looked up through Docker's DNS on requests (a recreated container is followed
    // with no reload), not in upstream blocks resolved once at load.
    expect(committed).toContain('resolver 127.0.0.11 valid=1s ipv6=off;');
    expect(committed).not.toMatch(/^\s*upstream /m);
    expect(committed).toContain('bgserve_blue_first mlservice_blue:8000;');
    expect(committed).toContain('bgserve_green_first mlservice_green:8000;');
    expect(committed).toContain('listen 0.0.0.0:80;');
    expect(committed).toContain('/app/.bgserve/nginx/live/current/green-$bgserve_bucket');
  });

  it('serves the seed until the controller renders: all traffic on blue', async () => {
    expect(await colorsSeen(`${routerUrl}/predict`, 20)).toEqual({ blue: 20 });
  });

  it('switches weights through live files in the shared directory, without a reload', async () => {
    driver = await startNginxDriver({
      listen: options.listen,
      upstreams: options.upstreams,
      mode: { kind: 'external', configPath: rendered, paths: options.paths, testCommand: ['true'], reloadCommand: ['true'] },
      // As the controller renders in compose (resolverFor names): IP literals here need no lookup.
      render: { resolver: options.resolver },
      inEffectTimeoutMs: 10_000,
    });
    const started = Date.now();
    const state = await driver.setWeights({ blue: 0, green: 100 });
    const switchMs = Date.now() - started;
    expect(state.weights).toEqual({ blue: 0, green: 100 });
    expect(await colorsSeen(`${routerUrl}/predict`, 20)).toEqual({ green: 20 });
    // How fast is the benchmark's to say (npm run bench: router); logged here for the reader of a CI run.
    console.log(`compose nginx: switch in effect ${switchMs} ms after the command`);
    // The driver's first render equals the seed, and a weight change is no configuration change: no reload.
    expect(watcher.output()).not.toContain('applied');

    await driver.setWeights({ blue: 100, green: 0 });
    expect(await colorsSeen(`${routerUrl}/predict`, 20)).toEqual({ blue: 20 });
  });

  it('applies a configuration change (sticky key) through the watcher: nginx -t, install, reload', async () => {
    const before = await readFile(path.join(tmp, 'active/nginx.conf'), 'utf8');
    const state = await driver!.setSticky({ header: 'x-user' });
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline && !watcher.output().includes('applied')) await new Promise((r) => setTimeout(r, 50));
    expect(watcher.output().split('applied')).toHaveLength(2);
    const active = await readFile(path.join(tmp, 'active/nginx.conf'), 'utf8');
    expect(active).not.toBe(before);
    expect(active).toContain('$http_x_user');
    await settled(routerUrl, state.generation);
    expect(await colorsSeen(`${routerUrl}/predict`, 10)).toEqual({ blue: 10 });
  });

  it('never installs a render nginx refuses: the running configuration keeps serving', async () => {
    const before = await readFile(path.join(tmp, 'active/nginx.conf'), 'utf8');
    const refusalsBefore = watcher.output().split('refused').length;
    // The controller has no nginx to test with in compose, so only the watcher's `nginx -t` stands in the way.
    await expect(driver!.applyConfigText('events {}\nhttp { upstream broken { server; } }\n')).resolves.toBeUndefined();
    const deadline = Date.now() + 2_000;
    while (Date.now() < deadline && watcher.output().split('refused').length === refusalsBefore)
      await new Promise((r) => setTimeout(r, 50));
    expect(watcher.output().split('refused').length).toBe(refusalsBefore + 1);
    expect(await readFile(path.join(tmp, 'active/nginx.conf'), 'utf8')).toBe(before);
    expect(await colorsSeen(`${routerUrl}/predict`, 10)).toEqual({ blue: 10 });
  });

  it('stops nginx gracefully when the container is stopped (SIGTERM)', async () => {
    const code = await stopProcess(watcher, 10_000);
    expect(code).toBe(0);
    await expect(fetch(`${routerUrl}/nginx_status`)).rejects.toThrow();
  });
});
