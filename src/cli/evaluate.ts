import type { Command } from 'commander';
import { loadBundle } from '../model/bundle.js';
import { readDataset } from '../model/csv.js';
import { formatMetrics, regressionMetrics } from '../model/metrics.js';
import type { LoadedModel, RegressionMetrics } from '../model/types.js';

/** Predicts every row of a labelled CSV (with the bundle's header) and scores the predictions. */
export async function evaluateBundle(model: LoadedModel, csvFile: string): Promise<RegressionMetrics> {
  const data = await readDataset(csvFile, { features: model.featureNames, target: model.manifest.target });
  const predictions = await model.runtime.predict(data.x, data.nRows);
  return regressionMetrics(data.y!, predictions);
}

export function registerEvaluate(program: Command): void {
  program
    .command('evaluate')
    .description("Print RMSE, MAE, R² and rounded accuracy of a bundle on any labelled CSV with the data set's header.")
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
