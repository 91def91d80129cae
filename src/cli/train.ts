import { type Command, InvalidArgumentError } from 'commander';
import { trainBundle } from '../model/train-bundle.js';
import { type MaxFeatures, DEFAULT_TRAIN_OPTIONS } from '../model/trainer.js';
import { formatMetrics } from '../model/metrics.js';

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

interface TrainFlags {
  data: string;
  out: string;
  name?: string;
  version?: string;
  seed: number;
  trees: number;
  maxDepth?: number;
  minSamplesLeaf: number;
  maxFeatures: MaxFeatures;
  createdAt?: string;
}

export function registerTrain(program: Command): void {
  const d = DEFAULT_TRAIN_OPTIONS;
  program
    .command('train')
    .description('Train a random-forest regressor on a labelled CSV and write a model bundle (held-out metrics in its manifest).')
    .requiredOption('--data <csv>', 'training data, with the data set header (features and "quality")')
    .requiredOption('--out <dir>', 'bundle folder to write, e.g. models/wine-quality/1.2.0')
    .option('--name <name>', "model name (default: the name of --out's parent folder)")
    .option('--version <version>', 'model version (default: the name of the --out folder)')
    .option('--seed <n>', 'seed of the 80/20 split, the bootstrap and the feature draws', integer, d.seed)
    .option('--trees <n>', 'number of trees', positiveInt, d.trees)
    .option('--max-depth <n>', 'maximum tree depth (default: unlimited)', positiveInt)
    .option('--min-samples-leaf <n>', 'minimum distinct samples per leaf', positiveInt, d.minSamplesLeaf)
    .option('--max-features <f>', 'features tried per split: all, sqrt, log2, a share in (0, 1] or a count', maxFeatures, d.maxFeatures)
    .option(
      '--created-at <iso>',
      'creation time written to the manifest (default: $SOURCE_DATE_EPOCH, else now); fix it for byte-identical bundles',
    )
    .action(async (flags: TrainFlags) => {
      const { manifest, trainMs } = await trainBundle({
        dataFile: flags.data,
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
          `held-out metrics:\n${formatMetrics(metrics)}\n`,
      );
    });
}
