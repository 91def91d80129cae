/**
 * Two instances in memory, seen through the controller's ports: the admin side (load a bundle, what a color
 * serves, readiness) and the router's preview route (a batch of rows sent to one color). A load swaps the
 * color's model to the identity the catalog gives the bundle; the preview route answers with that version.
 */
import type { Color } from '../../../src/config/defaults.js';
import type { InstanceAdminPort, LoadOutcome, ModelIdentity, PreviewAnswer, PreviewPort } from '../../../src/controller/ports.js';

export interface FakeInstancesOptions {
  /** What each color serves at the start (null: it does not answer). */
  serving: Record<Color, ModelIdentity | null>;
  /** The model each bundle folder holds; a load of any other folder is refused. */
  catalog: Record<string, ModelIdentity>;
}

export class FakeInstances implements InstanceAdminPort {
  readonly serving: Record<Color, ModelIdentity | null>;
  readonly catalog: Record<string, ModelIdentity>;
  private readonly readiness: Record<Color, boolean> = { blue: true, green: true };
  /** Every load asked for, in order. */
  readonly loads: Array<{ color: Color; bundle: string }> = [];
  /** The next load's answer, when a test wants it refused. */
  refuseNextLoad: string | null = null;
  /** How many times the controller asked for replicas to be healed. */
  heals = 0;

  constructor(opts: FakeInstancesOptions) {
    this.serving = { ...opts.serving };
    this.catalog = opts.catalog;
  }

  setReady(color: Color, ready: boolean): void {
    this.readiness[color] = ready;
  }

  async load(color: Color, bundle: string): Promise<LoadOutcome> {
    this.loads.push({ color, bundle });
    const model = this.catalog[bundle];
    if (this.refuseNextLoad !== null) {
      const error = this.refuseNextLoad;
      this.refuseNextLoad = null;
      return { ok: false, error };
    }
    if (!model) return { ok: false, error: `422 bundle_refused: no bundle at ${bundle}` };
    this.serving[color] = model;
    return { ok: true, model };
  }

  async model(color: Color): Promise<ModelIdentity | null> {
    return this.serving[color];
  }

  async ready(color: Color): Promise<boolean> {
    return this.readiness[color] && this.serving[color] !== null;
  }

  async heal(): Promise<Array<{ color: Color; address: string; ok: boolean }>> {
    this.heals++;
    return [];
  }
}

/** Predictions per color for a batch of rows (default: the same constant for every row and color). */
export type Predict = (color: Color, rows: Array<Record<string, number>>) => number[];

export class FakePreview implements PreviewPort {
  /** Every batch asked for, by color. */
  readonly batches: Color[] = [];

  constructor(
    private readonly instances: FakeInstances,
    public predict: Predict = (_color, rows) => rows.map(() => 5.6),
  ) {}

  async predictBatch(color: Color, rows: Array<Record<string, number>>): Promise<PreviewAnswer> {
    this.batches.push(color);
    const model = this.instances.serving[color];
    if (!model) throw new Error(`preview batch on ${color} failed: connect ECONNREFUSED`);
    return { predictions: this.predict(color, rows), model: { name: model.name, version: model.version }, color };
  }
}
