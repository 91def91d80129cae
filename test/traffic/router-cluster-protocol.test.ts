/** How the router workers' health reports merge into the one the router process answers with. */
import { describe, expect, it } from 'vitest';
import { mergeHealth } from '../../src/traffic/router-cluster-protocol.js';
import type { ColorHealth, HealthReport, ReplicaHealth } from '../../src/traffic/types.js';

const replica = (address: string, over: Partial<ReplicaHealth> = {}): ReplicaHealth => ({
  address,
  healthy: true,
  lastError: null,
  checkedAt: '2026-01-01T00:00:00.000Z',
  inFlight: 0,
  ...over,
});

const color = (replicas: ReplicaHealth[], over: Partial<ColorHealth> = {}): ColorHealth => ({
  healthy: replicas.some((r) => r.healthy),
  lastError: null,
  checkedAt: '2026-01-01T00:00:00.000Z',
  replicas,
  ...over,
});

describe('mergeHealth', () => {
  it('has nothing to merge before a worker reported', () => {
    expect(mergeHealth([])).toBeNull();
  });

  it('takes a replica out when one worker marked it failed, adds in-flight counts and keeps the latest check', () => {
    const a: HealthReport = {
      blue: color([replica('b1', { inFlight: 2 }), replica('b2', { inFlight: 1 })]),
      green: color([replica('g1')]),
    };
    const b: HealthReport = {
      blue: color(
        [
          replica('b1', { healthy: false, lastError: 'upstream answered 503', inFlight: 3, checkedAt: '2026-01-01T00:00:01.000Z' }),
          replica('b2'),
        ],
        { lastError: 'b1: upstream answered 503', checkedAt: '2026-01-01T00:00:01.000Z' },
      ),
      green: color([replica('g1')]),
    };
    const merged = mergeHealth([a, b])!;
    expect(merged.blue.replicas[0]).toEqual({
      address: 'b1',
      healthy: false,
      lastError: 'upstream answered 503',
      checkedAt: '2026-01-01T00:00:01.000Z',
      inFlight: 5,
    });
    expect(merged.blue.replicas[1]).toMatchObject({ address: 'b2', healthy: true, inFlight: 1 });
    // b2 is still in rotation everywhere: the color is healthy, and says what failed.
    expect(merged.blue).toMatchObject({ healthy: true, lastError: 'b1: upstream answered 503', checkedAt: '2026-01-01T00:00:01.000Z' });
    expect(merged.green.healthy).toBe(true);
  });

  it("is unhealthy when one worker's failure takes the color's only replica out", () => {
    const ok: HealthReport = { blue: color([replica('b1')]), green: color([replica('g1')]) };
    const failed: HealthReport = {
      blue: color([replica('b1')]),
      green: color([replica('g1', { healthy: false, lastError: 'ECONNREFUSED' })], { healthy: false, lastError: 'ECONNREFUSED' }),
    };
    const merged = mergeHealth([ok, failed])!;
    expect(merged.green).toMatchObject({ healthy: false, lastError: 'ECONNREFUSED' });
    expect(merged.blue.healthy).toBe(true);
  });
});
