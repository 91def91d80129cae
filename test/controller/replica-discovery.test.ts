/**
 * Replica discovery's decisions (issue 13), with an in-memory DNS and clock: a scaled service's records become its
 * color's pool; a new replica is put on its color's bundle before the router hears of it; a name with no records
 * empties the pool, a DNS failure keeps it; nothing is applied while nothing changes.
 */
import { describe, expect, it } from 'vitest';
import type { Color } from '../../src/config/defaults.js';
import { ReplicaPools } from '../../src/controller/pools.js';
import { discoverOnce, nextPool, startDiscovery, type PoolDecision } from '../../src/controller/replica-discovery.js';
import { FakeDns, ManualClock, settle } from '../support/fakes/index.js';

const at = (...hosts: string[]) => hosts.map((host) => ({ host, port: 8000 }));

describe('nextPool', () => {
  it('makes one replica per address on the service port, sorted, and says what was added and removed', () => {
    const d = nextPool(at('10.0.0.2'), { addresses: ['10.0.0.4', '10.0.0.3', '10.0.0.2', '10.0.0.3'] }, 8000);
    expect(d).toEqual({ pool: at('10.0.0.2', '10.0.0.3', '10.0.0.4'), changed: true, added: at('10.0.0.3', '10.0.0.4'), removed: [] });
  });

  it('sees no change in the same addresses in another order', () => {
    const d = nextPool(at('10.0.0.2', '10.0.0.3'), { addresses: ['10.0.0.3', '10.0.0.2'] }, 8000);
    expect(d.changed).toBe(false);
    expect(d.added).toEqual([]);
  });

  it('empties the pool when the name has no records (scaled to 0)', () => {
    const d = nextPool(at('10.0.0.2'), { error: { code: 'ENOTFOUND', message: 'queryA ENOTFOUND mlservice_green' } }, 8000);
    expect(d).toEqual({ pool: [], changed: true, added: [], removed: at('10.0.0.2') });
  });

  it('keeps the pool when DNS fails otherwise (a timeout must not take replicas out)', () => {
    const d = nextPool(at('10.0.0.2'), { error: { code: 'ETIMEOUT', message: 'queryA ETIMEOUT' } }, 8000);
    expect(d).toMatchObject({ pool: at('10.0.0.2'), changed: false, kept: 'queryA ETIMEOUT' });
  });
});

describe('discovery loop', () => {
  function setup() {
    const dns = new FakeDns();
    dns.set('mlservice_blue', ['172.18.0.2']);
    dns.set('mlservice_green', ['172.18.0.3']);
    const pools = new ReplicaPools({ blue: at('172.18.0.2'), green: at('172.18.0.3') });
    const steps: string[] = [];
    const applyPool = async (color: Color, d: PoolDecision) => {
      pools.set(color, d.pool);
      // The admin heals the new replicas first (it reads the pools), then the router gets the new pools.
      steps.push(`heal ${color} ${d.added.map((u) => u.host).join(',')}`);
      steps.push(`router ${color} ${pools.replicas(color).length}`);
    };
    const clock = new ManualClock();
    const opts = {
      services: { blue: { host: 'mlservice_blue', port: 8000 }, green: { host: 'mlservice_green', port: 8000 } },
      current: (c: Color) => pools.replicas(c),
      applyPool,
      resolve: dns.resolve,
      clock,
      everyMs: 5_000,
    };
    return { dns, pools, steps, clock, opts };
  }

  it('follows a scale-out and a scale-in of one color, healing new replicas before the router is told', async () => {
    const { dns, pools, steps, opts } = setup();
    expect(await discoverOnce(opts)).toEqual([]);
    dns.set('mlservice_green', ['172.18.0.3', '172.18.0.5', '172.18.0.4']);
    const changed = await discoverOnce(opts);
    expect(changed.map((c) => c.color)).toEqual(['green']);
    expect(pools.replicas('green').map((u) => u.host)).toEqual(['172.18.0.3', '172.18.0.4', '172.18.0.5']);
    expect(steps).toEqual(['heal green 172.18.0.4,172.18.0.5', 'router green 3']);
    dns.set('mlservice_green', ['172.18.0.4']);
    await discoverOnce(opts);
    expect(pools.replicas('green').map((u) => u.host)).toEqual(['172.18.0.4']);
    expect(pools.replicas('blue').map((u) => u.host)).toEqual(['172.18.0.2']);
  });

  it('leaves a color given by IP address alone (nothing to resolve)', async () => {
    const { dns, pools, opts } = setup();
    const changed = await discoverOnce({ ...opts, services: { ...opts.services, blue: { host: '127.0.0.1', port: 8001 } } });
    expect(changed).toEqual([]);
    expect(dns.asked).toEqual(['mlservice_green']);
    expect(pools.replicas('blue').map((u) => u.host)).toEqual(['172.18.0.2']);
  });

  it('resolves again every period until stopped', async () => {
    const { dns, pools, clock, opts } = setup();
    const loop = startDiscovery(opts);
    await settle();
    dns.set('mlservice_blue', ['172.18.0.2', '172.18.0.6']);
    await clock.advance(4_999);
    expect(pools.replicas('blue')).toHaveLength(1);
    await clock.advance(1);
    await settle();
    expect(pools.replicas('blue')).toHaveLength(2);
    const asked = dns.asked.length;
    await loop.stop();
    await clock.advance(20_000);
    expect(dns.asked.length).toBe(asked);
  });
});
