import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CONTROLLER_METRICS, INSTANCE_METRICS, ROUTER_METRICS } from '../../src/config/metric-names.js';
import { PANEL_TITLES } from '../../src/monitoring/dashboard.js';
import { grafanaFiles } from '../../src/monitoring/generated-files.js';
import { ROOT } from '../support/processes.js';
import { dashboardExpressions, promtoolParses, readDashboard, withGrafanaVariables } from './expressions.js';

interface Panel {
  title: string;
  type: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  options?: { legend?: { showLegend: boolean } };
  targets?: Array<{ expr: string; legendFormat?: string; format?: string }>;
}

async function panels(): Promise<Panel[]> {
  return (await readDashboard()).panels as unknown as Panel[];
}

function panel(all: Panel[], title: string): Panel {
  const found = all.find((p) => p.title === title);
  expect(found, `panel "${title}" is missing`).toBeDefined();
  return found as Panel;
}

function exprs(p: Panel): string {
  return (p.targets ?? []).map((t) => t.expr).join('\n');
}

describe('Grafana dashboard and provisioning', () => {
  it('committed files are exactly what `npm run dashboards` writes', async () => {
    for (const file of grafanaFiles()) {
      const committed = await readFile(path.join(ROOT, file.path), 'utf8');
      expect(committed, `${file.path} is stale: run npm run dashboards`).toBe(file.content);
    }
  });

  it('has the panels users watch a release on, fed by the right metrics', async () => {
    const all = await panels();
    expect(exprs(panel(all, PANEL_TITLES.traffic))).toContain(ROUTER_METRICS.requests);
    expect(exprs(panel(all, PANEL_TITLES.traffic))).toContain('color:predict_requests:rate1m');
    expect(exprs(panel(all, PANEL_TITLES.weights))).toContain(CONTROLLER_METRICS.weight);
    expect(exprs(panel(all, PANEL_TITLES.weights))).toContain(ROUTER_METRICS.weight);
    expect(exprs(panel(all, PANEL_TITLES.errorRatio))).toContain('color:predict_error_ratio:rate1m');
    const latency = panel(all, PANEL_TITLES.latency);
    expect(latency.targets?.map((t) => t.expr)).toEqual([
      'color:prediction_latency_seconds:p50_rate1m',
      'color:prediction_latency_seconds:p95_rate1m',
      'color:prediction_latency_seconds:p99_rate1m',
    ]);
    expect(exprs(panel(all, PANEL_TITLES.predictionDistribution))).toContain(`${INSTANCE_METRICS.predictionValue}_bucket`);
    for (const color of ['blue', 'green']) {
      const heat = panel(all, PANEL_TITLES.predictionHeatmap(color));
      expect(heat.type).toBe('heatmap');
      expect(heat.targets?.[0].format).toBe('heatmap');
      expect(exprs(heat)).toContain(`color="${color}"`);
    }
    const versions = panel(all, PANEL_TITLES.modelVersions);
    expect(versions.type).toBe('table');
    expect(exprs(versions)).toContain(INSTANCE_METRICS.modelInfo);
    expect(exprs(panel(all, PANEL_TITLES.releasePhase))).toContain(CONTROLLER_METRICS.releasePhase);
  });

  it('annotates releases from the release metric', async () => {
    const annotations = (await readDashboard()).annotations?.list ?? [];
    const finished = annotations.find((a) => a.expr?.includes(CONTROLLER_METRICS.releases));
    expect(finished, 'no annotation on bgserve_releases_total').toBeDefined();
    expect(annotations.some((a) => a.expr?.includes(CONTROLLER_METRICS.releasePhase))).toBe(true);
  });

  it('shows a legend on every time series and labels every series by color or phase', async () => {
    for (const p of await panels()) {
      if (p.type === 'timeseries' || p.type === 'state-timeline') {
        expect(p.options?.legend?.showLegend, `${p.title}: legend hidden`).toBe(true);
      }
      if (p.type === 'timeseries') {
        for (const t of p.targets ?? []) expect(t.legendFormat, `${p.title}: ${t.expr}`).toMatch(/\{\{color\}\}/);
      }
    }
  });

  it('every panel queries the provisioned datasource', async () => {
    const provisioning = parse(await readFile(path.join(ROOT, 'deploy/grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as {
      datasources: Array<{ uid: string; type: string }>;
    };
    const [ds] = provisioning.datasources;
    for (const p of (await panels()).filter((x) => x.type !== 'row')) {
      expect(p.datasource, p.title).toEqual({ type: ds.type, uid: ds.uid });
    }
  });

  it('panels do not overlap on the grid', async () => {
    const placed = (await panels()).map((p) => ({ title: p.title, ...p.gridPos }));
    for (const [i, a] of placed.entries()) {
      expect(a.x + a.w, a.title).toBeLessThanOrEqual(24);
      for (const b of placed.slice(i + 1)) {
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        expect(overlap, `${a.title} overlaps ${b.title}`).toBe(false);
      }
    }
  });

  it('every dashboard expression is valid PromQL (promtool parses them as rules)', async () => {
    const expressions = await dashboardExpressions();
    expect(expressions.length).toBeGreaterThan(10);
    const result = await promtoolParses(expressions.map((e) => withGrafanaVariables(e.expr)));
    expect(result.code, result.output).toBe(0);
  });
});
