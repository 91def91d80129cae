/**
 * The PromQL catalogue: every expression the recording rules, alert rules, the Grafana dashboard and the
 * release analysis use, built in one place from the metric names in config/metric-names.ts.
 *
 * Expressions are functions of a range window and extra label matchers, so that analysis can ask e.g.
 * "error ratio of green over the last 30s" with the same PromQL the dashboard shows.
 */
import { CONTROLLER_METRICS, INSTANCE_METRICS, ROUTER_METRICS } from '../config/metric-names.js';
import type { Color } from '../config/defaults.js';

/** Window of the recording rules (and the default of every builder below). */
export const RECORDING_WINDOW = '1m';

/** Prometheus job names, shared by the config generator and the alert rules that select on `job`. */
export const JOBS = {
  instances: 'bgserve-instances',
  control: 'bgserve-control',
} as const;

export interface Scope {
  /** Range window for rate()/increase(), e.g. '1m', '30s' or Grafana's '$__rate_interval'. */
  window?: string;
  /** Extra label matchers without braces, e.g. `color="green"`. */
  matchers?: string;
}

function selector(metric: string, ...matchers: Array<string | undefined>): string {
  const inner = matchers.filter((m) => m !== undefined && m !== '').join(', ');
  return inner === '' ? metric : `${metric}{${inner}}`;
}

/**
 * Preview requests (the release's smoke checks, someone trying the idle color) are not traffic: no rule, panel
 * or analysis counts them. Mirrored copies do count in rules and panels (they are the new color's real work);
 * release analysis keeps them apart by `source`. Series without the label (older instances) match: live.
 */
export const NOT_PREVIEW = 'source!="preview"';

const INSTANCE_FAMILIES: readonly string[] = [
  INSTANCE_METRICS.requests,
  INSTANCE_METRICS.latency,
  INSTANCE_METRICS.errors,
  INSTANCE_METRICS.predictionValue,
];

/** A selector of an instance metric, preview traffic left out; of any other metric, as given. */
function trafficSelector(metric: string, ...matchers: Array<string | undefined>): string {
  const family = metric.replace(/_(bucket|sum|count)$/, '');
  return INSTANCE_FAMILIES.includes(family) ? selector(metric, NOT_PREVIEW, ...matchers) : selector(metric, ...matchers);
}

function rateByColor(metric: string, scope: Scope, extra?: string): string {
  return `sum by (color) (rate(${trafficSelector(metric, extra, scope.matchers)}[${scope.window ?? RECORDING_WINDOW}]))`;
}

/** Label matcher for one color, for Scope.matchers. */
export function colorMatcher(color: Color): string {
  return `color="${color}"`;
}

/** Prediction requests per second, per color (any status). */
export function requestRate(scope: Scope = {}): string {
  return rateByColor(INSTANCE_METRICS.requests, scope);
}

/** Rejected or failed requests per second on any route, per color (caller mistakes included). */
export function errorRate(scope: Scope = {}): string {
  return rateByColor(INSTANCE_METRICS.errors, scope);
}

/**
 * Share of prediction requests answered with a status matching `status`, per color. A color that never
 * answered such a status has no series for it (labelled counters appear on first increment), so the zero
 * is made explicit with `or ... * 0`: the ratio is then 0 rather than absent, which dashboards and analysis
 * both need.
 */
function statusShare(status: string, scope: Scope): string {
  const requests = requestRate(scope);
  return `(${rateByColor(INSTANCE_METRICS.requests, scope, `status=~"${status}"`)} or ${requests} * 0) / ${requests}`;
}

/**
 * Share of prediction requests rejected or failed (any non-2xx), per color. Taken from predict_requests_total
 * rather than predict_errors_total, which also counts other routes' rejections (404s, admin calls).
 */
export function errorRatio(scope: Scope = {}): string {
  return statusShare('[^2]..', scope);
}

/** Share of prediction requests answered with a 5xx status, per color: the instance's own failures. */
export function serverErrorRatio(scope: Scope = {}): string {
  return statusShare('5..', scope);
}

/** A latency quantile (0 < q < 1) per color from the instance's latency histogram, seconds. */
export function latencyQuantile(q: number, scope: Scope = {}): string {
  const buckets = trafficSelector(`${INSTANCE_METRICS.latency}_bucket`, scope.matchers);
  return `histogram_quantile(${q}, sum by (color, le) (rate(${buckets}[${scope.window ?? RECORDING_WINDOW}])))`;
}

/** Mean predicted value per color: what the prediction-shift judgement compares between colors. */
export function predictionMean(scope: Scope = {}): string {
  return `${rateByColor(`${INSTANCE_METRICS.predictionValue}_sum`, scope)} / ${rateByColor(`${INSTANCE_METRICS.predictionValue}_count`, scope)}`;
}

/** A quantile of the predicted values per color (the prediction distribution's spread). */
export function predictionQuantile(q: number, scope: Scope = {}): string {
  const buckets = trafficSelector(`${INSTANCE_METRICS.predictionValue}_bucket`, scope.matchers);
  return `histogram_quantile(${q}, sum by (color, le) (rate(${buckets}[${scope.window ?? RECORDING_WINDOW}])))`;
}

/** Predicted values per bucket and color over the window: the distribution itself, for a heatmap or bars. */
export function predictionBuckets(scope: Scope = {}): string {
  const buckets = trafficSelector(`${INSTANCE_METRICS.predictionValue}_bucket`, scope.matchers);
  return `sum by (color, le) (increase(${buckets}[${scope.window ?? RECORDING_WINDOW}]))`;
}

/**
 * Increase over the window per color and traffic source (and bucket bound for a histogram's _bucket series),
 * preview left out: release analysis reads live and mirrored traffic apart from these.
 */
export function increaseBySource(metric: string, scope: Scope & { extra?: string } = {}): string {
  const by = metric.endsWith('_bucket') ? 'color, source, le' : 'color, source';
  return `sum by (${by}) (increase(${trafficSelector(metric, scope.extra, scope.matchers)}[${scope.window ?? RECORDING_WINDOW}]))`;
}

/** The model bundle each color serves (value 1, version and checksum in the labels). */
export function modelVersions(): string {
  return `max by (color, model_name, model_version) (${INSTANCE_METRICS.modelInfo})`;
}

/** Requests per second through the router, per upstream color. */
export function routerRequestRate(scope: Scope = {}): string {
  return rateByColor(ROUTER_METRICS.requests, scope);
}

/** Current router weight per color, percent. */
export function routerWeights(): string {
  return `max by (color) (${ROUTER_METRICS.weight})`;
}

/** Weight the controller has decided per color, percent (the router's weight follows it). */
export function controllerWeights(): string {
  return `max by (color) (${CONTROLLER_METRICS.weight})`;
}

/** The current phase of the current release (one series with value 1, phase in the labels). */
export function releasePhase(): string {
  return `max by (release_id, strategy, phase) (${CONTROLLER_METRICS.releasePhase}) == 1`;
}

/** Releases finished in the window, by strategy and outcome. */
export function releasesFinished(scope: Scope = {}): string {
  const releases = selector(CONTROLLER_METRICS.releases, scope.matchers);
  return `sum by (strategy, outcome) (increase(${releases}[${scope.window ?? RECORDING_WINDOW}]))`;
}

/** 99th percentile of the time to roll back, seconds. */
export function rollbackSecondsP99(scope: Scope = {}): string {
  const buckets = selector(`${CONTROLLER_METRICS.rollbackSeconds}_bucket`, scope.matchers);
  return `histogram_quantile(0.99, sum by (le) (rate(${buckets}[${scope.window ?? '1h'}])))`;
}

/** Names of the recording rules; the level:metric:operation convention of the Prometheus docs. */
export const RECORDED = {
  requestRate: 'color:predict_requests:rate1m',
  errorRate: 'color:predict_errors:rate1m',
  errorRatio: 'color:predict_error_ratio:rate1m',
  serverErrorRatio: 'color:predict_server_error_ratio:rate1m',
  latencyP50: 'color:prediction_latency_seconds:p50_rate1m',
  latencyP95: 'color:prediction_latency_seconds:p95_rate1m',
  latencyP99: 'color:prediction_latency_seconds:p99_rate1m',
  predictionMean: 'color:prediction_value:mean_rate1m',
} as const;

export interface RecordingRule {
  record: string;
  expr: string;
}

/** Recording rules per color, in the order they are written to the rules file. */
export function recordingRules(): RecordingRule[] {
  return [
    { record: RECORDED.requestRate, expr: requestRate() },
    { record: RECORDED.errorRate, expr: errorRate() },
    { record: RECORDED.errorRatio, expr: errorRatio() },
    { record: RECORDED.serverErrorRatio, expr: serverErrorRatio() },
    { record: RECORDED.latencyP50, expr: latencyQuantile(0.5) },
    { record: RECORDED.latencyP95, expr: latencyQuantile(0.95) },
    { record: RECORDED.latencyP99, expr: latencyQuantile(0.99) },
    { record: RECORDED.predictionMean, expr: predictionMean() },
  ];
}

/** Alert thresholds; the rule unit tests in deploy/prometheus/tests are written against these values. */
export const ALERT_THRESHOLDS = {
  /** Share of prediction requests rejected or failed (caller mistakes included), per color. */
  errorRatio: 0.05,
  /** Share of prediction requests answered 5xx, per color: an instance failing on its own. */
  serverErrorRatio: 0.01,
  /** p99 latency of a prediction, seconds. */
  latencyP99Seconds: 0.25,
  /** Difference of mean predictions between colors, in the model's output unit (wine quality points). */
  predictionShift: 0.5,
} as const;

/** Release outcomes that mean the new version did not make it (see bgserve_releases_total). */
export const FAILED_OUTCOMES = ['rolled_back', 'failed'] as const;

export interface AlertDefinition {
  name: string;
  /** The watched quantity. The alert fires on `value comparison threshold`; tests query `value` alone. */
  value: string;
  comparison: '>' | '==';
  threshold: number;
  for: string;
  severity: 'warning' | 'critical';
  summary: string;
  description: string;
}

export function alertExpr(alert: AlertDefinition): string {
  return `${alert.value} ${alert.comparison} ${alert.threshold}`;
}

/** Mean prediction of blue minus green, as an absolute value (no color label: one series). */
export function predictionShift(): string {
  return `abs(${RECORDED.predictionMean}{color="blue"} - ignoring(color) ${RECORDED.predictionMean}{color="green"})`;
}

export function alertDefinitions(): AlertDefinition[] {
  const t = ALERT_THRESHOLDS;
  return [
    {
      name: 'BgserveErrorRatioHigh',
      value: RECORDED.errorRatio,
      comparison: '>',
      threshold: t.errorRatio,
      for: '2m',
      severity: 'warning',
      summary: 'More than 5% of predictions on {{ $labels.color }} are rejected or fail',
      description: 'Error ratio on {{ $labels.color }} is {{ $value | humanizePercentage }} over the last minute.',
    },
    {
      name: 'BgserveServerErrorsHigh',
      value: RECORDED.serverErrorRatio,
      comparison: '>',
      threshold: t.serverErrorRatio,
      for: '1m',
      severity: 'critical',
      summary: 'The {{ $labels.color }} instance answers more than 1% of predictions with a 5xx',
      description: '5xx ratio on {{ $labels.color }} is {{ $value | humanizePercentage }} over the last minute.',
    },
    {
      name: 'BgserveLatencyHigh',
      value: RECORDED.latencyP99,
      comparison: '>',
      threshold: t.latencyP99Seconds,
      for: '2m',
      severity: 'warning',
      summary: 'p99 prediction latency on {{ $labels.color }} is above 250ms',
      description: 'p99 latency on {{ $labels.color }} is {{ $value | humanizeDuration }}.',
    },
    {
      name: 'BgserveInstanceDown',
      value: `up{job=~"${JOBS.instances}|${JOBS.control}"}`,
      comparison: '==',
      threshold: 0,
      for: '1m',
      severity: 'critical',
      summary: 'Prometheus cannot scrape {{ $labels.job }} at {{ $labels.instance }}',
      description: 'Target {{ $labels.instance }} of job {{ $labels.job }} has not answered scrapes for 1 minute.',
    },
    {
      name: 'BgservePredictionShift',
      value: predictionShift(),
      comparison: '>',
      threshold: t.predictionShift,
      for: '5m',
      severity: 'warning',
      summary: 'Blue and green predict differently',
      description: 'Mean predictions of blue and green differ by {{ $value | printf "%.2f" }} for 5 minutes.',
    },
    {
      name: 'BgserveReleaseFailed',
      value: `sum by (strategy, outcome) (increase(${selector(CONTROLLER_METRICS.releases, `outcome=~"${FAILED_OUTCOMES.join('|')}"`)}[15m]))`,
      comparison: '>',
      threshold: 0,
      for: '0s',
      severity: 'warning',
      summary: 'A {{ $labels.strategy }} release ended {{ $labels.outcome }}',
      description: 'A release failed its analysis or was rolled back in the last 15 minutes; see `bgserve history`.',
    },
  ];
}
