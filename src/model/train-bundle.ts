/** Trains a forest from a CSV file and writes it as a bundle (forest.bin, golden.csv, manifest.json). */
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { writeBundle } from './bundle.js';
import { TrainDataError, checkTargetVaries, chooseColumns, classIndices, classesOf } from './columns.js';
import { type TrainedClassifier, trainClassifier } from './classifier.js';
import { CsvError, type Dataset, formatDataset, parseDataset, sha256Hex } from './csv.js';
import { serializeForest } from './forest.js';
import { type TrainOptions, type TrainedModel, trainModel } from './trainer.js';
import { MANIFEST_SCHEMA_VERSION, type Manifest, type Task } from './types.js';
import { WINE_TARGET } from './wine.js';

export const FOREST_FILE = 'forest.bin';
export const GOLDEN_FILE = 'golden.csv';

export interface TrainBundleOptions extends Partial<TrainOptions> {
  dataFile: string;
  outDir: string;
  /** Default: the name of outDir's parent folder (models/<name>/<version>). */
  name?: string;
  /** Default: the name of outDir. */
  version?: string;
  /** Default: every numeric column of dataFile but the target, in header order. */
  features?: readonly string[];
  /** Default: "quality", the wine table's label. */
  target?: string;
  /** Default: classification when the target holds text, else regression. */
  task?: Task;
  /**
   * A separate labelled table (same columns) for the metrics and the golden set: then every row of
   * dataFile trains and testFraction must be 0 (its default in that case).
   */
  testDataFile?: string;
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
    ...(manifest.training.split?.testData ? { testDataFile: manifest.training.split.testData.file } : {}),
    features: manifest.features.map((f) => f.name),
    target: manifest.target,
    task: manifest.task,
    createdAt: manifest.createdAt,
  };
}

export interface TrainBundleResult {
  manifest: Manifest;
  model: TrainedModel | TrainedClassifier;
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

async function readTable(file: string): Promise<{ text: string; sha256: string }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new CsvError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return { text: bytes.toString('utf8'), sha256: sha256Hex(bytes) };
}

interface Tables {
  features: string[];
  target: string;
  task: Task;
  data: Dataset & { sha256: string };
  test?: Dataset & { sha256: string };
}

/** Reads the training table (and the test table), choosing and checking their columns the same way. */
async function readTables(opts: TrainBundleOptions): Promise<Tables> {
  const table = await readTable(opts.dataFile);
  const { features, target, task } = chooseColumns(table.text, {
    target: opts.target ?? WINE_TARGET,
    features: opts.features,
    task: opts.task,
    source: opts.dataFile,
  });
  const textLabels = task === 'classification';
  const parse = (text: string, source: string) => parseDataset(text, { features, target, source, textLabels });
  const data = { ...parse(table.text, opts.dataFile), sha256: table.sha256 };
  let test: (Dataset & { sha256: string }) | undefined;
  if (opts.testDataFile !== undefined) {
    const t = await readTable(opts.testDataFile);
    // The same checks, so a test table with a text cell in a feature is refused as clearly as the data.
    chooseColumns(t.text, { target, features, task, source: opts.testDataFile });
    test = { ...parse(t.text, opts.testDataFile), sha256: t.sha256 };
  }
  if (!textLabels) checkTargetVaries(data.y!, target, opts.dataFile);
  return { features, target, task, data, ...(test ? { test } : {}) };
}

export async function trainBundle(opts: TrainBundleOptions): Promise<TrainBundleResult> {
  const createdAt = resolveCreatedAt(opts.createdAt);
  const { features, target, task, data, test } = await readTables(opts);
  const classifier = task === 'classification';
  let classes: string[] | undefined;
  if (classifier) {
    classes = classesOf(data.labelTexts!);
    if (classes.length < 2) {
      throw new TrainDataError(`${opts.dataFile}: target "${target}" has one class (${classes[0]} in every row): nothing to learn`);
    }
    data.y = classIndices(data.labelTexts!, classes, opts.dataFile, target);
    if (test) test.y = classIndices(test.labelTexts!, classes, opts.testDataFile!, target);
  }
  const trainOptions: Partial<TrainOptions> = {
    ...opts,
    // scikit-learn's defaults: every feature per split for a regressor, the square root for a classifier.
    maxFeatures: opts.maxFeatures ?? (classifier ? 'sqrt' : 'all'),
    ...(test ? { testFraction: opts.testFraction ?? 0 } : {}),
  };
  const started = performance.now();
  const model = classes ? trainClassifier(data, classes, trainOptions, test) : trainModel(data, trainOptions, test);
  const trainMs = performance.now() - started;
  const outDir = path.resolve(opts.outDir);
  const { options, params } = model;
  const scored = test ?? data;
  const manifest: Omit<Manifest, 'files'> = {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    name: opts.name ?? path.basename(path.dirname(outDir)),
    version: opts.version ?? path.basename(outDir),
    task,
    ...(classes ? { classes } : {}),
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
        algorithm: classifier ? 'random-forest-classifier' : 'random-forest-regressor',
        trees: params.trees,
        maxDepth: params.maxDepth,
        minSamplesLeaf: params.minSamplesLeaf,
        maxFeatures: options.maxFeatures,
        featuresPerSplit: params.featuresPerSplit,
        bootstrap: true,
        criterion: classifier ? 'gini' : 'squared_error',
      },
      split: {
        test: options.testFraction,
        trainRows: model.trainRows.length,
        testRows: model.testRows.length,
        ...(test && opts.testDataFile
          ? { testData: { file: recordedPath(opts.testDataFile), sha256: test.sha256, rows: test.nRows } }
          : {}),
      },
      metrics: model.metrics,
    },
    createdAt,
  };
  const written = await writeBundle(outDir, {
    manifest,
    files: {
      [FOREST_FILE]: serializeForest(model.forest),
      // A classifier's golden set keeps the labels as the table had them.
      [GOLDEN_FILE]: formatDataset(features, target, scored.x, scored.labelTexts ?? scored.y!, model.testRows),
    },
  });
  return { manifest: written, model, trainMs };
}
