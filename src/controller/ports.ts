/**
 * What the release controller needs of the world, as interfaces: the composition root hands it the real
 * adapters (HTTP instance admin, the router's preview route, a traffic driver, the release log on disk, a
 * metric source), tests hand it in-memory fakes (test/support/fakes/). The controller imports no adapter.
 */
import type { Color } from '../config/defaults.js';
import type { MirrorConfig, Weights } from '../config/traffic-split.js';
import type { HealthReport, TrafficState } from '../traffic/types.js';
import type { PairSummary } from '../release/pairing.js';

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

/** One replica of a color as the admin side sees it. */
export interface ReplicaView {
  /** "host:port" */
  address: string;
  url: string;
  model: ModelIdentity | null;
  ready: boolean;
}

/**
 * The instances' admin side, per color over all its replicas: load a bundle on a color, what a color serves and
 * whether it is ready.
 */
export interface InstanceAdminPort {
  /**
   * Every replica verifies the bundle and swaps only when it holds; all or nothing: when one refuses (or times
   * out) the others are put back on what they served and the outcome names the replica. Never throws.
   */
  load(color: Color, bundle: string): Promise<LoadOutcome>;
  /** The model a color serves: the one its answering replicas agree on; null when none answers or they differ. */
  model(color: Color): Promise<ModelIdentity | null>;
  /** Whether enough of the color's replicas answer ready (its minimum of ready replicas). */
  ready(color: Color): Promise<boolean>;
  /** Each replica of the color (status). */
  replicas?(color: Color): Promise<ReplicaView[]>;
  /** Puts replicas that came back on another model on their color's current bundle (see InstanceAdmin.heal). */
  heal?(): Promise<Array<{ color: Color; address: string; ok: boolean; error?: string }>>;
  /** The reconcile found `color` serving this bundle already: replicas that come back are put on it. */
  expect?(color: Color, bundle: string, sha256: string): void;
}

/** What one color answered to a batch of rows sent to it alone (through the router's private preview route). */
export interface PreviewAnswer {
  /** A regressor's values, a classifier's class names (then with `probabilities`, by class name). */
  predictions: Array<number | string>;
  probabilities?: Array<Record<string, number>>;
  model: { name: string; version: string };
  color: string;
}

export interface PreviewPort {
  /** Rejects when the color does not answer every row. */
  predictBatch(color: Color, rows: Array<Record<string, number>>): Promise<PreviewAnswer>;
  /**
   * The same rows on each replica of the color, each answer named by its replica ("host:port"); a replica that
   * fails rejects the whole call, naming it. Without it, the smoke checks see the color through one replica.
   */
  predictEach?(color: Color, rows: Array<Record<string, number>>): Promise<Array<{ replica: string; answer: PreviewAnswer }>>;
}

/** Time as the controller sees it: every timestamp and every wait goes through here. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`; rejects once `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/**
 * Paired shadow comparison (shadow-pairs.ts over the instances' GET /admin/predictions): both colors' answers to
 * the same mirrored requests, paired by request id.
 */
export interface PairingPort {
  /** Starts a new comparison: only answers recorded from now on count. */
  open(colors: { stable: Color; target: Color }): Promise<void>;
  /** Reads what the instances recorded since the last call and summarises every pair of the comparison so far. */
  summary(): Promise<PairSummary>;
  /** The latest summary, the largest disagreements' inputs included (kept in memory only). */
  latest?(): PairSummary | undefined;
}
