/**
 * The release engine's vocabulary. Everything here is plain data (JSON-safe) so that states and events
 * can be persisted as they are and replayed after a crash.
 */
import type { Color } from '../config/defaults.js';
import type { Mirror, Weights } from '../config/traffic-split.js';
import type { Task } from '../model/types.js';
import type { PairSummary } from './pairing-types.js';

export type Strategy = 'bluegreen' | 'canary';

/** running and paused are live; the others are terminal. */
export type ReleaseStatus = 'running' | 'paused' | 'succeeded' | 'failed' | 'rolled_back' | 'aborted';

/**
 * Where a release is. `failed` means it stopped before any live traffic reached the new version;
 * `rolled_back` means traffic had moved (or could have) and was put back on the stable color.
 */
export type Phase = 'loading' | 'smoke' | 'shadow' | 'step' | 'post-switch' | 'done';

export type Command = 'promote' | 'abort' | 'rollback' | 'pause' | 'resume';

/** The traffic vocabulary the engine shares with the routers. */
export type { Mirror, Weights } from '../config/traffic-split.js';

/**
 * Sample sizes and thresholds of the analysis checks, as a release records them. Each threshold's default and
 * reason are in its check's entry in checks/ (a key missing here fails the catalogue's typecheck).
 */
export interface AnalysisConfig {
  /** Requests the new color must have answered in the window before any check may pass or fail. */
  minSamples: number;
  /**
   * Requests needed before a tail statistic (p99, PSI over many buckets) may judge: with fewer, one GC pause
   * is the p99 and sampling noise alone moves PSI; those checks stay inconclusive until then.
   */
  minTailSamples: number;
  /**
   * Requests over a p99 limit needed before that p99 may fail (fewer: inconclusive). Absent in releases
   * recorded before it existed (the default applies).
   */
  minTailExceedances?: number;
  /** Share of the new color's requests answered with a 5xx. */
  maxErrorRatio: number;
  /** Absolute latency limits, seconds. */
  maxP95Seconds: number;
  maxP99Seconds: number;
  /** Relative latency limit: new p99 <= stable p99 * ratio + slack (the slack absorbs bucket coarseness). */
  maxLatencyRatio: number;
  latencySlackSeconds: number;
  /** Mean prediction shift, in units of the stable color's prediction standard deviation. */
  maxMeanShiftStd: number;
  /** Floor for that standard deviation, so a near-constant stable model does not make every shift huge. */
  minPredictionStd: number;
  /** Population stability index between the colors' prediction histograms. */
  maxPsi: number;
}

export interface ReleaseSpec {
  id: string;
  /** Bundle folder as given to the instance admin API. */
  bundle: string;
  /** From the verified manifest, for display and for checking what the instance reports. */
  modelName: string;
  version: string;
  sha256: string;
  /**
   * 'classification' when the new bundle is a classifier: its checks take their classification forms. Absent for
   * a regressor (and in releases recorded before classifiers could be released).
   */
  task?: Task;
  strategy: Strategy;
  stableColor: Color;
  targetColor: Color;
  /** Canary weight steps in percent of the new color; the last one is always 100. */
  steps: number[];
  /** Bluegreen shadow phase length (0 = none) and mirrored share. */
  shadowMs: number;
  shadowPercent: number;
  /** Length of each analysis window (canary step, post-switch). */
  analysisMs: number;
  /** How long an analysis may stay inconclusive after its window before the release pauses. */
  inconclusiveGraceMs: number;
  /**
   * An analysis phase with no verdict by its window + the inconclusive grace + this margin pauses the release,
   * whatever the provider does. Absent in releases recorded before the deadline existed (the default applies).
   */
  analysisDeadlineMarginMs?: number;
  loadTimeoutMs: number;
  smokeTimeoutMs: number;
  /**
   * Golden-set gate: new RMSE <= stable RMSE + margin; for a classifier, new accuracy >= stable accuracy - margin
   * (accuracy as a share: 0.05 is five accuracy points).
   */
  goldenRmseMargin: number;
  analysis: AnalysisConfig;
  /** Bundle the stable color serves, to reload it on reconcile when needed. */
  stableBundle?: string;
  stableVersion?: string;
  stableSha256?: string;
}

export interface ReleaseState {
  spec: ReleaseSpec;
  status: ReleaseStatus;
  phase: Phase;
  /** Index into spec.steps while phase === 'step'. */
  stepIndex: number;
  /** Start of the current phase's analysis window (ms). */
  phaseStartedAt: number;
  /** Percent of traffic the engine has asked the new color to take. */
  targetWeight: number;
  mirror: Mirror | null;
  createdAt: number;
  updatedAt: number;
  /** When the current analysis first came out inconclusive after its window ended. */
  inconclusiveSince: number | null;
  /** Why the release ended (or paused). */
  reason: string | null;
  /** Last analysis verdict, for status output. */
  lastAnalysis: AnalysisVerdict | null;
  /** When a failing verdict or rollback command ordered traffic back (for the rollback-time metric). */
  rollbackOrderedAt: number | null;
  /** Why the current phase's latest analysis could not be had (null or absent once numbers came back). */
  analysisUnavailable?: string | null;
}

/** A histogram as cumulative bucket counts over a window (le ascending, last is +Inf). */
export interface HistogramWindow {
  buckets: Array<{ le: number; count: number }>;
  sum: number;
  count: number;
}

/** What one color did during an analysis window (counter and histogram increases). */
export interface ColorWindow {
  requests: number;
  /** Requests answered with a 5xx: the instance's fault, not the caller's. */
  serverErrors: number;
  latency: HistogramWindow;
  predictions: HistogramWindow;
}

export interface WindowStats {
  fromMs: number;
  toMs: number;
  /** Live traffic per color: what canary steps and the post-switch window judge. Preview never counts. */
  colors: Record<Color, ColorWindow>;
  /** Mirrored (shadow) copies each color answered: what the shadow phase judges the new color on. */
  mirrored?: Record<Color, ColorWindow>;
  /**
   * Shadow phase: the stable color's live answers paired with the new color's mirrored answers to the same
   * requests (pairing.ts). Absent where no pairing runs: the paired checks are then skipped.
   */
  pairs?: PairSummary;
}

export type CheckOutcome = 'pass' | 'fail' | 'inconclusive' | 'skipped';

export interface CheckResult {
  name: string;
  outcome: CheckOutcome;
  /** Measured value(s) and the threshold they were held against. */
  value: number | null;
  threshold: number | null;
  detail: string;
}

export interface AnalysisVerdict {
  outcome: 'pass' | 'fail' | 'inconclusive';
  checks: CheckResult[];
  samples: { target: number; stable: number };
  window: { fromMs: number; toMs: number };
  /** The paired comparison the verdict judged (shadow phase), without the disagreements' inputs. */
  pairs?: PairSummary;
}

export interface SmokeResult {
  ok: boolean;
  failures: string[];
  rows: number;
  rmse: { candidate: number; stable: number } | null;
  /** Paired comparison of both colors on the same golden rows (a classifier's: share of rows with the same class). */
  agreement: number | null;
  meanAbsDelta: number | null;
  /** A classifier's golden figures (then rmse and meanAbsDelta are null); absent or null for a regressor. */
  accuracy?: { candidate: number; stable: number } | null;
  logLoss?: { candidate: number; stable: number } | null;
}

export type Observation =
  | { kind: 'load'; color: Color; ok: boolean; error?: string; sha256?: string; version?: string }
  | { kind: 'smoke'; color: Color; result: SmokeResult }
  | { kind: 'analysis'; stats: WindowStats }
  /** The window's numbers could not be had (scrape or query failed after retries): inconclusive, never a verdict. */
  | { kind: 'analysis-unavailable'; reason: string }
  | { kind: 'health'; healthy: Record<Color, boolean> }
  | { kind: 'action-failed'; action: Action['kind']; error: string };

export interface StepInput {
  now: number;
  observation?: Observation;
  command?: Command;
  /** Why the command was given (e.g. who moved traffic by hand), recorded in its event and the state. */
  reason?: string;
}

export type Action =
  | { kind: 'load-bundle'; color: Color; bundle: string }
  | { kind: 'smoke'; color: Color; stableColor: Color; bundle: string }
  | { kind: 'set-weights'; weights: Weights }
  | { kind: 'set-mirror'; mirror: Mirror | null }
  /** Ask the controller for WindowStats since `fromMs` on the following ticks. */
  | { kind: 'analyze'; fromMs: number };

export type EventType =
  | 'release-started'
  | 'bundle-refused'
  | 'bundle-loading'
  | 'bundle-loaded'
  | 'load-failed'
  | 'smoke-passed'
  | 'smoke-failed'
  | 'shadow-started'
  | 'step-started'
  | 'switched'
  | 'analysis-passed'
  | 'analysis-failed'
  | 'analysis-inconclusive'
  | 'analysis-unavailable'
  | 'paused'
  | 'resumed'
  | 'promoted'
  | 'succeeded'
  | 'rolled-back'
  | 'aborted'
  | 'command-refused'
  | 'instance-unhealthy'
  | 'action-failed'
  | 'reconciled';

export interface ReleaseEvent {
  at: number;
  releaseId: string;
  type: EventType;
  phase: Phase;
  reason: string;
  values?: Record<string, unknown>;
}

export interface StepResult {
  state: ReleaseState;
  actions: Action[];
  events: ReleaseEvent[];
}
