import { type Command, InvalidArgumentError, Option } from 'commander';
import { trainBundle } from '../model/train-bundle.js';
import { type MaxFeatures, DEFAULT_TRAIN_OPTIONS } from '../model/trainer.js';
import { formatMetrics } from '../model/metrics.js';
import { TrainDataError } from '../model/columns.js';
import { CsvError } from '../model/csv.js';
import { TrainOptionsError } from '../model/trainer.js';
import { WINE_TARGET } from '../model/wine.js';
import type { Task } from '../model/types.js';

/** Exit code of a train refused for its data or its options (1 stays for unexpected failures). */
export const TRAIN_REFUSED_EXIT = 2;

function positiveInt(raw: string): number {
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new InvalidArgumentError('must be a positive integer');
  return Number(raw);
}

function integer(raw: string): number {
  if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(Number(raw))) throw new InvalidArgumentError('must be an integer');
  return Number(raw);
}

function maxFeatures(raw: string): MaxFeatures {
  if (raw === 'all' || raw === 'sqrt' || raw === 'log2') return raw;
  const v = Number(raw);
  if (raw.trim() === '' || !(v > 0) || (v > 1 && !Number.isInteger(v))) {
    throw new InvalidArgumentError('must be all, sqrt, log2, a share in (0, 1] or an integer count');
  }
  return v;
}

/** A share of rows to hold out: 0 (only with --test-data) up to, not including, 1. */
function holdout(raw: string): number {
  const v = Number(raw);
  if (raw.trim() === '' || !(v >= 0 && v < 1)) throw new InvalidArgumentError('must be a share in [0, 1), e.g. 0.2');
  return v;
}

/** Comma-separated column names, kept exactly (spaces inside names are part of them). */
function columnList(raw: string): string[] {
  const names = raw.split(',');
  if (names.some((n) => n.trim() === '')) throw new InvalidArgumentError('must be comma-separated column names, none empty');
  return names;
}

interface TrainFlags {
  data: string;
  target: string;
  features?: string[];
  testData?: string;
  holdout?: number;
  out: string;
  name?: string;
  version?: string;
  seed: number;
  trees: number;
  maxDepth?: number;
  minSamplesLeaf: number;
  maxFeatures?: MaxFeatures;
  task?: Task;
  createdAt?: string;
}

export function registerTrain(program: Command): void {
  const d = DEFAULT_TRAIN_OPTIONS;
  program
    .command('train')
    .description(
      'Train a random-forest regressor or classifier on a labelled CSV and write a model bundle (held-out metrics in its manifest).',
    )
    .requiredOption('--data <csv>', 'training data: a CSV with a header row, comma-separated, numeric cells')
    .option('--target <column>', 'the column to predict', WINE_TARGET)
    .addOption(
      new Option('--task <task>', 'default: classification when the target holds text, else regression').choices([
        'regression',
        'classification',
      ]),
    )
    .option('--features <a,b,...>', 'input columns, comma-separated (default: every other numeric column)', columnList)
    .option('--test-data <csv>', 'separate labelled CSV for the metrics and the golden set (then all --data rows train)')
    .option('--holdout <share>', 'share of --data rows held out for the metrics (default 0.2; 0 only with --test-data)', holdout)
    .requiredOption('--out <dir>', 'bundle folder to write, e.g. models/wine-quality/1.2.0')
    .option('--name <name>', "model name (default: the name of --out's parent folder)")
    .option('--version <version>', 'model version (default: the name of the --out folder)')
    .option('--seed <n>', 'seed of the 80/20 split, the bootstrap and the feature draws', integer, d.seed)
    .option('--trees <n>', 'number of trees', positiveInt, d.trees)
    .option('--max-depth <n>', 'maximum tree depth (default: unlimited)', positiveInt)
    .option('--min-samples-leaf <n>', 'minimum distinct samples per leaf', positiveInt, d.minSamplesLeaf)
    .option(
      '--max-features <f>',
      'features tried per split: all, sqrt, log2, a share in (0, 1] or a count (default: all for a regression, sqrt for a classification)',
      maxFeatures,
    )
    .option(
      '--created-at <iso>',
      'creation time written to the manifest (default: $SOURCE_DATE_EPOCH, else now); fix it for byte-identical bundles',
    )
    .action(async (flags: TrainFlags) => {
      try {
        await train(flags);
      } catch (err) {
        if (!(err instanceof TrainDataError || err instanceof CsvError || err instanceof TrainOptionsError)) throw err;
        process.stderr.write(`bgserve: ${err.message.replace(/\s*\n\s*/g, ' ')}\n`);
        process.exitCode = TRAIN_REFUSED_EXIT;
      }
    });
}

async function train(flags: TrainFlags): Promise<void> {
  if (flags.testData === undefined && flags.holdout === 0) {
    throw new TrainOptionsError('--holdout 0 leaves nothing to score: give --test-data <csv>, or a share such as 0.2');
  }
  if (flags.testData !== undefined && flags.holdout !== undefined && flags.holdout !== 0) {
    throw new TrainOptionsError('with --test-data every --data row trains: leave out --holdout (or give 0)');
  }
  const { manifest, trainMs } = await trainBundle({
    dataFile: flags.data,
    target: flags.target,
    task: flags.task,
    features: flags.features,
    testDataFile: flags.testData,
    ...(flags.holdout !== undefined ? { testFraction: flags.holdout } : {}),
    outDir: flags.out,
    name: flags.name,
    version: flags.version,
    seed: flags.seed,
    trees: flags.trees,
    maxDepth: flags.maxDepth ?? null,
    minSamplesLeaf: flags.minSamplesLeaf,
    maxFeatures: flags.maxFeatures,
    createdAt: flags.createdAt,
  });
  const { split, metrics } = manifest.training;
  process.stdout.write(
    `trained ${manifest.name} ${manifest.version} in ${(trainMs / 1000).toFixed(2)} s ` +
      `(${split?.trainRows} training rows) -> ${flags.out}\n` +
      `${split?.testData ? `metrics on ${flags.testData}` : 'held-out metrics'}:\n${formatMetrics(metrics)}\n`,
  );
}
