/**
 * The catalogue of analysis checks, in the order they are judged and shown. Adding a check is one entry here
 * (its definition beside the others of its kind) and its test: the engine folds over this list, the CLI reads
 * each check's unit from it, and the Argo AnalysisTemplates are built from the entries that have PromQL.
 */
import type { AnalysisConfig } from '../types.js';
import type { CheckDefinition } from './definition.js';
import { errorRatio } from './errors.js';
import { latencyP95, latencyP99, latencyP99VsStable } from './latency.js';
import { pairedClassDisagreement, pairedDeltaP95, pairedDisagreement } from './paired.js';
import { predictionMeanShift, predictionPsi } from './predictions.js';

export const CATALOGUE = [errorRatio, latencyP95, latencyP99, latencyP99VsStable, predictionMeanShift, predictionPsi] as const;

/** Any list of checks the engine can fold over: the catalogue, or the catalogue plus checks a test adds. */
export type Catalogue = readonly CheckDefinition[];

/**
 * Checks of each request's two answers (paired.ts): only a shadow phase mirrors requests, so only it has pairs
 * to judge, and only it runs these (a canary step would otherwise show them skipped on every window).
 */
export const PAIRED_CHECKS = [pairedDisagreement, pairedClassDisagreement, pairedDeltaP95] as const;

/** What the shadow phase judges: the catalogue, then the paired checks. */
export const SHADOW_CATALOGUE: Catalogue = [...CATALOGUE, ...PAIRED_CHECKS];

export type CheckName = (typeof CATALOGUE)[number]['name'];

type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
/** Every threshold key of the catalogue with its type. */
export type CatalogueThresholds = UnionToIntersection<(typeof CATALOGUE)[number]['thresholds']>;

/** The checks' own threshold defaults, merged. */
export function thresholdDefaults(catalogue: Catalogue): Record<string, number> {
  return Object.assign({}, ...catalogue.map((c) => c.thresholds));
}

/** The catalogue's defaults, typed: release/defaults.ts completes them into DEFAULT_ANALYSIS. */
export const CHECK_THRESHOLDS = thresholdDefaults(CATALOGUE) as CatalogueThresholds;

/** Compile-time guard: a threshold key of the catalogue that the analysis config (types.ts) does not declare. */
type Undeclared = Exclude<keyof CatalogueThresholds, keyof AnalysisConfig>;
export const EVERY_THRESHOLD_DECLARED: [Undeclared] extends [never] ? true : Undeclared = true;

export function checkNamed(name: string, catalogue: Catalogue = CATALOGUE): CheckDefinition | undefined {
  return catalogue.find((c) => c.name === name);
}
