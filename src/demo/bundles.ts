/**
 * The demo's bad versions, derived from a good bundle through the model layer: one whose forest.bin no longer
 * matches its checksum (refused before traffic moves) and one whose predictions are all moved up (caught by the
 * live analysis). No slow or erroring variant: a bundle cannot be made slow or failing for real without the
 * test-only fault injection (serve/faults.ts), which a demo must not switch on.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeBundle } from '../model/bundle.js';
import { deserializeForest, serializeForest } from '../model/forest.js';
import type { Manifest } from '../model/types.js';

/** Added to every leaf: twice the stable std of the default model, well past the mean-shift and PSI thresholds. */
export const DEMO_SHIFT = 1;

export const DEMO_VERSIONS = { corrupt: '1.0.1-corrupt', shifted: '1.0.1-shifted' } as const;

async function derive(base: string, outRoot: string, version: string, shift: number): Promise<{ dir: string; modelFile: string }> {
  const manifest = JSON.parse(await readFile(path.join(base, 'manifest.json'), 'utf8')) as Manifest;
  if (manifest.format !== 'native-forest')
    throw new Error(`${base} is a ${manifest.format} bundle; demo bundles derive from a native forest`);
  const forest = deserializeForest(await readFile(path.join(base, manifest.modelFile)));
  for (let i = 0; i < forest.value.length; i++) forest.value[i] += shift;
  const { files, ...rest } = manifest;
  const extra = Object.keys(files).filter((f) => f !== manifest.modelFile);
  const dir = path.join(outRoot, version);
  await writeBundle(dir, {
    manifest: { ...rest, version, createdAt: new Date().toISOString() },
    files: {
      [manifest.modelFile]: serializeForest(forest),
      ...Object.fromEntries(await Promise.all(extra.map(async (f) => [f, await readFile(path.join(base, f))]))),
    },
  });
  return { dir, modelFile: manifest.modelFile };
}

/** Writes <outRoot>/1.0.1-corrupt and <outRoot>/1.0.1-shifted from `base`; returns their folders. */
export async function writeDemoBundles(base: string, outRoot: string): Promise<Record<keyof typeof DEMO_VERSIONS, string>> {
  const corrupt = await derive(base, outRoot, DEMO_VERSIONS.corrupt, 0);
  const file = path.join(corrupt.dir, corrupt.modelFile);
  const bytes = await readFile(file);
  // One flipped byte near the end: the file still parses, only its checksum tells.
  bytes[bytes.length - 9] ^= 0xff;
  await writeFile(file, bytes);
  const shifted = await derive(base, outRoot, DEMO_VERSIONS.shifted, DEMO_SHIFT);
  return { corrupt: corrupt.dir, shifted: shifted.dir };
}
