/**
 * The router seam: a third traffic driver, registered through the registry by this test alone, carries a
 * blue-green release end to end (deploy → shadow → switch → analysis → succeeded) through the composition root
 * that `bgserve up` uses, with two real `bgserve serve` instances. Nothing in src/ knows the kind `relay`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startLocalStack, type LocalStack } from '../../src/app/root.js';
import { runController } from '../../src/cli/controller.js';
import { readTokenFile } from '../../src/control/auth.js';
import { WINE_EXAMPLE } from '../../src/model/wine.js';
import type { StatusReport } from '../../src/control/traffic-routes.js';
import { builtInDrivers } from '../../src/traffic/drivers.js';
import { startEmbeddedRouter } from '../../src/traffic/embedded-router.js';
import type { TrafficDriverEntry } from '../../src/traffic/registry.js';
import type { MirrorConfig, StickyConfig, TrafficDriver, TrafficState, Upstreams, Weights } from '../../src/traffic/types.js';
import { GOOD_BUNDLE } from '../controller/bundles.js';
import { startLoad, type Load } from '../controller/stack.js';
import { CLI_ENTRY, freePort } from '../support/processes.js';

/** A router of its own kind: it forwards to an embedded router and keeps every change it was asked for. */
class RelayDriver implements TrafficDriver {
  readonly kind = 'relay';
  readonly changes: string[] = [];

  constructor(private readonly inner: TrafficDriver) {}

  get url() {
    return this.inner.url;
  }

  get metrics() {
    return this.inner.metrics;
  }

  setWeights(weights: Weights): Promise<TrafficState> {
    this.changes.push(`weights ${weights.blue}/${weights.green}`);
    return this.inner.setWeights(weights);
  }

  setMirror(mirror: MirrorConfig): Promise<TrafficState> {
    this.changes.push(`mirror ${mirror.target ?? 'off'} ${mirror.percent}`);
    return this.inner.setMirror(mirror);
  }

  setSticky(sticky: StickyConfig | null): Promise<TrafficState> {
    return this.inner.setSticky(sticky);
  }

  state() {
    return this.inner.state();
  }

  health() {
    return this.inner.health();
  }

  setUpstreams(upstreams: Upstreams) {
    return this.inner.setUpstreams(upstreams);
  }

  close() {
    return this.inner.close();
  }
}

const relays: RelayDriver[] = [];
const relayEntry: TrafficDriverEntry = {
  kind: 'relay',
  about: 'a test router',
  start: async (ctx) => {
    const relay = new RelayDriver(
      await startEmbeddedRouter({
        host: ctx.listen.host,
        port: ctx.listen.port,
        upstreams: ctx.upstreams,
        previewToken: ctx.previewToken,
        initial: ctx.initial,
      }),
    );
    relays.push(relay);
    return relay;
  },
  local: { run: 'in-stack', start: (ctx) => relayEntry.start({ ...ctx, options: {} }) },
};

describe('a third router, registered by a test', () => {
  let dir: string;
  let stack: LocalStack | undefined;
  let token: string;
  let load: Load | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bgserve-third-router-'));
    stack = await startLocalStack({
      router: 'relay',
      registries: { drivers: builtInDrivers().register(relayEntry) },
      port: await freePort(),
      bluePort: await freePort(),
      greenPort: await freePort(),
      controlPort: await freePort(),
      stateDir: path.join(dir, 'state'),
      cli: { command: process.execPath, args: ['--import', 'tsx', CLI_ENTRY] },
    });
    token = await readTokenFile(stack.tokenFile);
  }, 60_000);

  afterAll(async () => {
    await load?.stop();
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const api = async (method: 'GET' | 'POST', route: string, body?: unknown) => {
    const res = await request(`${stack!.controlUrl}/api${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, any> };
  };

  it('is the router of the stack the composition root built', async () => {
    expect(stack!.traffic).toBe(relays[0]);
    const status = (await api('GET', '/status')).body as StatusReport;
    expect(status.router).toEqual({ kind: 'relay', url: relays[0].url });
    expect(status.weights).toEqual({ blue: 100, green: 0 });
  });

  it('carries a blue-green release from deploy to succeeded: shadow, switch and analysis all through it', async () => {
    load = await startLoad(relays[0].url, 2, 60_000);
    const started = await api('POST', '/releases', {
      bundle: GOOD_BUNDLE,
      shadowMs: 1_000,
      analysisMs: 2_000,
      inconclusiveGraceMs: 10_000,
    });
    expect(started.status).toBe(201);
    const deadline = Date.now() + 60_000;
    let release = started.body.release;
    while (['running', 'paused'].includes(release.status) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      release = (await api('GET', '/releases/current')).body.release;
    }
    await load.stop();
    expect(release.status, release.reason ?? '').toBe('succeeded');
    expect(relays[0].changes).toEqual(['mirror green 100', 'mirror off 0', 'weights 0/100']);
    expect(relays[0].state().weights).toEqual({ blue: 0, green: 100 });
    expect(load.failed, load.failures.join('\n')).toBe(0);
    const answer = await request(`${relays[0].url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(WINE_EXAMPLE),
    });
    expect(((await answer.body.json()) as { color: string }).color).toBe('green');
  }, 90_000);

  it('is offered by `bgserve controller` only where it is registered', async () => {
    const opts = {
      host: '127.0.0.1',
      port: 0,
      router: 'relay',
      routerPort: 0,
      blueUrl: 'http://127.0.0.1:1',
      greenUrl: 'http://127.0.0.1:2',
      stateDir: dir,
    };
    await expect(runController(opts)).rejects.toThrow('--router must be embedded or nginx');
    expect(builtInDrivers().register(relayEntry).choices()).toBe('embedded, nginx or relay');
  });
});
