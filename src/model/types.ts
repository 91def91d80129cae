/** The bundle contract shared by the trainer, the runtimes, the loader and the service. */

export const MANIFEST_SCHEMA_VERSION = 1;

export type BundleFormat = 'native-forest' | 'onnx';

export interface FeatureSpec {
  /** Exactly the data set's header name, e.g. "fixed acidity". */
  name: string;
  /** Range, mean and standard deviation seen in the training rows. */
  min: number;
  max: number;
  mean: number;
  std: number;
}

export type Preprocessing = { kind: 'standard-scaler'; mean: number[]; scale: number[] } | { kind: 'none' };

export interface RegressionMetrics {
  rmse: number;
  mae: number;
  r2: number;
  /** Share of rows whose rounded prediction equals the label. */
  accuracy: number;
  rows: number;
}

export interface ClassificationMetrics {
  /** Share of rows whose most probable class is the label. */
  accuracy: number;
  /** Mean -ln(probability given to the label), probabilities clipped at 1e-15. */
  logLoss: number;
  rows: number;
}

export type ModelMetrics = RegressionMetrics | ClassificationMetrics;

export type Task = 'regression' | 'classification';

export interface Manifest {
  schemaVersion: typeof MANIFEST_SCHEMA_VERSION;
  name: string;
  version: string;
  task: Task;
  /**
   * classification only: the class labels, in the order of the model's probability outputs (sorted, as
   * scikit-learn's classes_). The model predicts one probability per class; the answer's class is the first
   * most probable one.
   */
  classes?: string[];
  format: BundleFormat;
  /** Model file inside the bundle, relative to the bundle folder (e.g. "forest.bin", "model.onnx"). */
  modelFile: string;
  target: string;
  /** Ordered input features: row vectors are laid out in this order. */
  features: FeatureSpec[];
  preprocessing: Preprocessing;
  training: {
    data: { file: string; sha256: string; rows: number };
    seed?: number;
    params?: Record<string, unknown>;
    /**
     * What the metrics and the golden set were computed on. Without `testData`: the `test` share of
     * `data`'s rows, drawn by `seed` (trainer.splitRows), the rest trained. With `testData`: every row of
     * that separate table (`test` is 0), and every row of `data` trained.
     */
    split?: {
      test: number;
      trainRows: number;
      testRows: number;
      testData?: { file: string; sha256: string; rows: number };
    };
    /** Held-out metrics: RegressionMetrics, or ClassificationMetrics for a classifier. */
    metrics: ModelMetrics;
  };
  /** format 'onnx' only: the graph's input and output names (absent: the model's only input and output). */
  onnx?: { input: string; output: string };
  /**
   * Held-out rows with labels (CSV with the data set's header), listed in `files`: the release engine's
   * golden-set quality gate. Optional: imported bundles may have none.
   */
  goldenFile?: string;
  /** sha256 (hex) of every file of the bundle except manifest.json, by relative path. */
  files: Record<string, string>;
  createdAt: string;
}

/** What every inference runtime offers: rows in, one prediction per row (a classifier: one per class) out. */
export interface ModelRuntime {
  readonly kind: BundleFormat;
  readonly nFeatures: number;
  /** Values per row: absent or 1 for a regressor; a classifier's number of classes (its probabilities). */
  readonly nOutputs?: number;
  /**
   * rows is row-major, nRows x nFeatures, in manifest feature order and raw (unscaled) units. The result is
   * nRows x nOutputs, row-major.
   */
  predict(rows: Float64Array, nRows: number): Float64Array | Promise<Float64Array>;
  close?(): Promise<void>;
}

/** A verified bundle, ready to serve. */
export interface LoadedModel {
  readonly dir: string;
  readonly manifest: Manifest;
  /** sha256 of manifest.json: identifies the exact bundle served. */
  readonly sha256: string;
  readonly featureNames: readonly string[];
  readonly runtime: ModelRuntime;
}
