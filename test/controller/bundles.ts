/**
 * Test bundles derived from the committed 1.0.0 through the demo's derivation (src/demo/bundles.ts): same trees
 * under another version (for fault injection by version), shifted leaf values (predictions moved), or a copy
 * whose forest.bin no longer matches its checksum.
 */
import path from 'node:path';
import type { ModelIdentity } from '../../src/controller/ports.js';
import { corruptModelFile, deriveBundle as derive, shiftBy } from '../../src/demo/bundles.js';
import { loadBundle } from '../../src/model/bundle.js';
import { ROOT } from '../support/processes.js';

export const BASE_BUNDLE = path.join(ROOT, 'models/wine-quality/1.0.0');
export const GOOD_BUNDLE = path.join(ROOT, 'models/wine-quality/1.1.0');

export interface DerivedBundle {
  version: string;
  /** Added to every leaf value: every prediction moves by this much. */
  shift?: number;
  /** Flip a byte of forest.bin after writing, so the checksum no longer holds. */
  corrupt?: boolean;
}

export async function deriveBundle(outRoot: string, spec: DerivedBundle): Promise<string> {
  const dir = await derive(BASE_BUNDLE, outRoot, spec.version, spec.shift ? shiftBy(spec.shift) : undefined);
  if (spec.corrupt) await corruptModelFile(dir);
  return dir;
}

/** What an instance reports serving once `dir` is loaded: its name, version and digest. */
export async function bundleIdentity(dir: string): Promise<ModelIdentity> {
  const loaded = await loadBundle(dir);
  await loaded.runtime.close?.();
  return { name: loaded.manifest.name, version: loaded.manifest.version, sha256: loaded.sha256 };
}
