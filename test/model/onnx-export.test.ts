import { describe, it, expect, beforeAll } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadBundle } from '../../src/model/bundle.js';
import { deserializeForest } from '../../src/model/forest.js';
import { onnxParityTolerance } from '../../src/model/onnx/export.js';
import { WINE_FEATURES } from '../../src/model/wine.js';
import type { RegressionMetrics } from '../../src/model/types.js';
import { CLI_ENTRY, ROOT } from '../support/processes.js';
import { runOnnxChecker, tempDir, WINE_CSV, wineData } from './onnx-support.js';

const BUNDLE = path.join(ROOT, 'models/wine-quality/1.0.0');

/** Runs the CLI from source to completion (bounded in time); resolves with its output, rejects on a non-zero exit. */
async function cli(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', CLI_ENTRY, ...args], { cwd: ROOT, timeout: 60_000 });
  return stdout;
}
async function cliFailure(...args: string[]): Promise<string> {
  const err = await cli(...args).then(
    () => null,
    (e: { stderr: string }) => e,
  );
  expect(err).not.toBeNull();
  return err!.stderr;
}

let out: string;
let exported: string;
let exportLog: string;

beforeAll(async () => {
  out = tempDir();
  exported = path.join(out, 'exported');
  exportLog = await cli('export-onnx', BUNDLE, '--out', exported, '--version', '1.0.0-onnx');
}, 90_000);

describe('bgserve export-onnx', () => {
  it('writes a bundle of its own: format onnx, new checksums, the source schema', async () => {
    expect(exportLog).toMatch(/exported wine-quality 1\.0\.0-onnx \(format onnx\)/);
    const src = JSON.parse(readFileSync(path.join(BUNDLE, 'manifest.json'), 'utf8'));
    const m = JSON.parse(readFileSync(path.join(exported, 'manifest.json'), 'utf8'));
    expect(m).toMatchObject({
      format: 'onnx',
      modelFile: 'model.onnx',
      version: '1.0.0-onnx',
      onnx: { input: 'float_input', output: 'variable' },
    });
    expect(m.features).toEqual(src.features);
    expect(m.preprocessing).toEqual({ kind: 'none' });
    expect(Object.keys(m.files).sort()).toEqual(['golden.csv', 'model.onnx']);
    expect(m.files['golden.csv']).toBe(src.files['golden.csv']);
  });

  it('passes onnx.checker.check_model (Debian python3-onnx)', async () => {
    const report = await runOnnxChecker(path.join(exported, 'model.onnx'));
    expect(report).toMatch(/ir 8 opsets \[\('', 17\), \('ai\.onnx\.ml', 3\)\]/);
  });

  it('agrees with the native runtime on every row of winequality-red.csv within float32 tolerance', async () => {
    const native = await loadBundle(BUNDLE);
    const onnx = await loadBundle(exported);
    try {
      const data = await wineData();
      const a = await native.runtime.predict(data.x, data.nRows);
      const b = await onnx.runtime.predict(data.x, data.nRows);
      // Bound derived in onnxParityTolerance: float32 leaves and float32 accumulation of 100 trees (about 3e-5
      // for leaves up to 8); a row sent down another branch would differ by a leaf difference / 100 trees.
      const tolerance = onnxParityTolerance(deserializeForest(readFileSync(path.join(BUNDLE, 'forest.bin'))));
      expect(tolerance).toBeLessThan(1e-4);
      let max = 0;
      for (let i = 0; i < data.nRows; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
      expect(data.nRows).toBe(1599);
      expect(max).toBeLessThanOrEqual(tolerance);
      // Rows too one at a time: the single-row path is the one /predict takes.
      for (let i = 0; i < data.nRows; i += 97) {
        const row = data.x.subarray(i * 11, i * 11 + 11);
        expect(Math.abs((await onnx.runtime.predict(row, 1))[0] - a[i])).toBeLessThanOrEqual(tolerance);
      }
    } finally {
      await native.runtime.close?.();
      await onnx.runtime.close?.();
    }
  });

  it('refuses to overwrite a bundle and to export an ONNX bundle again', async () => {
    expect(await cliFailure('export-onnx', BUNDLE, '--out', exported)).toMatch(/refusing to overwrite the bundle/);
    expect(await cliFailure('export-onnx', exported, '--out', path.join(out, 'again'))).toMatch(
      /only native-forest bundles can be exported/,
    );
  });
});

describe('bgserve import-onnx', () => {
  it('makes a servable bundle with ranges and metrics from the CSV', async () => {
    const dir = path.join(out, 'imported');
    const log = await cli(
      'import-onnx',
      path.join(exported, 'model.onnx'),
      '--features-from',
      WINE_CSV,
      '--name',
      'wine-user',
      '--version',
      '2.0.0',
      '--out',
      dir,
    );
    expect(log).toMatch(/imported wine-user 2\.0\.0 \(format onnx, 11 features, input 'float_input', output 'variable'\)/);
    const m = await loadBundle(dir);
    const ref = await loadBundle(exported);
    try {
      expect(m.featureNames).toEqual(WINE_FEATURES);
      const alcohol = m.manifest.features[10];
      expect([alcohol.min, alcohol.max]).toEqual([8.4, 14.9]);
      expect(m.manifest.training.data).toMatchObject({ file: 'winequality-red.csv', rows: 1599 });
      expect(m.manifest.training.metrics.rows).toBe(1599);
      expect((m.manifest.training.metrics as RegressionMetrics).rmse).toBeGreaterThan(0);
      const data = await wineData();
      expect(await m.runtime.predict(data.x, 5)).toEqual(await ref.runtime.predict(data.x, 5));
    } finally {
      await m.runtime.close?.();
      await ref.runtime.close?.();
    }
  });

  it('takes the features as a list', async () => {
    const dir = path.join(out, 'listed');
    await cli(
      'import-onnx',
      path.join(exported, 'model.onnx'),
      '--features',
      ...WINE_FEATURES,
      '--name',
      'wine-user',
      '--version',
      '2.0.1',
      '--out',
      dir,
    );
    const m = await loadBundle(dir);
    await m.runtime.close?.();
    expect(m.featureNames).toEqual(WINE_FEATURES);
  });

  it('refuses a model whose input width is not the number of features', async () => {
    const stderr = await cliFailure(
      'import-onnx',
      path.join(exported, 'model.onnx'),
      '--features',
      ...WINE_FEATURES.slice(0, 10),
      '--name',
      'w',
      '--version',
      '1.0.0',
      '--out',
      path.join(out, 'narrow'),
    );
    expect(stderr).toMatch(/input 'float_input' has 11 columns, manifest has 10 features/);
  });

  it('asks for the features when none are given', async () => {
    expect(await cliFailure('import-onnx', path.join(exported, 'model.onnx'), '--name', 'w', '--version', '1.0.0')).toMatch(
      /needs --features <names...> or --features-from <csv>/,
    );
  });
});
