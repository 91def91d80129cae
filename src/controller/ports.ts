/**
 * What the release controller needs of the world, as interfaces: the composition root hands it the real
 * adapters (HTTP instance admin, the router's preview route, a traffic driver, the release log on disk, a
 * metric source), tests hand it in-memory fakes (test/support/fakes/). The controller imports no adapter.
 */
import type { Color } from '../config/defaults.js';
import type { MirrorConfig, Weights } from '../config/traffic-split.js';
import type { HealthReport, TrafficState } from '../traffic/types.js';

export type { ReleaseLog } from '../store/release-store.js';
export type { MetricsProvider } from '../metric-sources/types.js';

/** What the controller needs of a traffic driver (the TrafficDriver interface satisfies it). */
export interface TrafficPort {
  setWeights(weights: Weights): Promise<TrafficState>;
  setMirror(mirror: MirrorConfig): Promise<TrafficState>;
  state(): TrafficState;
  health(): HealthReport;
}

export interface ModelIdentity {
  name: string;
  version: string;
  sha256: string;
}

export type LoadOutcome = { ok: true; model: ModelIdentity } | { ok: false; error: string };

/** The instances' admin side: load a bundle on a color, and what a color serves and whether it is ready. */
export interface InstanceAdminPort {
  /** The instance verifies the bundle and swaps only when it holds; never throws. */
  load(color: Color, bundle: string): Promise<LoadOutcome>;
  /** The model a color serves, or null when it does not answer. */
  model(color: Color): Promise<ModelIdentity | null>;
  /** Whether the color answers ready. */
  ready(color: Color): Promise<boolean>;
}

/** What one color answered to a batch of rows sent to it alone (through the router's private preview route). */
export interface PreviewAnswer {
  predictions: number[];
  model: { name: string; version: string };
  color: string;
}

export interface PreviewPort {
  /** Rejects when the color does not answer every row. */
  predictBatch(color: Color, rows: Array<Record<string, number>>): Promise<PreviewAnswer>;
}

/** Time as the controller sees it: every timestamp and every wait goes through here. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`; rejects once `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}
