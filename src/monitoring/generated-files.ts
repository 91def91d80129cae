/**
 * The monitoring files committed under deploy/ that are generated from code, by repository-relative path.
 * Tests compare the committed files with these; `npm run monitoring:generate` and `npm run dashboards` write them.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { renderDashboardJson } from './dashboard.js';
import { renderDashboardProvider, renderDatasources } from './grafana-provisioning.js';
import { renderComposePrometheusConfig, renderRulesFile } from './prometheus-config.js';

export interface GeneratedFile {
  /** Relative to the repository root. */
  path: string;
  content: string;
}

export function prometheusFiles(): GeneratedFile[] {
  return [
    { path: 'deploy/prometheus/prometheus.yml', content: renderComposePrometheusConfig() },
    { path: 'deploy/prometheus/rules/bgserve.rules.yml', content: renderRulesFile() },
  ];
}

export function grafanaFiles(): GeneratedFile[] {
  return [
    { path: 'deploy/grafana/provisioning/datasources/prometheus.yml', content: renderDatasources() },
    { path: 'deploy/grafana/provisioning/dashboards/provider.yml', content: renderDashboardProvider() },
    { path: 'deploy/grafana/dashboards/bgserve.json', content: renderDashboardJson() },
  ];
}

export async function writeGeneratedFiles(root: string, files: GeneratedFile[]): Promise<void> {
  for (const file of files) {
    const target = path.join(root, file.path);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, file.content);
  }
}
