/**
 * The release engine's checks in their classification forms: the golden-set comparison of class answers
 * (accuracy, log-loss, class agreement), the gate on accuracy with --golden-margin in accuracy points, the
 * engine refusing or passing a classifier on it, and the live checks that cannot mean anything on class indices
 * skipped with a reason while the shift of predicted class frequencies (PSI) still judges.
 */
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../src/release/analysis.js';
import { SHADOW_CATALOGUE } from '../../src/release/checks/catalogue.js';
import { DEFAULT_ANALYSIS } from '../../src/release/defaults.js';
import { createRelease, step } from '../../src/release/engine.js';
import { compareGoldenClasses } from '../../src/release/golden.js';
import { goldenGate } from '../../src/release/golden-gate.js';
import { pairRecords, type PredictionRecord } from '../../src/release/pairing.js';
import { buildSpec } from '../../src/release/spec.js';
import type { SmokeResult } from '../../src/release/types.js';
import { PREDICTION_BUCKETS as INSTANCE_BUCKETS } from '../../src/serve/metrics.js';
import { histogram, stats } from './windows.js';

const answers = (classes: string[], pLabel: number[]) => ({
  predictions: classes,
  // Two classes: the probability of "a" given, the rest to "b".
  probabilities: pLabel.map((p) => ({ a: p, b: 1 - p })),
});

describe('compareGoldenClasses', () => {
  it('measures accuracy, log-loss and the share of rows with the same class', () => {
    const labels = ['a', 'a', 'b', 'b'];
    const cmp = compareGoldenClasses(
      labels,
      answers(['a', 'a', 'b', 'a'], [0.9, 0.8, 0.2, 0.6]),
      answers(['a', 'b', 'b', 'b'], [0.7, 0.4, 0.1, 0.3]),
    );
    expect(cmp.rows).toBe(4);
    expect(cmp.accuracy).toEqual({ candidate: 0.75, stable: 0.75 });
    expect(cmp.agreement).toBe(0.5);
    const ll = (ps: number[]) => -ps.reduce((s, p) => s + Math.log(p), 0) / ps.length;
    expect(cmp.logLoss.candidate).toBeCloseTo(ll([0.9, 0.8, 0.8, 0.4]), 12);
    expect(cmp.logLoss.stable).toBeCloseTo(ll([0.7, 0.4, 0.9, 0.7]), 12);
  });

  it('counts a label the model has no probability for as p = 0 (clipped), and refuses mismatched lengths', () => {
    const cmp = compareGoldenClasses(['c'], answers(['a'], [1]), answers(['a'], [1]));
    expect(cmp.accuracy.candidate).toBe(0);
    expect(cmp.logLoss.candidate).toBeCloseTo(-Math.log(1e-15), 6);
    expect(() => compareGoldenClasses(['a', 'b'], answers(['a'], [1]), answers(['a', 'b'], [1, 0]))).toThrow(/one class/);
  });
});

const CLASS_SMOKE: SmokeResult = {
  ok: true,
  failures: [],
  rows: 114,
  rmse: null,
  agreement: 0.97,
  meanAbsDelta: null,
  accuracy: { candidate: 0.93, stable: 0.95 },
  logLoss: { candidate: 0.2, stable: 0.15 },
};

describe('goldenGate', () => {
  it('lets a classifier be worse by at most the margin, in accuracy points', () => {
    expect(goldenGate(CLASS_SMOKE, 0.05).failure).toBeNull();
    expect(goldenGate(CLASS_SMOKE, 0.01).failure).toMatch(/golden-set accuracy 93\.0% is worse than stable 95\.0% by more than 0\.01/);
    const worse = goldenGate({ ...CLASS_SMOKE, accuracy: { candidate: 0.6, stable: 0.95 } }, 0.05);
    expect(worse.failure).toMatch(/accuracy 60\.0% .*\(5\.0 points\)/);
    expect(goldenGate(CLASS_SMOKE, 0.05).summary).toBe(
      '; golden accuracy 93.0% vs stable 95.0% on 114 rows, log-loss 0.2000 vs 0.1500, same class on 97.0%',
    );
  });

  it("keeps a regressor's RMSE gate as it was", () => {
    const reg: SmokeResult = {
      ok: true,
      failures: [],
      rows: 160,
      rmse: { candidate: 0.8, stable: 0.57 },
      agreement: 0.9,
      meanAbsDelta: 0.2,
    };
    expect(goldenGate(reg, 0.05).failure).toBe('golden-set RMSE 0.8000 is worse than stable 0.5700 by more than 0.05');
    expect(goldenGate(reg, 0.5).failure).toBeNull();
  });
});

describe('a classifier release through the engine', () => {
  const smoked = (result: SmokeResult, margin?: number) => {
    const req = {
      id: 'r1',
      bundle: 'b',
      modelName: 'bc',
      version: '2',
      sha256: 'abc',
      stableColor: 'blue' as const,
      task: 'classification' as const,
    };
    let state = createRelease(buildSpec({ ...req, ...(margin !== undefined ? { goldenRmseMargin: margin } : {}) }), 0).state;
    state = step(state, { now: 10, observation: { kind: 'load', color: 'green', ok: true, sha256: 'abc', version: '2' } }).state;
    return step(state, { now: 20, observation: { kind: 'smoke', color: 'green', result } });
  };

  it('is refused at the golden gate when its accuracy drops by more than the margin, figures recorded', () => {
    const out = smoked({ ...CLASS_SMOKE, accuracy: { candidate: 0.62, stable: 0.95 } });
    expect(out.state.status).toBe('failed');
    expect(out.state.reason).toMatch(/golden-set accuracy 62\.0% is worse than stable 95\.0%/);
    expect(out.actions.some((a) => a.kind === 'set-weights')).toBe(false);
    const failed = out.events.find((e) => e.type === 'smoke-failed');
    expect(failed?.values).toMatchObject({ accuracy: { candidate: 0.62, stable: 0.95 }, logLoss: CLASS_SMOKE.logLoss, agreement: 0.97 });
  });

  it('passes the gate within the margin and says so in accuracy, log-loss and agreement', () => {
    const out = smoked(CLASS_SMOKE);
    expect(out.state.status).toBe('running');
    const passed = out.events.find((e) => e.type === 'smoke-passed');
    expect(passed?.reason).toMatch(
      /golden accuracy 93\.0% vs stable 95\.0% on 114 rows, log-loss 0\.2000 vs 0\.1500, same class on 97\.0%/,
    );
    expect(smoked(CLASS_SMOKE, 0.01).state.status).toBe('failed');
  });
});

describe('live checks on a classifier (class indices in the prediction series)', () => {
  const opts = { target: 'green' as const, stable: 'blue' as const, compareWithStable: true };
  /** A window whose prediction histograms hold class indices with these counts per class. */
  const classWindow = (blue: number[], green: number[]) => {
    const w = stats(0, 1, { blue: { requests: 600 }, green: { requests: 600 } });
    const values = (counts: number[]) => counts.flatMap((n, k) => Array<number>(n).fill(k));
    w.colors.blue.predictions = histogram(values(blue), [...INSTANCE_BUCKETS, Infinity]);
    w.colors.green.predictions = histogram(values(green), [...INSTANCE_BUCKETS, Infinity]);
    return w;
  };
  const byName = (v: ReturnType<typeof evaluate>) => Object.fromEntries(v.checks.map((c) => [c.name, c]));

  it("skips the mean shift for a classifier, and PSI judges the predicted class frequencies' shift", () => {
    // Classes 0 and 2 swap frequencies: the same mean index, a different model.
    const swapped = classWindow([400, 100, 100], [100, 100, 400]);
    const v = byName(evaluate(swapped, DEFAULT_ANALYSIS, { ...opts, task: 'classification' }));
    expect(v['prediction-mean-shift']).toMatchObject({ outcome: 'skipped', value: null });
    expect(v['prediction-mean-shift'].detail).toMatch(/^skipped: classifier/);
    expect(v['prediction-psi'].outcome).toBe('fail');
    expect(v['prediction-psi'].detail).toMatch(/predicted class frequencies/);
    const same = byName(evaluate(classWindow([300, 200, 100], [305, 195, 100]), DEFAULT_ANALYSIS, { ...opts, task: 'classification' }));
    expect(same['prediction-psi'].outcome).toBe('pass');
    // A regressor's window is judged as before: the mean shift runs.
    expect(byName(evaluate(swapped, DEFAULT_ANALYSIS, opts))['prediction-mean-shift'].outcome).not.toBe('skipped');
  });

  it('pairs classifiers on classes only: the numeric paired checks are skipped, class disagreement judges', () => {
    const stable: PredictionRecord[] = [];
    const target: PredictionRecord[] = [];
    for (let i = 0; i < 200; i++) {
      stable.push({ id: `r${i}`, prediction: i % 3, input: { x: i }, source: 'live', at: i });
      // A third of the requests answered with another class.
      target.push({ id: `r${i}`, prediction: i % 3 === 0 ? 2 : i % 3, input: { x: i }, source: 'mirror', at: i });
    }
    const w = { ...classWindow([300, 200, 100], [300, 200, 100]), pairs: pairRecords(stable, target) };
    const v = byName(evaluate(w, DEFAULT_ANALYSIS, { ...opts, task: 'classification' }, SHADOW_CATALOGUE));
    expect(v['paired-disagreement']).toMatchObject({ outcome: 'skipped' });
    expect(v['paired-delta-p95']).toMatchObject({ outcome: 'skipped' });
    expect(v['paired-delta-p95'].detail).toMatch(/^skipped: classifier/);
    expect(v['paired-class-disagreement'].outcome).toBe('fail');
    expect(v['paired-class-disagreement'].value).toBeCloseTo(67 / 200, 6);
  });
});
