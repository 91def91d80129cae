/**
 * Every metric bgserve exports, by the component that owns it. The instance metrics keep the original
 * system's names; rules, dashboards and analysis queries import these rather than spelling them again.
 */
export const INSTANCE_METRICS = {
  /** counter {color, model_version, route, status, source}: prediction requests answered (any status). */
  requests: 'predict_requests_total',
  /** histogram {color, model_version, route, source}: time spent in inference + validation, seconds. */
  latency: 'prediction_latency_seconds',
  /** counter {color, model_version, route, reason, source}: rejected or failed prediction requests. */
  errors: 'predict_errors_total',
  /** histogram {color, model_version, source}: predicted values, to compare colors. source: live | preview | mirror. */
  predictionValue: 'prediction_value',
  /** gauge {color, model_name, model_version, sha256, format}: 1 for the bundle being served. */
  modelInfo: 'model_info',
  /** counter {color, outcome}: admin model loads (loaded | refused). */
  modelLoads: 'model_loads_total',
} as const;

export const ROUTER_METRICS = {
  /** counter {color, code}: requests the router answered, by upstream color and status code. */
  requests: 'bgserve_router_requests_total',
  /** gauge {color}: current traffic weight, percent. */
  weight: 'bgserve_router_weight',
  /** histogram {color}: upstream response time seen by the router, seconds. */
  upstreamLatency: 'bgserve_router_upstream_latency_seconds',
  /** counter {from, to}: predictions retried on the other color. */
  retries: 'bgserve_router_retries_total',
  /** counter {color, outcome}: mirrored (shadow) requests. */
  mirrored: 'bgserve_router_mirror_requests_total',
  /** gauge {color}: 1 when the router considers the color healthy. */
  upstreamHealthy: 'bgserve_router_upstream_healthy',
} as const;

export const CONTROLLER_METRICS = {
  /** gauge {release_id, strategy, phase}: 1 for the current phase of the current release. */
  releasePhase: 'bgserve_release_phase',
  /** counter {strategy, outcome}: finished releases (succeeded | rolled_back | aborted). */
  releases: 'bgserve_releases_total',
  /** histogram: seconds from a failing verdict or rollback command to 100% on the stable color. */
  rollbackSeconds: 'bgserve_rollback_seconds',
  /** gauge {color}: weight the controller has set, percent. */
  weight: 'bgserve_controller_weight',
  /** counter: requests of shadow phases whose stable and mirrored answers were paired (by request id). */
  shadowPairs: 'bgserve_shadow_pairs_total',
  /** gauge: share of the current shadow comparison's pairs within the agreement tolerance. */
  shadowAgreement: 'bgserve_shadow_agreement_ratio',
  /** gauge: share of its pairs whose rounded predictions (quality class) are the same. */
  shadowClassAgreement: 'bgserve_shadow_class_agreement_ratio',
  /** gauge: 95th percentile of |new - stable| over its pairs. */
  shadowAbsDeltaP95: 'bgserve_shadow_abs_delta_p95',
} as const;
