/**
 * Smoke checks of a freshly loaded color through the router's preview route (the header that reaches one
 * color whatever the weights, private: the preview token goes with it): the golden rows of the new bundle go
 * to both colors, and the new one must answer every row, with the version it was given, and an RMSE no worse
 * than the stable color's by the margin (the engine judges the margin).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { PREVIEW_HEADER, PREVIEW_TOKEN_HEADER, type Color } from '../config/defaults.js';
import { parseDataset } from '../model/csv.js';
import type { Manifest } from '../model/types.js';
import { compareGolden } from '../release/golden.js';
import { GOLDEN_FILE } from '../model/train-bundle.js';
import type { SmokeResult } from '../release/types.js';
import { PREVIEW_BATCH_ROWS, PREVIEW_TIMEOUT_MS } from './defaults.js';
import type { PreviewAnswer, PreviewPort } from './ports.js';

export interface GoldenSet {
  features: readonly string[];
  rows: Array<Record<string, number>>;
  labels: Float64Array;
}

/** The bundle's golden rows, or null when it ships none. */
export async function readGoldenSet(bundleDir: string): Promise<GoldenSet | null> {
  const manifest = JSON.parse(await readFile(path.join(bundleDir, 'manifest.json'), 'utf8')) as Manifest;
  if (!(GOLDEN_FILE in manifest.files)) return null;
  const features = manifest.features.map((f) => f.name);
  const data = parseDataset(await readFile(path.join(bundleDir, GOLDEN_FILE), 'utf8'), {
    features,
    target: manifest.target,
    source: path.join(bundleDir, GOLDEN_FILE),
  });
  const rows: Array<Record<string, number>> = [];
  for (let r = 0; r < data.nRows; r++) {
    rows.push(Object.fromEntries(features.map((f, j) => [f, data.x[r * features.length + j]])));
  }
  return { features, rows, labels: data.y as Float64Array };
}

export interface PreviewClientOptions {
  /** The routers' preview token (`<state-dir>/preview-token`); without it every preview request is refused. */
  token?: string;
  timeoutMs?: number;
}

export class PreviewClient implements PreviewPort {
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;

  constructor(
    /** Router URL (clients' entry point). */
    private readonly routerUrl: string,
    opts: PreviewClientOptions = {},
  ) {
    this.headers = { 'content-type': 'application/json', ...(opts.token !== undefined ? { [PREVIEW_TOKEN_HEADER]: opts.token } : {}) };
    this.timeoutMs = opts.timeoutMs ?? PREVIEW_TIMEOUT_MS;
  }

  async predictBatch(color: Color, rows: Array<Record<string, number>>): Promise<PreviewAnswer> {
    const predictions: number[] = [];
    let last: PreviewAnswer | undefined;
    for (let i = 0; i < rows.length; i += PREVIEW_BATCH_ROWS) {
      const res = await request(new URL('/predict/batch', this.routerUrl), {
        method: 'POST',
        headers: { ...this.headers, [PREVIEW_HEADER]: color },
        body: JSON.stringify({ instances: rows.slice(i, i + PREVIEW_BATCH_ROWS) }),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      const body = (await res.body.json()) as PreviewAnswer & { message?: string };
      if (res.statusCode !== 200) throw new Error(`preview batch on ${color} answered ${res.statusCode}: ${body.message ?? ''}`);
      if (body.color !== color) throw new Error(`preview request for ${color} was answered by ${body.color}`);
      predictions.push(...body.predictions);
      last = body;
    }
    if (!last) throw new Error('no rows to send');
    return { ...last, predictions };
  }
}

export async function runSmoke(
  client: PreviewPort,
  target: Color,
  stable: Color,
  bundleDir: string,
  expectedVersion: string,
): Promise<SmokeResult> {
  const failures: string[] = [];
  const golden = await readGoldenSet(bundleDir).catch((err: Error) => {
    failures.push(`golden set unreadable: ${err.message}`);
    return null;
  });
  if (!golden) {
    return {
      ok: false,
      failures: failures.length ? failures : [`bundle ships no ${GOLDEN_FILE}: the quality gate cannot run`],
      rows: 0,
      rmse: null,
      agreement: null,
      meanAbsDelta: null,
    };
  }
  try {
    const [candidate, baseline] = await Promise.all([client.predictBatch(target, golden.rows), client.predictBatch(stable, golden.rows)]);
    if (candidate.model.version !== expectedVersion)
      failures.push(`${target} answers version ${candidate.model.version}, expected ${expectedVersion}`);
    if (candidate.predictions.length !== golden.rows.length)
      failures.push(`${target} answered ${candidate.predictions.length} of ${golden.rows.length} rows`);
    if (failures.length) return { ok: false, failures, rows: golden.rows.length, rmse: null, agreement: null, meanAbsDelta: null };
    const cmp = compareGolden(golden.labels, candidate.predictions, baseline.predictions);
    return { ok: true, failures, rows: cmp.rows, rmse: cmp.rmse, agreement: cmp.agreement, meanAbsDelta: cmp.meanAbsDelta };
  } catch (err) {
    return { ok: false, failures: [(err as Error).message], rows: golden.rows.length, rmse: null, agreement: null, meanAbsDelta: null };
  }
}
