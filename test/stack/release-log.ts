/**
 * A release log written the way the controller writes one (engine states through ReleaseStore), so a stack can
 * start on a state dir whose log says a release already happened, without running one.
 */
import path from 'node:path';
import type { Color } from '../../src/config/defaults.js';
import { loadBundle } from '../../src/model/bundle.js';
import { RELEASE_LOG_FILE } from '../../src/release/defaults.js';
import { createRelease } from '../../src/release/engine.js';
import { buildSpec } from '../../src/release/spec.js';
import type { ReleaseState } from '../../src/release/types.js';
import { ReleaseStore } from '../../src/store/release-store.js';

/** Appends a release of `bundle` from `stableColor` to the other color, ended as `status`. */
export async function writeRelease(
  stateDir: string,
  bundle: string,
  o: { stableColor?: Color; status?: ReleaseState['status']; phase?: ReleaseState['phase']; targetWeight?: number } = {},
): Promise<ReleaseState> {
  const loaded = await loadBundle(bundle);
  await loaded.runtime.close?.();
  const now = Date.now();
  const spec = buildSpec({
    id: `r-test-${now}`,
    bundle,
    stableColor: o.stableColor ?? 'blue',
    modelName: loaded.manifest.name,
    version: loaded.manifest.version,
    sha256: loaded.sha256,
  });
  const status = o.status ?? 'succeeded';
  const state: ReleaseState = {
    ...createRelease(spec, now).state,
    status,
    phase: o.phase ?? (status === 'running' || status === 'paused' ? 'step' : 'done'),
    targetWeight: o.targetWeight ?? (status === 'succeeded' ? 100 : 0),
  };
  const store = ReleaseStore.open(path.join(stateDir, RELEASE_LOG_FILE));
  try {
    store.save(state);
  } finally {
    store.close();
  }
  return state;
}
