/**
 * The labelled rows the judge sends to both versions: a bundle folder's golden set (as the release engine's
 * smoke step reads it), or any labelled CSV with the data set's header.
 */
import { readFile, stat } from 'node:fs/promises';
import { type RegressionGoldenSet, readGoldenSet } from '../controller/smoke.js';
import { parseDataset } from '../model/csv.js';
import { GOLDEN_FILE } from '../model/train-bundle.js';
import { WINE_FEATURES, WINE_TARGET } from '../model/wine.js';

/** The judge compares numbers (RMSE, prediction histograms): a regressor's golden set. */
export type GoldenSet = RegressionGoldenSet;

export async function loadGoldenSet(source: string, opts: { target?: string } = {}): Promise<GoldenSet> {
  if ((await stat(source)).isDirectory()) {
    const golden = await readGoldenSet(source);
    if (!golden) throw new Error(`bundle ${source} ships no ${GOLDEN_FILE}: give a labelled CSV with --golden`);
    // Its figures are a regressor's: a classifier's release is judged by the release engine's gate only.
    if (golden.task === 'classification') throw new Error(`bundle ${source} is a classifier: the judge compares regressors only`);
    return golden;
  }
  const target = opts.target ?? WINE_TARGET;
  const text = await readFile(source, 'utf8');
  // The model's features are the CSV's columns but the target, in the file's order: an instance reads rows by name.
  const header = text.replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0] ?? '';
  const columns = header.split(',').map((h) => h.trim().replace(/^"|"$/g, ''));
  const features = columns.includes(target) ? columns.filter((c) => c !== target) : [...WINE_FEATURES];
  const data = parseDataset(text, { features, target, source });
  const rows: Array<Record<string, number>> = [];
  for (let r = 0; r < data.nRows; r++) rows.push(Object.fromEntries(features.map((f, j) => [f, data.x[r * features.length + j]])));
  return { task: 'regression', features, rows, labels: Float64Array.from(data.y ?? []) };
}
