/**
 * Pairing of the stable color's live answers with the new color's mirrored answers (release/pairing.ts): the
 * statistics on hand-made pairs, halves that never meet, duplicate ids, and memory that stays bounded.
 */
import { describe, expect, it } from 'vitest';
import { PairAccumulator, pairRecords, quantile, withoutInputs, type PredictionRecord } from '../../src/release/pairing.js';

const rec = (id: string, prediction: number, source = 'live', input: Record<string, number> = { x: 1 }): PredictionRecord => ({
  id,
  prediction,
  input,
  source,
  at: 0,
});

/** A seeded PRNG (mulberry32), so the reservoir is reproducible. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('pairing', () => {
  it('pairs by id in any order and computes agreement, class agreement, mean and p95 |delta|', () => {
    const stable = [rec('a', 5.2), rec('b', 5.6), rec('c', 6.4), rec('d', 4.0)];
    // a: 0.1 (same class), b: 0.3 (5.6 -> 5.9: both 6), c: 0.7 (6.4 -> 5.7: 6 vs 6), d: 1.0 (4 -> 5).
    const target = [rec('d', 5.0, 'mirror'), rec('c', 5.7, 'mirror'), rec('a', 5.3, 'mirror'), rec('b', 5.9, 'mirror')];
    const s = pairRecords(stable, target);
    expect(s.pairs).toBe(4);
    expect(s.agreement).toBe(0.5);
    expect(s.classAgreement).toBe(0.75);
    expect(s.meanAbsDelta).toBeCloseTo((0.1 + 0.3 + 0.7 + 1.0) / 4, 10);
    expect(s.p95AbsDelta).toBeCloseTo(1.0, 10);
    expect(s.unpaired).toEqual({ stable: 0, target: 0 });
    expect(s.largest.map((d) => d.id)).toEqual(['d', 'c', 'b', 'a']);
    expect(s.largest[0]).toMatchObject({ stable: 4, target: 5, input: { x: 1 } });
  });

  it('counts halves that never meet, and never pairs preview traffic or a side with the wrong source', () => {
    const s = pairRecords(
      [rec('a', 5), rec('b', 5), rec('p', 5, 'preview'), rec('m', 5, 'mirror')],
      [rec('a', 5, 'mirror'), rec('z', 5, 'mirror'), rec('p', 5, 'preview'), rec('m', 5, 'live')],
    );
    expect(s.pairs).toBe(1);
    expect(s.unpaired).toEqual({ stable: 1, target: 1 });
    const none = pairRecords([rec('a', 5)], []);
    expect(none).toMatchObject({ pairs: 0, agreement: null, classAgreement: null, meanAbsDelta: null, p95AbsDelta: null });
  });

  it('takes the first record of an id on each side: a reused id is counted, never paired twice', () => {
    const acc = new PairAccumulator();
    acc.add('stable', rec('a', 5));
    acc.add('stable', rec('a', 9));
    acc.add('target', rec('a', 5.1, 'mirror'));
    acc.add('target', rec('a', 1, 'mirror'));
    acc.add('stable', rec('a', 5));
    const s = acc.summary();
    expect(s.pairs).toBe(1);
    expect(s.duplicates).toBe(3);
    expect(s.agreement).toBe(1);
    expect(s.meanAbsDelta).toBeCloseTo(0.1, 10);
  });

  it('keeps memory bounded: pending halves, deltas and disagreements are capped whatever the traffic', () => {
    const acc = new PairAccumulator({ maxPending: 100, maxDeltas: 1000, maxSeen: 500, maxLargest: 5 }, seeded(1));
    // 20,000 stable halves whose other half never comes.
    for (let i = 0; i < 20_000; i++) acc.add('stable', rec(`lost-${i}`, 5));
    // 50,000 pairs with |delta| uniform on [0, 1).
    const random = seeded(2);
    for (let i = 0; i < 50_000; i++) {
      const d = random();
      acc.add('target', rec(`p-${i}`, 5 + d, 'mirror'));
      acc.add('stable', rec(`p-${i}`, 5));
    }
    const f = acc.footprint();
    expect(f.pending).toBeLessThanOrEqual(200);
    expect(f.deltas).toBe(1000);
    expect(f.largest).toBe(5);
    expect(f.sample).toBe(500);
    const s = acc.summary();
    expect(s.pairs).toBe(50_000);
    expect(s.unpaired.stable).toBe(20_000);
    // The reservoir's p95 is a sample's: within a few percentiles of the exact 0.95.
    expect(s.p95AbsDelta).toBeGreaterThan(0.93);
    expect(s.p95AbsDelta).toBeLessThan(0.97);
    expect(Math.abs((s.agreement ?? 0) - 0.5)).toBeLessThan(0.01);
    expect(s.largest).toHaveLength(5);
    expect(s.largest.every((d) => d.delta > 0.999)).toBe(true);
  });

  it('keeps a bounded uniform sample of the pairs as [stable, new], without inputs', () => {
    const acc = new PairAccumulator({ maxSample: 50 }, seeded(3));
    // Pair i: stable i, new i + 0.5, so a sampled pair is recognisable and its halves must match.
    for (let i = 0; i < 30; i++) {
      acc.add('stable', rec(`a-${i}`, i, 'live', { secret: 42 }));
      acc.add('target', rec(`a-${i}`, i + 0.5, 'mirror', { secret: 42 }));
    }
    // Under the bound: every pair, in arrival order.
    expect(acc.summary().sample).toEqual(Array.from({ length: 30 }, (_, i) => [i, i + 0.5]));
    for (let i = 30; i < 10_000; i++) {
      acc.add('target', rec(`a-${i}`, i + 0.5, 'mirror'));
      acc.add('stable', rec(`a-${i}`, i));
    }
    const s = acc.summary();
    expect(acc.footprint().sample).toBe(50);
    expect(s.sample).toHaveLength(50);
    // Every point is a real pair (its two halves), each pair at most once, with no input in sight.
    for (const [stable, target] of s.sample ?? []) {
      expect(Number.isInteger(stable) && stable >= 0 && stable < 10_000).toBe(true);
      expect(target).toBe(stable + 0.5);
    }
    expect(new Set(s.sample?.map(([a]) => a)).size).toBe(50);
    expect(s.sample?.every((p) => p.length === 2 && p.every((v) => typeof v === 'number'))).toBe(true);
    // Uniform, not the latest: pairs from all over the stream (expected mean 5,000), not only its end.
    const mean = (s.sample ?? []).reduce((t, [a]) => t + a, 0) / 50;
    expect(mean).toBeGreaterThan(3_500);
    expect(mean).toBeLessThan(6_500);
    expect(Math.min(...(s.sample ?? []).map(([a]) => a))).toBeLessThan(2_000);
    // The release log keeps the summary without the sample.
    expect(withoutInputs(s)).not.toHaveProperty('sample');
  });

  it('records disagreements without their inputs for the release log', () => {
    const s = pairRecords([rec('a', 5, 'live', { alcohol: 9.4 })], [rec('a', 6, 'mirror', { alcohol: 9.4 })]);
    expect(s.largest[0].input).toEqual({ alcohol: 9.4 });
    const logged = withoutInputs(s);
    expect(logged.largest[0]).toEqual({ id: 'a', stable: 5, target: 6, delta: 1 });
    expect(JSON.stringify(logged)).not.toContain('alcohol');
  });

  it('takes nearest-rank quantiles', () => {
    expect(quantile([], 0.95)).toBeNull();
    expect(quantile([3, 1, 2], 0.5)).toBe(2);
    expect(
      quantile(
        Array.from({ length: 100 }, (_, i) => i + 1),
        0.95,
      ),
    ).toBe(95);
  });
});
