/**
 * Every default of the release engine, in one place (the controller's timing is in controller/defaults.ts).
 * Each value says why it is what it is; the CLI and control API accept overrides for the ones users tune
 * (steps, shadow, analysis window).
 */
import { CHECK_THRESHOLDS } from './checks/catalogue.js';
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

/**
 * The analysis config: how many samples a window needs before checks may judge, then each check's thresholds,
 * whose defaults (and reasons) are written in its catalogue entry (checks/).
 */
export const DEFAULT_ANALYSIS: Required<AnalysisConfig> = {
  // Below 50 requests one error is already 2%: too few to judge either way.
  minSamples: 50,
  // p99 of 200 requests rests on 2 of them; PSI's noise over ~10 used buckets is then about 0.05.
  minTailSamples: 200,
  // A GC pause or the first requests on a cold code path slow a handful of requests together: 10 over the
  // limit is a pattern. A version slow on every request has them within its first 10 requests.
  minTailExceedances: 10,
  ...CHECK_THRESHOLDS,
};

/** File of the release log inside the state directory. */
export const RELEASE_LOG_FILE = 'releases.jsonl';
