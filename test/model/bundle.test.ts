import { describe, it, expect, beforeEach, afterAll } from 'vitest';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  BundleError,
  BundleRoots,
  type BundleErrorCode,
  defaultBundleRoots,
  featureDifference,
  loadBundle,
  writeBundle,
} from '../../src/model/bundle.js';
import { sha256Hex } from '../../src/model/csv.js';
import { serializeForest, deserializeForest } from '../../src/model/forest.js';
import type { Manifest } from '../../src/model/types.js';
import { WINE_FEATURES, WINE_EXAMPLE } from '../../src/model/wine.js';
import { ROOT } from '../support/processes.js';

const V1 = path.join(ROOT, 'models/wine-quality/1.0.0');
const V11 = path.join(ROOT, 'models/wine-quality/1.1.0');
const tmpRoots: string[] = [];

async function copyOfV1(): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'bgserve-bundle-'));
  tmpRoots.push(root);
  const dir = path.join(root, '1.0.0');
  await cp(V1, dir, { recursive: true });
  return dir;
}

async function readManifest(dir: string): Promise<Manifest> {
  return JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
}

async function editManifest(dir: string, edit: (m: Record<string, any>) => void): Promise<void> {
  const m = (await readManifest(dir)) as unknown as Record<string, any>;
  edit(m);
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(m, null, 2));
}

async function refusal(dir: string, opts?: Parameters<typeof loadBundle>[1]): Promise<BundleError> {
  try {
    await loadBundle(dir, opts);
  } catch (err) {
    expect(err).toBeInstanceOf(BundleError);
    return err as BundleError;
  }
  throw new Error(`bundle ${dir} was accepted`);
}

async function expectRefused(dir: string, code: BundleErrorCode, message: RegExp, opts?: Parameters<typeof loadBundle>[1]) {
  const err = await refusal(dir, opts);
  expect(err.code).toBe(code);
  expect(err.message).toMatch(message);
  expect(err.message).toContain(dir);
  return err;
}

afterAll(async () => {
  await Promise.all(tmpRoots.map((d) => rm(d, { recursive: true, force: true })));
});

describe('loadBundle: committed bundles', () => {
  it.each([
    [V1, '1.0.0'],
    [V11, '1.1.0'],
  ])('loads %s and predicts the example', async (dir, version) => {
    const model = await loadBundle(dir, { expectedFeatures: WINE_FEATURES });
    expect(model.manifest.name).toBe('wine-quality');
    expect(model.manifest.version).toBe(version);
    expect(model.featureNames).toEqual(WINE_FEATURES);
    expect(model.sha256).toBe(sha256Hex(await readFile(path.join(dir, 'manifest.json'))));
    expect(model.runtime.kind).toBe('native-forest');
    expect(Object.keys(model.manifest.files).sort()).toEqual(['forest.bin', 'golden.csv']);
    const row = Float64Array.from(WINE_FEATURES, (f) => WINE_EXAMPLE[f]);
    const [p] = await model.runtime.predict(row, 1);
    // The example is a real row of quality 5: a sane forest predicts close to it.
    expect(p).toBeGreaterThan(4.5);
    expect(p).toBeLessThan(5.8);
  });
});

describe('loadBundle refusals', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await copyOfV1();
  });

  it('manifest_missing: no manifest.json', async () => {
    await rm(path.join(dir, 'manifest.json'));
    await expectRefused(dir, 'manifest_missing', /cannot read manifest\.json \(ENOENT\)/);
    await expectRefused(path.join(dir, 'nope'), 'manifest_missing', /ENOENT/);
  });

  it('manifest_invalid: not JSON', async () => {
    await writeFile(path.join(dir, 'manifest.json'), '{"name": ');
    await expectRefused(dir, 'manifest_invalid', /manifest\.json is not valid JSON/);
  });

  it("manifest_invalid never quotes the file: the JSON parser's message (which does) is not passed on", async () => {
    await writeFile(path.join(dir, 'manifest.json'), 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1\n');
    const err = await refusal(dir);
    expect(err.code).toBe('manifest_invalid');
    expect(err.message).toMatch(/^not a bundle: .*manifest\.json is not valid JSON/);
    expect(err.message).not.toContain('root:x');
  });

  it.each<[string, (m: Record<string, any>) => void, RegExp]>([
    ['an array', (m) => Object.assign(m, { features: [] }), /features must be a non-empty array/],
    ['schemaVersion', (m) => (m.schemaVersion = 2), /schemaVersion must be 1, got 2/],
    ['name', (m) => (m.name = '../evil'), /name must be a name/],
    ['version', (m) => delete m.version, /version must be a version string/],
    ['task', (m) => (m.task = 'ranking'), /task must be "regression" or "classification", got "ranking"/],
    ['classes of a classifier', (m) => (m.task = 'classification'), /classes must list 2 or more class labels/],
    ['classes of a regressor', (m) => (m.classes = ['a', 'b']), /classes belongs to classification bundles only/],
    [
      'metrics of a classifier',
      (m) => Object.assign(m, { task: 'classification', classes: ['a', 'b'] }),
      /training\.metrics\.logLoss must be a finite number/,
    ],
    ['modelFile escaping the bundle', (m) => (m.modelFile = '../forest.bin'), /modelFile must be a relative path inside the bundle/],
    ['feature type', (m) => (m.features[3].min = '0.9'), /features\[3\]\.min must be a finite number/],
    ['duplicate feature', (m) => (m.features[1].name = m.features[0].name), /features\[1\]\.name repeats "fixed acidity"/],
    ['min > max', (m) => (m.features[0].min = 99), /features\[0\] has min 99 > max/],
    ['scaler length', (m) => m.preprocessing.mean.pop(), /preprocessing\.mean has 10 entries for 11 features/],
    ['scaler zero scale', (m) => (m.preprocessing.scale[2] = 0), /preprocessing\.scale entries must be positive/],
    ['preprocessing kind', (m) => (m.preprocessing = { kind: 'minmax' }), /preprocessing\.kind must be "standard-scaler" or "none"/],
    ['data sha', (m) => (m.training.data.sha256 = 'abc'), /training\.data\.sha256 must be 64 lowercase hex digits/],
    ['metrics', (m) => (m.training.metrics.rmse = null), /training\.metrics\.rmse must be a finite number/],
    ['split', (m) => (m.training.split.test = 1.5), /training\.split\.test must be a share in \(0, 1\)/],
    [
      'split with a test table but a share held out',
      (m) => (m.training.split.testData = { file: 't.csv', sha256: 'a'.repeat(64), rows: m.training.split.testRows }),
      /training\.split\.test must be 0 when a separate testData table was scored/,
    ],
    [
      'split test table rows',
      (m) => Object.assign(m.training.split, { test: 0, testData: { file: 't.csv', sha256: 'a'.repeat(64), rows: 3 } }),
      /training\.split\.testData\.rows must equal training\.split\.testRows/,
    ],
    ['model file not listed', (m) => delete m.files['forest.bin'], /files does not list the model file "forest\.bin"/],
    ['golden file not listed', (m) => delete m.files['golden.csv'], /files does not list the golden file "golden\.csv"/],
    ['file sha', (m) => (m.files['golden.csv'] = 'XYZ'), /files\["golden\.csv"\] must be 64 lowercase hex digits/],
    ['createdAt', (m) => (m.createdAt = 'yesterday'), /createdAt must be an ISO date-time, got "yesterday"/],
    ['target among features', (m) => (m.target = 'pH'), /target "pH" is also an input feature/],
    ['onnx names', (m) => (m.onnx = { input: 'X' }), /onnx\.output must be a non-empty string/],
  ])('manifest_invalid: %s', async (_what, edit, message) => {
    await editManifest(dir, edit);
    await expectRefused(dir, 'manifest_invalid', message);
  });

  it('manifest_invalid lists every problem at once', async () => {
    await editManifest(dir, (m) => {
      m.task = 'x';
      m.features[0].std = -1;
      delete m.createdAt;
    });
    const err = await expectRefused(dir, 'manifest_invalid', /task/);
    expect(err.details).toHaveLength(3);
    expect(err.message).toMatch(/features\[0\]\.std must not be negative/);
    expect(err.message).toMatch(/createdAt/);
  });

  it('checksum_mismatch: a flipped byte in forest.bin', async () => {
    const file = path.join(dir, 'forest.bin');
    const bytes = await readFile(file);
    bytes[bytes.length - 3] ^= 0xff;
    await writeFile(file, bytes);
    await expectRefused(dir, 'checksum_mismatch', /file "forest\.bin" has sha256 [0-9a-f]{64}, the manifest says [0-9a-f]{64}/);
  });

  it('checksum_mismatch: an edited golden.csv', async () => {
    await writeFile(path.join(dir, 'golden.csv'), 'tampered\n');
    await expectRefused(dir, 'checksum_mismatch', /file "golden\.csv"/);
  });

  it('file_missing: a listed file is gone', async () => {
    await rm(path.join(dir, 'golden.csv'));
    await expectRefused(dir, 'file_missing', /file "golden\.csv" listed in the manifest cannot be read \(ENOENT\)/);
  });

  it('features_mismatch names missing, unexpected and reordered features', async () => {
    const asked = [...WINE_FEATURES.filter((f) => f !== 'pH'), 'colour'];
    await expectRefused(dir, 'features_mismatch', /missing "colour"; unexpected "pH"/, { expectedFeatures: asked });
    const reordered = [...WINE_FEATURES].reverse();
    await expectRefused(dir, 'features_mismatch', /same features in another order/, { expectedFeatures: reordered });
  });

  it('unsupported_format: an unknown format', async () => {
    await editManifest(dir, (m) => (m.format = 'xgboost-json'));
    await expectRefused(dir, 'unsupported_format', /model format "xgboost-json" is not supported \(supported: native-forest/);
  });

  it('model_invalid: a forest file that is not a forest, with a matching checksum', async () => {
    await writeFile(path.join(dir, 'forest.bin'), 'this is a text file, not a forest at all');
    await editManifest(dir, (m) => (m.files['forest.bin'] = sha256Hex('this is a text file, not a forest at all')));
    await expectRefused(dir, 'model_invalid', /forest\.bin is not a usable forest: not a forest file/);
  });

  it('model_invalid: a forest built for another number of features', async () => {
    const forest = deserializeForest(await readFile(path.join(dir, 'forest.bin')));
    const bytes = serializeForest({ ...forest, nFeatures: 12 });
    await writeFile(path.join(dir, 'forest.bin'), bytes);
    await editManifest(dir, (m) => (m.files['forest.bin'] = sha256Hex(bytes)));
    await expectRefused(dir, 'model_invalid', /forest\.bin expects 12 features but the manifest lists 11/);
  });
});

describe('writeBundle', () => {
  it('writes files and checksums that loadBundle accepts, and refuses an invalid manifest', async () => {
    const src = await loadBundle(V1);
    const root = await mkdtemp(path.join(tmpdir(), 'bgserve-write-'));
    tmpRoots.push(root);
    const forest = await readFile(path.join(V1, 'forest.bin'));
    const { files: _files, ...rest } = src.manifest;
    const written = await writeBundle(path.join(root, 'copy'), {
      manifest: { ...rest, version: '9.9.9', goldenFile: undefined },
      files: { 'forest.bin': forest },
    });
    expect(written.files).toEqual({ 'forest.bin': sha256Hex(forest) });
    const loaded = await loadBundle(path.join(root, 'copy'));
    expect(loaded.manifest.version).toBe('9.9.9');
    await expect(
      writeBundle(path.join(root, 'bad'), { manifest: { ...rest, features: [] }, files: { 'forest.bin': forest } }),
    ).rejects.toMatchObject({ code: 'manifest_invalid' });
  });
});

describe('featureDifference', () => {
  it('is null for the same ordered list', () => {
    expect(featureDifference(WINE_FEATURES, [...WINE_FEATURES])).toBeNull();
  });
});

describe('bundle roots', () => {
  it('default: models/ under the working directory and the folder two above the start-up bundle, never /', () => {
    expect(defaultBundleRoots('models/wine-quality/1.0.0', '/srv/app')).toEqual(['/srv/app/models']);
    expect(defaultBundleRoots('/data/bundles/wine/2.0.0', '/srv/app')).toEqual(['/srv/app/models', '/data/bundles']);
    expect(defaultBundleRoots('/wine/2.0.0', '/srv/app')).toEqual(['/srv/app/models']);
  });

  it('loadBundle with roots: loads inside, refuses outside before reading and after resolving symlinks', async () => {
    const tmp = await mkdtemp(path.join(tmpdir(), 'bgserve-roots-'));
    tmpRoots.push(tmp);
    const inside = path.join(tmp, 'in');
    await cp(V11, path.join(inside, '1.1.0'), { recursive: true });
    await cp(V11, path.join(tmp, 'out', '1.1.0'), { recursive: true });
    const roots = new BundleRoots([inside]);
    expect((await loadBundle(path.join(inside, '1.1.0'), { roots })).manifest.version).toBe('1.1.0');

    for (const p of [path.join(tmp, 'out', '1.1.0'), path.join(tmp, 'out', 'missing'), path.join(inside, '..', 'out', '1.1.0')]) {
      const err = await refusal(p, { roots });
      expect(err.code).toBe('outside_roots');
      expect(err.message).toBe(
        `refused: bundle ${path.resolve(p)} is outside the bundle roots (${inside}); add one with --bundle-root (serve or up)`,
      );
    }
    await symlink(path.join(tmp, 'out', '1.1.0'), path.join(inside, 'link'));
    expect((await refusal(path.join(inside, 'link'), { roots })).code).toBe('outside_roots');
    // Without roots (the CLI's own start-up bundle, the controller's check) symlinks are followed as before.
    expect((await loadBundle(path.join(inside, 'link'))).manifest.version).toBe('1.1.0');

    const golden = path.join(inside, 'golden-link');
    await cp(V11, golden, { recursive: true });
    await rm(path.join(golden, 'golden.csv'));
    await symlink(path.join(tmp, 'out', '1.1.0', 'golden.csv'), path.join(golden, 'golden.csv'));
    const err = await refusal(golden, { roots });
    expect(err.code).toBe('outside_roots');
    expect(err.message).toContain('golden.csv');

    await mkdir(path.join(inside, 'empty'));
    expect((await refusal(path.join(inside, 'empty'), { roots })).code).toBe('manifest_missing');
    expect((await refusal(path.join(inside, 'absent'), { roots })).code).toBe('manifest_missing');
  });
});
