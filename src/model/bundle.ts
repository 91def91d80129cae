/** Loading (with every check) and writing of model bundles: a folder with manifest.json and the files it lists. */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BundleError } from './bundle-error.js';
import { plainLocator, type BundleLocator, type BundleRoots } from './bundle-roots.js';
import { sha256Hex } from './csv.js';
import { manifestProblems } from './manifest.js';
import { SUPPORTED_FORMATS, createRuntime } from './runtimes.js';
import type { LoadedModel, Manifest } from './types.js';

export { BundleError, type BundleErrorCode } from './bundle-error.js';
export { BundleRoots, defaultBundleRoots } from './bundle-roots.js';

export const MANIFEST_FILE = 'manifest.json';

export interface LoadOptions {
  /** When given, the bundle's ordered features must be exactly these. */
  expectedFeatures?: readonly string[];
  /** When given, the folder and every file it reads must resolve inside these roots (symlinks followed). */
  roots?: BundleRoots;
}

/**
 * Where JSON.parse stopped, without its message: V8 quotes the text it could not parse, and a bundle's
 * refusal must never show the content of the file it was pointed at.
 */
function jsonErrorPlace(err: unknown): string {
  const at = /at position \d+(?: \(line \d+ column \d+\))?/.exec(String((err as Error)?.message));
  return at ? ` (${at[0]})` : '';
}

/** Reads a located file; the errno code (never the content) goes into the error. */
async function readLocated(locator: BundleLocator, rel: string): Promise<Buffer> {
  return readFile(await locator.locate(rel));
}

/** Names what differs between the features asked for and the bundle's, or null when they are the same list. */
export function featureDifference(expected: readonly string[], actual: readonly string[]): string | null {
  const missing = expected.filter((f) => !actual.includes(f));
  const unexpected = actual.filter((f) => !expected.includes(f));
  const parts: string[] = [];
  if (missing.length) parts.push(`missing ${missing.map((f) => JSON.stringify(f)).join(', ')}`);
  if (unexpected.length) parts.push(`unexpected ${unexpected.map((f) => JSON.stringify(f)).join(', ')}`);
  if (!parts.length && expected.some((f, i) => actual[i] !== f)) {
    parts.push(`same features in another order (expected ${expected.join(', ')}; bundle has ${actual.join(', ')})`);
  }
  return parts.length ? parts.join('; ') : null;
}

async function readManifest(dir: string, locator: BundleLocator): Promise<{ manifest: Manifest; bytes: Buffer }> {
  let bytes: Buffer;
  try {
    bytes = await readLocated(locator, MANIFEST_FILE);
  } catch (err) {
    if (err instanceof BundleError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new BundleError('manifest_missing', `not a bundle: ${dir}: cannot read ${MANIFEST_FILE} (${code})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new BundleError('manifest_invalid', `not a bundle: ${dir}: ${MANIFEST_FILE} is not valid JSON${jsonErrorPlace(err)}`);
  }
  const problems = manifestProblems(json);
  if (problems.length) {
    throw new BundleError('manifest_invalid', `not a bundle: ${dir}: ${MANIFEST_FILE} is malformed: ${problems.join('; ')}`, problems);
  }
  return { manifest: json as Manifest, bytes };
}

/** Reads every listed file and checks its sha256; returns the verified bytes by relative path. */
async function verifyFiles(dir: string, manifest: Manifest, locator: BundleLocator): Promise<Map<string, Buffer>> {
  const verified = new Map<string, Buffer>();
  for (const [rel, expected] of Object.entries(manifest.files)) {
    let bytes: Buffer;
    try {
      bytes = await readLocated(locator, rel);
    } catch (err) {
      if (err instanceof BundleError) throw err;
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new BundleError('file_missing', `bundle ${dir}: file "${rel}" listed in the manifest cannot be read (${code})`);
    }
    const actual = sha256Hex(bytes);
    if (actual !== expected) {
      throw new BundleError('checksum_mismatch', `bundle ${dir}: file "${rel}" has sha256 ${actual}, the manifest says ${expected}`);
    }
    verified.set(rel, bytes);
  }
  return verified;
}

/**
 * Loads a bundle for serving, refusing it with a BundleError unless: it lies inside the roots (when given),
 * manifest.json is well-formed, its format is supported, every listed file is present with the listed sha256,
 * the features are the expected ones, and the model file builds a runtime matching the manifest.
 */
export async function loadBundle(dir: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  const locator = opts.roots ? (await opts.roots.confine(path.resolve(dir))).locator : plainLocator(dir);
  const { manifest, bytes } = await readManifest(dir, locator);
  if (!SUPPORTED_FORMATS.includes(manifest.format)) {
    throw new BundleError(
      'unsupported_format',
      `bundle ${dir}: model format "${manifest.format}" is not supported (supported: ${SUPPORTED_FORMATS.join(', ')})`,
    );
  }
  const featureNames = manifest.features.map((f) => f.name);
  if (opts.expectedFeatures) {
    const diff = featureDifference(opts.expectedFeatures, featureNames);
    if (diff) throw new BundleError('features_mismatch', `bundle ${dir}: features differ from those expected: ${diff}`);
  }
  const verified = await verifyFiles(dir, manifest, locator);
  const runtime = await createRuntime(manifest, dir, verified.get(manifest.modelFile)!);
  return { dir, manifest, sha256: sha256Hex(bytes), featureNames, runtime };
}

export interface BundleContents {
  /** The manifest without `files`, which writeBundle computes. */
  manifest: Omit<Manifest, 'files'>;
  /** Bundle files by relative path (the model file, golden.csv, ...). */
  files: Record<string, Uint8Array | string>;
}

function manifestText(manifest: Manifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/**
 * Writes a bundle: every file, then manifest.json with their sha256 (written last, through a rename, so a
 * folder with a manifest is always complete). Refuses to write a manifest that loadBundle would refuse.
 */
export async function writeBundle(dir: string, contents: BundleContents): Promise<Manifest> {
  const files: Record<string, string> = {};
  for (const rel of Object.keys(contents.files).sort()) files[rel] = sha256Hex(contents.files[rel]);
  const manifest: Manifest = { ...contents.manifest, files };
  const problems = manifestProblems(manifest);
  if (problems.length) throw new BundleError('manifest_invalid', `refusing to write bundle ${dir}: ${problems.join('; ')}`, problems);
  await mkdir(dir, { recursive: true });
  for (const [rel, data] of Object.entries(contents.files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), data);
  }
  const tmp = path.join(dir, `.${MANIFEST_FILE}.tmp`);
  await writeFile(tmp, manifestText(manifest));
  await rename(tmp, path.join(dir, MANIFEST_FILE));
  return manifest;
}
