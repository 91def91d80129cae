/** What pairing two bundles' answers to the golden rows gives: the figures a live shadow comparison should match. */
import { loadBundle } from '../../src/model/bundle.js';
import { readGoldenSet } from '../../src/controller/smoke.js';
import { pairRecords, type PairSummary, type PredictionRecord } from '../../src/release/pairing.js';

export async function goldenPairs(stableDir: string, targetDir: string): Promise<PairSummary> {
  const golden = await readGoldenSet(stableDir);
  if (!golden) throw new Error(`${stableDir} ships no golden rows`);
  const answers = async (dir: string, source: string): Promise<PredictionRecord[]> => {
    const bundle = await loadBundle(dir);
    const names = bundle.featureNames;
    const rows = Float64Array.from(golden.rows.flatMap((r) => names.map((n) => r[n])));
    const values = await bundle.runtime.predict(rows, golden.rows.length);
    await bundle.runtime.close?.();
    return golden.rows.map((input, i) => ({ id: String(i), prediction: values[i], input, source, at: 0 }));
  };
  return pairRecords(await answers(stableDir, 'live'), await answers(targetDir, 'mirror'));
}
