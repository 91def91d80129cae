import { describe, it, expect, afterAll } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadBundle } from '../../src/model/bundle.js';
import type { Manifest } from '../../src/model/types.js';
import { ROOT, startCli, stopAll, stopProcess } from '../support/processes.js';

const V1 = path.join(ROOT, 'models/wine-quality/1.0.0');
const RED = path.join(ROOT, 'data/wine-quality/winequality-red.csv');
let tmp = '';

/** Runs the CLI to completion (bounded in time) and returns its exit code and output. */
async function runCli(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; output: string }> {
  const proc = startCli(args);
  const exited = new Promise<number | null>((resolve) => proc.child.once('exit', (code) => resolve(code)));
  const timer = setTimeout(() => void stopProcess(proc), timeoutMs);
  const code = await exited;
  clearTimeout(timer);
  return { code, output: proc.output() };
}

async function scratch(): Promise<string> {
  if (!tmp) tmp = await mkdtemp(path.join(tmpdir(), 'bgserve-cli-'));
  return tmp;
}

afterAll(async () => {
  await stopAll();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('bgserve train / evaluate (real processes)', () => {
  it('train writes a loadable bundle, named from its path, and prints the held-out metrics', async () => {
    const out = path.join(await scratch(), 'wine-quality', '2.0.0');
    const { code, output } = await runCli([
      'train',
      '--data',
      RED,
      '--out',
      out,
      '--seed',
      '4',
      '--trees',
      '12',
      '--max-features',
      'sqrt',
      '--min-samples-leaf',
      '2',
      '--max-depth',
      '10',
      '--created-at',
      '2025-03-01T00:00:00Z',
    ]);
    expect(output).toMatch(/trained wine-quality 2\.0\.0 in [\d.]+ s \(1279 training rows\)/);
    expect(code).toBe(0);
    const model = await loadBundle(out);
    const m = model.manifest;
    expect(m.createdAt).toBe('2025-03-01T00:00:00.000Z');
    expect(m.training.seed).toBe(4);
    expect(m.training.params).toMatchObject({ trees: 12, maxDepth: 10, minSamplesLeaf: 2, maxFeatures: 'sqrt', featuresPerSplit: 3 });
    expect(output).toContain(`rmse     ${m.training.metrics.rmse.toFixed(4)}`);
    expect(output).toContain(`accuracy ${m.training.metrics.accuracy.toFixed(4)}`);
  });

  it('evaluate --json reproduces the manifest metrics on the golden set', async () => {
    const manifest = JSON.parse(await readFile(path.join(V1, 'manifest.json'), 'utf8')) as Manifest;
    const { code, output } = await runCli(['evaluate', V1, '--data', path.join(V1, 'golden.csv'), '--json']);
    expect(code).toBe(0);
    const result = JSON.parse(output);
    expect(result.model).toEqual({ name: 'wine-quality', version: '1.0.0' });
    expect(result.metrics).toEqual(manifest.training.metrics);
  });

  it('evaluate names the line and column of a non-numeric cell, and a missing column', async () => {
    const dir = await scratch();
    const text = (await readFile(RED, 'utf8')).split('\n');
    const bad = path.join(dir, 'bad-cell.csv');
    const cells = text[3].split(',');
    cells[8] = 'three';
    await writeFile(bad, [...text.slice(0, 3), cells.join(','), ...text.slice(4)].join('\n'));
    const badCell = await runCli(['evaluate', V1, '--data', bad]);
    expect(badCell.code).toBe(1);
    expect(badCell.output).toContain(`bgserve: ${bad} line 4: column "pH" is not a number: "three"`);

    const noPh = path.join(dir, 'no-ph.csv');
    await writeFile(
      noPh,
      text
        .map((l) =>
          l
            .split(',')
            .filter((_, j) => j !== 8)
            .join(','),
        )
        .join('\n'),
    );
    const badHeader = await runCli(['evaluate', V1, '--data', noPh]);
    expect(badHeader.code).toBe(1);
    expect(badHeader.output).toMatch(/line 1: header lacks "pH" \(expected columns: fixed acidity, .*quality; found: /);
  });

  it('train refuses a bad option; evaluate refuses a folder without a bundle', async () => {
    const badOpt = await runCli(['train', '--data', RED, '--out', path.join(await scratch(), 'x', '1.0.0'), '--trees', '0']);
    expect(badOpt.code).not.toBe(0);
    expect(badOpt.output).toMatch(/option '--trees <n>' argument '0' is invalid\. must be a positive integer/);

    const missing = await runCli(['evaluate', path.join(await scratch(), 'nowhere'), '--data', RED]);
    expect(missing.code).toBe(1);
    expect(missing.output).toMatch(/bgserve: not a bundle: .*nowhere: cannot read manifest\.json \(ENOENT\)/);
  });
});
