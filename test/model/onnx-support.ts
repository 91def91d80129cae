import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeBundle } from '../../src/model/bundle.js';
import { formatDataset, readDataset, type Dataset } from '../../src/model/csv.js';
import { LEAF, serializeForest, type FlatForest } from '../../src/model/forest.js';
import { trainModel } from '../../src/model/trainer.js';
import { MANIFEST_SCHEMA_VERSION } from '../../src/model/types.js';
import { WINE_FEATURES, WINE_TARGET } from '../../src/model/wine.js';
import { ROOT } from '../support/processes.js';

/** Debian's interpreter: the `python3` first on PATH may not see Debian's python3-onnx. */
export const DEBIAN_PYTHON = '/usr/bin/python3';

const CHECK = [
  'import sys, onnx',
  'm = onnx.load(sys.argv[1])',
  'onnx.checker.check_model(m, full_check=True)',
  'print("onnx", onnx.__version__, "ir", m.ir_version, "opsets", sorted((o.domain, o.version) for o in m.opset_import))',
].join('\n');

export function debianOnnxAvailable(): boolean {
  return existsSync(DEBIAN_PYTHON);
}

/** Runs onnx.checker.check_model (full_check: shape inference too) on a file; rejects with its message. */
export async function runOnnxChecker(file: string): Promise<string> {
  const { stdout } = await promisify(execFile)(DEBIAN_PYTHON, ['-c', CHECK, file], { timeout: 60_000 });
  return stdout.trim();
}

/** Two hand-made trees over 3 features: a stump on f0 and a two-level tree on f2 then f1. */
export function tinyForest(): FlatForest {
  return {
    nTrees: 2,
    nFeatures: 3,
    treeOffsets: Int32Array.from([0, 3, 8]),
    feature: Int32Array.from([0, LEAF, LEAF, 2, 1, LEAF, LEAF, LEAF]),
    threshold: Float64Array.from([0.25, 0, 0, -0.5, 1.5, 0, 0, 0]),
    left: Int32Array.from([1, 0, 0, 4, 5, 0, 0, 0]),
    right: Int32Array.from([2, 0, 0, 7, 6, 0, 0, 0]),
    value: Float64Array.from([0, 3, 7, 0, 0, 1, 2, 40]),
  };
}

export const WINE_CSV = path.join(ROOT, 'data/wine-quality/winequality-red.csv');

/** The whole red-wine data set, labelled, in WINE_FEATURES order. */
export async function wineData(): Promise<Dataset & { sha256: string }> {
  return readDataset(WINE_CSV, { features: WINE_FEATURES, target: WINE_TARGET });
}

/**
 * Trains a small forest on the red-wine data and writes it as a native bundle (with a golden file), so the ONNX
 * tests do not depend on which committed bundles exist. Returns the bundle folder.
 */
export async function writeNativeWineBundle(
  dir: string,
  opts: { trees?: number; maxDepth?: number; version?: string } = {},
): Promise<string> {
  const data = await wineData();
  const model = trainModel(data, { trees: opts.trees ?? 20, maxDepth: opts.maxDepth ?? 10, seed: 7 });
  await writeBundle(dir, {
    manifest: {
      schemaVersion: MANIFEST_SCHEMA_VERSION,
      name: 'wine-quality',
      version: opts.version ?? '0.0.1-test',
      task: 'regression',
      format: 'native-forest',
      modelFile: 'forest.bin',
      target: WINE_TARGET,
      features: model.featureStats,
      preprocessing: { kind: 'standard-scaler', mean: model.scaler.mean, scale: model.scaler.scale },
      training: { data: { file: 'winequality-red.csv', sha256: data.sha256, rows: data.nRows }, seed: 7, metrics: model.metrics },
      goldenFile: 'golden.csv',
      createdAt: new Date().toISOString(),
    },
    files: {
      'forest.bin': serializeForest(model.forest),
      'golden.csv': formatDataset(WINE_FEATURES, WINE_TARGET, data.x, data.y!, model.testRows),
    },
  });
  return dir;
}

export function tempDir(prefix = 'bgserve-onnx-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}
