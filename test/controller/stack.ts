/**
 * A real local stack for release tests: two `bgserve serve` processes (test faults enabled by version), the
 * embedded router in this process, a release controller with the direct-scrape provider, and a bounded
 * continuous client load through the router that counts every failed request.
 */
import { buildControlPlane, type ControlPlane } from '../../src/app/root.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { request } from 'undici';
import { startEmbeddedRouter } from '../../src/traffic/embedded-router.js';
import { startNginxDriver } from '../../src/traffic/nginx-driver.js';
import type { DriverKind, TrafficDriver } from '../../src/traffic/types.js';
import type { MetricsProvider } from '../../src/metric-sources/types.js';
import { ReleaseController, type ControllerOptions, type DeployOptions } from '../../src/controller/controller.js';
import { isLive } from '../../src/release/engine.js';
import type { ReleaseState } from '../../src/release/types.js';
import { InstanceAdmin } from '../../src/controller/instance-admin.js';
import { PreviewClient, readGoldenSet } from '../../src/controller/smoke.js';
import { ScrapeProvider } from '../../src/metric-sources/scrape-provider.js';
import { ReleaseStore } from '../../src/store/release-store.js';
import { RELEASE_LOG_FILE } from '../../src/release/defaults.js';
import { FAULTS_ENABLE_ENV, FAULTS_ENV, type Fault } from '../../src/serve/faults.js';
import type { Color } from '../../src/config/defaults.js';
import { freePort, startCli, stopProcess, waitForHttp, type Started } from './../support/processes.js';
import { BASE_BUNDLE } from './bundles.js';

export interface Stack {
  dir: string;
  token: string;
  previewToken: string;
  instances: Record<Color, string>;
  procs: Record<Color, Started>;
  router: TrafficDriver;
  close(): Promise<void>;
}

/** `bundle`: what both colors serve at the start (a stack for another model's releases). */
export async function startStack(
  faults: Record<string, Fault> = {},
  routerKind: DriverKind = 'embedded',
  bundle: string = BASE_BUNDLE,
): Promise<Stack> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bgserve-release-'));
  const token = 'test-admin-token-0123456789';
  const tokenFile = path.join(dir, 'admin-token');
  fs.writeFileSync(tokenFile, token, { mode: 0o600 });
  const previewToken = 'test-preview-token-0123456789';
  // A release plugin built on this state dir (createLocalController) reads the same token the router was given.
  fs.writeFileSync(path.join(dir, 'preview-token'), previewToken, { mode: 0o600 });
  const ports = { blue: await freePort(), green: await freePort() };
  const env = { [FAULTS_ENABLE_ENV]: '1', [FAULTS_ENV]: JSON.stringify(faults) };
  const procs = {} as Record<Color, Started>;
  const instances = {} as Record<Color, string>;
  for (const color of ['blue', 'green'] as const) {
    procs[color] = startCli(
      [
        'serve',
        '--color',
        color,
        '--port',
        String(ports[color]),
        '--bundle',
        bundle,
        '--admin-token-file',
        tokenFile,
        '--bundle-root',
        dir,
        '--log-level',
        'warn',
      ],
      env,
    );
    instances[color] = `http://127.0.0.1:${ports[color]}`;
  }
  await Promise.all((['blue', 'green'] as const).map((c) => waitForHttp(`${instances[c]}/ready`, { proc: procs[c], timeoutMs: 30_000 })));
  const upstreams = { blue: [{ host: '127.0.0.1', port: ports.blue }], green: [{ host: '127.0.0.1', port: ports.green }] };
  const initial = { weights: { blue: 100, green: 0 } };
  const router =
    routerKind === 'nginx'
      ? await startNginxDriver({
          listen: { host: '127.0.0.1', port: await freePort() },
          upstreams,
          initial,
          previewToken,
          mode: { kind: 'managed', prefix: path.join(dir, 'nginx') },
        })
      : await startEmbeddedRouter({ host: '127.0.0.1', port: 0, upstreams, initial, previewToken });
  return {
    dir,
    token,
    previewToken,
    instances,
    procs,
    router,
    async close() {
      await router.close();
      await Promise.all(Object.values(procs).map((p) => stopProcess(p)));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function startController(
  stack: Stack,
  opts: Pick<ControllerOptions, 'analysisEveryMs' | 'analysisTimeoutMs' | 'pairing' | 'registry'> & { provider?: MetricsProvider } = {},
): { controller: ReleaseController; store: ReleaseStore } {
  const store = ReleaseStore.open(path.join(stack.dir, RELEASE_LOG_FILE));
  const controller = new ReleaseController({
    store,
    traffic: stack.router,
    provider: opts.provider ?? new ScrapeProvider({ instances: stack.instances }),
    admin: new InstanceAdmin({ instances: stack.instances, token: stack.token }),
    preview: new PreviewClient(stack.router.url, { token: stack.previewToken }),
    tickMs: 100,
    analysisEveryMs: opts.analysisEveryMs ?? 250,
    ...(opts.analysisTimeoutMs ? { analysisTimeoutMs: opts.analysisTimeoutMs } : {}),
    pairing: opts.pairing,
    registry: opts.registry,
  });
  return { controller, store };
}

export interface Load {
  sent: number;
  failed: number;
  failures: string[];
  /** When each failed request was answered (ms). */
  failedAt: number[];
  byColor: Record<string, number>;
  stop(): Promise<void>;
}

/** `workers` sequential clients posting `bundle`'s golden rows to the router until stopped or `maxMs` passes. */
export async function startLoad(routerUrl: string, workers = 4, maxMs = 120_000, bundle: string = BASE_BUNDLE): Promise<Load> {
  const golden = await readGoldenSet(bundle);
  const bodies = (golden?.rows ?? []).map((r) => JSON.stringify(r));
  const deadline = Date.now() + maxMs;
  let running = true;
  const load: Load = {
    sent: 0,
    failed: 0,
    failures: [],
    failedAt: [],
    byColor: {},
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
  const loop = async (w: number) => {
    for (let i = w; running && Date.now() < deadline; i += workers) {
      load.sent++;
      try {
        const res = await request(`${routerUrl}/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: bodies[i % bodies.length],
        });
        const body = (await res.body.json()) as { color?: string; message?: string };
        if (res.statusCode !== 200) {
          load.failed++;
          load.failedAt.push(Date.now());
          if (load.failures.length < 10) load.failures.push(`${res.statusCode} ${body.message ?? ''}`);
        } else load.byColor[body.color ?? '?'] = (load.byColor[body.color ?? '?'] ?? 0) + 1;
      } catch (err) {
        load.failed++;
        load.failedAt.push(Date.now());
        if (load.failures.length < 10) load.failures.push((err as Error).message);
      }
    }
  };
  const loops = Array.from({ length: workers }, (_, w) => loop(w));
  return load;
}

export async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function readText(file: string): Promise<string> {
  return readFile(file, 'utf8');
}

/** The control plane `up` and `controller` serve (app/root.ts), over this stack's own router and instances. */
export async function startControlPlane(stack: Stack, token: string): Promise<ControlPlane> {
  const plane = await buildControlPlane({
    token,
    traffic: stack.router,
    colors: { blue: { url: stack.instances.blue }, green: { url: stack.instances.green } },
    stateDir: stack.dir,
  });
  await plane.app.ready();
  return plane;
}

export interface ReleaseUnderLoadOptions {
  /** Load clients (startLoad's workers) and its time bound. */
  workers?: number;
  loadMs?: number;
  /** Whose golden rows the load sends (default: the stack's base bundle). */
  loadBundle?: string;
  /** Pause before the deploy and after the end, so the load straddles both. */
  settleMs?: number;
  timeoutMs?: number;
}

/** Deploys under a bounded client load through the router and waits for the release to end. */
export async function releaseUnderLoad(
  stack: Stack,
  controller: ReleaseController,
  bundle: string,
  options: DeployOptions,
  opts: ReleaseUnderLoadOptions = {},
): Promise<{ state: ReleaseState; load: Load }> {
  const load = await startLoad(stack.router.url, opts.workers ?? 4, opts.loadMs ?? 120_000, opts.loadBundle ?? BASE_BUNDLE);
  const settleMs = opts.settleMs ?? 300;
  try {
    await new Promise((r) => setTimeout(r, settleMs));
    const started = await controller.deploy(bundle, options);
    const state = await waitFor(
      'release to end',
      () => {
        const s = controller.history(1)[0];
        return s && s.spec.id === started.spec.id && !isLive(s.status) ? s : undefined;
      },
      opts.timeoutMs ?? 90_000,
    );
    await new Promise((r) => setTimeout(r, settleMs));
    return { state, load };
  } finally {
    await load.stop();
  }
}
