/**
 * What the control API's route plugins are given: the services the composition root built (the traffic
 * driver, the release controller's port, the instances) and the error type every route throws. Apart from
 * server.ts so that plugins depend on these shapes, not on the server that registers them.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import type { Color } from '../config/defaults.js';
import type { ReleaseState } from '../release/types.js';
import type { LogDamage } from '../store/release-store.js';
import type { TrafficDriver, Upstream } from '../traffic/types.js';

/** An error with its HTTP status and the stable JSON shape {error, message, details?}. */
export class ControlError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ControlError';
  }
}

/** What a process supervisor knows about one color's instance (absent when instances run elsewhere). */
export interface InstanceProcessInfo {
  pid: number | null;
  running: boolean;
  exitCode: number | null;
  signal: string | null;
}

export interface StackView {
  /** Each color's first instance. */
  processes(): Record<Color, InstanceProcessInfo>;
  /** Each replica's process, by color (a local stack of several replicas per color). */
  replicaProcesses?(): Record<Color, Array<InstanceProcessInfo & { address: string }>>;
}

/**
 * What the traffic routes and the status report need of the release controller, so the traffic half of the
 * API never imports the controller (and works without releases).
 */
export interface ReleasePort {
  /** The live release, else the latest one, as users see it. */
  current(): ReleaseState | undefined;
  /**
   * Someone moves traffic by hand while a release is live: the release stops moving traffic (paused, or
   * aborted before it moved any), recording `reason`. Resolves with the release's new state.
   */
  yieldTraffic(reason: string): Promise<ReleaseState>;
  /** The release log and the lines skipped as damaged when it was opened. */
  log: { file: string; damage: readonly LogDamage[] };
}

export interface ControlContext {
  traffic: TrafficDriver;
  /** The release controller, when the control API has one. */
  releases?: ReleasePort;
  /** Base URL of each color's instance (for /health, admin calls). */
  colors: Record<Color, { url: string }>;
  /** Each color's replicas now (absent: the one instance at colors[c].url). */
  pools?: { replicas(color: Color): readonly Upstream[] };
  stack?: StackView;
  /** Registry for controller metrics; served on /metrics with the router's and the process's. */
  metrics: Registry;
}

export type ControlPlugin = FastifyPluginAsync<{ ctx: ControlContext }>;
