/**
 * One instance's Prometheus metrics, in a registry of its own (several apps can live in one process, as in
 * tests and benchmarks). Series are made once per model version, route and traffic source; answering a
 * prediction then costs a few additions: histograms are HotHistograms and the success count is added to its
 * prom-client counter when Prometheus scrapes.
 *
 * The request families carry `source` (live | preview | mirror, from the routers' SOURCE_HEADER) as their last
 * label, so a release's analysis can count live traffic alone: preview and mirrored requests never look live.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { TrafficSource } from '../config/defaults.js';
import { INSTANCE_METRICS } from '../config/metric-names.js';
import { HotHistogram, type HistogramSeries } from './hot-histogram.js';

/** 5 µs .. 1 s: native inference takes microseconds, a request through the stack a fraction of a millisecond. */
export const LATENCY_BUCKETS = [5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** Wine quality is scored 0..10: quarter steps separate the colors' prediction distributions well enough. */
export const PREDICTION_BUCKETS = Array.from({ length: 41 }, (_, i) => i * 0.25);

export interface ModelIdentity {
  name: string;
  version: string;
  sha256: string;
  format: string;
}

export interface InstanceMetricsOptions {
  latencyBuckets?: number[];
  predictionBuckets?: number[];
  /** Default process metrics (CPU, memory, event loop, GC). On unless a caller builds many apps at once. */
  processMetrics?: boolean;
}

type RouteLabels = 'color' | 'model_version' | 'route';

export class InstanceMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<RouteLabels | 'status' | 'source'>;
  readonly latency: HotHistogram<RouteLabels | 'source'>;
  readonly errors: Counter<RouteLabels | 'reason' | 'source'>;
  readonly predictionValue: HotHistogram<'color' | 'model_version' | 'source'>;
  readonly modelInfo: Gauge<'color' | 'model_name' | 'model_version' | 'sha256' | 'format'>;
  readonly modelLoads: Counter<'color' | 'outcome'>;
  private infoLabels?: Record<string, string>;
  /** Every route series, whose pending success counts go into predict_requests_total at each scrape. */
  private readonly routeSeries: RouteSeries[] = [];

  constructor(
    readonly color: string,
    opts: InstanceMetricsOptions = {},
  ) {
    const registers = [this.registry];
    const routeSeries = this.routeSeries;
    this.requests = new Counter({
      name: INSTANCE_METRICS.requests,
      help: 'Prediction requests answered, by route, HTTP status and traffic source.',
      labelNames: ['color', 'model_version', 'route', 'status', 'source'],
      registers,
      collect() {
        for (const series of routeSeries) series.flush();
      },
    });
    this.latency = new HotHistogram(
      INSTANCE_METRICS.latency,
      'Seconds spent validating and predicting, for answered prediction requests.',
      ['color', 'model_version', 'route', 'source'],
      opts.latencyBuckets ?? LATENCY_BUCKETS,
      this.registry,
    );
    this.errors = new Counter({
      name: INSTANCE_METRICS.errors,
      help: 'Rejected or failed requests, by route, reason (the error code of the answer) and traffic source.',
      labelNames: ['color', 'model_version', 'route', 'reason', 'source'],
      registers,
    });
    this.predictionValue = new HotHistogram(
      INSTANCE_METRICS.predictionValue,
      'Predicted values, to compare the distributions of two colors.',
      ['color', 'model_version', 'source'],
      opts.predictionBuckets ?? PREDICTION_BUCKETS,
      this.registry,
    );
    this.modelInfo = new Gauge({
      name: INSTANCE_METRICS.modelInfo,
      help: '1 for the model bundle being served.',
      labelNames: ['color', 'model_name', 'model_version', 'sha256', 'format'],
      registers,
    });
    this.modelLoads = new Counter({
      name: INSTANCE_METRICS.modelLoads,
      help: 'Model loads through the admin API, by outcome (loaded | refused).',
      labelNames: ['color', 'outcome'],
      registers,
    });
    this.modelLoads.labels(color, 'loaded').inc(0);
    this.modelLoads.labels(color, 'refused').inc(0);
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** Label children for one model version; make it before the model starts serving. */
  forModel(model: ModelIdentity): ModelSeries {
    return new ModelSeries(this, model.version);
  }

  /** The series of one prediction route, model version and source (ModelSeries.route keeps it). */
  newRouteSeries(version: string, route: string, source: TrafficSource): RouteSeries {
    const { color } = this;
    const ok = this.requests.labels({ color, model_version: version, route, status: '200', source });
    ok.inc(0);
    const series = new RouteSeries(
      ok,
      this.latency.labels({ color, model_version: version, route, source }),
      this.predictionValue.labels({ color, model_version: version, source }),
    );
    this.routeSeries.push(series);
    return series;
  }

  /** model_info shows exactly the bundle being served: the previous one's series is removed. */
  setServing(model: ModelIdentity): void {
    if (this.infoLabels) this.modelInfo.remove(this.infoLabels);
    this.infoLabels = {
      color: this.color,
      model_name: model.name,
      model_version: model.version,
      sha256: model.sha256,
      format: model.format,
    };
    this.modelInfo.set(this.infoLabels, 1);
  }

  modelLoad(outcome: 'loaded' | 'refused'): void {
    this.modelLoads.labels(this.color, outcome).inc();
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** The metrics of one model version, with per-route and per-source children made on first use and kept. */
export class ModelSeries {
  private readonly routes = new Map<string, Partial<Record<TrafficSource, RouteSeries>>>();
  private readonly rejections = new Map<string, { errors: Counter.Internal; requests?: Counter.Internal }>();

  constructor(
    private readonly metrics: InstanceMetrics,
    readonly version: string,
  ) {}

  /**
   * Children for a prediction route and source, made once (the requests counter starts at 0 so rate() works
   * at once). The live series exist from the start; preview and mirror ones from their first request.
   */
  route(route: string, source: TrafficSource = 'live'): RouteSeries {
    let bySource = this.routes.get(route);
    if (bySource === undefined) {
      bySource = {};
      this.routes.set(route, bySource);
    }
    bySource[source] ??= this.metrics.newRouteSeries(this.version, route, source);
    return bySource[source];
  }

  /**
   * Counts a rejection in predict_errors_total; on prediction routes also in predict_requests_total
   * (which counts answered prediction requests of any status).
   */
  rejected(route: string, status: number, reason: string, predictionRoute: boolean, source: TrafficSource = 'live'): void {
    const key = `${route}\u0000${status}\u0000${reason}\u0000${source}`;
    let children = this.rejections.get(key);
    if (children === undefined) {
      const { color } = this.metrics;
      children = {
        errors: this.metrics.errors.labels(color, this.version, route, reason, source),
        requests: predictionRoute ? this.metrics.requests.labels(color, this.version, route, String(status), source) : undefined,
      };
      this.rejections.set(key, children);
    }
    children.errors.inc();
    children.requests?.inc();
  }
}

export class RouteSeries {
  private pendingOk = 0;

  constructor(
    private readonly ok: Counter.Internal,
    private readonly latency: HistogramSeries,
    private readonly values: HistogramSeries,
  ) {}

  /** One answered prediction request: its duration and every value it predicted (all finite). */
  served(seconds: number, predictions: ArrayLike<number>): void {
    this.pendingOk++;
    this.latency.observe(seconds);
    for (let i = 0; i < predictions.length; i++) this.values.observe(predictions[i]);
  }

  /** Moves the successes counted since the last scrape into predict_requests_total. */
  flush(): void {
    if (this.pendingOk === 0) return;
    this.ok.inc(this.pendingOk);
    this.pendingOk = 0;
  }
}
