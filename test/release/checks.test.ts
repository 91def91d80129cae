/**
 * The catalogue of checks is the one place a check is written: a check added to it (here one the product does
 * not have, "error-count") is judged by evaluate(), shown by the CLI in its own unit and measured by the Argo
 * AnalysisTemplates, with no other file touched.
 */
import { describe, it, expect } from 'vitest';
import { formatEvent, formatReleaseSummary } from '../../src/cli/release.js';
import { analysisTemplate, smokeTemplate } from '../../src/k8s/argo.js';
import { describeFailures, evaluate } from '../../src/release/analysis.js';
import { CATALOGUE, type CheckName } from '../../src/release/checks/catalogue.js';
import { defineCheck, finding, UNITS } from '../../src/release/checks/definition.js';
import { targetSamples } from '../../src/release/checks/samples.js';
import { DEFAULT_ANALYSIS } from '../../src/release/defaults.js';
import { createRelease } from '../../src/release/engine.js';
import { buildSpec } from '../../src/release/spec.js';
import type { AnalysisVerdict, ReleaseEvent } from '../../src/release/types.js';
import { stats } from './windows.js';

const errorCount = defineCheck({
  name: 'error-count',
  unit: { name: 'requests', symbol: ' req', scale: 1, decimals: 0 },
  thresholds: { maxServerErrors: 5 },
  comparesWithStable: false,
  samples: targetSamples,
  threshold: (c) => c.maxServerErrors,
  evaluate: ({ target }, c) =>
    finding(
      target.serverErrors <= c.maxServerErrors ? 'pass' : 'fail',
      target.serverErrors,
      c.maxServerErrors,
      `${target.serverErrors} requests answered 5xx`,
    ),
  promql: ({ target }, c) => ({
    query: `sum(increase(predict_requests_total{status=~"5..", ${target.matchers}}[${target.window}]))`,
    limit: c.maxServerErrors,
  }),
});

const withErrorCount = [...CATALOGUE, errorCount];
const opts = { target: 'green' as const, stable: 'blue' as const, compareWithStable: true };

/** A running release whose last analysis is `verdict`, as `bgserve status` and `deploy --wait` print it. */
function summary(verdict: AnalysisVerdict, catalogue = withErrorCount): string {
  const spec = buildSpec({
    id: 'r-1',
    bundle: 'b',
    modelName: 'wine',
    version: '1.1.0',
    sha256: 's',
    stableColor: 'blue',
    strategy: 'canary',
  });
  const { state } = createRelease(spec, 0);
  return formatReleaseSummary({ ...state, lastAnalysis: verdict }, undefined, catalogue);
}

describe('a check added through the catalogue', () => {
  it('is judged by evaluate() after the built-in checks, with its threshold default and its sample rule', () => {
    // 8 errors in 1000 requests is under the 1% error ratio: only the new check sees them.
    const failing = evaluate(
      stats(0, 1, { blue: { requests: 1000 }, green: { requests: 1000, errors: 8 } }),
      DEFAULT_ANALYSIS,
      opts,
      withErrorCount,
    );
    expect(failing.checks.map((c) => c.name)).toEqual([...CATALOGUE.map((c) => c.name), 'error-count']);
    expect(failing.checks.at(-1)).toEqual({
      name: 'error-count',
      outcome: 'fail',
      value: 8,
      threshold: 5,
      detail: '8 requests answered 5xx',
    });
    expect(failing.outcome).toBe('fail');
    expect(describeFailures(failing)).toBe('error-count 8 > 5 (8 requests answered 5xx)');

    // A release's recorded config may set the new threshold.
    const relaxed = evaluate(
      stats(0, 1, { blue: { requests: 1000 }, green: { requests: 1000, errors: 8 } }),
      { ...DEFAULT_ANALYSIS, maxServerErrors: 10 } as typeof DEFAULT_ANALYSIS,
      opts,
      withErrorCount,
    );
    expect(relaxed.outcome).toBe('pass');

    const few = evaluate(
      stats(0, 1, { blue: { requests: 1000 }, green: { requests: 10, errors: 8 } }),
      DEFAULT_ANALYSIS,
      opts,
      withErrorCount,
    );
    expect(few.checks.at(-1)).toEqual({
      name: 'error-count',
      outcome: 'inconclusive',
      value: null,
      threshold: 5,
      detail: '10 requests < 50 needed',
    });

    // The product catalogue does not have it.
    expect(evaluate(stats(0, 1, { blue: { requests: 1000 }, green: { requests: 1000, errors: 8 } }), DEFAULT_ANALYSIS, opts).outcome).toBe(
      'pass',
    );
  });

  it('shows in the release output in its own unit, beside the built-in checks in theirs', () => {
    const verdict = evaluate(
      stats(0, 1, { blue: { requests: 1000 }, green: { requests: 1000, errors: 8 } }),
      DEFAULT_ANALYSIS,
      opts,
      withErrorCount,
    );
    const text = summary(verdict);
    expect(text).toMatch(/^analysis fail on 1000 requests: error-ratio 0\.008 \/ 0\.01, latency-p95 \d+\.\d\dms \/ 100\.00ms, /m);
    expect(text).toMatch(/, error-count 8 req \/ 5 req FAIL$/m);
    const event: ReleaseEvent = {
      at: 1000,
      releaseId: 'r-1',
      type: 'analysis-failed',
      phase: 'step',
      reason: describeFailures(verdict),
      values: { checks: verdict.checks },
    };
    expect(formatEvent(event, 0, withErrorCount)).toMatch(/error-count 8 req \/ 5 req FAIL$/);
    // A check the catalogue does not know (an older release's record) still shows, as plain numbers.
    expect(summary(verdict, [...CATALOGUE])).toMatch(/, error-count 8 \/ 5 FAIL$/m);
  });

  it('is measured by the Argo AnalysisTemplates when it has PromQL', () => {
    const metrics = analysisTemplate(withErrorCount).spec!.metrics;
    const added = metrics.find((m) => m.name === 'error-count');
    expect(added?.successCondition).toBe('len(result) > 0 && result[0] <= 5');
    expect(added?.provider.prometheus?.query).toMatch(
      /^\(sum\(increase\(predict_requests_total\{status=~"5\.\.", rollouts_pod_template_hash="\{\{args\.latest-hash\}\}"\}\[1m\]\)\)\) and on\(\)/,
    );
    // It judges the new pods alone, so the pre-promotion smoke template runs it too.
    expect(smokeTemplate(withErrorCount).spec!.metrics.map((m) => m.name)).toContain('error-count');
    expect(analysisTemplate().spec!.metrics.map((m) => m.name)).not.toContain('error-count');
  });
});

describe('the catalogue', () => {
  it('names each check once, and evaluate() judges them in its order', () => {
    const names: CheckName[] = CATALOGUE.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    const v = evaluate(stats(0, 1, { blue: { requests: 500 }, green: { requests: 500 } }), DEFAULT_ANALYSIS, opts);
    expect(v.checks.map((c) => c.name)).toEqual(names);
  });

  it('holds the default of every threshold, each in one check', () => {
    const sampleKeys = ['minSamples', 'minTailSamples', 'minTailExceedances'];
    const keys = CATALOGUE.flatMap((c) => Object.keys(c.thresholds));
    expect(new Set(keys).size).toBe(keys.length);
    expect([...sampleKeys, ...keys].sort()).toEqual(Object.keys(DEFAULT_ANALYSIS).sort());
    for (const c of CATALOGUE)
      for (const [key, value] of Object.entries(c.thresholds)) expect(DEFAULT_ANALYSIS[key as keyof typeof DEFAULT_ANALYSIS]).toBe(value);
  });

  it('gives every latency check seconds as its unit, which the CLI shows in milliseconds', () => {
    for (const c of CATALOGUE) expect(c.unit === UNITS.seconds).toBe(c.name.startsWith('latency'));
  });
});
