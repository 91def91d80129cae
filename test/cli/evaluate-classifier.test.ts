/**
 * `bgserve evaluate` on a classifier (real processes): its labels are class names, its figures accuracy and
 * log-loss (the ones the trainer recorded, reproduced on the bundle's golden rows), and a label the model has no
 * class for is named. The judge, which compares regressors' numbers, refuses a classifier's bundle by name.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadGoldenSet } from '../../src/judge/golden-set.js';
import { trainBundle } from '../../src/model/train-bundle.js';
import type { Manifest } from '../../src/model/types.js';
import { ROOT, runCli, stopAll } from '../support/processes.js';

const IRIS = path.join(ROOT, 'data/iris/iris.csv');
let tmp = '';

async function irisBundle(): Promise<string> {
  tmp = await mkdtemp(path.join(tmpdir(), 'bgserve-evaluate-'));
  const out = path.join(tmp, 'iris', '1.0.0');
  await trainBundle({ dataFile: IRIS, outDir: out, target: 'species', trees: 15, seed: 3 });
  return out;
}

afterAll(async () => {
  await stopAll();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('evaluating a classifier', () => {
  it("evaluate --json reproduces the classifier's manifest metrics, and names a label of no class", async () => {
    const bundle = await irisBundle();
    const golden = path.join(bundle, 'golden.csv');
    const manifest = JSON.parse(await readFile(path.join(bundle, 'manifest.json'), 'utf8')) as Manifest;
    const { code, output } = await runCli(['evaluate', bundle, '--data', golden, '--json']);
    expect(code, output).toBe(0);
    const result = JSON.parse(output);
    expect(result.metrics).toEqual(manifest.training.metrics);
    expect(result.metrics).toMatchObject({ rows: 30, accuracy: expect.any(Number), logLoss: expect.any(Number) });

    const lines = (await readFile(golden, 'utf8')).trim().split('\n');
    const unknown = path.join(tmp, 'unknown-class.csv');
    await writeFile(unknown, `${[lines[0], lines[1].replace(/,[^,]*$/, ',daisy'), ...lines.slice(2)].join('\n')}\n`);
    const bad = await runCli(['evaluate', bundle, '--data', unknown]);
    expect(bad.code).toBe(1);
    expect(bad.output).toMatch(/bgserve: .*unknown-class\.csv: row 1 has species "daisy", a class the training data does not have/);

    await expect(loadGoldenSet(bundle)).rejects.toThrow(/is a classifier: the judge compares regressors only/);
  });
});
