/**
 * The plain Kubernetes manifests' containers, run natively: the blue and green Deployments' args and the
 * controller Deployment's args from the committed YAML, with cluster names moved to loopback ports and the
 * mounted Secret and volume to a private directory. The router the `bgserve-active` Service points at must
 * answer, and a switch through the controller must move traffic.
 */
import type { StatusReport } from '../../src/control/traffic-routes.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { CLI_ENTRY, ROOT, freePort, stopProcess, waitForHttp, type Started } from '../support/processes.js';
import { WINE_EXAMPLE } from '../../src/model/wine.js';
import { ADMIN_TOKEN_DIR, INSTANCE_PORT, STATE_DIR } from '../../src/k8s/common.js';
import { colorServiceName } from '../../src/k8s/plain.js';
import { PORTS } from '../../src/config/defaults.js';

interface Container {
  args: string[];
}

async function containerArgs(file: string, deployment: string): Promise<string[]> {
  const docs = parseAllDocuments(await readFile(path.join(ROOT, 'deploy/k8s', file), 'utf8')).map((d) => d.toJS());
  const d = docs.find((o) => o.kind === 'Deployment' && o.metadata.name === deployment);
  return (d.spec.template.spec.containers as Container[])[0].args;
}

/** Replaces the value after a flag, failing when the flag is absent (the manifest must have it). */
function setFlag(args: string[], flag: string, value: string): string[] {
  const i = args.indexOf(flag);
  expect(i, `${flag} in ${args.join(' ')}`).toBeGreaterThanOrEqual(0);
  return args.map((a, j) => (j === i + 1 ? value : a));
}

describe('plain Kubernetes containers, run natively', () => {
  let tmp: string;
  const procs: Started[] = [];
  let routerPort: number;
  let controlPort: number;

  function run(args: string[]): Started {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI_ENTRY, ...args], {
      cwd: path.join(tmp, 'app'),
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-50_000)));
    child.stderr.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-50_000)));
    const started = { child, output: () => out };
    procs.push(started);
    return started;
  }

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'bgserve-k8s-stack-'));
    const secretDir = path.join(tmp, 'secret');
    await mkdir(secretDir);
    await writeFile(path.join(secretDir, 'token'), 'k8s-admin-token\n', { mode: 0o600 });
    await mkdir(path.join(tmp, 'app'));
    // The pods' working directory is the image's /app: models and dependencies come with it.
    for (const entry of ['models', 'node_modules']) await symlink(path.join(ROOT, entry), path.join(tmp, 'app', entry));
    const mapPaths = (args: string[]) => args.map((a) => a.replace(ADMIN_TOKEN_DIR, secretDir).replace(STATE_DIR, path.join(tmp, 'state')));

    const ports: Record<string, number> = {};
    for (const color of ['blue', 'green'] as const) {
      ports[color] = await freePort();
      let args = mapPaths(await containerArgs(`${color}.yaml`, `bgserve-${color}`));
      args = setFlag(setFlag(args, '--port', String(ports[color])), '--host', '127.0.0.1');
      run(args);
    }
    routerPort = await freePort();
    controlPort = await freePort();
    let args = mapPaths(await containerArgs('controller.yaml', 'bgserve-controller'));
    for (const color of ['blue', 'green'] as const) {
      args = setFlag(args, `--${color}-url`, `http://127.0.0.1:${ports[color]}`);
      expect(await containerArgs('controller.yaml', 'bgserve-controller')).toContain(`http://${colorServiceName(color)}:${INSTANCE_PORT}`);
    }
    args = setFlag(setFlag(setFlag(args, '--port', String(controlPort)), '--router-port', String(routerPort)), '--host', '127.0.0.1');
    // No Prometheus here: the controller then judges by scraping the instances.
    const prom = args.indexOf('--prometheus-url');
    if (prom >= 0) args.splice(prom, 2);
    args.push('--state-dir', path.join(tmp, 'state'));
    const controller = run(args);
    await waitForHttp(`http://127.0.0.1:${controlPort}/healthz`, { proc: controller, timeoutMs: 60_000 });
    await Promise.all(['blue', 'green'].map((c) => waitForHttp(`http://127.0.0.1:${ports[c]}/ready`, { timeoutMs: 60_000 })));
    // The router keeps a color out of rotation until its own readiness check passes (either color may have been
    // starting when the router first asked), and sends that color's share to the healthy one meanwhile; the
    // tests below assert which color answers, so they start once the router has both in rotation.
    const token = await controlToken();
    const bothInRotation = async () => {
      const res = await fetch(`http://127.0.0.1:${controlPort}/api/status`, { headers: { authorization: `Bearer ${token}` } });
      const status = (await res.json()) as StatusReport;
      return status.colors.blue.healthy && status.colors.green.healthy;
    };
    for (const giveUp = Date.now() + 30_000; !(await bothInRotation()) && Date.now() < giveUp; )
      await new Promise((r) => setTimeout(r, 100));
    expect(await bothInRotation(), 'the router has both colors in rotation').toBe(true);
  }, 120_000);

  afterAll(async () => {
    for (const p of procs.reverse()) await stopProcess(p, 10_000);
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const controlToken = async () => (await readFile(path.join(tmp, 'state/token'), 'utf8')).trim();

  const predict = async () => {
    const res = await fetch(`http://127.0.0.1:${routerPort}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(WINE_EXAMPLE),
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { color: string }).color;
  };

  it('answers through the router bgserve-active points at, on blue first', async () => {
    expect(routerPort).not.toBe(PORTS.router);
    expect(await predict()).toBe('blue');
  });

  it('moves traffic when the controller is told to switch', async () => {
    const token = await controlToken();
    const res = await fetch(`http://127.0.0.1:${controlPort}/api/switch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ color: 'green' }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    for (let i = 0; i < 5; i++) expect(await predict()).toBe('green');
  });
});
