/** A small client for Prometheus's HTTP query API (instant queries), for tests, `up` and release analysis. */

export interface InstantSample {
  labels: Record<string, string>;
  value: number;
}

export type InstantResult = { status: 'success'; samples: InstantSample[] } | { status: 'error'; errorType: string; error: string };

interface ApiResponse {
  status: 'success' | 'error';
  errorType?: string;
  error?: string;
  data?: { resultType: string; result: unknown };
}

interface VectorItem {
  metric: Record<string, string>;
  value: [number, string];
}

/**
 * Runs an instant query. A query Prometheus refuses (bad PromQL) is an `error` result, not an exception;
 * a Prometheus that cannot be reached throws.
 */
export async function queryInstant(baseUrl: string, expr: string, signal?: AbortSignal): Promise<InstantResult> {
  const res = await fetch(new URL('/api/v1/query', baseUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ query: expr }).toString(),
    signal: signal ?? AbortSignal.timeout(10_000),
  });
  const body = (await res.json()) as ApiResponse;
  if (body.status !== 'success') {
    return { status: 'error', errorType: body.errorType ?? `http ${res.status}`, error: body.error ?? '' };
  }
  const data = body.data;
  if (data?.resultType === 'scalar') {
    const [, value] = data.result as [number, string];
    return { status: 'success', samples: [{ labels: {}, value: Number(value) }] };
  }
  if (data?.resultType !== 'vector') {
    return { status: 'error', errorType: 'unsupported', error: `result type ${data?.resultType} is not an instant vector` };
  }
  const samples = (data.result as VectorItem[]).map((item) => ({ labels: item.metric, value: Number(item.value[1]) }));
  return { status: 'success', samples };
}
