import type { Registry } from 'prom-client';
import type { Color } from '../config/defaults.js';
import type { MirrorConfig, Weights } from '../config/traffic-split.js';

/** The traffic vocabulary the routers share with the release engine. */
export type { MirrorConfig, Weights } from '../config/traffic-split.js';

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

/** One replica of a color, as the router sees it. */
export interface ReplicaHealth {
  /** "host:port". */
  address: string;
  /** In rotation: its last active check passed and no proxied request failed since. */
  healthy: boolean;
  lastError: string | null;
  /** ISO time of its last active check, null before the first one. */
  checkedAt: string | null;
  /** Requests proxied to it and not yet answered (embedded router only). */
  inFlight?: number;
}

export interface ColorHealth {
  /** At least one replica is in rotation. */
  healthy: boolean;
  /** Last failure seen (active check or proxied request), null when none since the color became healthy. */
  lastError: string | null;
  /** ISO time of the last active check, null before the first one. */
  checkedAt: string | null;
  replicas: ReplicaHealth[];
}

export type HealthReport = Record<Color, ColorHealth>;

export interface Upstream {
  host: string;
  port: number;
}

/**
 * A color's pool: its replicas. At least one at start; may become empty when discovery finds none (the color
 * is then unhealthy and its share goes to the other color).
 */
export type Upstreams = Record<Color, Upstream[]>;

/** A router's kind: its key in the driver registry (traffic/registry.ts), e.g. 'embedded' or 'nginx'. */
export type DriverKind = string;

/** The router refused a configuration (its own check failed): nothing was applied, the old one serves. */
export class RouterRefusedError extends Error {
  constructor(
    message: string,
    /** What the router said (its check's output). */
    readonly output: string,
  ) {
    super(message);
    this.name = 'RouterRefusedError';
  }
}

/**
 * A process a driver runs beside this one (the managed nginx's master): the stack records it in stack.json,
 * so that a later start finds it after a crash, and kills it on a hard exit.
 */
export interface DriverProcess {
  readonly pid: number;
  /** Its graceful stop. */
  readonly stopSignal: NodeJS.Signals;
  /** Taken over from a previous run rather than started (already in stack.json). */
  readonly adopted: boolean;
  /** Synchronous last resort (process exit): SIGKILL. */
  killNow(): void;
}

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
  /**
   * Replaces the colors' pools (discovery found new replicas, one came back on another port). Resolves when new
   * requests use the new pools; requests in flight finish where they are. Replicas that stay keep their health.
   */
  setUpstreams(upstreams: Upstreams): Promise<void>;
  close(): Promise<void>;
  /** The process it runs beside this one, if any (see DriverProcess). */
  readonly process?: DriverProcess;
}
