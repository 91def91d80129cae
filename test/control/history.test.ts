import { describe, expect, it } from 'vitest';
import {
  type ColorTotals,
  type CumulativeSample,
  distributionBetween,
  goldenComparison,
  MetricHistory,
  pointBetween,
  releaseMarkers,
} from '../../src/control/history.js';
import type { ColorWindow, HistogramWindow, ReleaseEvent, ReleaseState } from '../../src/release/types.js';

/** Cumulative totals: `fast` requests took <= 10ms, the rest <= 100ms; predictions all in (5, 6]. */
function totals(requests: number, serverErrors: number, fast: number, predicted = requests): ColorWindow {
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
    predictions: predictionsHistogram(0, predicted),
  };
}

/** Cumulative prediction buckets: `low` predictions in (4, 5], `high` in (5, 6]. */
function predictionsHistogram(low: number, high: number): HistogramWindow {
  return {
    buckets: [
      { le: 4, count: 0 },
      { le: 5, count: low },
      { le: 6, count: low + high },
      { le: Infinity, count: low + high },
    ],
    sum: 0,
    count: low + high,
  };
}

const none = (): ColorWindow => ({
  requests: 0,
  serverErrors: 0,
  latency: { buckets: [], sum: 0, count: 0 },
  predictions: { buckets: [], sum: 0, count: 0 },
});
const live = (w: ColorWindow): ColorTotals => ({ live: w, mirror: none() });

function sample(
  at: number,
  blue: ColorTotals | { error: string },
  green: ColorTotals | { error: string },
  weights = { blue: 100, green: 0 },
): CumulativeSample {
  return { at, weights, colors: { blue, green } };
}

describe('history sampling math', () => {
  it('turns two cumulative scrapes into requests/s, 5xx ratio, p50, p99 and weight per color', () => {
    const p = pointBetween(
      sample(10_000, live(totals(100, 0, 100)), live(totals(0, 0, 0)), { blue: 90, green: 10 }),
      sample(12_000, live(totals(300, 4, 298)), live(totals(20, 1, 0)), { blue: 90, green: 10 }),
    );
    expect(p.at).toBe(12_000);
    expect(p.colors.blue.requestRate).toBe(100);
    expect(p.colors.blue.errorRatio).toBe(0.02);
    // 198 of 200 within 10ms: both quantiles fall in the first bucket (interpolated linearly from 0).
    expect(p.colors.blue.p50Seconds).toBeCloseTo(0.01 * (100 / 198), 6);
    expect(p.colors.blue.p99Seconds).toBeCloseTo(0.01, 6);
    expect(p.colors.blue.weight).toBe(90);
    expect(p.colors.green).toMatchObject({ requestRate: 10, errorRatio: 0.05, weight: 10 });
    // All 20 green requests took 10-100ms: the median is half-way into that bucket.
    expect(p.colors.green.p50Seconds).toBeCloseTo(0.055, 6);
  });

  it('has no rates on the first scrape, none for an unreadable color, and counts a restart from zero', () => {
    const first = pointBetween(undefined, sample(1_000, live(totals(50, 0, 50)), { error: 'connection refused' }));
    expect(first.colors.blue).toEqual({ requestRate: null, errorRatio: null, p50Seconds: null, p99Seconds: null, weight: 100 });
    expect(first.colors.green).toMatchObject({ requestRate: null, error: 'connection refused', weight: 0 });
    // Blue restarted: its counter went from 500 down to 40; the 40 are what it served since.
    const after = pointBetween(
      sample(1_000, live(totals(500, 0, 500)), live(none())),
      sample(3_000, live(totals(40, 0, 40)), live(none())),
    );
    expect(after.colors.blue.requestRate).toBe(20);
    // Idle: a rate of 0, but no ratio or latency to speak of.
    expect(after.colors.green).toMatchObject({ requestRate: 0, errorRatio: null, p99Seconds: null });
  });

  it('turns cumulative prediction buckets into counts per bucket over the window', () => {
    const d = distributionBetween(predictionsHistogram(2, 3), predictionsHistogram(12, 8));
    expect(d.buckets).toEqual([
      { le: 4, count: 0 },
      { le: 5, count: 10 },
      { le: 6, count: 5 },
      { le: Infinity, count: 0 },
    ]);
    expect(d.total).toBe(15);
    // A reset (fewer than before): everything since the reset.
    expect(distributionBetween(predictionsHistogram(50, 50), predictionsHistogram(1, 2)).total).toBe(3);
  });
});

describe('history ring', () => {
  it('keeps at most window / interval + 1 points, none older than the window, oldest first', () => {
    const h = new MetricHistory({ windowMs: 10_000, intervalMs: 1_000 });
    expect(h.capacity).toBe(11);
    for (let i = 0; i < 100; i++) h.add(sample(i * 1_000, live(totals(i * 10, 0, i * 10)), live(none())));
    expect(h.size).toBe(11);
    const pts = h.points();
    expect(pts.map((p) => p.at)).toEqual(Array.from({ length: 11 }, (_, i) => (89 + i) * 1_000));
    expect(pts.every((p) => p.colors.blue.requestRate === 10)).toBe(true);
    expect(h.points(97_000).map((p) => p.at)).toEqual([98_000, 99_000]);
  });

  it('drops points older than the window even when the sampler fell behind, and ignores a scrape out of order', () => {
    const h = new MetricHistory({ windowMs: 10_000, intervalMs: 1_000 });
    for (const at of [0, 1_000, 2_000]) h.add(sample(at, live(none()), live(none())));
    // The sampler stalled for a minute: the old points are out of the window, whatever the capacity says.
    h.add(sample(62_000, live(totals(600, 0, 600)), live(none())));
    expect(h.points().map((p) => p.at)).toEqual([62_000]);
    expect(h.points()[0].colors.blue.requestRate).toBe(10);
    expect(h.add(sample(61_000, live(none()), live(none())))).toBeUndefined();
    expect(h.size).toBe(1);
  });

  it("gives each color's predictions over the kept window, live and mirrored together", () => {
    const h = new MetricHistory({ windowMs: 4_000, intervalMs: 1_000 });
    const mirrored = (w: ColorWindow): ColorTotals => ({ live: none(), mirror: w });
    for (let i = 0; i < 10; i++) {
      // Blue answers live traffic, all in (5, 6]; green only mirrored copies, 1 in 5 of them in (4, 5].
      h.add(sample(i * 1_000, live(totals(i * 10, 0, i * 10)), mirrored({ ...none(), predictions: predictionsHistogram(i * 2, i * 8) })));
    }
    const d = h.distributions();
    // Points 5..9 are kept: 4 intervals of 10 predictions each.
    expect(d.blue.total).toBe(40);
    expect(d.blue.buckets.find((b) => b.le === 6)?.count).toBe(40);
    expect(d.green.total).toBe(40);
    expect(d.green.buckets.find((b) => b.le === 5)?.count).toBe(8);
    expect(new MetricHistory().distributions().blue).toEqual({ buckets: [], total: 0 });
  });
});

function release(over: Partial<ReleaseState['spec']> = {}, updatedAt = 50_000): ReleaseState {
  return {
    spec: { id: 'r-1', version: '1.1.0', stableVersion: '1.0.0', targetColor: 'green', stableColor: 'blue', ...over },
    updatedAt,
  } as unknown as ReleaseState;
}

function event(at: number, type: ReleaseEvent['type'], values?: Record<string, unknown>, releaseId = 'r-1'): ReleaseEvent {
  return { at, releaseId, type, phase: 'step', reason: `${type} at ${at}`, ...(values ? { values } : {}) };
}

describe('release markers and golden comparison', () => {
  it('marks the events that move traffic or end a release, within the window, oldest first', () => {
    const events: Record<string, ReleaseEvent[]> = {
      'r-0': [event(1_000, 'release-started', undefined, 'r-0'), event(2_000, 'rolled-back', undefined, 'r-0')],
      'r-1': [
        event(10_000, 'release-started'),
        event(11_000, 'bundle-loaded'),
        event(12_000, 'smoke-passed'),
        event(13_000, 'step-started'),
        event(14_000, 'analysis-passed'),
        event(15_000, 'step-started'),
        event(16_000, 'rolled-back'),
      ],
    };
    const markers = releaseMarkers([release(), release({ id: 'r-0' }, 2_000)], (id) => events[id], 5_000);
    expect(markers.map((m) => [m.at, m.type])).toEqual([
      [10_000, 'release-started'],
      [13_000, 'step-started'],
      [15_000, 'step-started'],
      [16_000, 'rolled-back'],
    ]);
    expect(markers[3]).toMatchObject({ releaseId: 'r-1', reason: 'rolled-back at 16000' });
  });

  it("reads the golden-set comparison from the release's smoke event", () => {
    const values = { rows: 200, rmse: { candidate: 0.61, stable: 0.63 }, agreement: 0.9, meanAbsDelta: 0.12, margin: 0.05 };
    expect(goldenComparison(release(), [event(1, 'bundle-loaded'), event(2, 'smoke-passed', values)])).toEqual({
      releaseId: 'r-1',
      passed: true,
      rows: 200,
      versions: { candidate: '1.1.0', stable: '1.0.0' },
      colors: { candidate: 'green', stable: 'blue' },
      rmse: { candidate: 0.61, stable: 0.63 },
      agreement: 0.9,
      meanAbsDelta: 0.12,
    });
    expect(goldenComparison(release(), [event(2, 'smoke-failed', { ...values, agreement: null })])).toMatchObject({
      passed: false,
      agreement: null,
    });
    // A bundle without golden rows: the smoke phase has no RMSE to compare.
    expect(goldenComparison(release(), [event(2, 'smoke-passed', { rows: 0, rmse: null })])).toBeNull();
    expect(goldenComparison(release(), [])).toBeNull();
  });
});
