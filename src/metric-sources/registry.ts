/**
 * The registry of metric sources, keyed by kind: what releases are judged on. `scrape` reads the instances'
 * /metrics directly; `prometheus` asks a Prometheus with PromQL. The composition root picks one by kind.
 */
import type { Color } from '../config/defaults.js';
import type { PoolView } from '../controller/pools.js';
import { PrometheusProvider } from './prometheus-provider.js';
import { ScrapeProvider } from './scrape-provider.js';
import type { MetricsProvider } from './types.js';

export interface MetricSourceContext {
  /** Base URL of each color's instance. */
  instances: Record<Color, string>;
  /** Each color's replicas, when a color may have several (scrape sums them). */
  pools?: PoolView;
  /** The Prometheus base URL, for sources that query one. */
  prometheusUrl?: string;
}

export type MetricSourceFactory = (ctx: MetricSourceContext) => MetricsProvider;

export class MetricSourceRegistry {
  private readonly factories = new Map<string, MetricSourceFactory>();

  constructor(entries: Readonly<Record<string, MetricSourceFactory>> = {}) {
    for (const [kind, factory] of Object.entries(entries)) this.register(kind, factory);
  }

  register(kind: string, factory: MetricSourceFactory): this {
    if (this.factories.has(kind)) throw new Error(`a metric source of kind ${kind} is registered already`);
    this.factories.set(kind, factory);
    return this;
  }

  has(kind: string): boolean {
    return this.factories.has(kind);
  }

  kinds(): string[] {
    return [...this.factories.keys()];
  }

  create(kind: string, ctx: MetricSourceContext): MetricsProvider {
    const factory = this.factories.get(kind);
    if (!factory) throw new Error(`no metric source of kind ${kind}: ${this.kinds().join(', ')}`);
    return factory(ctx);
  }
}

export const DEFAULT_METRIC_SOURCE = 'scrape';

export function builtInMetricSources(): MetricSourceRegistry {
  return new MetricSourceRegistry({
    scrape: (ctx) => new ScrapeProvider({ instances: ctx.instances, ...(ctx.pools ? { pools: ctx.pools } : {}) }),
    prometheus: (ctx) => {
      if (!ctx.prometheusUrl) throw new Error('the prometheus metric source needs the Prometheus URL');
      return new PrometheusProvider({ url: ctx.prometheusUrl });
    },
  });
}
