/**
 * TEST-ONLY fault injection, so release tests can put a bundle on an instance that turns slow or failing under
 * live traffic. Off unless BGSERVE_ENABLE_TEST_FAULTS=1; then BGSERVE_TEST_FAULTS holds JSON keyed by model
 * version, e.g. {"1.0.1-slow": {"latencyMs": 40}, "1.0.1-errors": {"errorRate": 0.25}}.
 *
 * Faults touch single-row predictions only: a release's smoke checks send the golden rows as batches, so
 * a faulty version passes them and must be caught by the live-traffic analysis, which is what tests exercise.
 * Errors are deterministic (every 1/errorRate-th single prediction throws), never random.
 */
import type { LoadedModel, ModelRuntime } from '../model/types.js';

export const FAULTS_ENABLE_ENV = 'BGSERVE_ENABLE_TEST_FAULTS';
export const FAULTS_ENV = 'BGSERVE_TEST_FAULTS';

export interface Fault {
  latencyMs?: number;
  errorRate?: number;
}

export function faultFor(version: string, env: NodeJS.ProcessEnv = process.env): Fault | undefined {
  if (env[FAULTS_ENABLE_ENV] !== '1' || !env[FAULTS_ENV]) return undefined;
  const table = JSON.parse(env[FAULTS_ENV] as string) as Record<string, Fault>;
  return table[version];
}

/** The model as is, or with its runtime wrapped by the fault configured for its version. */
export function withTestFaults(model: LoadedModel, env: NodeJS.ProcessEnv = process.env): LoadedModel {
  const fault = faultFor(model.manifest.version, env);
  if (!fault) return model;
  const inner = model.runtime;
  let debt = 0;
  const runtime: ModelRuntime = {
    kind: inner.kind,
    nFeatures: inner.nFeatures,
    predict(rows, nRows) {
      if (nRows !== 1) return inner.predict(rows, nRows);
      debt += fault.errorRate ?? 0;
      if (debt >= 1) {
        debt -= 1;
        throw new Error(`injected test fault (${model.manifest.version})`);
      }
      if (!fault.latencyMs) return inner.predict(rows, nRows);
      return new Promise((resolve, reject) =>
        setTimeout(() => Promise.resolve(inner.predict(rows, nRows)).then(resolve, reject), fault.latencyMs),
      );
    },
    ...(inner.close ? { close: () => inner.close!() } : {}),
  };
  return { ...model, runtime };
}
