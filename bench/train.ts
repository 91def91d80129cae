/**
 * Training time of the default bundle: `bgserve train` with the options recorded in
 * models/wine-quality/1.0.0/manifest.json, median of a few runs (the target is <= 10 s on this kind of machine).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Manifest, RegressionMetrics } from '../src/model/types.js';
import { recordedTrainOptions, trainBundle } from '../src/model/train-bundle.js';
import { median } from './stats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BUNDLE = path.join(ROOT, 'models/wine-quality/1.0.0');
const RUNS = 3;

const recorded = JSON.parse(await readFile(path.join(BUNDLE, 'manifest.json'), 'utf8')) as Manifest;
const params = recorded.training.params as Record<string, unknown>;
const root = await mkdtemp(path.join(tmpdir(), 'bgserve-bench-train-'));
try {
  const times: number[] = [];
  let rmse = NaN;
  for (let run = 0; run < RUNS; run++) {
    const { trainMs, manifest } = await trainBundle({
      dataFile: path.join(ROOT, recorded.training.data.file),
      outDir: path.join(root, String(run), 'wine-quality', '1.0.0'),
      ...recordedTrainOptions(recorded),
    });
    times.push(trainMs);
    rmse = (manifest.training.metrics as RegressionMetrics).rmse;
  }
  process.stdout.write(
    `train (wine-quality 1.0.0 options: ${String(params.trees)} trees, ${recorded.training.split!.trainRows} rows): ` +
      `median ${(median(times) / 1000).toFixed(2)} s of ${RUNS} runs (min ${(Math.min(...times) / 1000).toFixed(2)} s), held-out RMSE ${rmse.toFixed(4)}\n`,
  );
} finally {
  await rm(root, { recursive: true, force: true });
}
