/**
 * The shapes a release-log line may have, as JSON schemas checked with Ajv: a record that parses but does not
 * hold a ReleaseState or a ReleaseEvent (src/release/types.ts) would crash whoever reads it later (`up`, the
 * status routes), so the store refuses it on open instead. Extra properties are allowed: a newer bgserve may
 * add fields, and an older reader ignores them. The enum lists are checked against the types at compile
 * time (see `Exhaustive`), so a new phase or event type cannot be forgotten here.
 */
import { Ajv, type ErrorObject } from 'ajv';
import type { CheckOutcome, EventType, Phase, ReleaseEvent, ReleaseState, ReleaseStatus, Strategy } from '../release/types.js';

/** Compile-time check: `T` is `true` only when the list covers every member of the union. */
type Exhaustive<Union, Listed> = [Exclude<Union, Listed>] extends [never] ? true : { missing: Exclude<Union, Listed> };

const STRATEGIES = ['bluegreen', 'canary'] as const satisfies readonly Strategy[];
const STATUSES = ['running', 'paused', 'succeeded', 'failed', 'rolled_back', 'aborted'] as const satisfies readonly ReleaseStatus[];
const PHASES = ['loading', 'smoke', 'shadow', 'step', 'post-switch', 'done'] as const satisfies readonly Phase[];
const OUTCOMES = ['pass', 'fail', 'inconclusive', 'skipped'] as const satisfies readonly CheckOutcome[];
const EVENT_TYPES = [
  'release-started',
  'bundle-refused',
  'bundle-loading',
  'bundle-loaded',
  'load-failed',
  'smoke-passed',
  'smoke-failed',
  'shadow-started',
  'step-started',
  'switched',
  'analysis-passed',
  'analysis-failed',
  'analysis-inconclusive',
  'analysis-unavailable',
  'paused',
  'resumed',
  'promoted',
  'succeeded',
  'rolled-back',
  'aborted',
  'command-refused',
  'instance-unhealthy',
  'action-failed',
  'reconciled',
] as const satisfies readonly EventType[];

const covered: [
  Exhaustive<Strategy, (typeof STRATEGIES)[number]>,
  Exhaustive<ReleaseStatus, (typeof STATUSES)[number]>,
  Exhaustive<Phase, (typeof PHASES)[number]>,
  Exhaustive<CheckOutcome, (typeof OUTCOMES)[number]>,
  Exhaustive<EventType, (typeof EVENT_TYPES)[number]>,
] = [true, true, true, true, true];
void covered;

const num = { type: 'number' } as const;
const int = { type: 'integer' } as const;
const str = { type: 'string' } as const;
const nullableNum = { type: ['number', 'null'] } as const;
const color = { type: 'string', enum: ['blue', 'green'] } as const;
const percent = { type: 'number', minimum: 0, maximum: 100 } as const;

function object(properties: Record<string, unknown>, optional: readonly string[] = []): Record<string, unknown> {
  return { type: 'object', required: Object.keys(properties).filter((k) => !optional.includes(k)), properties };
}

const analysisConfig = object({
  minSamples: num,
  minTailSamples: num,
  maxErrorRatio: num,
  maxP95Seconds: num,
  maxP99Seconds: num,
  maxLatencyRatio: num,
  latencySlackSeconds: num,
  maxMeanShiftStd: num,
  minPredictionStd: num,
  maxPsi: num,
});

const spec = object(
  {
    id: { type: 'string', minLength: 1 },
    bundle: str,
    modelName: str,
    version: str,
    sha256: str,
    strategy: { enum: STRATEGIES },
    stableColor: color,
    targetColor: color,
    steps: { type: 'array', minItems: 1, items: percent },
    shadowMs: num,
    shadowPercent: num,
    analysisMs: num,
    inconclusiveGraceMs: num,
    loadTimeoutMs: num,
    smokeTimeoutMs: num,
    goldenRmseMargin: num,
    analysis: analysisConfig,
    stableBundle: str,
    stableVersion: str,
    stableSha256: str,
    analysisDeadlineMarginMs: num,
  },
  ['stableBundle', 'stableVersion', 'stableSha256', 'analysisDeadlineMarginMs'],
);

const verdict = object({
  outcome: { enum: ['pass', 'fail', 'inconclusive'] },
  checks: {
    type: 'array',
    items: object({ name: str, outcome: { enum: OUTCOMES }, value: nullableNum, threshold: nullableNum, detail: str }),
  },
  samples: object({ target: num, stable: num }),
  window: object({ fromMs: num, toMs: num }),
});

const releaseState = object(
  {
    spec,
    status: { enum: STATUSES },
    phase: { enum: PHASES },
    stepIndex: { ...int, minimum: 0 },
    phaseStartedAt: num,
    targetWeight: percent,
    mirror: { anyOf: [{ type: 'null' }, object({ target: color, percent })] },
    createdAt: num,
    updatedAt: num,
    inconclusiveSince: nullableNum,
    reason: { type: ['string', 'null'] },
    lastAnalysis: { anyOf: [{ type: 'null' }, verdict] },
    rollbackOrderedAt: nullableNum,
    analysisUnavailable: { type: ['string', 'null'] },
  },
  ['analysisUnavailable'],
);

const releaseEvent = object(
  {
    at: num,
    releaseId: { type: 'string', minLength: 1 },
    type: { enum: EVENT_TYPES },
    phase: { enum: PHASES },
    reason: str,
    values: { type: 'object' },
  },
  ['values'],
);

const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true, strictNumbers: true });
const validState = ajv.compile<ReleaseState>(releaseState);
const validEvent = ajv.compile<ReleaseEvent>(releaseEvent);

export type LogRecord = { kind: 'release'; state: ReleaseState } | { kind: 'event'; event: ReleaseEvent };

function describe(errors: ErrorObject[] | null | undefined, root: string): string {
  const e = errors?.[0];
  if (!e) return `${root} has the wrong shape`;
  const where = `${root}${e.instancePath.replace(/\//g, '.')}`;
  const missing = (e.params as { missingProperty?: string }).missingProperty;
  return missing ? `${where} lacks ${missing}` : `${where} ${e.message ?? 'is invalid'}`;
}

/** The record a parsed line holds, or why it holds none. */
export function checkRecord(value: unknown): { record: LogRecord } | { problem: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { problem: 'not a JSON object' };
  const { kind } = value as { kind?: unknown };
  if (kind === 'release') {
    const state = (value as { state?: unknown }).state;
    return validState(state) ? { record: { kind, state } } : { problem: describe(validState.errors, 'state') };
  }
  if (kind === 'event') {
    const event = (value as { event?: unknown }).event;
    return validEvent(event) ? { record: { kind, event } } : { problem: describe(validEvent.errors, 'event') };
  }
  return { problem: `unknown record kind ${JSON.stringify(kind ?? null).slice(0, 40)}` };
}
