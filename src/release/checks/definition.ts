/**
 * What one analysis check is: everything the engine, the CLI and the Argo templates need to know of it, in one
 * entry. The catalogue (catalogue.ts) lists the entries; nothing else names a check.
 */
import type { Scope } from '../../monitoring/queries.js';
import type { Task } from '../../model/types.js';
import type { PairSummary } from '../pairing-types.js';
import type { AnalysisConfig, CheckOutcome, CheckResult, ColorWindow } from '../types.js';

/** The two colors' statistics a check judges: the new color's and the stable one's, in the same window. */
export interface CheckWindow {
  target: ColorWindow;
  stable: ColorWindow;
  /** Both colors' answers to the same mirrored requests, paired (shadow phase only). */
  pairs?: PairSummary;
  /**
   * The new model's task (absent: regression). A classifier's prediction series and prediction rings hold the
   * predicted class's index: counts of classes mean something, distances between indices do not.
   */
  task?: Task;
}

/** The sample-size settings every check's minimum-sample rule reads (defaults in release/defaults.ts). */
export type SampleConfig = Required<Pick<AnalysisConfig, 'minSamples' | 'minTailSamples' | 'minTailExceedances'>>;

/** A check's result before the catalogue names it. */
export type Finding = Omit<CheckResult, 'name'>;

/**
 * Why a window has too few samples to judge a check: the check is then inconclusive, never a pass or a fail.
 * `withThreshold` says whether the result still shows the check's threshold.
 */
export interface TooFew {
  detail: string;
  withThreshold: boolean;
}

export type SampleRule = (w: CheckWindow, config: SampleConfig) => TooFew | null;

/** How values of a check are recorded and shown. */
export interface CheckUnit {
  /** What the recorded value measures. */
  name: string;
  /** Appended to shown values ('' for pure numbers). */
  symbol: string;
  /** Factor from the recorded value to the shown one (seconds are shown in milliseconds). */
  scale: number;
  /** Fixed decimals; null shows up to four (thresholds then as configured). */
  decimals: number | null;
}

export const UNITS = {
  number: { name: 'number', symbol: '', scale: 1, decimals: null },
  seconds: { name: 'seconds', symbol: 'ms', scale: 1000, decimals: 2 },
  ratio: { name: 'share of requests', symbol: '', scale: 1, decimals: null },
  stableStd: { name: "standard deviations of the stable color's predictions", symbol: '', scale: 1, decimals: null },
  index: { name: 'population stability index', symbol: '', scale: 1, decimals: null },
  delta: { name: 'absolute difference of paired predictions', symbol: '', scale: 1, decimals: null },
} satisfies Record<string, CheckUnit>;

/** A check's Prometheus expression: a value that passes at <= limit, fails above it, and is absent with no data. */
export interface CheckQuery {
  query: string;
  limit: number;
}

/**
 * One check. `T` is its own thresholds: the only place their keys and defaults are written. Methods (not
 * function properties) so that a catalogue may hold checks with different thresholds side by side.
 */
export interface CheckDefinition<Name extends string = string, T extends object = object> {
  name: Name;
  unit: CheckUnit;
  /** Threshold keys of the analysis config this check reads, with their defaults (and why, beside each). */
  thresholds: T;
  /**
   * Whether it compares the new color with the stable one. Such a check is skipped (not inconclusive) in a
   * window where the stable color serves no traffic by design (after a blue-green switch).
   */
  comparesWithStable: boolean;
  /** When a window has too few samples to judge it (samples.ts). */
  samples: SampleRule;
  /** Why the check does not apply to this window at all (skipped before any sample rule), or null. */
  skip?(w: CheckWindow): string | null;
  /** The threshold its result shows; null when the limit is computed from the window. */
  threshold(config: SampleConfig & T): number | null;
  /** Judges a window that has enough samples. Pure: the same window and config give the same finding. */
  evaluate(w: CheckWindow, config: SampleConfig & T): Finding;
  /** Its PromQL for Prometheus-side analysis (Argo Rollouts); absent when histograms in PromQL cannot say it. */
  promql?(scopes: { target: Scope; stable: Scope }, config: SampleConfig & T): CheckQuery;
}

/** Declares a check with its name and threshold keys inferred, so the catalogue can derive types from them. */
export function defineCheck<Name extends string, T extends object>(check: CheckDefinition<Name, T>): CheckDefinition<Name, T> {
  return check;
}

export const round = (x: number) => Math.round(x * 1e6) / 1e6;

/** For checks that measure distances between predictions: class indices have no order, so none for a classifier. */
export function skipForClassifier(w: CheckWindow): string | null {
  return w.task === 'classification' ? 'skipped: classifier (its predicted class indices have no order to measure distances on)' : null;
}

export function finding(outcome: CheckOutcome, value: number | null, threshold: number | null, detail: string): Finding {
  return { outcome, value: value === null ? null : round(value), threshold, detail };
}
