/** Trains a forest from a CSV file and writes it as a bundle (forest.bin, golden.csv, manifest.json). */
import path from 'node:path';
import { writeBundle } from './bundle.js';
import { formatDataset, readDataset } from './csv.js';
import { serializeForest } from './forest.js';
import { type TrainOptions, type TrainedModel, trainModel } from './trainer.js';
import { MANIFEST_SCHEMA_VERSION, type Manifest } from './types.js';
import { WINE_FEATURES, WINE_TARGET } from './wine.js';

export const FOREST_FILE = 'forest.bin';
export const GOLDEN_FILE = 'golden.csv';

export interface TrainBundleOptions extends Partial<TrainOptions> {
  dataFile: string;
  outDir: string;
  /** Default: the name of outDir's parent folder (models/<name>/<version>). */
  name?: string;
  /** Default: the name of outDir. */
  version?: string;
  features?: readonly string[];
  target?: string;
  /**
   * The manifest's creation time. Pass it (or set SOURCE_DATE_EPOCH, the reproducible-builds convention) to
   * make the whole bundle, manifest included, byte-identical across runs; otherwise the current time.
   */
  createdAt?: string;
}

/**
 * The options a bundle was trained with, as its manifest records them: trainBundle with these and the same
 * data gives the same bundle (what the reproducibility test and the training benchmark rely on).
 */
export function recordedTrainOptions(manifest: Manifest): Omit<TrainBundleOptions, 'dataFile' | 'outDir'> {
  const params = manifest.training.params ?? {};
  return {
    seed: manifest.training.seed,
    trees: params.trees as number,
    maxDepth: params.maxDepth as number | null,
    minSamplesLeaf: params.minSamplesLeaf as number,
    maxFeatures: params.maxFeatures as TrainOptions['maxFeatures'],
    testFraction: manifest.training.split?.test,
    createdAt: manifest.createdAt,
  };
}

export interface TrainBundleResult {
  manifest: Manifest;
  model: TrainedModel;
  /** Wall time of the training itself (not the CSV reading or the writing). */
  trainMs: number;
}

export function resolveCreatedAt(createdAt: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (createdAt !== undefined) {
    const t = Date.parse(createdAt);
    if (Number.isNaN(t)) throw new Error(`createdAt must be an ISO date-time, got ${JSON.stringify(createdAt)}`);
    return new Date(t).toISOString();
  }
  const epoch = env.SOURCE_DATE_EPOCH;
  if (epoch !== undefined && epoch !== '') {
    if (!/^\d+$/.test(epoch)) throw new Error(`SOURCE_DATE_EPOCH must be whole seconds, got ${JSON.stringify(epoch)}`);
    return new Date(Number(epoch) * 1000).toISOString();
  }
  return new Date().toISOString();
}

/** A path as recorded in manifests: relative to the working directory when inside it, with "/" separators. */
function recordedPath(file: string): string {
  const rel = path.relative(process.cwd(), path.resolve(file));
  const shown = rel.startsWith('..') || path.isAbsolute(rel) ? path.resolve(file) : rel;
  return shown.split(path.sep).join('/');
}

export async function trainBundle(opts: TrainBundleOptions): Promise<TrainBundleResult> {
  const features = opts.features ?? WINE_FEATURES;
  const target = opts.target ?? WINE_TARGET;
  const createdAt = resolveCreatedAt(opts.createdAt);
  const data = await readDataset(opts.dataFile, { features, target });
  const started = performance.now();
  const model = trainModel(data, opts);
  const trainMs = performance.now() - started;
  const outDir = path.resolve(opts.outDir);
  const { options, params } = model;
  const manifest: Omit<Manifest, 'files'> = {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    name: opts.name ?? path.basename(path.dirname(outDir)),
    version: opts.version ?? path.basename(outDir),
    task: 'regression',
    format: 'native-forest',
    modelFile: FOREST_FILE,
    goldenFile: GOLDEN_FILE,
    target,
    features: model.featureStats,
    preprocessing: { kind: 'standard-scaler', mean: model.scaler.mean, scale: model.scaler.scale },
    training: {
      data: { file: recordedPath(opts.dataFile), sha256: data.sha256, rows: data.nRows },
      seed: options.seed,
      params: {
        algorithm: 'random-forest-regressor',
        trees: params.trees,
        maxDepth: params.maxDepth,
        minSamplesLeaf: params.minSamplesLeaf,
        maxFeatures: options.maxFeatures,
        featuresPerSplit: params.featuresPerSplit,
        bootstrap: true,
        criterion: 'squared_error',
      },
      split: { test: options.testFraction, trainRows: model.trainRows.length, testRows: model.testRows.length },
      metrics: model.metrics,
    },
    createdAt,
  };
  const written = await writeBundle(outDir, {
    manifest,
    files: {
      [FOREST_FILE]: serializeForest(model.forest),
      [GOLDEN_FILE]: formatDataset(features, target, data.x, data.y!, model.testRows),
    },
  });
  return { manifest: written, model, trainMs };
}
