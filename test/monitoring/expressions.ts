/** Every PromQL expression in the committed rules and dashboard, read back from the files users deploy. */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { ROOT } from '../support/processes.js';

const run = promisify(execFile);

export interface Expression {
  /** Where it comes from, for failure messages: "rule BgserveLatencyHigh", "panel Weights / B". */
  source: string;
  expr: string;
}

interface RulesFile {
  groups: Array<{ rules: Array<{ record?: string; alert?: string; expr: string }> }>;
}

interface DashboardJson {
  panels: Array<{ title: string; type: string; targets?: Array<{ expr?: string; refId?: string }> }>;
  annotations?: { list?: Array<{ name: string; expr?: string }> };
}

export async function readRules(): Promise<RulesFile> {
  return parse(await readFile(path.join(ROOT, 'deploy/prometheus/rules/bgserve.rules.yml'), 'utf8')) as RulesFile;
}

export async function readDashboard(): Promise<DashboardJson> {
  return JSON.parse(await readFile(path.join(ROOT, 'deploy/grafana/dashboards/bgserve.json'), 'utf8')) as DashboardJson;
}

export async function ruleExpressions(): Promise<Expression[]> {
  const rules = await readRules();
  return rules.groups.flatMap((g) => g.rules.map((r) => ({ source: `rule ${r.record ?? r.alert}`, expr: r.expr })));
}

export async function dashboardExpressions(): Promise<Expression[]> {
  const dashboard = await readDashboard();
  const panels = dashboard.panels.flatMap((p) =>
    (p.targets ?? []).filter((t) => t.expr !== undefined).map((t) => ({ source: `panel ${p.title} / ${t.refId}`, expr: t.expr as string })),
  );
  const annotations = (dashboard.annotations?.list ?? [])
    .filter((a) => a.expr !== undefined)
    .map((a) => ({ source: `annotation ${a.name}`, expr: a.expr as string }));
  return [...panels, ...annotations];
}

/** Grafana's range variables, replaced by a window Prometheus understands. */
export function withGrafanaVariables(expr: string, window = '1m'): string {
  return expr.replaceAll('$__rate_interval', window).replaceAll('$__interval', window).replaceAll('$__range', window);
}

/**
 * Parses expressions with promtool (as recording rules of a throw-away file), without a server.
 * Returns promtool's exit code and output.
 */
export async function promtoolParses(exprs: string[]): Promise<{ code: number; output: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bgserve-promql-parse-'));
  try {
    const file = path.join(dir, 'exprs.yml');
    const rules = exprs.map((expr, i) => ({ record: `parse:expr_${i}`, expr }));
    await writeFile(file, stringify({ groups: [{ name: 'parse', rules }] }, { lineWidth: 0 }));
    return await run('promtool', ['check', 'rules', file]).then(
      (r) => ({ code: 0, output: r.stdout + r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, output: e.stdout + e.stderr }),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
