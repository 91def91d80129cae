import { describe, it, expect } from 'vitest';
import { evaluate } from '../../src/release/analysis.js';
import {
  histogramCountAbove,
  histogramMean,
  histogramQuantile,
  histogramStd,
  psi,
  psiSamplingNoise,
} from '../../src/release/histograms.js';
import { Prng } from '../../src/model/prng.js';
import { DEFAULT_ANALYSIS } from '../../src/release/defaults.js';
import { normalizeSteps, parseDuration, buildSpec } from '../../src/release/spec.js';
import { histogram, spread, stats, PREDICTION_BUCKETS } from './windows.js';

describe('histogram statistics', () => {
  it('interpolates quantiles inside a bucket as histogram_quantile does', () => {
    const h = {
      buckets: [
        { le: 0.1, count: 50 },
        { le: 0.2, count: 100 },
        { le: Infinity, count: 100 },
      ],
      sum: 12,
      count: 100,
    };
    expect(histogramQuantile(0.5, h)).toBeCloseTo(0.1);
    expect(histogramQuantile(0.75, h)).toBeCloseTo(0.15);
    expect(histogramQuantile(0.25, h)).toBeCloseTo(0.05);
  });

  it('counts observations above a value, interpolating inside its bucket', () => {
    const h = {
      buckets: [
        { le: 0.1, count: 50 },
        { le: 0.2, count: 90 },
        { le: Infinity, count: 100 },
      ],
      sum: 12,
      count: 100,
    };
    expect(histogramCountAbove(h, 0.05)).toBeCloseTo(75);
    expect(histogramCountAbove(h, 0.15)).toBeCloseTo(30);
    expect(histogramCountAbove(h, 0.2)).toBeCloseTo(10);
    expect(histogramCountAbove(h, 5)).toBeCloseTo(10);
    expect(histogramCountAbove({ buckets: [], sum: 0, count: 0 }, 1)).toBe(0);
  });

  it('reports the last finite bound for ranks in the +Inf bucket, null when empty', () => {
    const h = {
      buckets: [
        { le: 1, count: 1 },
        { le: Infinity, count: 10 },
      ],
      sum: 50,
      count: 10,
    };
    expect(histogramQuantile(0.99, h)).toBe(1);
    expect(histogramQuantile(0.5, { buckets: [{ le: Infinity, count: 0 }], sum: 0, count: 0 })).toBeNull();
  });

  it('PSI is 0 for equal distributions and grows with the shift', () => {
    const base = histogram(spread(1000, 5.6, 0.9), PREDICTION_BUCKETS);
    expect(psi(base, base)).toBeCloseTo(0, 10);
    const small = psi(base, histogram(spread(1000, 5.8, 0.9), PREDICTION_BUCKETS));
    const large = psi(base, histogram(spread(1000, 6.6, 0.9), PREDICTION_BUCKETS));
    expect(small).toBeGreaterThan(0);
    expect(large).toBeGreaterThan(small);
    expect(large).toBeGreaterThan(DEFAULT_ANALYSIS.maxPsi);
  });

  it('judges PSI above its sampling noise: two samples of one distribution pass, a real shift fails', () => {
    // Wine-like predictions (mean 5.6, sd 0.55) in the instances' quarter-point buckets, 200 vs 1200 requests:
    // the raw PSI of two samples of the same model reached the 0.25 threshold (a good canary rolled back).
    const quarterBuckets = Array.from({ length: 41 }, (_, i) => i * 0.25).concat([Infinity]);
    const rng = new Prng(7);
    const normal = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
    const sample = (n: number, mean: number) =>
      histogram(
        Array.from({ length: n }, () => mean + 0.55 * normal()),
        quarterBuckets,
      );
    const verdictOf = (targetMean: number) => {
      const stable = sample(1200, 5.6);
      const target = sample(200, targetMean);
      return {
        raw: psi(stable, target),
        noise: psiSamplingNoise(stable, target),
        shift: Math.max(0, psi(stable, target) - psiSamplingNoise(stable, target)),
      };
    };
    const same = Array.from({ length: 200 }, () => verdictOf(5.6));
    expect(same.filter((v) => v.shift > DEFAULT_ANALYSIS.maxPsi)).toHaveLength(0);
    // The noise floor is what made raw PSI unreliable: it is of the order of the threshold's tenth at this size.
    expect(Math.min(...same.map((v) => v.noise))).toBeGreaterThan(0.03);
    const shifted = Array.from({ length: 50 }, () => verdictOf(6.1));
    expect(shifted.filter((v) => v.shift > DEFAULT_ANALYSIS.maxPsi).length).toBeGreaterThanOrEqual(45);
  });

  it('estimates mean exactly and std from bucket midpoints', () => {
    const h = histogram(spread(1000, 5.5, 1), PREDICTION_BUCKETS);
    expect(histogramMean(h)).toBeCloseTo(5.5);
    // Uniform on [4.5, 6.5]: std = 2 / sqrt(12) = 0.577
    expect(histogramStd(h)).toBeCloseTo(0.577, 1);
  });
});

describe('evaluate', () => {
  const opts = { target: 'green' as const, stable: 'blue' as const, compareWithStable: true };

  it('too few samples is inconclusive, never pass or fail', () => {
    const v = evaluate(stats(0, 1, { blue: { requests: 500 }, green: { requests: 10, errors: 10 } }), DEFAULT_ANALYSIS, opts);
    expect(v.outcome).toBe('inconclusive');
    expect(v.checks.every((c) => c.outcome === 'inconclusive')).toBe(true);
  });

  it('passes a healthy color and fails each regression by its own check', () => {
    const healthy = { requests: 500 };
    expect(evaluate(stats(0, 1, { blue: healthy, green: healthy }), DEFAULT_ANALYSIS, opts).outcome).toBe('pass');
    const failing = (green: Parameters<typeof stats>[2]['green']) =>
      evaluate(stats(0, 1, { blue: healthy, green }), DEFAULT_ANALYSIS, opts)
        .checks.filter((c) => c.outcome === 'fail')
        .map((c) => c.name);
    expect(failing({ requests: 500, errors: 10 })).toEqual(['error-ratio']);
    expect(failing({ requests: 500, latencySeconds: 0.02 })).toEqual(['latency-p99-vs-stable']);
    expect(failing({ requests: 500, latencySeconds: 0.3 })).toEqual(['latency-p95', 'latency-p99', 'latency-p99-vs-stable']);
    expect(failing({ requests: 500, predictionMean: 6.5 })).toEqual(['prediction-mean-shift', 'prediction-psi']);
  });

  it('tail statistics wait for minTailSamples: one slow request among 100 is not a p99 failure', () => {
    const w = stats(0, 1, { blue: { requests: 500 }, green: { requests: 100 } });
    const slow = histogram([...spread(99, 0.0008, 0.0004), 0.6]);
    w.colors.green.latency = slow;
    const v = evaluate(w, DEFAULT_ANALYSIS, opts);
    const byName = Object.fromEntries(v.checks.map((c) => [c.name, c.outcome]));
    expect(byName).toMatchObject({
      'latency-p99': 'inconclusive',
      'latency-p99-vs-stable': 'inconclusive',
      'prediction-psi': 'inconclusive',
    });
    // The mean shift and p95 judge at minSamples already.
    expect(byName).toMatchObject({ 'prediction-mean-shift': 'pass', 'latency-p95': 'pass', 'error-ratio': 'pass' });
    expect(v.outcome).toBe('inconclusive');
    // With enough samples the same slowness is judged.
    const many = stats(0, 1, { blue: { requests: 500 }, green: { requests: 300 } });
    many.colors.green.latency = histogram([...spread(290, 0.0008, 0.0004), ...Array(10).fill(0.6)]);
    expect(evaluate(many, DEFAULT_ANALYSIS, opts).checks.find((c) => c.name === 'latency-p99')?.outcome).toBe('fail');
  });

  it('a handful of slow requests (a GC pause, a cold code path) is no p99 failure: inconclusive until more come', () => {
    // What a freshly loaded color showed on a busy machine: 5 of its first 300 requests took 20 ms.
    const w = stats(0, 1, { blue: { requests: 500 }, green: { requests: 300 } });
    w.colors.green.latency = histogram([...spread(295, 0.0008, 0.0004), ...Array(5).fill(0.02)]);
    const v = evaluate(w, DEFAULT_ANALYSIS, opts);
    const p99 = v.checks.find((c) => c.name === 'latency-p99-vs-stable');
    expect(p99).toMatchObject({ outcome: 'inconclusive', detail: expect.stringMatching(/only 5 requests over the limit, 10 needed/) });
    expect(v.outcome).toBe('inconclusive');
    // The same 5 among 1000 requests are under 1%: the p99 passes.
    const later = stats(0, 1, { blue: { requests: 500 }, green: { requests: 1000 } });
    later.colors.green.latency = histogram([...spread(995, 0.0008, 0.0004), ...Array(5).fill(0.02)]);
    expect(evaluate(later, DEFAULT_ANALYSIS, opts).outcome).toBe('pass');
    // A slow version has every request over the limit: it fails as soon as the tail may judge.
    const slow = stats(0, 1, { blue: { requests: 500 }, green: { requests: 200, latencySeconds: 0.025 } });
    expect(evaluate(slow, DEFAULT_ANALYSIS, opts).checks.find((c) => c.name === 'latency-p99-vs-stable')?.outcome).toBe('fail');
  });

  it('skips the relative checks when the stable color serves no traffic by design', () => {
    const v = evaluate(stats(0, 1, { blue: { requests: 0 }, green: { requests: 500 } }), DEFAULT_ANALYSIS, {
      ...opts,
      compareWithStable: false,
    });
    expect(v.outcome).toBe('pass');
    expect(v.checks.filter((c) => c.outcome === 'skipped').map((c) => c.name)).toEqual([
      'latency-p99-vs-stable',
      'prediction-mean-shift',
      'prediction-psi',
    ]);
  });
});

describe('release spec', () => {
  it('normalizes canary steps and refuses bad ones', () => {
    expect(normalizeSteps([10, 25, 50])).toEqual([10, 25, 50, 100]);
    expect(normalizeSteps([50, 100])).toEqual([50, 100]);
    expect(() => normalizeSteps([25, 10])).toThrow(/increase/);
    expect(() => normalizeSteps([0])).toThrow(/1\.\.100/);
    expect(() => normalizeSteps([])).toThrow(/empty/);
  });

  it('parses durations', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('5')).toBe(5_000);
    expect(() => parseDuration('soon')).toThrow(/duration/);
  });

  it('targets the idle color and refuses options of the other strategy', () => {
    const base = { id: 'x', bundle: 'b', modelName: 'm', version: '1', sha256: 's', stableColor: 'green' as const };
    expect(buildSpec(base)).toMatchObject({ strategy: 'bluegreen', targetColor: 'blue', steps: [100] });
    expect(() => buildSpec({ ...base, steps: [10] })).toThrow(/canary/);
    expect(() => buildSpec({ ...base, strategy: 'canary', shadowMs: 1000 })).toThrow(/bluegreen/);
  });
});
