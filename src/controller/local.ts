/**
 * Builds the release controller of a local stack from what the control API already holds (traffic driver,
 * instance URLs, metrics registry) plus the state directory: the release log and the instances' admin token.
 */
import path from 'node:path';
import type { Registry } from 'prom-client';
import { PREVIEW_TOKEN_FILE, type Color } from '../config/defaults.js';
import { ensureTokenFile, readTokenFile } from '../control/auth.js';
import { PrometheusProvider } from '../metric-sources/prometheus-provider.js';
import { ScrapeProvider } from '../metric-sources/scrape-provider.js';
import type { MetricsProvider } from '../metric-sources/types.js';
import { RELEASE_LOG_FILE } from '../release/defaults.js';
import { desiredTraffic, reconcile } from '../release/engine.js';
import type { ReleaseState } from '../release/types.js';
import { ReleaseStore } from '../store/release-store.js';
import type { MirrorConfig, TrafficDriver, Weights } from '../traffic/types.js';
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
  /** The release log, when the caller opened it already (default: <stateDir>/releases.jsonl, warnings to `log`). */
  store?: ReleaseStore;
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
    store: opts.store ?? ReleaseStore.open(path.join(opts.stateDir, RELEASE_LOG_FILE), { onWarning: (message) => opts.log?.(message) }),
    traffic: ctx.traffic,
    provider,
    admin: new InstanceAdmin({ instances, token: await readTokenFile(opts.adminTokenFile) }),
    // The same file the stack gave its router (`up`, `controller`): the smoke checks go through the private preview route.
    preview: new PreviewClient(ctx.traffic.url, { token: await ensureTokenFile(path.join(opts.stateDir, PREVIEW_TOKEN_FILE)) }),
    registry: ctx.metrics,
    ...(opts.log ? { log: opts.log } : {}),
  });
}

/**
 * The traffic a router must start on, before any request: what the controller's reconcile on start will settle
 * on for the latest release in the log (a finished release's outcome; a release caught mid-way rolled back to its
 * stable color). Starting anywhere else would serve, until the reconcile, a version the log says is not live (a
 * rolled-back one, or the old one after a promotion). Undefined without a release: the log has no say (a new
 * router starts all on blue, an adopted one keeps what it serves).
 */
export function startupTraffic(latest: ReleaseState | undefined, now: number = Date.now()): { weights: Weights; mirror: MirrorConfig } | undefined {
  if (!latest) return undefined;
  const want = desiredTraffic(reconcile(latest, now).state);
  return { weights: want.weights, mirror: want.mirror ? { target: want.mirror.target, percent: want.mirror.percent } : { target: null, percent: 0 } };
}
