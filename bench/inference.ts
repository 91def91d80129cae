/**
 * Inference micro-benchmark of the native runtime on the default bundle: µs per row for single rows and for
 * 1000-row batches, the median of several timed rounds after a warm-up. For a native bundle the same rounds
 * time, as the baseline in the same run, the runtime's plain walk: the trainer's own (forest.ts, predictScaledRow).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadBundle } from '../src/model/bundle.js';
import { readDataset } from '../src/model/csv.js';
import { deserializeForest } from '../src/model/forest.js';
import { NativeForestRuntime } from '../src/model/native-runtime.js';
import type { LoadedModel, ModelRuntime } from '../src/model/types.js';
import { median } from './stats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DEFAULT_BENCH_BUNDLE = path.join(ROOT, 'models/wine-quality/1.0.0');

export interface InferenceBenchResult {
  bundle: string;
  runtime: string;
  trees: number | null;
  /** Median wall-clock µs per call of a one-row predict. */
  singleUsPerRow: number;
  /** Median wall-clock µs per row of a 1000-row predict. */
  batchUsPerRow: number;
  /** The same in CPU time of this process: less sensitive to other processes sharing the cores. */
  singleCpuUsPerRow: number;
  batchCpuUsPerRow: number;
  /** The plain tree walk on the same rows (native bundles only): the baseline of the same run. */
  plain: { singleUsPerRow: number; batchUsPerRow: number } | null;
  rounds: number;
}

export interface InferenceBenchOptions {
  bundleDir?: string;
  rounds?: number;
  /** One-row calls per round. */
  singleCalls?: number;
  /** 1000-row calls per round. */
  batchCalls?: number;
}

/** Rows to predict: the bundle's own golden set (real, varied rows), repeated to the needed count. */
function benchRows(source: Float64Array, nSource: number, nf: number, n: number): Float64Array {
  const out = new Float64Array(n * nf);
  for (let r = 0; r < n; r++) out.set(source.subarray((r % nSource) * nf, ((r % nSource) + 1) * nf), r * nf);
  return out;
}

/** The same bundle on the runtime's plain walk (the trainer's), for a native bundle. */
async function plainWalk(bundleDir: string, model: LoadedModel): Promise<ModelRuntime | null> {
  if (model.manifest.format !== 'native-forest') return null;
  const forest = deserializeForest(await readFile(path.join(bundleDir, model.manifest.modelFile)));
  return new NativeForestRuntime(forest, model.manifest.preprocessing, 'plain');
}

async function timeRound(
  runtime: ModelRuntime,
  rows: Float64Array,
  nRows: number,
  nf: number,
  calls: number,
  rowsPerCall: number,
): Promise<{ wall: number; cpu: number }> {
  let sink = 0;
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let c = 0; c < calls; c++) {
    const offset = ((c * rowsPerCall) % (nRows - rowsPerCall + 1)) * nf;
    const out = await runtime.predict(rows.subarray(offset, offset + rowsPerCall * nf), rowsPerCall);
    sink += out[0];
  }
  const us = Number(process.hrtime.bigint() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (!Number.isFinite(sink)) throw new Error('non-finite prediction during the benchmark');
  const n = calls * rowsPerCall;
  return { wall: us / n, cpu: (cpu.user + cpu.system) / n };
}

export async function runInferenceBench(opts: InferenceBenchOptions = {}): Promise<InferenceBenchResult> {
  const bundleDir = opts.bundleDir ?? DEFAULT_BENCH_BUNDLE;
  const rounds = opts.rounds ?? 7;
  const singleCalls = opts.singleCalls ?? 2000;
  const batchCalls = opts.batchCalls ?? 5;
  const model = await loadBundle(bundleDir);
  try {
    const nf = model.featureNames.length;
    const golden = model.manifest.goldenFile;
    if (!golden) throw new Error(`bundle ${bundleDir} has no golden set to benchmark on`);
    const data = await readDataset(path.join(bundleDir, golden), { features: model.featureNames, target: model.manifest.target });
    const nRows = 2000;
    const rows = benchRows(data.x, data.nRows, nf, nRows);
    const single: { wall: number; cpu: number }[] = [];
    const batch: { wall: number; cpu: number }[] = [];
    const plain = await plainWalk(bundleDir, model);
    const plainSingle: number[] = [];
    const plainBatch: number[] = [];
    for (const runtime of [model.runtime, plain]) {
      if (!runtime) continue;
      await timeRound(runtime, rows, nRows, nf, singleCalls, 1); // warm-up: JIT and caches
      await timeRound(runtime, rows, nRows, nf, 2, 1000);
    }
    for (let r = 0; r < rounds; r++) {
      single.push(await timeRound(model.runtime, rows, nRows, nf, singleCalls, 1));
      batch.push(await timeRound(model.runtime, rows, nRows, nf, batchCalls, 1000));
      if (plain) {
        plainSingle.push((await timeRound(plain, rows, nRows, nf, singleCalls, 1)).wall);
        plainBatch.push((await timeRound(plain, rows, nRows, nf, batchCalls, 1000)).wall);
      }
    }
    const trees = model.manifest.training.params?.trees;
    return {
      bundle: `${model.manifest.name} ${model.manifest.version}`,
      runtime: model.runtime.kind,
      trees: typeof trees === 'number' ? trees : null,
      singleUsPerRow: median(single.map((m) => m.wall)),
      batchUsPerRow: median(batch.map((m) => m.wall)),
      singleCpuUsPerRow: median(single.map((m) => m.cpu)),
      batchCpuUsPerRow: median(batch.map((m) => m.cpu)),
      plain: plain ? { singleUsPerRow: median(plainSingle), batchUsPerRow: median(plainBatch) } : null,
      rounds,
    };
  } finally {
    await model.runtime.close?.();
  }
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const result = await runInferenceBench({ bundleDir: argv[0] });
  process.stdout.write(
    `inference (${result.bundle}, ${result.runtime}, ${result.trees ?? '?'} trees, median of ${result.rounds} rounds): ` +
      `single row ${result.singleUsPerRow.toFixed(2)} µs (cpu ${result.singleCpuUsPerRow.toFixed(2)}), ` +
      `1000-row batch ${result.batchUsPerRow.toFixed(2)} µs/row (cpu ${result.batchCpuUsPerRow.toFixed(2)})\n` +
      (result.plain
        ? `  baseline, the plain tree walk in the same rounds: single row ${result.plain.singleUsPerRow.toFixed(2)} µs ` +
          `(${(result.plain.singleUsPerRow / result.singleUsPerRow).toFixed(2)}x slower), batch ${result.plain.batchUsPerRow.toFixed(2)} µs/row ` +
          `(${(result.plain.batchUsPerRow / result.batchUsPerRow).toFixed(2)}x slower)\n`
        : ''),
  );
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
