/**
 * One instance's Prometheus metrics, in a registry of its own (several apps can live in one process, as in
 * tests and benchmarks). Label children are made once per model version and route, so answering a
 * prediction touches no label objects.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { INSTANCE_METRICS } from '../config/metric-names.js';

/** 5 µs .. 1 s: native inference takes microseconds, a request through the stack a fraction of a millisecond. */
export const LATENCY_BUCKETS = [
  5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];

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
  readonly requests: Counter<RouteLabels | 'status'>;
  readonly latency: Histogram<RouteLabels>;
  readonly errors: Counter<RouteLabels | 'reason'>;
  readonly predictionValue: Histogram<'color' | 'model_version'>;
  readonly modelInfo: Gauge<'color' | 'model_name' | 'model_version' | 'sha256' | 'format'>;
  readonly modelLoads: Counter<'color' | 'outcome'>;
  private infoLabels?: Record<string, string>;

  constructor(
    readonly color: string,
    opts: InstanceMetricsOptions = {},
  ) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: INSTANCE_METRICS.requests,
      help: 'Prediction requests answered, by route and HTTP status.',
      labelNames: ['color', 'model_version', 'route', 'status'],
      registers,
    });
    this.latency = new Histogram({
      name: INSTANCE_METRICS.latency,
      help: 'Seconds spent validating and predicting, for answered prediction requests.',
      labelNames: ['color', 'model_version', 'route'],
      buckets: opts.latencyBuckets ?? LATENCY_BUCKETS,
      registers,
    });
    this.errors = new Counter({
      name: INSTANCE_METRICS.errors,
      help: 'Rejected or failed requests, by route and reason (the error code of the answer).',
      labelNames: ['color', 'model_version', 'route', 'reason'],
      registers,
    });
    this.predictionValue = new Histogram({
      name: INSTANCE_METRICS.predictionValue,
      help: 'Predicted values, to compare the distributions of two colors.',
      labelNames: ['color', 'model_version'],
      buckets: opts.predictionBuckets ?? PREDICTION_BUCKETS,
      registers,
    });
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

/** The metrics of one model version, with per-route children made on first use and kept. */
export class ModelSeries {
  private readonly routes = new Map<string, RouteSeries>();
  private readonly rejections = new Map<string, { errors: Counter.Internal; requests?: Counter.Internal }>();

  constructor(
    private readonly metrics: InstanceMetrics,
    readonly version: string,
  ) {}

  /** Children for a prediction route (made once; the requests counter starts at 0 so rate() works at once). */
  route(route: string): RouteSeries {
    let series = this.routes.get(route);
    if (series === undefined) {
      const { color } = this.metrics;
      const ok = this.metrics.requests.labels(color, this.version, route, '200');
      ok.inc(0);
      series = new RouteSeries(ok, this.metrics.latency.labels(color, this.version, route), this.predictionValues);
      this.routes.set(route, series);
    }
    return series;
  }

  private get predictionValues(): Histogram.Internal<'color' | 'model_version'> {
    return this.metrics.predictionValue.labels(this.metrics.color, this.version);
  }

  /**
   * Counts a rejection in predict_errors_total; on prediction routes also in predict_requests_total
   * (which counts answered prediction requests of any status).
   */
  rejected(route: string, status: number, reason: string, predictionRoute: boolean): void {
    const key = `${route}\u0000${status}\u0000${reason}`;
    let children = this.rejections.get(key);
    if (children === undefined) {
      const { color } = this.metrics;
      children = {
        errors: this.metrics.errors.labels(color, this.version, route, reason),
        requests: predictionRoute ? this.metrics.requests.labels(color, this.version, route, String(status)) : undefined,
      };
      this.rejections.set(key, children);
    }
    children.errors.inc();
    children.requests?.inc();
  }
}

export class RouteSeries {
  constructor(
    private readonly ok: Counter.Internal,
    private readonly latency: Histogram.Internal<RouteLabels>,
    private readonly values: Histogram.Internal<'color' | 'model_version'>,
  ) {}

  /** One answered prediction request: its duration and every value it predicted. */
  served(seconds: number, predictions: ArrayLike<number>): void {
    this.ok.inc();
    this.latency.observe(seconds);
    for (let i = 0; i < predictions.length; i++) this.values.observe(predictions[i]);
  }
}
