/** Builds a complete, validated release spec from what a user asked for and the defaults. */
import { otherColor, type Color } from '../config/defaults.js';
import * as D from './defaults.js';
import type { Task } from '../model/types.js';
import type { AnalysisConfig, ReleaseSpec, Strategy } from './types.js';

export interface ReleaseRequest {
  id: string;
  bundle: string;
  modelName: string;
  version: string;
  sha256: string;
  /** The new bundle's task, from its verified manifest (absent: regression). */
  task?: Task;
  stableColor: Color;
  strategy?: Strategy;
  steps?: number[];
  shadowMs?: number;
  shadowPercent?: number;
  analysisMs?: number;
  inconclusiveGraceMs?: number;
  analysisDeadlineMarginMs?: number;
  goldenRmseMargin?: number;
  analysis?: Partial<AnalysisConfig>;
  stableBundle?: string;
  stableVersion?: string;
  stableSha256?: string;
}

export class SpecError extends Error {}

/** Canary steps: strictly increasing percents in 1..100; 100 is appended when missing. */
export function normalizeSteps(steps: readonly number[]): number[] {
  if (steps.length === 0) throw new SpecError('steps must not be empty');
  let prev = 0;
  for (const p of steps) {
    if (!Number.isInteger(p) || p < 1 || p > 100) throw new SpecError(`step ${p} is not an integer percent in 1..100`);
    if (p <= prev) throw new SpecError(`steps must increase strictly, got ${steps.join(',')}`);
    prev = p;
  }
  return prev === 100 ? [...steps] : [...steps, 100];
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < 0) throw new SpecError(`${name} must be a non-negative number, got ${value}`);
  return v;
}

export function buildSpec(req: ReleaseRequest): ReleaseSpec {
  const strategy = req.strategy ?? D.DEFAULT_STRATEGY;
  if (strategy !== 'bluegreen' && strategy !== 'canary') throw new SpecError(`unknown strategy ${String(strategy)}`);
  if (strategy === 'bluegreen' && req.steps) throw new SpecError('steps apply to the canary strategy only');
  if (strategy === 'canary' && req.shadowMs) throw new SpecError('a shadow phase applies to the bluegreen strategy only');
  const shadowPercent = nonNegative('shadowPercent', req.shadowPercent, D.DEFAULT_SHADOW_PERCENT);
  if (shadowPercent < 1 || shadowPercent > 100) throw new SpecError(`shadowPercent must be in 1..100, got ${shadowPercent}`);
  return {
    id: req.id,
    bundle: req.bundle,
    modelName: req.modelName,
    version: req.version,
    sha256: req.sha256,
    strategy,
    stableColor: req.stableColor,
    targetColor: otherColor(req.stableColor),
    steps: strategy === 'canary' ? normalizeSteps(req.steps ?? D.DEFAULT_CANARY_STEPS) : [100],
    shadowMs: nonNegative('shadowMs', req.shadowMs, D.DEFAULT_SHADOW_MS),
    shadowPercent,
    analysisMs: nonNegative('analysisMs', req.analysisMs, D.DEFAULT_ANALYSIS_MS),
    inconclusiveGraceMs: nonNegative('inconclusiveGraceMs', req.inconclusiveGraceMs, D.DEFAULT_INCONCLUSIVE_GRACE_MS),
    analysisDeadlineMarginMs: nonNegative('analysisDeadlineMarginMs', req.analysisDeadlineMarginMs, D.DEFAULT_ANALYSIS_DEADLINE_MARGIN_MS),
    loadTimeoutMs: D.DEFAULT_LOAD_TIMEOUT_MS,
    smokeTimeoutMs: D.DEFAULT_SMOKE_TIMEOUT_MS,
    goldenRmseMargin: nonNegative('goldenRmseMargin', req.goldenRmseMargin, D.DEFAULT_GOLDEN_RMSE_MARGIN),
    analysis: { ...D.DEFAULT_ANALYSIS, ...req.analysis },
    ...(req.task === 'classification' ? { task: req.task } : {}),
    ...(req.stableBundle ? { stableBundle: req.stableBundle } : {}),
    ...(req.stableVersion ? { stableVersion: req.stableVersion } : {}),
    ...(req.stableSha256 ? { stableSha256: req.stableSha256 } : {}),
  };
}

/** "30s", "2m", "500ms" or a bare number of seconds, to milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new SpecError(`"${text}" is not a duration (e.g. 30s, 2m, 500ms)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return Math.round(unit === 'ms' ? n : unit === 's' ? n * 1000 : n * 60_000);
}
