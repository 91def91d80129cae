import { describe, expect, it } from 'vitest';
import { baselineFor, liveColorStats, type Snapshot } from '../../src/control/status-page-live.js';
import type { ColorWindow } from '../../src/release/types.js';

function totals(requests: number, serverErrors: number, fast: number): ColorWindow {
  // `fast` requests took <= 10ms, the rest <= 100ms.
  return {
    requests,
    serverErrors,
    latency: {
      buckets: [
        { le: 0.01, count: fast },
        { le: 0.1, count: requests },
        { le: Infinity, count: requests },
      ],
      sum: 0,
      count: requests,
    },
    predictions: { buckets: [], sum: 0, count: 0 },
  };
}

describe('status page live numbers', () => {
  it('turns two snapshots into rate, 5xx ratio and p99', () => {
    const stats = liveColorStats(totals(100, 0, 100), totals(300, 4, 298), 10);
    expect(stats.requestRate).toBe(20);
    expect(stats.errorRatio).toBe(0.02);
    // 198 of 200 within 10ms, 2 within 100ms: the 99th percentile is at the 10ms bound.
    expect(stats.p99Seconds).toBeCloseTo(0.01, 6);
    expect(stats.error).toBeNull();
  });

  it('has no ratio or latency without requests, and no numbers without a baseline', () => {
    expect(liveColorStats(totals(5, 0, 5), totals(5, 0, 5), 10)).toEqual({
      requestRate: 0,
      errorRatio: null,
      p99Seconds: null,
      error: null,
    });
    expect(liveColorStats(undefined, totals(5, 0, 5), 0).requestRate).toBeNull();
  });

  it('reports an unreachable instance, and counts a restarted one from its reset (never negative)', () => {
    expect(liveColorStats(totals(5, 0, 5), { error: 'connect ECONNREFUSED' }, 10).error).toBe('connect ECONNREFUSED');
    expect(liveColorStats(totals(500, 0, 500), totals(3, 0, 3), 10).requestRate).toBeCloseTo(0.3, 9);
  });

  it('compares with the newest snapshot at least one window old, else the oldest', () => {
    const snap = (at: number): Snapshot => ({ at, colors: { blue: totals(at, 0, at), green: totals(at, 0, at) } });
    const snaps = [snap(1_000), snap(5_000), snap(9_000), snap(12_000)];
    expect(baselineFor(snaps, 12_000, 5_000)?.at).toBe(5_000);
    expect(baselineFor(snaps, 12_000, 20_000)?.at).toBe(1_000);
    expect(baselineFor([snap(12_000)], 12_000, 5_000)).toBeUndefined();
  });
});
