/** Predictions of one version for the golden rows, through its Service's /predict/batch. */
import { request } from 'undici';
import { PREVIEW_BATCH_ROWS, PREVIEW_TIMEOUT_MS } from '../controller/defaults.js';

export interface VersionAnswer {
  predictions: number[];
  model: { name?: string; version?: string };
}

/** The version could not be asked, or answered something the judge cannot read: no verdict either way. */
export class UpstreamError extends Error {
  constructor(
    readonly side: 'stable' | 'candidate',
    message: string,
  ) {
    super(`${side}: ${message}`);
    this.name = 'UpstreamError';
  }
}

export async function predictAll(
  side: 'stable' | 'candidate',
  baseUrl: string,
  rows: ReadonlyArray<Record<string, number>>,
  timeoutMs = PREVIEW_TIMEOUT_MS,
): Promise<VersionAnswer> {
  const predictions: number[] = [];
  let model: VersionAnswer['model'] = {};
  for (let i = 0; i < rows.length; i += PREVIEW_BATCH_ROWS) {
    const url = new URL('/predict/batch', baseUrl);
    let status: number;
    let body: { predictions?: unknown; model?: VersionAnswer['model']; message?: string };
    try {
      const res = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ instances: rows.slice(i, i + PREVIEW_BATCH_ROWS) }),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      status = res.statusCode;
      body = (await res.body.json()) as typeof body;
    } catch (err) {
      throw new UpstreamError(side, `${url} unreachable: ${(err as Error).message}`);
    }
    if (status !== 200) throw new UpstreamError(side, `${url} answered ${status}: ${body.message ?? ''}`);
    const got = body.predictions;
    if (!Array.isArray(got) || got.length !== Math.min(PREVIEW_BATCH_ROWS, rows.length - i) || !got.every(Number.isFinite))
      throw new UpstreamError(side, `${url} did not answer one finite prediction per row`);
    predictions.push(...(got as number[]));
    model = body.model ?? {};
  }
  return { predictions, model };
}
