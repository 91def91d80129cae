/**
 * The model an instance serves and the instance's readiness. A request reads `holder.current` once and
 * uses that ServedModel to the end, so a swap (one reference assignment) never mixes two models in one answer.
 */
import type { LoadedModel } from '../model/types.js';
import type { InstanceMetrics, ModelIdentity, ModelSeries } from './metrics.js';
import { InputReader } from './validation.js';
import { withTestFaults } from './faults.js';

/** serving: ready; loading: an admin load is under way (the current model still answers); draining: shutting down. */
export type InstanceState = 'serving' | 'loading' | 'draining';

/** A loaded model with everything derived from it that answering needs, made once before it serves. */
export class ServedModel {
  readonly identity: ModelIdentity;
  /** The `model` object of every answer, shared rather than rebuilt per request. */
  readonly answerModel: { name: string; version: string };
  readonly input: InputReader;
  readonly series: ModelSeries;
  private inflight = 0;
  private retired = false;

  constructor(
    readonly model: LoadedModel,
    metrics: InstanceMetrics,
    batchLimit: number,
  ) {
    const { name, version, format } = model.manifest;
    this.identity = { name, version, format, sha256: model.sha256 };
    this.answerModel = { name, version };
    this.input = new InputReader(model.manifest.features, batchLimit);
    this.series = metrics.forModel(this.identity);
  }

  get featureNames(): readonly string[] {
    return this.model.featureNames;
  }

  /**
   * Runs the runtime. Asynchronous runtimes (ONNX) are counted while running so that a model swapped out
   * is closed only once its last prediction is done.
   */
  predict(rows: Float64Array, nRows: number): Float64Array | Promise<Float64Array> {
    const out = this.model.runtime.predict(rows, nRows);
    if (out instanceof Float64Array) return out;
    this.inflight++;
    return out.finally(() => {
      this.inflight--;
      if (this.retired && this.inflight === 0) void this.close();
    });
  }

  /** Called once the model no longer serves new requests. */
  retire(): void {
    this.retired = true;
    if (this.inflight === 0) void this.close();
  }

  private async close(): Promise<void> {
    await this.model.runtime.close?.();
  }
}

export class ModelHolder {
  private served: ServedModel;
  private loadingCount = 0;
  private draining = false;
  private readonly predictionRoutes = new Set<string>();

  constructor(
    model: LoadedModel,
    private readonly metrics: InstanceMetrics,
    readonly batchLimit: number,
  ) {
    this.served = new ServedModel(withTestFaults(model), metrics, batchLimit); // test-only faults (release tests): faults.ts
    metrics.setServing(this.served.identity);
  }

  get current(): ServedModel {
    return this.served;
  }

  get state(): InstanceState {
    if (this.draining) return 'draining';
    return this.loadingCount > 0 ? 'loading' : 'serving';
  }

  get ready(): boolean {
    return this.state === 'serving';
  }

  /** Marks a load as started; false when another load is under way or the instance drains. */
  beginLoad(): boolean {
    if (this.loadingCount > 0 || this.draining) return false;
    this.loadingCount++;
    return true;
  }

  endLoad(): void {
    this.loadingCount = Math.max(0, this.loadingCount - 1);
  }

  /** A prediction route's series exist from the start (at 0) for every model served, so rate() works at once. */
  declarePredictionRoute(route: string): void {
    this.predictionRoutes.add(route);
    this.served.series.route(route);
  }

  /** Makes `model` the one answering requests; returns the model it replaced. */
  swap(model: LoadedModel): ServedModel {
    const next = new ServedModel(withTestFaults(model), this.metrics, this.batchLimit); // test-only faults: faults.ts
    for (const route of this.predictionRoutes) next.series.route(route);
    const previous = this.served;
    this.served = next;
    this.metrics.setServing(next.identity);
    previous.retire();
    return previous;
  }

  startDraining(): void {
    this.draining = true;
  }
}
