import { describe, expect, it } from 'vitest';
import { COLORS } from '../../src/config/defaults.js';
import { INSTANCE_METRICS } from '../../src/config/metric-names.js';
import * as q from '../../src/monitoring/queries.js';
import { dashboardExpressions, promtoolParses, ruleExpressions } from './expressions.js';

const green = { window: '30s', matchers: q.colorMatcher('green') };

describe('PromQL catalogue', () => {
  it('scopes every per-color builder by window and matchers, as release analysis asks', () => {
    const scoped = [
      q.requestRate(green),
      q.errorRate(green),
      q.errorRatio(green),
      q.serverErrorRatio(green),
      q.latencyQuantile(0.99, green),
      q.predictionMean(green),
      q.predictionQuantile(0.5, green),
      q.predictionBuckets(green),
    ];
    for (const expr of scoped) {
      expect(expr).toContain('[30s]');
      expect(expr).not.toContain('[1m]');
      // Every selector of an instance metric carries the color matcher.
      const selectors = expr.match(/\b(predict|prediction)_[a-z_]+(\{[^}]*\})?\[/g) ?? [];
      expect(selectors.length, expr).toBeGreaterThan(0);
      for (const s of selectors) expect(s, expr).toContain('color="green"');
    }
  });

  it('leaves preview traffic out of every instance-metric selector: rules, alerts, dashboard and analysis', async () => {
    const analysis = [INSTANCE_METRICS.requests, `${INSTANCE_METRICS.latency}_bucket`, `${INSTANCE_METRICS.predictionValue}_sum`].map((m) =>
      q.increaseBySource(m, { window: '30s' }),
    );
    const exprs = [
      ...(await ruleExpressions()),
      ...(await dashboardExpressions()),
      ...q.recordingRules().map((r) => ({ source: `rule ${r.record}`, expr: r.expr })),
      ...analysis.map((expr) => ({ source: 'analysis', expr })),
    ];
    let instanceSelectors = 0;
    for (const { source, expr } of exprs) {
      for (const m of expr.matchAll(/\b((?:predict|prediction)_[a-z_]+?)(\{[^}]*\})?\[/g)) {
        instanceSelectors++;
        expect(m[2] ?? '', `${source}: ${expr}`).toContain(q.NOT_PREVIEW);
      }
    }
    expect(instanceSelectors).toBeGreaterThan(20);
    // Analysis keeps live and mirrored traffic apart: grouped by source (and by bucket for histograms).
    expect(analysis[0]).toBe(`sum by (color, source) (increase(${INSTANCE_METRICS.requests}{source!="preview"}[30s]))`);
    expect(analysis[1]).toContain('sum by (color, source, le)');
    expect(q.increaseBySource(INSTANCE_METRICS.requests, { window: '30s', extra: 'status=~"5.."' })).toContain(
      '{source!="preview", status=~"5.."}',
    );
  });

  it('builds valid PromQL for default and scoped variants (promtool parses them)', async () => {
    const exprs = [
      ...q.recordingRules().map((r) => r.expr),
      ...q.alertDefinitions().map(q.alertExpr),
      q.errorRatio(green),
      q.serverErrorRatio(green),
      q.latencyQuantile(0.95, green),
      q.predictionQuantile(0.1, green),
      q.predictionBuckets(green),
      q.increaseBySource(`${INSTANCE_METRICS.latency}_bucket`, { window: '30s' }),
      q.increaseBySource(INSTANCE_METRICS.requests, { window: '30s', extra: 'status=~"5.."' }),
      q.releasesFinished({ window: '5m', matchers: 'strategy="canary"' }),
      q.rollbackSecondsP99(),
      q.releasePhase(),
      q.modelVersions(),
    ];
    const result = await promtoolParses(exprs);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain(`${exprs.length} rules found`);
  });

  it('names one recording rule per statistic, each built from the instance metrics', () => {
    const rules = q.recordingRules();
    expect(rules.map((r) => r.record).sort()).toEqual(Object.values(q.RECORDED).sort());
    for (const r of rules) {
      expect(r.record).toMatch(/^color:[a-z_]+:[a-z0-9_]+$/);
      expect(
        Object.values(INSTANCE_METRICS).some((m) => r.expr.includes(m)),
        r.expr,
      ).toBe(true);
      expect(r.expr).toContain('by (color');
    }
  });

  it('alerts use the recorded series and the documented thresholds', () => {
    const byName = Object.fromEntries(q.alertDefinitions().map((a) => [a.name, a]));
    expect(q.alertExpr(byName.BgserveErrorRatioHigh)).toBe(`${q.RECORDED.errorRatio} > ${q.ALERT_THRESHOLDS.errorRatio}`);
    expect(q.alertExpr(byName.BgserveLatencyHigh)).toBe(`${q.RECORDED.latencyP99} > ${q.ALERT_THRESHOLDS.latencyP99Seconds}`);
    expect(byName.BgserveInstanceDown.comparison).toBe('==');
    for (const c of COLORS) expect(byName.BgservePredictionShift.value).toContain(`color="${c}"`);
    expect(byName.BgserveReleaseFailed.value).toContain('outcome=~"rolled_back|failed"');
  });
});
