/**
 * Analysis from a real Prometheus through its query API: the same window statistics as the direct scrape,
 * computed with increase() over the window, live and mirrored traffic apart and preview left out. The
 * queries come from the monitoring PromQL catalogue.
 */
import { COLORS, isColor, type Color } from '../config/defaults.js';
import { INSTANCE_METRICS } from '../config/metric-names.js';
import { queryInstant, type InstantSample } from '../monitoring/prometheus-api.js';
import { increaseBySource } from '../monitoring/queries.js';
import type { ColorWindow, HistogramWindow, WindowStats } from '../release/types.js';
import { addBucket, emptyColorWindow, sampleSource, type CountedSource, windowStats } from './color-totals.js';
import { parseSampleValue } from './prom-text.js';
import type { MetricsProvider } from './types.js';

export interface PrometheusProviderOptions {
  url: string;
  /** Smallest range queried (seconds), so a window spans at least two scrapes; shorter windows come back empty. */
  minRangeSeconds?: number;
  /** Attempts per query: a query that fails once (Prometheus restarting, a timeout) is tried again at once. */
  attempts?: number;
  retryDelayMs?: number;
  /** Per query attempt. */
  timeoutMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class PrometheusProvider implements MetricsProvider {
  readonly kind = 'prometheus' as const;

  constructor(private readonly opts: PrometheusProviderOptions) {}

  async open(): Promise<void> {
    // Prometheus keeps the history: nothing to capture when a window opens.
  }

  private async query(expr: string): Promise<InstantSample[]> {
    const attempts = Math.max(1, this.opts.attempts ?? 3);
    for (let i = 1; ; i++) {
      try {
        const result = await queryInstant(this.opts.url, expr, AbortSignal.timeout(this.opts.timeoutMs ?? 2_000));
        if (result.status !== 'success') throw new Error(`Prometheus refused ${expr}: ${result.errorType} ${result.error}`);
        return result.samples;
      } catch (err) {
        if (i >= attempts) throw new Error(`Prometheus query failed after ${attempts} attempts: ${(err as Error).message}`);
        await sleep(this.opts.retryDelayMs ?? 200);
      }
    }
  }

  async window(fromMs: number, toMs: number): Promise<WindowStats> {
    const empty = () => Object.fromEntries(COLORS.map((c) => [c, emptyColorWindow()])) as Record<Color, ColorWindow>;
    const windows: Record<CountedSource, Record<Color, ColorWindow>> = { live: empty(), mirror: empty() };
    // The range never reaches back before the window opened (it would count, say, the smoke checks' batches);
    // until it spans enough scrapes the window is empty, which the engine reads as inconclusive.
    const seconds = Math.floor((toMs - fromMs) / 1000);
    if (seconds < (this.opts.minRangeSeconds ?? 5)) return windowStats(fromMs, toMs, windows.live, windows.mirror);
    const window = `${seconds}s`;
    const { requests, latency, predictionValue } = INSTANCE_METRICS;
    const [reqs, errors, latBuckets, latSum, latCount, predBuckets, predSum, predCount] = await Promise.all([
      this.query(increaseBySource(requests, { window })),
      this.query(increaseBySource(requests, { window, extra: 'status=~"5.."' })),
      this.query(increaseBySource(`${latency}_bucket`, { window })),
      this.query(increaseBySource(`${latency}_sum`, { window })),
      this.query(increaseBySource(`${latency}_count`, { window })),
      this.query(increaseBySource(`${predictionValue}_bucket`, { window })),
      this.query(increaseBySource(`${predictionValue}_sum`, { window })),
      this.query(increaseBySource(`${predictionValue}_count`, { window })),
    ]);
    const each = (samples: InstantSample[], apply: (w: ColorWindow, s: InstantSample) => void) => {
      for (const s of samples) {
        const source = sampleSource(s.labels);
        if (isColor(s.labels.color) && (source === 'live' || source === 'mirror')) apply(windows[source][s.labels.color], s);
      }
    };
    // Unlabelled series (older instances) and source="live" ones both count as live: values add up.
    const bucket = (h: HistogramWindow, s: InstantSample) => {
      const le = parseSampleValue(s.labels.le ?? '');
      if (le !== null && !Number.isNaN(le)) addBucket(h, le, s.value);
    };
    each(reqs, (w, s) => (w.requests += s.value));
    each(errors, (w, s) => (w.serverErrors += s.value));
    each(latBuckets, (w, s) => bucket(w.latency, s));
    each(latSum, (w, s) => (w.latency.sum += s.value));
    each(latCount, (w, s) => (w.latency.count += s.value));
    each(predBuckets, (w, s) => bucket(w.predictions, s));
    each(predSum, (w, s) => (w.predictions.sum += s.value));
    each(predCount, (w, s) => (w.predictions.count += s.value));
    return windowStats(fromMs, toMs, windows.live, windows.mirror);
  }
}
