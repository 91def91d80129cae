import type { Registry } from 'prom-client';
import type { Color } from '../config/defaults.js';

/** Share of traffic per color, in whole percent; the two always sum to 100. */
export interface Weights {
  blue: number;
  green: number;
}

/** Shadow traffic: a share of requests is copied to `target` and its answers are discarded. */
export interface MirrorConfig {
  target: Color | null;
  /** Share of requests copied, whole percent 0..100 (0 when target is null). */
  percent: number;
}

/**
 * Sticky split: requests carrying the same key (a header or a cookie) land on the same color, and a key only
 * moves when the weights move past it (monotone consistent hashing). Null: no stickiness.
 */
export type StickyConfig = { header: string; cookie?: undefined } | { cookie: string; header?: undefined };

export interface TrafficState {
  weights: Weights;
  mirror: MirrorConfig;
  sticky: StickyConfig | null;
  /** Increases with every applied change; the nginx driver serves it at /__bgserve/version. */
  generation: number;
}

export interface ColorHealth {
  healthy: boolean;
  /** Last failure seen (active check or proxied request), null when none since the color became healthy. */
  lastError: string | null;
  /** ISO time of the last active check, null before the first one. */
  checkedAt: string | null;
}

export type HealthReport = Record<Color, ColorHealth>;

export interface Upstream {
  host: string;
  port: number;
}

export type Upstreams = Record<Color, Upstream>;

export type DriverKind = 'embedded' | 'nginx';

/**
 * What the control API and the release engine need from a router. Every setter resolves once the change is
 * in effect for new requests (for nginx: the reloaded workers answer), and rejects without applying anything
 * when the change is invalid or the router refuses it.
 */
export interface TrafficDriver {
  readonly kind: DriverKind;
  /** Where clients send requests. */
  readonly url: string;
  /** Router metrics (ROUTER_METRICS), served on the control API's /metrics. */
  readonly metrics: Registry;
  setWeights(weights: Weights): Promise<TrafficState>;
  setMirror(mirror: MirrorConfig): Promise<TrafficState>;
  setSticky(sticky: StickyConfig | null): Promise<TrafficState>;
  state(): TrafficState;
  health(): HealthReport;
  close(): Promise<void>;
}
