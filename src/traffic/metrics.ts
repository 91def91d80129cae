/** Router metrics (ROUTER_METRICS) in their own registry, with label children cached off the hot path. */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { COLORS, type Color } from '../config/defaults.js';
import { ROUTER_METRICS } from '../config/metric-names.js';
import type { Weights } from './types.js';

type CounterChild = ReturnType<Counter<string>['labels']>;
type HistogramChild = ReturnType<Histogram<string>['labels']>;

export class RouterMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'color' | 'code'>;
  private readonly weight: Gauge<'color'>;
  private readonly latency: Histogram<'color'>;
  private readonly retries: Counter<'from' | 'to'>;
  private readonly mirrored: Counter<'color' | 'outcome'>;
  private readonly healthy: Gauge<'color'>;
  private readonly requestChildren = new Map<string, CounterChild>();
  private readonly latencyChildren: Record<Color, HistogramChild>;

  constructor() {
    const registers = [this.registry];
    this.requests = new Counter({
      name: ROUTER_METRICS.requests,
      help: 'Requests the router answered, by upstream color and status code.',
      labelNames: ['color', 'code'],
      registers,
    });
    this.weight = new Gauge({ name: ROUTER_METRICS.weight, help: 'Current traffic weight, percent.', labelNames: ['color'], registers });
    this.latency = new Histogram({
      name: ROUTER_METRICS.upstreamLatency,
      help: 'Upstream response time seen by the router, seconds.',
      labelNames: ['color'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.retries = new Counter({
      name: ROUTER_METRICS.retries,
      help: 'Requests retried on the other color.',
      labelNames: ['from', 'to'],
      registers,
    });
    this.mirrored = new Counter({
      name: ROUTER_METRICS.mirrored,
      help: 'Mirrored (shadow) requests, by target color and outcome.',
      labelNames: ['color', 'outcome'],
      registers,
    });
    this.healthy = new Gauge({
      name: ROUTER_METRICS.upstreamHealthy,
      help: '1 when the router considers the color healthy.',
      labelNames: ['color'],
      registers,
    });
    this.latencyChildren = { blue: this.latency.labels('blue'), green: this.latency.labels('green') };
    for (const color of COLORS) {
      this.healthy.labels(color).set(1);
      this.retries.labels(color, color === 'blue' ? 'green' : 'blue').inc(0);
    }
  }

  /** `color` is "none" when no upstream answered (both failed). */
  request(color: Color | 'none', code: number): void {
    const key = `${color}:${code}`;
    let child = this.requestChildren.get(key);
    if (!child) {
      child = this.requests.labels(color, String(code));
      this.requestChildren.set(key, child);
    }
    child.inc();
  }

  upstreamSeconds(color: Color, seconds: number): void {
    this.latencyChildren[color].observe(seconds);
  }

  retry(from: Color, to: Color): void {
    this.retries.labels(from, to).inc();
  }

  mirror(color: Color, outcome: 'ok' | 'error' | 'dropped'): void {
    this.mirrored.labels(color, outcome).inc();
  }

  setWeights(weights: Weights): void {
    for (const color of COLORS) this.weight.labels(color).set(weights[color]);
  }

  setHealthy(color: Color, healthy: boolean): void {
    this.healthy.labels(color).set(healthy ? 1 : 0);
  }
}
