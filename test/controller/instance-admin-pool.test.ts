/**
 * The admin side over a pool of real `bgserve serve` replicas (issue 13): a load is all or nothing (one replica
 * refusing — here an instance started with another admin token, as after a token rotation it missed — refuses the
 * load, names the replica, and the replicas that took the bundle are put back on the one they served); model()
 * speaks for a color only when its replicas agree; heal() puts a straggler back on its color's bundle.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InstanceAdmin } from '../../src/controller/instance-admin.js';
import { ReplicaPools } from '../../src/controller/pools.js';
import { freePort, startCli, stopProcess, waitForHttp, type Started } from '../support/processes.js';
import { BASE_BUNDLE, GOOD_BUNDLE } from './bundles.js';

const TOKEN = 'pool-admin-token-0123456789';
let dir: string;
const procs: Started[] = [];
const ports: number[] = [];

async function health(port: number): Promise<{ model: { version: string; sha256: string } }> {
  return (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { model: { version: string; sha256: string } };
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bgserve-pool-'));
  fs.writeFileSync(path.join(dir, 'admin-token'), TOKEN, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'other-token'), 'a-token-the-controller-does-not-have', { mode: 0o600 });
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    ports.push(port);
    const tokenFile = path.join(dir, i === 2 ? 'other-token' : 'admin-token');
    procs.push(
      startCli([
        'serve',
        '--color',
        'green',
        '--port',
        String(port),
        '--bundle',
        BASE_BUNDLE,
        '--admin-token-file',
        tokenFile,
        '--log-level',
        'warn',
      ]),
    );
  }
  await Promise.all(ports.map((p, i) => waitForHttp(`http://127.0.0.1:${p}/ready`, { proc: procs[i], timeoutMs: 30_000 })));
}, 60_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => stopProcess(p)));
  fs.rmSync(dir, { recursive: true, force: true });
});

const pool = (which: number[]) =>
  new ReplicaPools({ blue: [{ host: '127.0.0.1', port: ports[0] }], green: which.map((i) => ({ host: '127.0.0.1', port: ports[i] })) });

describe('InstanceAdmin over a pool of replicas', () => {
  it('refuses a load one replica refuses, names it, and puts the others back on what they served', async () => {
    const base = await health(ports[0]);
    const admin = new InstanceAdmin({ pools: pool([0, 1, 2]), token: TOKEN, startBundles: { green: BASE_BUNDLE } });
    const outcome = await admin.load('green', GOOD_BUNDLE);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error).toContain(`green replica 127.0.0.1:${ports[2]}: 401`);
    expect(outcome.error).toContain(`127.0.0.1:${ports[0]} put back on ${base.model.version}`);
    expect(outcome.error).toContain(`127.0.0.1:${ports[1]} put back on ${base.model.version}`);
    // Nothing half-loaded: every replica serves what it served before.
    for (const p of ports) expect((await health(p)).model.sha256).toBe(base.model.sha256);
    expect(admin.bundleOf('green')).toBeUndefined();
  });

  it('loads on every replica, agrees on the model, and heals a replica that came back on another one', async () => {
    const admin = new InstanceAdmin({ pools: pool([0, 1]), token: TOKEN, startBundles: { green: BASE_BUNDLE } });
    const outcome = await admin.load('green', GOOD_BUNDLE);
    expect(outcome.ok).toBe(true);
    const good = await health(ports[0]);
    expect((await health(ports[1])).model.sha256).toBe(good.model.sha256);
    expect((await admin.model('green'))?.version).toBe(good.model.version);
    expect(await admin.ready('green')).toBe(true);

    // Replica 2 restarted on its start-up bundle (as a process restart leaves it): the color no longer agrees.
    const res = await fetch(`http://127.0.0.1:${ports[1]}/admin/model`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ bundle: BASE_BUNDLE }),
    });
    expect(res.status).toBe(200);
    expect(await admin.model('green')).toBeNull();
    const healed = await admin.heal();
    expect(healed).toEqual([{ color: 'green', address: `127.0.0.1:${ports[1]}`, ok: true }]);
    expect((await health(ports[1])).model.sha256).toBe(good.model.sha256);
    expect((await admin.model('green'))?.sha256).toBe(good.model.sha256);
    // Nothing left to heal.
    expect(await admin.heal()).toEqual([]);
  });

  it('counts a color ready while it keeps its minimum of ready replicas', async () => {
    const gone = await freePort();
    const pools = new ReplicaPools({
      blue: [{ host: '127.0.0.1', port: ports[0] }],
      green: [...[0, 1].map((i) => ({ host: '127.0.0.1', port: ports[i] })), { host: '127.0.0.1', port: gone }],
    });
    expect(await new InstanceAdmin({ pools, token: TOKEN }).ready('green')).toBe(true); // 2 of 3: all but one
    expect(await new InstanceAdmin({ pools, token: TOKEN, minReady: (n) => n }).ready('green')).toBe(false);
    pools.set('green', [{ host: '127.0.0.1', port: gone }]);
    expect(await new InstanceAdmin({ pools, token: TOKEN }).ready('green')).toBe(false);
  });
});
