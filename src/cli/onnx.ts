/**
 * export-onnx and import-onnx. The modules load on use: export needs onnx-proto (protobufjs), and
 * neither should weigh on `serve`'s start-up.
 */
import type { Command } from 'commander';
import { isClassificationMetrics } from '../model/metrics.js';
import type { ModelMetrics } from '../model/types.js';

function metricsSummary(m: ModelMetrics): string {
  return isClassificationMetrics(m)
    ? `accuracy ${m.accuracy.toFixed(4)}, log-loss ${m.logLoss.toFixed(4)}`
    : `rmse ${m.rmse.toFixed(4)}, r2 ${m.r2.toFixed(4)}`;
}

interface ExportFlags {
  out?: string;
  version?: string;
}

interface ImportFlags {
  features?: string[];
  featuresFrom?: string;
  name: string;
  version: string;
  out?: string;
  target: string;
}

export function registerOnnx(program: Command): void {
  program
    .command('export-onnx')
    .description(
      'Write a native-forest bundle as an ONNX model (ai.onnx.ml Scaler + TreeEnsembleRegressor, as skl2onnx does) in a bundle of its own.',
    )
    .argument('<bundle>', 'native-forest bundle folder, e.g. models/wine-quality/1.0.0')
    .option('--out <dir>', 'bundle folder to write (default: beside the source, named by the new version)')
    .option('--version <version>', 'version of the new bundle (default: the source version + "-onnx")')
    .action(async (bundle: string, flags: ExportFlags) => {
      const { exportOnnxBundle } = await import('../model/onnx/export.js');
      const r = await exportOnnxBundle(bundle, { outDir: flags.out, version: flags.version });
      process.stdout.write(
        `exported ${r.manifest.name} ${r.manifest.version} (format onnx) to ${r.dir}\n` +
          `  ${r.manifest.modelFile} sha256 ${r.manifest.files[r.manifest.modelFile]}\n` +
          `  native vs ONNX on ${r.comparedRows} rows: max |diff| ${r.maxAbsDiff.toExponential(2)} (tolerance ${r.tolerance.toExponential(2)})\n`,
      );
    });

  program
    .command('import-onnx')
    .description("Make a servable bundle from an outside ONNX regressor (e.g. skl2onnx's export of a scikit-learn pipeline).")
    .argument('<model>', 'the .onnx file')
    .option('--features <names...>', "the model's input columns, in order")
    .option(
      '--features-from <csv>',
      'a CSV whose header gives the features (all columns but --target) and whose rows give ranges and metrics',
    )
    .requiredOption('--name <name>', 'model name, e.g. wine-quality')
    .requiredOption('--version <version>', 'model version, e.g. 2.0.0')
    .option('--out <dir>', 'bundle folder to write (default: models/<name>/<version>)')
    .option('--target <column>', 'label column of the CSV', 'quality')
    .action(async (model: string, flags: ImportFlags) => {
      if (!flags.features && !flags.featuresFrom) throw new Error('import-onnx needs --features <names...> or --features-from <csv>');
      const { importOnnxBundle } = await import('../model/onnx/import.js');
      const r = await importOnnxBundle(model, {
        name: flags.name,
        version: flags.version,
        features: flags.features,
        featuresFrom: flags.featuresFrom,
        target: flags.target,
        outDir: flags.out,
      });
      const m = r.manifest;
      process.stdout.write(
        `imported ${m.name} ${m.version} (format onnx, ${m.features.length} features, input '${m.onnx?.input}', output '${m.onnx?.output}') to ${r.dir}\n` +
          (flags.featuresFrom
            ? `  on ${m.training.data.rows} rows of ${m.training.data.file}: ${metricsSummary(m.training.metrics)}\n`
            : ''),
      );
    });
}
