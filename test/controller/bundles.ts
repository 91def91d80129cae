/**
 * Test bundles derived from the committed 1.0.0 through the model layer's writeBundle: same trees under
 * another version (for fault injection by version), shifted leaf values (predictions moved), or a copy
 * whose forest.bin no longer matches its checksum.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeBundle } from '../../src/model/bundle.js';
import { deserializeForest, serializeForest } from '../../src/model/forest.js';
import type { Manifest } from '../../src/model/types.js';
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
  const manifest = JSON.parse(await readFile(path.join(BASE_BUNDLE, 'manifest.json'), 'utf8')) as Manifest;
  const forestBytes = await readFile(path.join(BASE_BUNDLE, manifest.modelFile));
  const forest = deserializeForest(forestBytes);
  if (spec.shift) for (let i = 0; i < forest.value.length; i++) forest.value[i] += spec.shift;
  const { files: _files, ...rest } = manifest;
  void _files;
  const dir = path.join(outRoot, spec.version);
  await writeBundle(dir, {
    manifest: { ...rest, version: spec.version, createdAt: new Date().toISOString() },
    files: { [manifest.modelFile]: serializeForest(forest), 'golden.csv': await readFile(path.join(BASE_BUNDLE, 'golden.csv')) },
  });
  if (spec.corrupt) {
    const file = path.join(dir, manifest.modelFile);
    const bytes = await readFile(file);
    bytes[bytes.length - 9] ^= 0xff;
    await writeFile(file, bytes);
  }
  return dir;
}
