/**
 * The paired checks (release/checks/paired.ts) as the engine runs them: only in the shadow phase, skipped
 * without a pairing, inconclusive below minSamples pairs, failing a new color that answers the same requests
 * differently; the decision log records the pairs without inputs, and `bgserve release` prints them.
 */
import { describe, expect, it } from 'vitest';
import { formatEvent, formatPairs } from '../../src/cli/release.js';
import { createRelease, step } from '../../src/release/engine.js';
import { pairRecords, type PairSummary, type PredictionRecord } from '../../src/release/pairing.js';
import { buildSpec, type ReleaseRequest } from '../../src/release/spec.js';
import type { CheckResult, Observation, ReleaseState, StepResult } from '../../src/release/types.js';
import { stats } from './windows.js';

const BASE: ReleaseRequest = {
  id: 'r1',
  bundle: 'models/wine-quality/1.1.0',
  modelName: 'wine-quality',
  version: '1.1.0',
  sha256: 'abc',
  stableColor: 'blue',
};
const SMOKE = { ok: true, failures: [], rows: 320, rmse: { candidate: 0.56, stable: 0.57 }, agreement: 0.99, meanAbsDelta: 0.08 };

/** A release driven to the start of the phase its request leads to after the smoke checks. */
function started(req: Partial<ReleaseRequest>): { state: () => ReleaseState; feed: (now: number, o?: Observation) => StepResult } {
  let state = createRelease(buildSpec({ ...BASE, analysisMs: 5_000, ...req }), 0).state;
  const feed = (now: number, observation?: Observation) => {
    const out = step(state, { now, ...(observation ? { observation } : {}) });
    state = out.state;
    return out;
  };
  feed(10, { kind: 'load', color: 'green', ok: true, sha256: 'abc', version: '1.1.0' });
  feed(20, { kind: 'smoke', color: 'green', result: SMOKE });
  return { state: () => state, feed };
}

/** `n` pairs whose new answer differs from the stable one by `delta` on the first `moved` of them. */
function pairs(n: number, moved: number, delta: number): PairSummary {
  const stable: PredictionRecord[] = [];
  const target: PredictionRecord[] = [];
  for (let i = 0; i < n; i++) {
    const p = 5.2 + (i % 5) * 0.1;
    stable.push({ id: `r${i}`, prediction: p, input: { alcohol: 9 + i / 100 }, source: 'live', at: i });
    target.push({ id: `r${i}`, prediction: p + (i < moved ? delta : 0.05), input: { alcohol: 9 + i / 100 }, source: 'mirror', at: i });
  }
  return pairRecords(stable, target);
}

const window = (p?: PairSummary) => ({
  kind: 'analysis' as const,
  stats: { ...stats(20, 6_000, { blue: { requests: 500 }, green: { requests: 500 } }), ...(p ? { pairs: p } : {}) },
});

/** The paired checks' outcomes in a step's verdict (a passing window moves on to a phase with no verdict yet). */
const outcomes = (out: StepResult) => {
  const judged = out.events.find((e) => e.type.startsWith('analysis-'))?.values?.checks as CheckResult[] | undefined;
  const checks = judged ?? out.state.lastAnalysis?.checks ?? [];
  return Object.fromEntries(checks.filter((c) => c.name.startsWith('paired-')).map((c) => [c.name, c.outcome]));
};

describe('paired checks in the shadow phase', () => {
  it('pass a new color that answers the paired requests alike; the decision log records the pairs without inputs', () => {
    const r = started({ shadowMs: 5_000 });
    expect(r.state().phase).toBe('shadow');
    const out = r.feed(6_000, window(pairs(300, 3, 1)));
    expect(outcomes(out)).toEqual({
      'paired-disagreement': 'pass',
      'paired-class-disagreement': 'pass',
      'paired-delta-p95': 'pass',
    });
    const passed = out.events.find((e) => e.type === 'analysis-passed');
    const logged = passed?.values?.pairs as PairSummary;
    expect(logged).toMatchObject({ pairs: 300, agreement: 0.99 });
    expect(logged.largest[0]).toMatchObject({ delta: expect.closeTo(1, 6) });
    expect(JSON.stringify(passed?.values)).not.toContain('alcohol');
    expect(r.state().phase).toBe('post-switch');
  });

  it('fail, and roll back before any switch, a new color that answers a third of the same requests a point apart', () => {
    const r = started({ shadowMs: 5_000 });
    const out = r.feed(3_000, window(pairs(300, 100, 1)));
    expect(outcomes(out)).toMatchObject({ 'paired-disagreement': 'fail', 'paired-class-disagreement': 'fail' });
    expect(r.state().status).toBe('rolled_back');
    expect(r.state().reason).toMatch(/analysis failed in shadow: .*paired-disagreement 0\.333333 > 0\.1 \(300 pairs: 66\.7% within 0\.5/);
    const failed = out.events.find((e) => e.type === 'analysis-failed');
    expect(failed).toBeDefined();
    const text = formatEvent(failed!, 0);
    expect(text).toMatch(/paired-disagreement 0\.3333 \/ 0\.1 FAIL/);
    expect(text).toMatch(/paired 300 requests: 66\.7% agree within 0\.5/);
    expect(out.events.map((e) => e.type)).not.toContain('switched');
  });

  it('are inconclusive below minSamples pairs, and skipped where nothing pairs', () => {
    const few = started({ shadowMs: 5_000 });
    few.feed(3_000, window(pairs(20, 0, 0)));
    const checks = few.state().lastAnalysis?.checks ?? [];
    expect(checks.find((c) => c.name === 'paired-disagreement')).toMatchObject({
      outcome: 'inconclusive',
      detail: '20 paired requests < 50 needed',
    });
    const none = started({ shadowMs: 5_000 });
    expect(outcomes(none.feed(6_000, window()))).toEqual({
      'paired-disagreement': 'skipped',
      'paired-class-disagreement': 'skipped',
      'paired-delta-p95': 'skipped',
    });
    // Without a pairing the shadow phase judges as before.
    expect(none.state().phase).toBe('post-switch');
  });

  it('run in the shadow phase only: a canary step has no paired checks', () => {
    const r = started({ strategy: 'canary', steps: [50] });
    expect(r.state().phase).toBe('step');
    r.feed(3_000, window(pairs(300, 300, 1)));
    expect(
      r
        .state()
        .lastAnalysis?.checks.map((c) => c.name)
        .filter((n) => n.startsWith('paired-')),
    ).toEqual([]);
  });

  it('print the largest disagreements with their inputs when the summary holds them (controller memory)', () => {
    const text = formatPairs(pairs(100, 1, 2));
    expect(text).toMatch(/^paired 100 requests: 99\.0% agree within 0\.5, 99\.0% same class, \|delta\| mean 0\.0695 p95 0\.05/);
    expect(text).toMatch(/largest disagreements:\n {2}r0: 5\.2 -> 7\.2 \(\|delta\| 2\) \{"alcohol":9\}/);
  });
});
