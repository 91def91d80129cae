/** Shared by the serve tests: the committed bundles, an app on them, and reading one sample from /metrics. */
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadBundle } from '../../src/model/bundle.js';
import { buildApp, type BuildAppOptions } from '../../src/serve/app.js';
import { ROOT } from '../support/processes.js';

export const BUNDLE_1_0 = path.join(ROOT, 'models/wine-quality/1.0.0');
export const BUNDLE_1_1 = path.join(ROOT, 'models/wine-quality/1.1.0');

export async function appOn(bundle = BUNDLE_1_0, opts: Partial<BuildAppOptions> = {}): Promise<FastifyInstance> {
  const model = await loadBundle(bundle);
  return buildApp({ model, color: 'blue', processMetrics: false, ...opts });
}

/**
 * The value of the sample `name{labels...}` in a Prometheus text exposition (labels matched as a subset),
 * or undefined when there is no such sample.
 */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const open = line.indexOf('{');
    const close = line.lastIndexOf('}');
    const labelText = open >= 0 && open < close ? line.slice(open + 1, close) : '';
    const found: Record<string, string> = {};
    for (const m of labelText.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found[m[1]] = m[2];
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

export async function metricsText(app: FastifyInstance): Promise<string> {
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  return res.body;
}
