import { describe, expect, it } from 'vitest';
import { builtInMetricSources, DEFAULT_METRIC_SOURCE } from '../../src/metric-sources/registry.js';
import type { MetricsProvider } from '../../src/metric-sources/types.js';

const instances = { blue: 'http://127.0.0.1:1', green: 'http://127.0.0.1:2' };

describe('metric source registry', () => {
  it('builds the scrape source by default and the Prometheus one only with its URL', () => {
    const sources = builtInMetricSources();
    expect(sources.kinds()).toEqual(['scrape', 'prometheus']);
    expect(sources.create(DEFAULT_METRIC_SOURCE, { instances }).kind).toBe('scrape');
    expect(sources.create('prometheus', { instances, prometheusUrl: 'http://127.0.0.1:9090' }).kind).toBe('prometheus');
    expect(() => sources.create('prometheus', { instances })).toThrow(/needs the Prometheus URL/);
    expect(() => sources.create('influx', { instances })).toThrow(/no metric source of kind influx: scrape, prometheus/);
  });

  it('takes a source of another kind, once', () => {
    const fake: MetricsProvider = {
      kind: 'scrape',
      open: async () => undefined,
      window: async () => Promise.reject(new Error('no numbers')),
    };
    const sources = builtInMetricSources().register('fixed', () => fake);
    expect(sources.create('fixed', { instances })).toBe(fake);
    expect(() => sources.register('fixed', () => fake)).toThrow(/registered already/);
  });
});
