/**
 * The demo's bad versions, derived from a good bundle through the model layer: one whose forest.bin no longer
 * matches its checksum (refused before traffic moves), one whose predictions are all moved up (caught by the
 * live analysis), one that overflows on part of the live-like rows but none of its golden rows (passes its
 * smoke test, answers 500 model_error on live traffic, caught by the error-ratio check) and one that predicts
 * the same but takes milliseconds per request (caught by the latency checks). All are real models: nothing
 * here uses the test-only fault injection (serve/faults.ts).
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeBundle } from '../model/bundle.js';
import { readDataset } from '../model/csv.js';
import { deserializeForest, type FlatForest, serializeForest } from '../model/forest.js';
import { exportOnnxBundle } from '../model/onnx/export.js';
import type { Manifest } from '../model/types.js';
import { erroringForest, type RowTable } from './erroring.js';
import { withDenseBlock } from './slow.js';

/** Added to every leaf: twice the stable std of the default model, well past the mean-shift and PSI thresholds. */
export const DEMO_SHIFT = 1;

export const DEMO_VERSIONS = {
  corrupt: '1.0.1-corrupt',
  shifted: '1.0.1-shifted',
  erroring: '1.0.1-erroring',
  slow: '1.0.1-slow',
} as const;

/** The live-like rows the demo's load sends by default, and the erroring variant is tuned on. */
export const DEMO_LIVE_ROWS = 'data/wine-quality/winequality-red.csv';

async function readManifest(base: string): Promise<Manifest> {
  const manifest = JSON.parse(await readFile(path.join(base, 'manifest.json'), 'utf8')) as Manifest;
  if (manifest.format !== 'native-forest')
    throw new Error(`${base} is a ${manifest.format} bundle; demo bundles derive from a native forest`);
  return manifest;
}

/**
 * Writes <outRoot>/<version>: `base` with its forest changed by `change` (in place, or a new forest returned)
 * and every other file copied. Returns the folder.
 */
export async function deriveBundle(
  base: string,
  outRoot: string,
  version: string,
  change: (forest: FlatForest) => FlatForest | undefined = () => undefined,
): Promise<string> {
  const manifest = await readManifest(base);
  const original = deserializeForest(await readFile(path.join(base, manifest.modelFile)));
  const forest = change(original) ?? original;
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
  return dir;
}

/** Every prediction moved by `shift`. */
export const shiftBy =
  (shift: number) =>
  (forest: FlatForest): undefined => {
    for (let i = 0; i < forest.value.length; i++) forest.value[i] += shift;
  };

/** Flips one byte near the end of the bundle's model file: the file still parses, only its checksum tells. */
export async function corruptModelFile(dir: string): Promise<void> {
  const file = path.join(dir, (await readManifest(dir)).modelFile);
  const bytes = await readFile(file);
  bytes[bytes.length - 9] ^= 0xff;
  await writeFile(file, bytes);
}

/** `base` exported to ONNX (with the exporter's parity check), then given the slow dense block. */
export async function writeSlowBundle(base: string, outRoot: string): Promise<string> {
  const dir = path.join(outRoot, DEMO_VERSIONS.slow);
  // The exporter refuses to overwrite a bundle; this folder is the demo's own, made again on every run.
  await rm(dir, { recursive: true, force: true });
  const { manifest } = await exportOnnxBundle(base, { outDir: dir, version: DEMO_VERSIONS.slow });
  const { files, ...rest } = manifest;
  const read = (f: string) => readFile(path.join(dir, f));
  const others = Object.keys(files).filter((f) => f !== manifest.modelFile);
  await writeBundle(dir, {
    manifest: rest,
    files: {
      [manifest.modelFile]: withDenseBlock(await read(manifest.modelFile)),
      ...Object.fromEntries(await Promise.all(others.map(async (f) => [f, await read(f)]))),
    },
  });
  return dir;
}

async function rowTable(csv: string, manifest: Manifest): Promise<RowTable> {
  const data = await readDataset(csv, { features: manifest.features.map((f) => f.name), target: manifest.target, labelled: false });
  return { x: data.x, nRows: data.nRows };
}

export interface DemoBundles {
  corrupt: string;
  shifted: string;
  erroring: string;
  slow: string;
  /** Share of the live-like rows the erroring variant fails on. */
  erroringShare: number;
}

/** Writes the four demo bundles under outRoot from `base`; `liveRows` is a CSV of live-like rows. */
export async function writeDemoBundles(base: string, outRoot: string, liveRows: string): Promise<DemoBundles> {
  const manifest = await readManifest(base);
  if (!manifest.goldenFile) throw new Error(`${base} has no golden set: the erroring variant must pass one`);
  const golden = await rowTable(path.join(base, manifest.goldenFile), manifest);
  const live = await rowTable(liveRows, manifest);

  const corrupt = await deriveBundle(base, outRoot, DEMO_VERSIONS.corrupt);
  await corruptModelFile(corrupt);
  const shifted = await deriveBundle(base, outRoot, DEMO_VERSIONS.shifted, shiftBy(DEMO_SHIFT));
  let erroringShare = 0;
  const erroring = await deriveBundle(base, outRoot, DEMO_VERSIONS.erroring, (forest) => {
    const made = erroringForest(forest, manifest.preprocessing, golden, live);
    erroringShare = made.failingShare;
    return made.forest;
  });
  const slow = await writeSlowBundle(base, outRoot);
  return { corrupt, shifted, erroring, slow, erroringShare };
}
