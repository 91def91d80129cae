import { describe, expect, it } from 'vitest';
import { HealthTracker } from '../../src/traffic/health.js';
import { validateUpstreams } from '../../src/traffic/pools.js';
import type { Upstreams } from '../../src/traffic/types.js';

const pools = (blue: number[], green: number[] = [9001]): Upstreams => ({
  blue: blue.map((port) => ({ host: '127.0.0.1', port })),
  green: green.map((port) => ({ host: '127.0.0.1', port })),
});

describe('replica choice and health', () => {
  it('takes the replica with the fewest requests in flight, ties in turn', () => {
    const t = new HealthTracker(pools([8001, 8002, 8003]));
    const [a, b, c] = t.replicas('blue');
    const seen = Array.from({ length: 6 }, () => t.pick('blue', null)?.address);
    expect(new Set(seen)).toEqual(new Set([a.address, b.address, c.address]));
    a.inFlight = 3;
    b.inFlight = 1;
    c.inFlight = 2;
    expect(t.pick('blue', null)).toBe(b);
    expect(t.pick('blue', b)).toBe(c);
  });

  it('round-robin ignores load', () => {
    const t = new HealthTracker(pools([8001, 8002]), { balance: 'round-robin' });
    const [a, b] = t.replicas('blue');
    a.inFlight = 10;
    expect([t.pick('blue', null), t.pick('blue', null)]).toEqual([a, b]);
  });

  it('skips a failed replica for its passive window, and a color with none in rotation is unhealthy', () => {
    let now = 1_000;
    const changes: string[] = [];
    const t = new HealthTracker(pools([8001, 8002]), {
      passiveWindowMs: 500,
      now: () => now,
      onChange: (color, healthy) => changes.push(`${color} ${healthy}`),
    });
    const [a, b] = t.replicas('blue');
    t.markFailure(a, 'ECONNREFUSED');
    expect(t.isHealthy('blue')).toBe(true);
    for (let i = 0; i < 4; i++) expect(t.pick('blue', null)).toBe(b);
    t.recordCheck(b, 'GET /ready answered 503');
    expect(t.isHealthy('blue')).toBe(false);
    expect(t.pick('blue', null)).toBeNull();
    expect(t.report().blue).toMatchObject({ healthy: false, lastError: '127.0.0.1:8002: GET /ready answered 503' });
    expect(t.report().blue.replicas.map((r) => r.healthy)).toEqual([false, false]);
    now += 600;
    t.recordCheck(b, null);
    expect(t.pick('blue', b)).toBe(a);
    expect(changes).toEqual(['blue false', 'blue true']);
  });

  it('keeps a replica (health, in-flight) across a pool change when its address stays', () => {
    const t = new HealthTracker(pools([8001, 8002]));
    const [a, b] = t.replicas('blue');
    a.inFlight = 2;
    t.markFailure(b, 'x');
    const plan = t.plan(pools([8002, 8003]));
    expect(plan.added.map((r) => r.address)).toEqual(['127.0.0.1:8003']);
    expect(plan.removed).toEqual([a]);
    t.apply(plan.next);
    expect(t.replicas('blue')[0]).toBe(b);
    expect(t.report().blue.replicas[0]).toMatchObject({ address: '127.0.0.1:8002', healthy: false, lastError: 'x' });
    t.apply(t.plan(pools([])).next);
    expect(t.report().blue).toMatchObject({ healthy: false, lastError: 'no replicas', replicas: [] });
  });

  it('validates pools: lists of distinct host:port per color', () => {
    expect(validateUpstreams(pools([8001], []))).toEqual(pools([8001], []));
    expect(() => validateUpstreams({ blue: { host: 'a', port: 1 }, green: [] })).toThrow(/not valid/);
    expect(() => validateUpstreams(pools([8001, 8001]))).toThrow(/not valid/);
    expect(() => validateUpstreams({ ...pools([8001]), red: [] })).toThrow(/not valid/);
  });
});
