/**
 * Smoke checks of a freshly loaded color: the golden rows of the new bundle go to both colors, and the new one
 * must answer every row, with the version it was given, and an RMSE no worse than the stable color's by the
 * margin (the engine judges the margin). A classifier's golden labels are class names: both colors must answer
 * classes with probabilities, and the figures are accuracy, log-loss and class agreement. The stable color is asked through the router's preview route (the
 * header that reaches one color whatever the weights, private: the preview token goes with it). The new color
 * is asked on each of its replicas directly (their addresses come from the pools), with the source header set
 * to `preview` so the instances do not count it as live traffic: every replica must answer every row, with the
 * version, and the same predictions as the others (one replica on another model fails the check, named).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { PREVIEW_HEADER, PREVIEW_TOKEN_HEADER, SOURCE_HEADER, type Color } from '../config/defaults.js';
import { parseDataset } from '../model/csv.js';
import type { Manifest } from '../model/types.js';
import { type ClassAnswers, compareGolden, compareGoldenClasses } from '../release/golden.js';
import { GOLDEN_FILE } from '../model/train-bundle.js';
import type { SmokeResult } from '../release/types.js';
import { PREVIEW_BATCH_ROWS, PREVIEW_TIMEOUT_MS } from './defaults.js';
import { type PoolView, replicaAddress, replicaUrl } from './pools.js';
import type { PreviewAnswer, PreviewPort } from './ports.js';

interface GoldenRows {
  features: readonly string[];
  rows: Array<Record<string, number>>;
}

export interface RegressionGoldenSet extends GoldenRows {
  task: 'regression';
  labels: Float64Array;
}

export interface ClassGoldenSet extends GoldenRows {
  task: 'classification';
  /** Class names, as the bundle's golden.csv has them. */
  labels: string[];
}

export type GoldenSet = RegressionGoldenSet | ClassGoldenSet;

/** The bundle's golden rows, or null when it ships none. */
export async function readGoldenSet(bundleDir: string): Promise<GoldenSet | null> {
  const manifest = JSON.parse(await readFile(path.join(bundleDir, 'manifest.json'), 'utf8')) as Manifest;
  if (!(GOLDEN_FILE in manifest.files)) return null;
  const features = manifest.features.map((f) => f.name);
  const classifier = manifest.task === 'classification';
  const data = parseDataset(await readFile(path.join(bundleDir, GOLDEN_FILE), 'utf8'), {
    features,
    target: manifest.target,
    source: path.join(bundleDir, GOLDEN_FILE),
    textLabels: classifier,
  });
  const rows: Array<Record<string, number>> = [];
  for (let r = 0; r < data.nRows; r++) {
    rows.push(Object.fromEntries(features.map((f, j) => [f, data.x[r * features.length + j]])));
  }
  return classifier
    ? { task: 'classification', features, rows, labels: data.labelTexts ?? [] }
    : { task: 'regression', features, rows, labels: data.y as Float64Array };
}

export interface PreviewClientOptions {
  /** The routers' preview token (`<state-dir>/preview-token`); without it every preview request is refused. */
  token?: string;
  timeoutMs?: number;
  /** The colors' replicas: with them, predictEach asks each replica directly. */
  pools?: PoolView;
}

export class PreviewClient implements PreviewPort {
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  readonly predictEach?: PreviewPort['predictEach'];

  constructor(
    /** Router URL (clients' entry point). */
    private readonly routerUrl: string,
    opts: PreviewClientOptions = {},
  ) {
    this.headers = { 'content-type': 'application/json', ...(opts.token !== undefined ? { [PREVIEW_TOKEN_HEADER]: opts.token } : {}) };
    this.timeoutMs = opts.timeoutMs ?? PREVIEW_TIMEOUT_MS;
    const pools = opts.pools;
    if (pools) {
      this.predictEach = (color, rows) =>
        Promise.all(
          pools.replicas(color).map(async (r) => {
            const replica = replicaAddress(r);
            try {
              // Straight to the replica: marked preview, so its metrics do not count it as live traffic.
              return { replica, answer: await this.batches(replicaUrl(r), { [SOURCE_HEADER]: 'preview' }, color, rows) };
            } catch (err) {
              throw new Error(`${color} replica ${replica}: ${(err as Error).message}`);
            }
          }),
        );
    }
  }

  async predictBatch(color: Color, rows: Array<Record<string, number>>): Promise<PreviewAnswer> {
    return this.batches(this.routerUrl, { ...this.headers, [PREVIEW_HEADER]: color }, color, rows);
  }

  private async batches(
    base: string,
    headers: Record<string, string>,
    color: Color,
    rows: Array<Record<string, number>>,
  ): Promise<PreviewAnswer> {
    const predictions: PreviewAnswer['predictions'] = [];
    const probabilities: NonNullable<PreviewAnswer['probabilities']> = [];
    let last: PreviewAnswer | undefined;
    for (let i = 0; i < rows.length; i += PREVIEW_BATCH_ROWS) {
      const res = await request(new URL('/predict/batch', base), {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ instances: rows.slice(i, i + PREVIEW_BATCH_ROWS) }),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      const body = (await res.body.json()) as PreviewAnswer & { message?: string };
      if (res.statusCode !== 200) throw new Error(`preview batch on ${color} answered ${res.statusCode}: ${body.message ?? ''}`);
      if (body.color !== color) throw new Error(`preview request for ${color} was answered by ${body.color}`);
      predictions.push(...body.predictions);
      if (body.probabilities) probabilities.push(...body.probabilities);
      last = body;
    }
    if (!last) throw new Error('no rows to send');
    return { ...last, predictions, ...(last.probabilities ? { probabilities } : {}) };
  }
}

/** The candidate color's answers: one per replica when the client reaches replicas, else the color's one. */
async function candidates(
  client: PreviewPort,
  color: Color,
  rows: Array<Record<string, number>>,
): Promise<Array<{ replica: string | null; answer: PreviewAnswer }>> {
  if (!client.predictEach) return [{ replica: null, answer: await client.predictBatch(color, rows) }];
  const each = await client.predictEach(color, rows);
  if (each.length === 0) throw new Error(`${color} has no replicas to check`);
  return each;
}

function samePrediction(a: number | string, b: number | string): boolean {
  return typeof a === 'number' && typeof b === 'number' ? Math.abs(a - b) <= 1e-9 : a === b;
}

/**
 * Answers the golden set's task cannot be compared with: a classifier's golden labels need classes with
 * probabilities from both colors, a regressor's need numbers. A release that changes the task (a regressor
 * replacing a classifier, or the reverse) therefore stops here: the gate has no common measure for the two.
 */
function taskMismatches(golden: GoldenSet, answers: Array<[Color, PreviewAnswer]>): string[] {
  const classifier = golden.task === 'classification';
  return answers
    .filter(([, a]) =>
      classifier ? !a.probabilities || a.predictions.some((p) => typeof p !== 'string') : a.predictions.some((p) => typeof p !== 'number'),
    )
    .map(([color]) =>
      classifier
        ? `${color} does not answer classes with probabilities: the golden set is a classifier's`
        : `${color} does not answer numbers: the golden set is a regressor's`,
    );
}

function classAnswers(a: PreviewAnswer): ClassAnswers {
  return { predictions: a.predictions as string[], probabilities: a.probabilities ?? [] };
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
    const [answers, baseline] = await Promise.all([candidates(client, target, golden.rows), client.predictBatch(stable, golden.rows)]);
    for (const { replica, answer } of answers) {
      const who = replica ? `${target} replica ${replica}` : target;
      if (answer.model.version !== expectedVersion)
        failures.push(`${who} answers version ${answer.model.version}, expected ${expectedVersion}`);
      if (answer.predictions.length !== golden.rows.length)
        failures.push(`${who} answered ${answer.predictions.length} of ${golden.rows.length} rows`);
    }
    const candidate = answers[0].answer;
    if (!failures.length) {
      for (const { replica, answer } of answers.slice(1)) {
        if (answer.predictions.some((p, i) => !samePrediction(p, candidate.predictions[i])))
          failures.push(`${target} replica ${replica} predicts otherwise than replica ${answers[0].replica} on the golden rows`);
      }
    }
    if (!failures.length)
      failures.push(
        ...taskMismatches(golden, [
          [target, candidate],
          [stable, baseline],
        ]),
      );
    if (failures.length) return { ok: false, failures, rows: golden.rows.length, rmse: null, agreement: null, meanAbsDelta: null };
    if (golden.task === 'classification') {
      const cmp = compareGoldenClasses(golden.labels, classAnswers(candidate), classAnswers(baseline));
      const { rows, accuracy, logLoss, agreement } = cmp;
      return { ok: true, failures, rows, rmse: null, agreement, meanAbsDelta: null, accuracy, logLoss };
    }
    const cmp = compareGolden(golden.labels, candidate.predictions as number[], baseline.predictions as number[]);
    return { ok: true, failures, rows: cmp.rows, rmse: cmp.rmse, agreement: cmp.agreement, meanAbsDelta: cmp.meanAbsDelta };
  } catch (err) {
    return { ok: false, failures: [(err as Error).message], rows: golden.rows.length, rmse: null, agreement: null, meanAbsDelta: null };
  }
}
