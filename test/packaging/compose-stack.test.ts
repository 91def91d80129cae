/**
 * The compose stack's router side, run natively from the merged compose files: the two instances, the
 * controller and nginx (under deploy/nginx/watch-config.sh) are started with the commands and environment
 * `docker-compose config` gives, rewritten only where a container differs from this machine — service names
 * to loopback ports, /app to a private directory, and nginx's own paths (pid, logs, temp) to a private prefix.
 * Prometheus and Grafana are left out (the controller then judges releases by scraping the instances).
 * Then a real release goes through it under load: `bgserve deploy` in the controller's working directory.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ROOT, freePort, stopProcess, waitForHttp, type Started } from '../support/processes.js';
import { WINE_EXAMPLE } from '../../src/model/wine.js';
import { COMPOSE_SERVICES, INSTANCE_PORT, NGINX_PORT, STATE_DIR } from '../../deploy/nginx/compose.js';
import { PORTS } from '../../src/config/defaults.js';
import { commandText, mergedStack, type ComposeService } from './compose-files.js';

interface Ports {
  blue: number;
  green: number;
  nginx: number;
  control: number;
}

/** Container paths and names -> this machine. */
function rewrite(text: string, app: string, ports: Ports): string {
  return text
    .replaceAll('/app/', `${app}/`)
    .replaceAll(`http://${COMPOSE_SERVICES.blue}:${INSTANCE_PORT}`, `http://127.0.0.1:${ports.blue}`)
    .replaceAll(`http://${COMPOSE_SERVICES.green}:${INSTANCE_PORT}`, `http://127.0.0.1:${ports.green}`)
    .replaceAll(`http://nginx:${NGINX_PORT}`, `http://127.0.0.1:${ports.nginx}`)
    .replaceAll('--host 0.0.0.0', '--host 127.0.0.1')
    .replace(/ --prometheus-url \S+/, '');
}

function post(url: string): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(WINE_EXAMPLE) });
}

describe('compose stack, run natively from the compose files', () => {
  let tmp: string;
  let app: string;
  let ports: Ports;
  let env: NodeJS.ProcessEnv;
  const procs: Record<string, Started> = {};

  function start(name: string, script: string, extraEnv: NodeJS.ProcessEnv = {}): Started {
    const child = spawn('sh', ['-ec', script], { cwd: app, env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-50_000)));
    child.stderr.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-50_000)));
    procs[name] = { child, output: () => out };
    return procs[name];
  }

  /** The CLI as `docker compose exec controller bgserve ...` runs it: in the controller's working directory. */
  function bgserve(...args: string[]): Promise<{ code: number; output: string }> {
    return new Promise((resolve) => {
      execFile('bgserve', args, { cwd: app, env, timeout: 120_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
        resolve({ code, output: stdout + stderr });
      });
    });
  }

  beforeAll(async () => {
    const stack = await mergedStack();
    const s: Record<string, ComposeService> = stack.services;
    tmp = await mkdtemp(path.join(os.tmpdir(), 'bgserve-compose-stack-'));
    // nginx's workers (nobody, under a root master) read the live files in the state directory.
    await chmod(tmp, 0o755);
    app = path.join(tmp, 'app');
    const prefix = path.join(tmp, 'nginx');
    await mkdir(path.join(app, path.basename(STATE_DIR)), { recursive: true, mode: 0o755 });
    await mkdir(path.join(prefix, 'logs'), { recursive: true });
    await mkdir(path.join(prefix, 'temp'), { recursive: true });
    // The image's /app: the repository's models (the compose mount), scripts and dependencies.
    for (const entry of ['models', 'scripts', 'node_modules']) await symlink(path.join(ROOT, entry), path.join(app, entry));
    const bin = path.join(tmp, 'bin');
    await mkdir(bin);
    await writeFile(
      path.join(bin, 'bgserve'),
      `#!/bin/sh\nexec "${process.execPath}" --import tsx "${path.join(ROOT, 'src/cli/main.ts')}" "$@"\n`,
      { mode: 0o755 },
    );
    env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
    ports = { blue: await freePort(), green: await freePort(), nginx: await freePort(), control: await freePort() };

    for (const color of ['blue', 'green'] as const) {
      const service = s[COMPOSE_SERVICES[color]];
      expect(service.entrypoint).toEqual(['/bin/sh', '-ec']);
      start(color, rewrite(commandText(service), app, ports).replace(`--port ${INSTANCE_PORT}`, `--port ${ports[color]}`));
    }

    const nginxEnv = Object.fromEntries(Object.entries(s.nginx.environment ?? {}).map(([k, v]) => [k, rewrite(v, app, ports)]));
    nginxEnv.BGSERVE_NGINX_ACTIVE = path.join(prefix, 'active', 'nginx.conf');
    nginxEnv.BGSERVE_NGINX_ARGS = `-p ${prefix}`;
    const seed = rewrite(await readFile(path.join(ROOT, 'deploy/nginx/seed.conf'), 'utf8'), app, ports)
      .replaceAll(`${COMPOSE_SERVICES.blue}:${INSTANCE_PORT}`, `127.0.0.1:${ports.blue}`)
      .replaceAll(`${COMPOSE_SERVICES.green}:${INSTANCE_PORT}`, `127.0.0.1:${ports.green}`)
      .replace(`listen 0.0.0.0:${NGINX_PORT};`, `listen 127.0.0.1:${ports.nginx};`)
      .replace(/^pid .*;$/m, `pid ${prefix}/nginx.pid;`)
      .replace(/^error_log \S+/m, `error_log ${prefix}/logs/error.log`)
      .replaceAll('/var/cache/nginx/', `${prefix}/temp/`);
    nginxEnv.BGSERVE_NGINX_SEED = path.join(prefix, 'seed.conf');
    await writeFile(nginxEnv.BGSERVE_NGINX_SEED, seed);
    start('nginx', `exec sh ${path.join(ROOT, 'deploy/nginx/watch-config.sh')}`, nginxEnv);

    const controller = rewrite(commandText(s.controller), app, ports).replace(`--port ${PORTS.control}`, `--port ${ports.control}`);
    start(
      'controller',
      `${controller} --nginx-listen 127.0.0.1:${ports.nginx} --nginx-pid ${prefix}/nginx.pid --nginx-error-log ${prefix}/logs/error.log --nginx-temp-dir ${prefix}/temp`,
    );

    // As `up -d` returns: every container started and healthy (the instances' HEALTHCHECK, the controller's).
    await Promise.all([
      waitForHttp(`http://127.0.0.1:${ports.control}/healthz`, { proc: procs.controller, timeoutMs: 60_000 }),
      waitForHttp(`http://127.0.0.1:${ports.blue}/health`, { proc: procs.blue, timeoutMs: 60_000 }),
      waitForHttp(`http://127.0.0.1:${ports.green}/health`, { proc: procs.green, timeoutMs: 60_000 }),
    ]);
  }, 120_000);

  afterAll(async () => {
    // Reverse order of dependence: controller, router, instances.
    for (const name of ['controller', 'nginx', 'blue', 'green']) if (procs[name]) await stopProcess(procs[name], 10_000);
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('serves predictions through nginx on blue, with the controller reporting both colors', async () => {
    const res = await post(`http://127.0.0.1:${ports.nginx}/predict`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { color: string }).color).toBe('blue');
    const status = await bgserve('status', '--json', '--control-url', `http://127.0.0.1:${ports.control}`);
    expect(status.code, status.output).toBe(0);
    const report = JSON.parse(status.output) as { active: string; router: { kind: string }; colors: Record<string, { ok: boolean }> };
    expect(report).toMatchObject({ active: 'blue', router: { kind: 'nginx' }, colors: { blue: { ok: true }, green: { ok: true } } });
  });

  it('releases a new bundle blue-green under load with no failed request', async () => {
    let stop = false;
    const totals = { sent: 0, failed: 0 };
    const worker = async () => {
      while (!stop) {
        totals.sent++;
        try {
          const res = await post(`http://127.0.0.1:${ports.nginx}/predict`);
          await res.arrayBuffer();
          if (res.status !== 200) totals.failed++;
        } catch {
          totals.failed++;
        }
      }
    };
    const load = Promise.all([worker(), worker(), worker()]);
    const release = await bgserve(
      'deploy',
      'models/wine-quality/1.1.0',
      '--wait',
      '--analysis',
      '5s',
      '--control-url',
      `http://127.0.0.1:${ports.control}`,
    ).finally(() => (stop = true));
    await load;
    expect(release.code, `${release.output}\n--- controller ---\n${procs.controller.output()}`).toBe(0);
    const res = await post(`http://127.0.0.1:${ports.nginx}/predict`);
    expect(await res.json()).toMatchObject({ color: 'green', model: { version: '1.1.0' } });
    console.log(`compose stack release under load: ${totals.sent} requests, ${totals.failed} failed`);
    expect(totals.sent).toBeGreaterThan(100);
    expect(totals.failed).toBe(0);
  }, 120_000);
});
