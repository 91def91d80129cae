/**
 * import-onnx: an outside ONNX regressor (e.g. skl2onnx's export of Pipeline(StandardScaler,
 * RandomForestRegressor)) or tree-ensemble classifier (skl2onnx's RandomForestClassifier with zipmap off:
 * outputs label and probabilities; the classes from its TreeEnsembleClassifier) -> a servable bundle: manifest with the ordered features, checksums, and, when a CSV is
 * given, the features' ranges and the model's metrics on it. The model is loaded and checked against the
 * features before anything is written: a model whose input width is not the number of features is refused.
 */
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { BundleError, MANIFEST_FILE, loadBundle, writeBundle } from '../bundle.js';
import onnxProto from 'onnx-proto';
import { classIndices } from '../columns.js';
import { readDataset, sha256Hex } from '../csv.js';
import { classificationMetrics, regressionMetrics } from '../metrics.js';
import { fitScaler } from '../trainer.js';
import { MANIFEST_SCHEMA_VERSION, type FeatureSpec, type Manifest, type ModelMetrics } from '../types.js';
import { createOnnxRuntime, ONNX_MODEL_FILE } from './runtime.js';

export interface ImportOptions {
  name: string;
  version: string;
  /** Ordered feature names, as the model's input columns. */
  features?: readonly string[];
  /** A CSV whose header gives the features (every column but the target) and whose rows give ranges and metrics. */
  featuresFrom?: string;
  target?: string;
  /** Default: models/<name>/<version> under the working directory. */
  outDir?: string;
}

export interface ImportResult {
  dir: string;
  manifest: Manifest;
}

/** Features' header order in a CSV, without the target column. */
async function csvFeatures(file: string, target: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  const header = text.replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0];
  return header
    .split(',')
    .map((c) => c.trim().replace(/^"(.*)"$/, '$1'))
    .filter((c) => c !== '' && c !== target);
}

/** The graph's first input (the signature check then refuses a model with more than one). */
function onlyInput(bytes: Uint8Array): string {
  return onnxProto.onnx.ModelProto.decode(bytes).graph?.input?.[0]?.name ?? '';
}

/** Without data the ranges are unknown: the widest finite ones, so no value is reported out of range. */
function unknownStats(name: string): FeatureSpec {
  return { name, min: -Number.MAX_VALUE, max: Number.MAX_VALUE, mean: 0, std: 0 };
}

/**
 * A tree-ensemble classifier's classes and probability output, or null for a regressor. Refuses a classifier
 * whose probabilities reach the graph's outputs only through ZipMap (a sequence of maps, not a tensor).
 */
export function onnxClassifier(bytes: Uint8Array, where: string): { classes: string[]; output: string } | null {
  const graph = onnxProto.onnx.ModelProto.decode(bytes).graph;
  const node = graph?.node?.find((n) => n.opType === 'TreeEnsembleClassifier');
  if (!graph || !node) return null;
  const attr = (name: string) => node.attribute?.find((a) => a.name === name);
  const strings = attr('classlabels_strings')?.strings ?? [];
  const ints = attr('classlabels_int64s')?.ints ?? [];
  const classes = strings.length ? strings.map((s) => new TextDecoder().decode(s)) : ints.map((i) => String(i));
  const outputs = (graph.output ?? []).map((o) => o.name ?? '');
  const probabilities = node.output?.[1] ?? '';
  const output = outputs.includes('probabilities') ? 'probabilities' : outputs.find((o) => o === probabilities);
  if (!output) {
    const zipmap = graph.node?.some((n) => n.opType === 'ZipMap');
    throw new BundleError(
      'model_invalid',
      `${where}: the classifier's probabilities are not a graph output${zipmap ? ' (ZipMap turns them into maps)' : ''}: convert with skl2onnx's options={'zipmap': False}`,
    );
  }
  return { classes, output };
}

export async function importOnnxBundle(modelFile: string, opts: ImportOptions): Promise<ImportResult> {
  const target = opts.target ?? 'quality';
  if (!opts.features?.length && !opts.featuresFrom)
    throw new BundleError('features_mismatch', "give the model's input features: --features <names...> or --features-from <csv>");
  const features = opts.features?.length ? [...opts.features] : await csvFeatures(opts.featuresFrom!, target);
  const outDir = opts.outDir ?? path.join('models', opts.name, opts.version);
  const exists = await access(path.join(outDir, MANIFEST_FILE)).then(
    () => true,
    () => false,
  );
  if (exists) throw new BundleError('manifest_invalid', `refusing to overwrite the bundle in ${outDir}: remove it or choose --out`);
  const bytes = await readFile(modelFile);
  const classifier = onnxClassifier(bytes, modelFile);

  const data = opts.featuresFrom
    ? await readDataset(opts.featuresFrom, { features, target, labelled: false, textLabels: classifier !== null })
    : null;
  const all = data ? Int32Array.from({ length: data.nRows }, (_, i) => i) : null;
  const stats =
    data && all ? fitScaler(data.x, features.length, all).stats.map((s, j) => ({ name: features[j], ...s })) : features.map(unknownStats);

  const manifest: Omit<Manifest, 'files'> = {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    name: opts.name,
    version: opts.version,
    task: classifier ? 'classification' : 'regression',
    ...(classifier ? { classes: classifier.classes } : {}),
    format: 'onnx',
    modelFile: ONNX_MODEL_FILE,
    target,
    features: stats,
    // An skl2onnx pipeline carries its own Scaler.
    preprocessing: { kind: 'none' },
    training: {
      data: data
        ? { file: path.basename(opts.featuresFrom!), sha256: data.sha256, rows: data.nRows }
        : { file: path.basename(modelFile), sha256: sha256Hex(bytes), rows: 1 },
      params: {
        importedFrom: { file: path.basename(modelFile), sha256: sha256Hex(bytes) },
        metricsOn:
          data?.y || data?.labelTexts
            ? `every row of ${path.basename(opts.featuresFrom!)} (not held out)`
            : 'unknown: no labelled data given (zeros recorded)',
      },
      metrics: classifier ? { accuracy: 0, logLoss: 0, rows: 1 } : { rmse: 0, mae: 0, r2: 0, accuracy: 0, rows: 1 },
    },
    createdAt: new Date().toISOString(),
  };
  // Check the model against the features (and measure it on the data) before writing anything.
  // A classifier has two outputs: the probabilities are named, the input is the model's only one.
  const runtime = await createOnnxRuntime(
    { ...manifest, ...(classifier ? { onnx: { input: onlyInput(bytes), output: classifier.output } } : {}), files: {} },
    outDir,
    bytes,
  );
  let metrics: ModelMetrics | null = null;
  try {
    if (data?.y) metrics = regressionMetrics(data.y, await runtime.predict(data.x, data.nRows));
    else if (classifier && data?.labelTexts) {
      const labels = classIndices(data.labelTexts, classifier.classes, opts.featuresFrom!, target);
      metrics = classificationMetrics(labels, await runtime.predict(data.x, data.nRows), classifier.classes.length);
    }
  } finally {
    await runtime.close?.();
  }
  await writeBundle(outDir, {
    manifest: { ...manifest, onnx: runtime.io, training: { ...manifest.training, metrics: metrics ?? manifest.training.metrics } },
    files: { [ONNX_MODEL_FILE]: bytes },
  });
  const loaded = await loadBundle(outDir);
  await loaded.runtime.close?.();
  return { dir: outDir, manifest: loaded.manifest };
}
