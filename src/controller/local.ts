/**
 * Builds the release controller of a local stack from what the control API already holds (traffic driver,
 * instance URLs, metrics registry) plus the state directory: the release log and the instances' admin token.
 */
import path from 'node:path';
import type { Registry } from 'prom-client';
import type { Color } from '../config/defaults.js';
import { readTokenFile } from '../control/auth.js';
import { PrometheusProvider } from '../analysis/prometheus-provider.js';
import { ScrapeProvider } from '../analysis/scrape-provider.js';
import type { MetricsProvider } from '../analysis/types.js';
import { RELEASE_LOG_FILE } from '../release/defaults.js';
import { ReleaseStore } from '../store/release-store.js';
import type { TrafficDriver } from '../traffic/types.js';
import { ReleaseController } from './controller.js';
import { InstanceAdmin } from './instance-admin.js';
import { PreviewClient } from './smoke.js';

export interface LocalControllerOptions {
  stateDir: string;
  /** File holding the instances' admin bearer token. */
  adminTokenFile: string;
  /** Prometheus base URL: analysis through PromQL instead of scraping the instances directly. */
  prometheusUrl?: string;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

export interface ControllerContext {
  traffic: TrafficDriver;
  colors: Record<Color, { url: string }>;
  metrics: Registry;
}

export async function createLocalController(ctx: ControllerContext, opts: LocalControllerOptions): Promise<ReleaseController> {
  const instances = { blue: ctx.colors.blue.url, green: ctx.colors.green.url };
  const provider: MetricsProvider = opts.prometheusUrl ? new PrometheusProvider({ url: opts.prometheusUrl }) : new ScrapeProvider({ instances });
  return new ReleaseController({
    store: ReleaseStore.open(path.join(opts.stateDir, RELEASE_LOG_FILE)),
    traffic: ctx.traffic,
    provider,
    admin: new InstanceAdmin({ instances, token: await readTokenFile(opts.adminTokenFile) }),
    preview: new PreviewClient(ctx.traffic.url),
    registry: ctx.metrics,
    ...(opts.log ? { log: opts.log } : {}),
  });
}
