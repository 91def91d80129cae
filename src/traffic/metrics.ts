/**
 * Router metrics (ROUTER_METRICS) in their own registry. The per-request ones cost a few additions: answers are
 * counted in plain numbers and folded into the prom-client counter when scraped (a prom-client child hashes its
 * labels on every inc), and the latency histogram is the instances' HotHistogram.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { COLORS, type Color } from '../config/defaults.js';
import { ROUTER_METRICS } from '../config/metric-names.js';
import { HotHistogram, type HistogramSeries } from '../serve/hot-histogram.js';
import type { Weights } from './types.js';

type Answered = Color | 'none';

export class RouterMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'color' | 'code'>;
  private readonly weight: Gauge<'color'>;
  private readonly latency: HotHistogram<'color'>;
  private readonly retries: Counter<'from' | 'to'>;
  private readonly mirrored: Counter<'color' | 'outcome'>;
  private readonly healthy: Gauge<'color'>;
  /** Answers since start, per color and then status code; only ever grows, like the counter it feeds. */
  private readonly answered: Record<Answered, Map<number, number>> = { blue: new Map(), green: new Map(), none: new Map() };
  private readonly latencySeries: Record<Color, HistogramSeries>;

  constructor() {
    const registers = [this.registry];
    const answered = this.answered;
    this.requests = new Counter({
      name: ROUTER_METRICS.requests,
      help: 'Requests the router answered, by upstream color and status code.',
      labelNames: ['color', 'code'],
      registers,
      collect() {
        this.reset();
        for (const color of Object.keys(answered) as Answered[]) {
          for (const [code, n] of answered[color]) this.inc({ color, code: String(code) }, n);
        }
      },
    });
    // Gauges say how several worker processes' values add up (router-cluster.ts): the same weight in each; healthy where all are.
    this.weight = new Gauge({
      name: ROUTER_METRICS.weight,
      help: 'Current traffic weight, percent.',
      labelNames: ['color'],
      registers,
      aggregator: 'first',
    });
    this.latency = new HotHistogram(
      ROUTER_METRICS.upstreamLatency,
      'Upstream response time seen by the router, seconds.',
      ['color'],
      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      this.registry,
    );
    this.retries = new Counter({
      name: ROUTER_METRICS.retries,
      help: 'Requests replayed, by the color that failed and the one replayed on (the same color: another replica).',
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
      aggregator: 'min',
    });
    this.latencySeries = { blue: this.latency.labels({ color: 'blue' }), green: this.latency.labels({ color: 'green' }) };
    for (const color of COLORS) {
      this.healthy.labels(color).set(1);
      this.retries.labels(color, color === 'blue' ? 'green' : 'blue').inc(0);
    }
  }

  /** `color` is "none" when no upstream answered (both failed). */
  request(color: Answered, code: number): void {
    const counts = this.answered[color];
    counts.set(code, (counts.get(code) ?? 0) + 1);
  }

  upstreamSeconds(color: Color, seconds: number): void {
    this.latencySeries[color].observe(seconds);
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
