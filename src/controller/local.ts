/**
 * The release controller over real instances and a router (the composition root, app/root.ts, calls it with
 * what it opened and read: the release log, the metric source, the tokens). Plus the traffic a router must
 * start on, which the root gives the driver before the controller exists.
 */
import type { Registry } from 'prom-client';
import type { Color } from '../config/defaults.js';
import type { MetricsProvider } from '../metric-sources/types.js';
import { desiredTraffic, reconcile } from '../release/engine.js';
import type { ReleaseState } from '../release/types.js';
import type { ReleaseStore } from '../store/release-store.js';
import type { MirrorConfig, TrafficDriver, Weights } from '../traffic/types.js';
import { ReleaseController } from './controller.js';
import { InstanceAdmin } from './instance-admin.js';
import { type PoolView, replicaUrl } from './pools.js';
import { PredictionFeed } from './prediction-feed.js';
import { ShadowPairing } from './shadow-pairs.js';
import { PreviewClient } from './smoke.js';

export interface LocalControllerServices {
  store: ReleaseStore;
  traffic: TrafficDriver;
  provider: MetricsProvider;
  /** Each color's replicas (the admin loads on all of them; the smoke checks ask each). */
  pools: PoolView;
  /** The bundle each color started with, when known (put back on replicas when a release is refused). */
  startBundles?: Partial<Record<Color, string>>;
  /** Fewest ready replicas for a color (default: all but one of several, else its one). */
  minReady?: (replicas: number) => number;
  /** The instances' admin bearer token. */
  adminToken: string;
  /** The token the router was given for its preview route: the smoke checks go through it. */
  previewToken: string;
  /** Where the controller's metrics are registered (the control API serves it). */
  registry: Registry;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

export function createLocalController(s: LocalControllerServices): ReleaseController {
  return new ReleaseController({
    store: s.store,
    traffic: s.traffic,
    provider: s.provider,
    admin: new InstanceAdmin({
      pools: s.pools,
      token: s.adminToken,
      ...(s.startBundles ? { startBundles: s.startBundles } : {}),
      ...(s.minReady ? { minReady: s.minReady } : {}),
    }),
    preview: new PreviewClient(s.traffic.url, { token: s.previewToken, pools: s.pools }),
    registry: s.registry,
    pairing: new ShadowPairing({
      feed: new PredictionFeed({ urls: (color) => s.pools.replicas(color).map(replicaUrl), token: s.adminToken }),
      registry: s.registry,
      log: s.log,
    }),
    ...(s.log ? { log: s.log } : {}),
  });
}

/**
 * The traffic a router must start on, before any request: what the controller's reconcile on start will settle
 * on for the latest release in the log (a finished release's outcome; a release caught mid-way rolled back to its
 * stable color). Starting anywhere else would serve, until the reconcile, a version the log says is not live (a
 * rolled-back one, or the old one after a promotion). Undefined without a release: the log has no say (a new
 * router starts all on blue, an adopted one keeps what it serves).
 */
export function startupTraffic(
  latest: ReleaseState | undefined,
  now: number = Date.now(),
): { weights: Weights; mirror: MirrorConfig } | undefined {
  if (!latest) return undefined;
  return desiredTraffic(reconcile(latest, now).state);
}
