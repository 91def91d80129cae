/**
 * The history report's shadow scatter (history-routes.ts): the latest paired comparison's figures and its sample
 * go to the page, never the largest disagreements' inputs; no comparison, or one with no pairs yet, gives none.
 */
import { describe, expect, it } from 'vitest';
import { historyReport, type ReleaseLogView } from '../../src/control/history-routes.js';
import type { ShadowPairsView } from '../../src/control/shadow-routes.js';
import { MetricHistory } from '../../src/control/history.js';
import { pairRecords } from '../../src/release/pairing.js';

const rec = (id: string, prediction: number, source: string) => ({ id, prediction, input: { alcohol: 9.4 }, source, at: 0 });

function log(view: ShadowPairsView | undefined): ReleaseLogView {
  return { current: () => undefined, history: () => [], events: () => [], shadowPairs: () => view };
}

describe('history report: shadow scatter', () => {
  it('carries the latest comparison figures and its [stable, new] sample, without inputs', () => {
    const pairs = pairRecords([rec('a', 5, 'live'), rec('b', 6, 'live')], [rec('a', 5.1, 'mirror'), rec('b', 7, 'mirror')]);
    const report = historyReport(new MetricHistory(), log({ releaseId: 'r-1', pairs }), 0, Date.now());
    expect(report.shadow).toEqual({
      releaseId: 'r-1',
      pairs: 2,
      tolerance: pairs.tolerance,
      agreement: 0.5,
      classAgreement: 0.5,
      sample: [
        [5, 5.1],
        [6, 7],
      ],
    });
    expect(JSON.stringify(report)).not.toContain('alcohol');
  });

  it('has none before a shadow comparison has paired a request', () => {
    const empty = pairRecords([rec('a', 5, 'live')], []);
    expect(historyReport(new MetricHistory(), log({ releaseId: 'r-1', pairs: empty }), 0, Date.now()).shadow).toBeNull();
    expect(historyReport(new MetricHistory(), log(undefined), 0, Date.now()).shadow).toBeNull();
    expect(historyReport(new MetricHistory(), undefined, 0, Date.now()).shadow).toBeNull();
  });
});
