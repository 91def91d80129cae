/** The controller's own metrics (CONTROLLER_METRICS), in a registry the control API merges into /metrics. */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { COLORS } from '../config/defaults.js';
import { CONTROLLER_METRICS } from '../config/metric-names.js';
import type { ReleaseState, ReleaseStatus, Strategy, Weights } from '../release/types.js';

const STRATEGIES: readonly Strategy[] = ['bluegreen', 'canary'];
const OUTCOMES: readonly Exclude<ReleaseStatus, 'running' | 'paused'>[] = ['succeeded', 'failed', 'rolled_back', 'aborted'];

export class ControllerMetrics {
  private readonly phase: Gauge<'release_id' | 'strategy' | 'phase'>;
  private readonly releases: Counter<'strategy' | 'outcome'>;
  readonly rollbackSeconds: Histogram;
  private readonly weight: Gauge<'color'>;
  private readonly setWeights: (weights: Weights) => void;
  private phaseLabels?: Record<'release_id' | 'strategy' | 'phase', string>;

  /**
   * `registry`: e.g. the control API's, so the metrics appear on its /metrics. `currentWeights`: the traffic
   * driver's weights, read at scrape time so the gauge also shows weights set by hand (`bgserve weights`).
   */
  constructor(
    readonly registry: Registry = new Registry(),
    currentWeights?: () => Weights,
  ) {
    const registers = [registry];
    this.phase = new Gauge({
      name: CONTROLLER_METRICS.releasePhase,
      help: '1 for the current phase of the current release.',
      labelNames: ['release_id', 'strategy', 'phase'],
      registers,
    });
    this.releases = new Counter({
      name: CONTROLLER_METRICS.releases,
      help: 'Finished releases by outcome (succeeded | rolled_back | aborted | failed).',
      labelNames: ['strategy', 'outcome'],
      registers,
    });
    // Every outcome starts at 0: alerts use increase(), which misses a series' first sample.
    for (const strategy of STRATEGIES) for (const outcome of OUTCOMES) this.releases.labels(strategy, outcome).inc(0);
    this.rollbackSeconds = new Histogram({
      name: CONTROLLER_METRICS.rollbackSeconds,
      help: 'Seconds from a failing verdict or rollback command to 100% on the stable color.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    const setWeights = (weights: Weights) => {
      for (const c of COLORS) this.weight.labels(c).set(weights[c]);
    };
    this.weight = new Gauge({
      name: CONTROLLER_METRICS.weight,
      help: "Traffic weight in force, percent, as the controller's traffic driver reports it.",
      labelNames: ['color'],
      registers,
      collect: currentWeights ? () => setWeights(currentWeights()) : undefined,
    });
    this.setWeights = setWeights;
  }

  /** Shows the release's phase (or its final status) as the one current phase series. */
  release(state: ReleaseState): void {
    if (this.phaseLabels) this.phase.remove(this.phaseLabels);
    const phase = state.status === 'running' ? state.phase : state.status;
    this.phaseLabels = { release_id: state.spec.id, strategy: state.spec.strategy, phase };
    this.phase.set(this.phaseLabels, 1);
  }

  finished(state: ReleaseState): void {
    this.releases.labels(state.spec.strategy, state.status).inc();
  }

  weights(weights: Weights): void {
    this.setWeights(weights);
  }
}
