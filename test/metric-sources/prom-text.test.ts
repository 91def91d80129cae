import { describe, it, expect } from 'vitest';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ExpositionError, parseExposition, parseSampleValue } from '../../src/metric-sources/prom-text.js';
import { ANALYSIS_FAMILIES, colorDelta, colorTotals } from '../../src/metric-sources/color-totals.js';
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
    expect(samples.filter((s) => s.name === 'lat_bucket').map((s) => [s.labels.le, s.value])).toEqual([
      ['0.1', 1],
      ['1', 1],
      ['+Inf', 2],
    ]);
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

  it('reads every float spelling the exposition format allows', () => {
    const cases: Array<[string, number]> = [
      ['NaN', Number.NaN],
      ['Nan', Number.NaN],
      ['nan', Number.NaN],
      ['+Inf', Infinity],
      ['Inf', Infinity],
      ['inf', Infinity],
      ['+inf', Infinity],
      ['INF', Infinity],
      ['-Inf', -Infinity],
      ['-inf', -Infinity],
      ['Infinity', Infinity],
      ['1e3', 1000],
      ['1E-3', 0.001],
      ['+1.5e+2', 150],
      ['-2.5', -2.5],
      ['+7', 7],
      ['.5', 0.5],
      ['0', 0],
    ];
    for (const [text, value] of cases) {
      expect(parseSampleValue(text), text).toBe(value);
      expect(parseExposition(`m{a="b"} ${text} 1700000000000\n`)[0].value, text).toBe(value);
    }
    for (const bad of ['', 'x', 'NaNa', '1..2', 'Inff']) expect(parseSampleValue(bad), bad).toBeNull();
  });

  it("reads prom-client's own output with NaN gauges (it writes them as Nan)", async () => {
    const registry = new Registry();
    const lag = new Gauge({ name: 'nodejs_eventloop_lag_mean_seconds', help: 'h', registers: [registry] });
    lag.set(Number.NaN);
    const both = new Gauge({ name: 'odd', help: 'h', labelNames: ['k'], registers: [registry] });
    both.labels('up').set(Infinity);
    both.labels('down').set(-Infinity);
    const text = await registry.metrics();
    expect(text).toContain('nodejs_eventloop_lag_mean_seconds Nan');
    const samples = parseExposition(text);
    expect(samples.find((s) => s.name === 'nodejs_eventloop_lag_mean_seconds')?.value).toBeNaN();
    expect(samples.filter((s) => s.name === 'odd').map((s) => s.value)).toEqual([Infinity, -Infinity]);
  });

  it('reads only the families asked for: an unreadable line elsewhere cannot fail the read', () => {
    const text = [
      '# TYPE prediction_latency_seconds histogram',
      'prediction_latency_seconds_bucket{color="blue",le="0.1"} 3',
      'prediction_latency_seconds_bucket{color="blue",le="+Inf"} 4',
      'prediction_latency_seconds_sum{color="blue"} 0.2',
      'prediction_latency_seconds_count{color="blue"} 4',
      'predict_requests_total{color="blue",status="200"} 4',
      'nodejs_eventloop_lag_mean_seconds what',
      'process_weird{a="unterminated} 1',
      'lonely',
      'predict_requests_total_extra{color="blue"} 9',
    ].join('\n');
    expect(() => parseExposition(text)).toThrow(ExpositionError);
    const samples = parseExposition(text, { families: ANALYSIS_FAMILIES });
    expect(samples.map((s) => s.name)).toEqual([
      'prediction_latency_seconds_bucket',
      'prediction_latency_seconds_bucket',
      'prediction_latency_seconds_sum',
      'prediction_latency_seconds_count',
      'predict_requests_total',
    ]);
    // A broken line of a family the analysis reads still fails, with the line named.
    expect(() => parseExposition('predict_requests_total{color="blue"} what', { families: ANALYSIS_FAMILIES })).toThrow(
      /bad sample value "what"/,
    );
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

  it('keeps live and mirrored traffic apart and never counts preview; unlabelled series are live', () => {
    const text = [
      'predict_requests_total{color="green",model_version="1",route="/predict",status="200",source="live"} 10',
      'predict_requests_total{color="green",model_version="1",route="/predict",status="500",source="live"} 1',
      'predict_requests_total{color="green",model_version="1",route="/predict",status="200",source="mirror"} 20',
      'predict_requests_total{color="green",model_version="1",route="/predict",status="500",source="preview"} 40',
      'predict_requests_total{color="green",model_version="0",route="/predict",status="200"} 5',
      'prediction_value_bucket{color="green",model_version="1",source="live",le="5"} 4',
      'prediction_value_bucket{color="green",model_version="1",source="live",le="+Inf"} 10',
      'prediction_value_sum{color="green",model_version="1",source="live"} 55',
      'prediction_value_count{color="green",model_version="1",source="live"} 10',
      'prediction_value_bucket{color="green",model_version="1",source="preview",le="5"} 0',
      'prediction_value_bucket{color="green",model_version="1",source="preview",le="+Inf"} 40',
      'prediction_value_sum{color="green",model_version="1",source="preview"} 400',
      'prediction_value_count{color="green",model_version="1",source="preview"} 40',
      'prediction_value_bucket{color="green",model_version="1",source="mirror",le="5"} 20',
      'prediction_value_bucket{color="green",model_version="1",source="mirror",le="+Inf"} 20',
      'prediction_value_sum{color="green",model_version="1",source="mirror"} 80',
      'prediction_value_count{color="green",model_version="1",source="mirror"} 20',
    ].join('\n');
    const samples = parseExposition(text, { families: ANALYSIS_FAMILIES });
    const live = colorTotals(samples, 'green');
    expect(live.requests).toBe(16);
    expect(live.serverErrors).toBe(1);
    expect(live.predictions).toEqual({
      buckets: [
        { le: 5, count: 4 },
        { le: Infinity, count: 10 },
      ],
      sum: 55,
      count: 10,
    });
    const mirror = colorTotals(samples, 'green', 'mirror');
    expect(mirror.requests).toBe(20);
    expect(mirror.serverErrors).toBe(0);
    expect(mirror.predictions).toEqual({
      buckets: [
        { le: 5, count: 20 },
        { le: Infinity, count: 20 },
      ],
      sum: 80,
      count: 20,
    });
  });

  it('treats a counter that went down as a restart: the new totals are the increase', async () => {
    const m = new InstanceMetrics('blue', { processMetrics: false });
    m.forModel({ name: 'm', version: '1', sha256: 's', format: 'native-forest' }).route('/predict').served(0.001, [5]);
    const fresh = colorTotals(parseExposition(await m.text()), 'blue');
    const old = { ...fresh, requests: 100 };
    expect(colorDelta(fresh, old)).toEqual(fresh);
  });
});
