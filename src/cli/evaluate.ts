import type { Command } from 'commander';
import { loadBundle } from '../model/bundle.js';
import { classIndices } from '../model/columns.js';
import { readDataset } from '../model/csv.js';
import { classificationMetrics, formatMetrics, regressionMetrics } from '../model/metrics.js';
import type { LoadedModel, ModelMetrics } from '../model/types.js';

/**
 * Predicts every row of a labelled CSV (with the bundle's header) and scores the predictions: a regressor's RMSE,
 * MAE, R² and rounded accuracy, a classifier's accuracy and log-loss (its labels are class names).
 */
export async function evaluateBundle(model: LoadedModel, csvFile: string): Promise<ModelMetrics> {
  const { manifest } = model;
  const classes = manifest.task === 'classification' ? manifest.classes : undefined;
  const data = await readDataset(csvFile, { features: model.featureNames, target: manifest.target, textLabels: classes !== undefined });
  const predictions = await model.runtime.predict(data.x, data.nRows);
  if (!classes) return regressionMetrics(data.y!, predictions);
  return classificationMetrics(classIndices(data.labelTexts ?? [], classes, csvFile, manifest.target), predictions, classes.length);
}

export function registerEvaluate(program: Command): void {
  program
    .command('evaluate')
    .description(
      "Print RMSE, MAE, R² and rounded accuracy of a bundle (a classifier's accuracy and log-loss) on any labelled CSV with the data set's header.",
    )
    .argument('<bundle>', 'bundle folder, e.g. models/wine-quality/1.0.0')
    .requiredOption('--data <csv>', 'labelled CSV')
    .option('--json', 'print JSON')
    .action(async (bundle: string, flags: { data: string; json?: boolean }) => {
      const model = await loadBundle(bundle);
      try {
        const metrics = await evaluateBundle(model, flags.data);
        const { name, version } = model.manifest;
        if (flags.json) process.stdout.write(`${JSON.stringify({ model: { name, version }, data: flags.data, metrics })}\n`);
        else process.stdout.write(`${name} ${version} on ${flags.data}:\n${formatMetrics(metrics)}\n`);
      } finally {
        await model.runtime.close?.();
      }
    });
}
