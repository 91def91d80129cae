import { describe, it, expect } from 'vitest';
import { Counter, Histogram, Registry } from 'prom-client';
import { ExpositionError, parseExposition } from '../../src/analysis/prom-text.js';
import { colorDelta, colorTotals } from '../../src/analysis/color-totals.js';
import { InstanceMetrics } from '../../src/serve/metrics.js';

describe('Prometheus text parser', () => {
  it('reads what prom-client writes, escaped labels and special values included', async () => {
    const registry = new Registry();
    const c = new Counter({ name: 'x_total', help: 'h', labelNames: ['a'], registers: [registry] });
    c.labels('quote " back \\ nl \n end').inc(3);
    const h = new Histogram({ name: 'lat', help: 'h', buckets: [0.1, 1], registers: [registry] });
    h.observe(0.05);
    h.observe(5);
    const samples = parseExposition(await registry.metrics());
    expect(samples.find((s) => s.name === 'x_total')).toEqual({ name: 'x_total', labels: { a: 'quote " back \\ nl \n end' }, value: 3 });
    expect(samples.filter((s) => s.name === 'lat_bucket').map((s) => [s.labels.le, s.value])).toEqual([['0.1', 1], ['1', 1], ['+Inf', 2]]);
    expect(samples.find((s) => s.name === 'lat_sum')?.value).toBe(5.05);
  });

  it('accepts unlabelled samples with timestamps and NaN/Inf values', () => {
    expect(parseExposition('# HELP a x\na 1 1700000000000\nb NaN\nc +Inf\nd{} -Inf\n')).toEqual([
      { name: 'a', labels: {}, value: 1 },
      { name: 'b', labels: {}, value: Number.NaN },
      { name: 'c', labels: {}, value: Infinity },
      { name: 'd', labels: {}, value: -Infinity },
    ]);
  });

  it('refuses malformed lines with the line in the message', () => {
    expect(() => parseExposition('a{b="c} 1')).toThrow(ExpositionError);
    expect(() => parseExposition('lonely')).toThrow(/lonely/);
    expect(() => parseExposition('a x')).toThrow(/bad sample value/);
  });
});

describe('per-color totals and windows from instance metrics', () => {
  it('sums over versions and routes, counts only 5xx as server errors, and diffs windows', async () => {
    const metrics = new InstanceMetrics('green', { processMetrics: false });
    const v1 = metrics.forModel({ name: 'm', version: '1', sha256: 's', format: 'native-forest' });
    v1.route('/predict').served(0.0001, [5.5]);
    const before = colorTotals(parseExposition(await metrics.text()), 'green');

    const v2 = metrics.forModel({ name: 'm', version: '2', sha256: 't', format: 'native-forest' });
    v2.route('/predict').served(0.0002, [6.1]);
    v2.route('/predict/batch').served(0.0003, [5.0, 5.2]);
    v2.rejected('/predict', 400, 'validation', true);
    v2.rejected('/predict', 500, 'internal', true);
    const after = colorTotals(parseExposition(await metrics.text()), 'green');

    expect(after.requests).toBe(5);
    expect(after.serverErrors).toBe(1);
    const window = colorDelta(after, before);
    expect(window.requests).toBe(4);
    expect(window.serverErrors).toBe(1);
    expect(window.latency.count).toBe(2);
    expect(window.predictions.count).toBe(3);
    expect(window.predictions.sum).toBeCloseTo(16.3);
    expect(window.predictions.buckets.at(-1)).toEqual({ le: Infinity, count: 3 });
    // Other colors' series are not counted.
    expect(colorTotals(parseExposition(await metrics.text()), 'blue').requests).toBe(0);
  });

  it('treats a counter that went down as a restart: the new totals are the increase', async () => {
    const m = new InstanceMetrics('blue', { processMetrics: false });
    m.forModel({ name: 'm', version: '1', sha256: 's', format: 'native-forest' }).route('/predict').served(0.001, [5]);
    const fresh = colorTotals(parseExposition(await m.text()), 'blue');
    const old = { ...fresh, requests: 100 };
    expect(colorDelta(fresh, old)).toEqual(fresh);
  });
});
