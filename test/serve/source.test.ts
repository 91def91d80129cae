/** The `source` label: preview and mirrored requests are counted apart from live ones in every request family. */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SOURCE_HEADER } from '../../src/config/defaults.js';
import { INSTANCE_METRICS } from '../../src/config/metric-names.js';
import { WINE_EXAMPLE } from '../../src/model/wine.js';
import { V2_INFER_ROUTES } from '../../src/serve/routes/v2.js';
import { appOn, metricsText, sample } from './helpers.js';

const base = { color: 'blue', model_version: '1.0.0' };

describe('instance metrics: the source label', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await appOn();
  });
  afterAll(() => app.close());

  const predict = (headers: Record<string, string>, payload: object = WINE_EXAMPLE) =>
    app.inject({ method: 'POST', url: '/predict', payload, headers });

  it('counts preview and mirror apart; no header, an unknown value or another spelling count as live', async () => {
    const variants: Record<string, string>[] = [
      { [SOURCE_HEADER]: 'preview' },
      { [SOURCE_HEADER]: 'preview' },
      { [SOURCE_HEADER]: 'mirror' },
      {},
      { [SOURCE_HEADER]: 'garbage' },
      { [SOURCE_HEADER]: 'Preview' },
    ];
    for (const headers of variants) {
      expect((await predict(headers)).statusCode).toBe(200);
    }
    const batch = await app.inject({
      method: 'POST',
      url: '/predict/batch',
      payload: { instances: [WINE_EXAMPLE, WINE_EXAMPLE, WINE_EXAMPLE] },
      headers: { [SOURCE_HEADER]: 'mirror' },
    });
    expect(batch.statusCode).toBe(200);
    const text = await metricsText(app);
    const requests = (route: string, source: string) => sample(text, INSTANCE_METRICS.requests, { ...base, route, status: '200', source });
    expect(requests('/predict', 'preview')).toBe(2);
    expect(requests('/predict', 'mirror')).toBe(1);
    expect(requests('/predict', 'live')).toBe(3);
    expect(requests('/predict/batch', 'mirror')).toBe(1);
    expect(requests('/predict/batch', 'live')).toBe(0);
    expect(sample(text, `${INSTANCE_METRICS.latency}_count`, { ...base, route: '/predict', source: 'preview' })).toBe(2);
    expect(sample(text, `${INSTANCE_METRICS.latency}_count`, { ...base, route: '/predict', source: 'live' })).toBe(3);
    // prediction_value has no route: one row per /predict, three in the mirrored batch.
    expect(sample(text, `${INSTANCE_METRICS.predictionValue}_count`, { ...base, source: 'mirror' })).toBe(4);
    expect(sample(text, `${INSTANCE_METRICS.predictionValue}_count`, { ...base, source: 'preview' })).toBe(2);
    expect(sample(text, `${INSTANCE_METRICS.predictionValue}_count`, { ...base, source: 'live' })).toBe(3);
    // Only the three sources ever appear as values.
    const values = new Set([...text.matchAll(/source="([^"]*)"/g)].map((m) => m[1]));
    expect([...values].sort()).toEqual(['live', 'mirror', 'preview']);
  });

  it('renders source as the last label of each family, as the exposition lines a scraper reads', async () => {
    const text = await metricsText(app);
    expect(text).toContain('predict_requests_total{color="blue",model_version="1.0.0",route="/predict",status="200",source="preview"} 2');
    expect(text).toContain('prediction_latency_seconds_count{color="blue",model_version="1.0.0",route="/predict",source="preview"} 2');
    expect(text).toMatch(
      /^prediction_latency_seconds_bucket\{le="\+Inf",color="blue",model_version="1\.0\.0",route="\/predict",source="mirror"\} 1$/m,
    );
    expect(text).toContain('prediction_value_count{color="blue",model_version="1.0.0",source="mirror"} 4');
    // Live series exist from the start (at 0) so rate() works at once; the others appear with their first request.
    expect(text).toContain(
      'predict_requests_total{color="blue",model_version="1.0.0",route="/predict/batch",status="200",source="live"} 0',
    );
  });

  it('labels rejections by source in predict_errors_total and predict_requests_total', async () => {
    const { alcohol: _a, ...missing } = WINE_EXAMPLE;
    void _a;
    expect((await predict({ [SOURCE_HEADER]: 'preview' }, missing)).statusCode).toBe(422);
    expect((await predict({ [SOURCE_HEADER]: 'nonsense' }, missing)).statusCode).toBe(422);
    expect((await predict({}, missing)).statusCode).toBe(422);
    const text = await metricsText(app);
    expect(text).toContain(
      'predict_errors_total{color="blue",model_version="1.0.0",route="/predict",reason="invalid_input",source="preview"} 1',
    );
    expect(text).toContain(
      'predict_errors_total{color="blue",model_version="1.0.0",route="/predict",reason="invalid_input",source="live"} 2',
    );
    expect(sample(text, INSTANCE_METRICS.requests, { ...base, route: '/predict', status: '422', source: 'preview' })).toBe(1);
    expect(sample(text, INSTANCE_METRICS.requests, { ...base, route: '/predict', status: '422', source: 'live' })).toBe(2);
  });

  it('labels the V2 inference route by source too', async () => {
    const fresh = await appOn();
    try {
      const body = { inputs: Object.entries(WINE_EXAMPLE).map(([name, v]) => ({ name, datatype: 'FP64', shape: [1], data: [v] })) };
      const res = await fresh.inject({
        method: 'POST',
        url: '/v2/models/wine-quality/infer',
        payload: body,
        headers: { [SOURCE_HEADER]: 'mirror' },
      });
      expect(res.statusCode, res.body).toBe(200);
      const text = await metricsText(fresh);
      expect(sample(text, INSTANCE_METRICS.requests, { ...base, route: V2_INFER_ROUTES[0], status: '200', source: 'mirror' })).toBe(1);
      expect(sample(text, INSTANCE_METRICS.requests, { ...base, route: V2_INFER_ROUTES[0], status: '200', source: 'live' })).toBe(0);
    } finally {
      await fresh.close();
    }
  });
});
