import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HotHistogram } from '../../src/serve/hot-histogram.js';
import { LATENCY_BUCKETS, PREDICTION_BUCKETS } from '../../src/serve/metrics.js';

/** Renders the same observations with prom-client's Histogram and with HotHistogram. */
async function renderBoth(buckets: number[], observations: { version: string; value: number }[]): Promise<[string, string]> {
  const reference = new Registry();
  const hot = new Registry();
  const h = new Histogram({ name: 'h', help: 'help', labelNames: ['color', 'model_version'], buckets, registers: [reference] });
  const hh = new HotHistogram('h', 'help', ['color', 'model_version'], buckets, hot);
  for (const { version, value } of observations) {
    h.labels({ color: 'blue', model_version: version }).observe(value);
    hh.labels({ color: 'blue', model_version: version }).observe(value);
  }
  return [await reference.metrics(), await hot.metrics()];
}

describe('HotHistogram', () => {
  it('renders exactly as prom-client Histogram for any finite observations', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(PREDICTION_BUCKETS, LATENCY_BUCKETS, [1, 2, 3]),
        fc.array(
          fc.record({
            version: fc.constantFrom('1.0.0', '1.1.0'),
            value: fc.double({ noNaN: true, noDefaultInfinity: true, min: -1, max: 12 }),
          }),
          {
            maxLength: 50,
          },
        ),
        async (buckets, observations) => {
          const [reference, hot] = await renderBoth(buckets, observations);
          expect(hot).toBe(reference);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('renders the instance label sets (route and source last) exactly as prom-client', async () => {
    const labelNames = ['color', 'model_version', 'route', 'source'] as const;
    const reference = new Registry();
    const hot = new Registry();
    const h = new Histogram({ name: 'h', help: 'help', labelNames, buckets: LATENCY_BUCKETS, registers: [reference] });
    const hh = new HotHistogram('h', 'help', labelNames, LATENCY_BUCKETS, hot);
    const values = [3e-6, 4e-5, 0.002, 0.7, 2];
    for (const source of ['live', 'preview', 'mirror']) {
      for (const route of ['/predict', '/predict/batch']) {
        const labels = { color: 'green', model_version: '1.1.0', route, source };
        for (const v of values) {
          h.labels(labels).observe(v);
          hh.labels(labels).observe(v);
        }
      }
    }
    const text = await hot.metrics();
    expect(text).toBe(await reference.metrics());
    expect(text).toContain('h_count{color="green",model_version="1.1.0",route="/predict",source="preview"} 5');
  });

  it('counts a value equal to a bound in that bound (le is inclusive) and removes a series on request', async () => {
    const registry = new Registry();
    const h = new HotHistogram('x', 'x', ['v'], [1, 2], registry);
    const s = h.labels({ v: 'a' });
    for (const v of [1, 2, 2.5]) s.observe(v);
    expect(Array.from(s.counts)).toEqual([1, 1, 1]);
    const text = await registry.metrics();
    expect(text).toContain('x_bucket{le="1",v="a"} 1');
    expect(text).toContain('x_bucket{le="2",v="a"} 2');
    expect(text).toContain('x_bucket{le="+Inf",v="a"} 3');
    expect(text).toContain('x_sum{v="a"} 5.5');
    h.remove({ v: 'a' });
    expect(await registry.metrics()).not.toContain('v="a"');
  });
});
