/**
 * Pure analysis: folds the catalogue of checks over two colors' window statistics into one verdict.
 * "Too few samples" is never a pass and never a fail: it is inconclusive.
 */
import type { Color } from '../config/defaults.js';
import type { Task } from '../model/types.js';
import { CATALOGUE, thresholdDefaults, type Catalogue } from './checks/catalogue.js';
import { finding, type CheckWindow, type Finding, type SampleConfig } from './checks/definition.js';
import { DEFAULT_ANALYSIS } from './defaults.js';
import { withoutInputs } from './pairing.js';
import type { AnalysisConfig, AnalysisVerdict, CheckResult, WindowStats } from './types.js';

// Statistics of windows live in histograms.ts; these two are read with the verdicts (engine, status page).
export { addWindows, histogramQuantile } from './histograms.js';

export interface EvaluateOptions {
  target: Color;
  stable: Color;
  /**
   * Whether the stable color serves traffic in this window (canary steps below 100, shadow). When it does not
   * (after a blue-green switch), the relative checks are skipped rather than inconclusive.
   */
  compareWithStable: boolean;
  /** The new model's task: a classifier's checks take their classification forms (checks/definition.ts). */
  task?: Task;
}

/**
 * The config with a default under every key it lacks: releases recorded before a setting existed, and
 * checks whose thresholds the recorded config never had.
 */
export function completeConfig(config: AnalysisConfig, catalogue: Catalogue): SampleConfig & Record<string, number> {
  const given = Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined));
  return { ...DEFAULT_ANALYSIS, ...thresholdDefaults(catalogue), ...given } as SampleConfig & Record<string, number>;
}

function judge(check: Catalogue[number], w: CheckWindow, config: SampleConfig & Record<string, number>, opts: EvaluateOptions): Finding {
  const notApplicable = check.skip?.(w);
  if (notApplicable) return finding('skipped', null, null, notApplicable);
  if (check.comparesWithStable && !opts.compareWithStable)
    return finding('skipped', null, null, 'stable color serves no traffic in this window');
  const tooFew = check.samples(w, config);
  if (tooFew) return finding('inconclusive', null, tooFew.withThreshold ? check.threshold(config) : null, tooFew.detail);
  return check.evaluate(w, config);
}

/** Runs every check of the catalogue on one window and folds them into a verdict. */
export function evaluate(
  stats: WindowStats,
  config: AnalysisConfig,
  opts: EvaluateOptions,
  catalogue: Catalogue = CATALOGUE,
): AnalysisVerdict {
  const w: CheckWindow = {
    target: stats.colors[opts.target],
    stable: stats.colors[opts.stable],
    pairs: stats.pairs,
    ...(opts.task ? { task: opts.task } : {}),
  };
  const full = completeConfig(config, catalogue);
  const checks: CheckResult[] = catalogue.map((check) => ({ name: check.name, ...judge(check, w, full, opts) }));
  const outcome = checks.some((c) => c.outcome === 'fail')
    ? 'fail'
    : checks.some((c) => c.outcome === 'inconclusive')
      ? 'inconclusive'
      : 'pass';
  return {
    outcome,
    checks,
    // Prometheus' increase() extrapolates: counts may come back fractional.
    samples: { target: Math.round(w.target.requests), stable: Math.round(w.stable.requests) },
    window: { fromMs: stats.fromMs, toMs: stats.toMs },
    // Recorded with the verdict (release log, status): the disagreements' inputs stay in the controller's memory.
    ...(stats.pairs ? { pairs: withoutInputs(stats.pairs) } : {}),
  };
}

/** The failing checks in one line, for reasons and CLI output. */
export function describeFailures(verdict: AnalysisVerdict): string {
  return verdict.checks
    .filter((c) => c.outcome === 'fail')
    .map((c) => `${c.name} ${c.value} > ${c.threshold} (${c.detail})`)
    .join('; ');
}
