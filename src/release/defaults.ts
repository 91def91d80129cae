/**
 * Every default of the release engine and controller, in one place. Each value says why it is what it is;
 * the CLI and control API accept overrides for the ones users tune (steps, shadow, analysis window).
 */
import type { AnalysisConfig, Strategy } from './types.js';

export const DEFAULT_STRATEGY: Strategy = 'bluegreen';

/** Canary weight steps (percent to the new color), as Argo Rollouts' examples use. */
export const DEFAULT_CANARY_STEPS = [10, 25, 50, 100] as const;

/** Analysis window per canary step and after a blue-green switch: long enough for a few hundred requests. */
export const DEFAULT_ANALYSIS_MS = 30_000;

/** Blue-green shadow phase: off unless asked for (it costs a full window of mirrored traffic). */
export const DEFAULT_SHADOW_MS = 0;
/** Share of live traffic mirrored to the new color during the shadow phase. */
export const DEFAULT_SHADOW_PERCENT = 100;

/** After a window ends inconclusive, wait this long for samples, then pause (never promote blindly). */
export const DEFAULT_INCONCLUSIVE_GRACE_MS = 30_000;

/**
 * An analysis phase that has no verdict by its window + the inconclusive grace + this margin pauses the release.
 * The grace already covers too few samples and a provider that fails; the margin covers the rest (a provider
 * that hangs, ticks that stall) so that no release runs on forever without a decision.
 */
export const DEFAULT_ANALYSIS_DEADLINE_MARGIN_MS = 15_000;

/** Loading a bundle is verification + runtime setup: seconds at most for the models we serve. */
export const DEFAULT_LOAD_TIMEOUT_MS = 60_000;
export const DEFAULT_SMOKE_TIMEOUT_MS = 60_000;

/**
 * Golden-set gate margin, in target units (wine quality points). The default model's held-out RMSE is about
 * 0.55; a new version worse by more than 0.05 is a regression worth stopping for.
 */
export const DEFAULT_GOLDEN_RMSE_MARGIN = 0.05;

/**
 * Two colors' predictions "agree" on a row when they are within this distance (half a quality point:
 * both round to the same grade or neighbours). Used for the paired comparison report.
 */
export const AGREEMENT_TOLERANCE = 0.5;

export const DEFAULT_ANALYSIS: AnalysisConfig = {
  // Below 50 requests one error is already 2%: too few to judge either way.
  minSamples: 50,
  // p99 of 200 requests rests on 2 of them; PSI's noise over ~10 used buckets is then about 0.05.
  minTailSamples: 200,
  // A GC pause or the first requests on a cold code path slow a handful of requests together: 10 over the
  // limit is a pattern. A version slow on every request has them within its first 10 requests.
  minTailExceedances: 10,
  // The stable model answers no 5xx at all; 1% is a clear fault, not noise.
  maxErrorRatio: 0.01,
  // Inference takes microseconds; these absolute limits catch a hung or thrashing instance.
  maxP95Seconds: 0.1,
  maxP99Seconds: 0.25,
  // Relative to the stable color in the same window: twice as slow plus 5 ms of bucket coarseness.
  maxLatencyRatio: 2,
  latencySlackSeconds: 0.005,
  // Half a standard deviation of the stable predictions is a visible change of the model's output.
  maxMeanShiftStd: 0.5,
  minPredictionStd: 0.1,
  // PSI: < 0.1 stable, 0.1-0.25 moderate, > 0.25 major shift (the usual credit-scoring reading).
  maxPsi: 0.25,
};

/** How often the controller ticks (feeds time and observations to the engine). */
export const CONTROLLER_TICK_MS = 250;
/** How often an open analysis window is measured and judged: the bound on detection delay. */
export const ANALYSIS_EVERY_MS = 500;
/** How long a color may take to answer /ready after an admin load. */
export const READY_TIMEOUT_MS = 30_000;
/**
 * Longest the controller waits for one analysis measurement (retries included) before calling the window
 * unavailable: the loop that carries commands out waits behind it.
 */
export const ANALYSIS_CALL_TIMEOUT_MS = 5_000;
/** How long the new color's /metrics may stay unreadable before the controller reports it unhealthy. */
export const TARGET_UNREADABLE_MS = 2_000;

/** File of the release log inside the state directory. */
export const RELEASE_LOG_FILE = 'releases.jsonl';
