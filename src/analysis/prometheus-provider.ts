/**
 * Analysis from a real Prometheus through its query API: the same window statistics as the direct scrape,
 * computed with increase() over the window. Bucket queries reuse the monitoring PromQL catalogue.
 */
import { COLORS, isColor, type Color } from '../config/defaults.js';
import { INSTANCE_METRICS } from '../config/metric-names.js';
import { queryInstant, type InstantSample } from '../monitoring/prometheus-api.js';
import { predictionBuckets } from '../monitoring/queries.js';
import type { ColorWindow, HistogramWindow, WindowStats } from '../release/types.js';
import { emptyColorWindow, windowStats } from './color-totals.js';
import type { MetricsProvider } from './types.js';

export interface PrometheusProviderOptions {
  url: string;
  /** Smallest range queried (seconds), so a window spans at least two scrapes; shorter windows come back empty. */
  minRangeSeconds?: number;
}

function increaseByColor(metric: string, range: string, matchers = ''): string {
  return `sum by (color) (increase(${metric}${matchers ? `{${matchers}}` : ''}[${range}]))`;
}

function bucketsByColor(metric: string, range: string): string {
  return `sum by (color, le) (increase(${metric}_bucket[${range}]))`;
}

export class PrometheusProvider implements MetricsProvider {
  readonly kind = 'prometheus' as const;

  constructor(private readonly opts: PrometheusProviderOptions) {}

  async open(): Promise<void> {
    // Prometheus keeps the history: nothing to capture when a window opens.
  }

  private async query(expr: string): Promise<InstantSample[]> {
    const result = await queryInstant(this.opts.url, expr);
    if (result.status !== 'success') throw new Error(`Prometheus refused ${expr}: ${result.errorType} ${result.error}`);
    return result.samples;
  }

  async window(fromMs: number, toMs: number): Promise<WindowStats> {
    const colors = Object.fromEntries(COLORS.map((c) => [c, emptyColorWindow()])) as Record<Color, ColorWindow>;
    // The range never reaches back before the window opened (it would count, say, the smoke checks' batches);
    // until it spans enough scrapes the window is empty, which the engine reads as inconclusive.
    const seconds = Math.floor((toMs - fromMs) / 1000);
    if (seconds < (this.opts.minRangeSeconds ?? 5)) return windowStats(fromMs, toMs, colors);
    const range = `${seconds}s`;
    const [requests, errors, latBuckets, latSum, latCount, predBuckets, predSum, predCount] = await Promise.all([
      this.query(increaseByColor(INSTANCE_METRICS.requests, range)),
      this.query(increaseByColor(INSTANCE_METRICS.requests, range, 'status=~"5.."')),
      this.query(bucketsByColor(INSTANCE_METRICS.latency, range)),
      this.query(increaseByColor(`${INSTANCE_METRICS.latency}_sum`, range)),
      this.query(increaseByColor(`${INSTANCE_METRICS.latency}_count`, range)),
      this.query(predictionBuckets({ window: range })),
      this.query(increaseByColor(`${INSTANCE_METRICS.predictionValue}_sum`, range)),
      this.query(increaseByColor(`${INSTANCE_METRICS.predictionValue}_count`, range)),
    ]);
    const each = (samples: InstantSample[], apply: (w: ColorWindow, s: InstantSample) => void) => {
      for (const s of samples) if (isColor(s.labels.color)) apply(colors[s.labels.color], s);
    };
    const bucket = (h: HistogramWindow, s: InstantSample) => {
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      if (!Number.isNaN(le)) h.buckets.push({ le, count: s.value });
    };
    each(requests, (w, s) => (w.requests = s.value));
    each(errors, (w, s) => (w.serverErrors = s.value));
    each(latBuckets, (w, s) => bucket(w.latency, s));
    each(latSum, (w, s) => (w.latency.sum = s.value));
    each(latCount, (w, s) => (w.latency.count = s.value));
    each(predBuckets, (w, s) => bucket(w.predictions, s));
    each(predSum, (w, s) => (w.predictions.sum = s.value));
    each(predCount, (w, s) => (w.predictions.count = s.value));
    for (const c of COLORS) {
      colors[c].latency.buckets.sort((a, b) => a.le - b.le);
      colors[c].predictions.buckets.sort((a, b) => a.le - b.le);
    }
    return windowStats(fromMs, toMs, colors);
  }
}
