/**
 * A classifier released on the real local stack under load (real serve processes, the embedded router, the
 * controller with the direct-scrape provider): the smoke step reads its golden labels as class names and the
 * golden gate compares accuracy against the stable version. A retrained classifier is promoted with no failed
 * request, its live checks in their classification forms; one trained on permuted labels is refused at the
 * golden gate before any traffic moves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DeployOptions, ReleaseController } from '../../src/controller/controller.js';
import { Prng } from '../../src/model/prng.js';
import { trainBundle } from '../../src/model/train-bundle.js';
import type { CheckResult } from '../../src/release/types.js';
import { ROOT, stopAll } from '../support/processes.js';
import { releaseUnderLoad, startController, startStack, type Stack } from './stack.js';

const TABLE = path.join(ROOT, 'data/breast-cancer/breast-cancer.csv');
const TARGET = 'diagnosis';

let scratch: string;
let stack: Stack;
let controller: ReleaseController;
const bundles: Record<string, string> = {};

/**
 * One fixed train/test split for every version (every fifth row tested): the golden set the gate scores both
 * versions on is then rows neither trained on, whichever version's bundle ships it.
 */
function splitTable(dir: string): { train: string; test: string; permuted: string } {
  const [header, ...rows] = fs.readFileSync(TABLE, 'utf8').trim().split('\n');
  const train = rows.filter((_, i) => i % 5 !== 0);
  const test = rows.filter((_, i) => i % 5 === 0);
  // The same rows with their labels shuffled among them: a model of noise.
  const labels = train.map((r) => r.slice(r.lastIndexOf(',') + 1));
  const prng = new Prng(3);
  for (let i = labels.length - 1; i > 0; i--) {
    const j = Math.floor(prng.next() * (i + 1));
    [labels[i], labels[j]] = [labels[j], labels[i]];
  }
  const permuted = train.map((r, i) => `${r.slice(0, r.lastIndexOf(',') + 1)}${labels[i]}`);
  const write = (name: string, lines: string[]) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, `${[header, ...lines].join('\n')}\n`);
    return file;
  };
  return { train: write('train.csv', train), test: write('test.csv', test), permuted: write('permuted.csv', permuted) };
}

async function train(outDir: string, dataFile: string, testDataFile: string, trees: number, seed: number): Promise<string> {
  await trainBundle({ dataFile, testDataFile, outDir, name: 'breast-cancer', target: TARGET, trees, seed, maxFeatures: 'sqrt' });
  return outDir;
}

beforeAll(async () => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'bgserve-classifier-'));
  const data = splitTable(scratch);
  bundles.v1 = await train(path.join(scratch, 'breast-cancer/1.0.0'), data.train, data.test, 10, 1);
  stack = await startStack({}, 'embedded', bundles.v1);
  // Releases load bundles from under the instances' bundle root: the stack's state dir.
  const out = path.join(stack.dir, 'bundles/breast-cancer');
  bundles.v2 = await train(path.join(out, '2.0.0'), data.train, data.test, 30, 7);
  bundles.noise = await train(path.join(out, '2.0.1-permuted'), data.permuted, data.test, 30, 7);
  ({ controller } = startController(stack));
  await controller.start();
}, 90_000);

afterAll(async () => {
  await controller?.stop();
  await stack?.close();
  await stopAll();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

/** Deploys under bounded load (v1's golden rows) and waits for the release to end. */
const release = (bundle: string, options: DeployOptions) =>
  releaseUnderLoad(stack, controller, bundle, options, { workers: 2, loadMs: 60_000, loadBundle: bundles.v1, timeoutMs: 60_000 });

const SHORT = { analysisMs: 3_000, inconclusiveGraceMs: 5_000 };

describe('releasing a classifier on the real stack under load', () => {
  it('a retrained classifier is promoted through the accuracy gate, 0 failed, its live checks in classification form', async () => {
    const { state, load } = await release(bundles.v2, { ...SHORT, strategy: 'canary', steps: [50] });
    expect(state.status, state.reason ?? '').toBe('succeeded');
    expect(state.spec).toMatchObject({ version: '2.0.0', task: 'classification' });
    expect(stack.router.state().weights).toEqual({ blue: 0, green: 100 });
    expect(load.failed, load.failures.join('\n')).toBe(0);
    expect(load.sent).toBeGreaterThan(50);

    const events = controller.events(state.spec.id);
    const smoke = events.find((e) => e.type === 'smoke-passed');
    expect(smoke?.reason).toMatch(/golden accuracy \d+\.\d% vs stable \d+\.\d% on 114 rows, log-loss .* same class on/);
    const accuracy = smoke?.values?.accuracy as { candidate: number; stable: number };
    expect(accuracy.candidate).toBeGreaterThan(0.85);
    expect(accuracy.candidate).toBeGreaterThanOrEqual(accuracy.stable - 0.05);
    expect(smoke?.values?.rmse).toBeNull();

    // At the 50% step both colors took live traffic: the relative checks ran, the mean shift said why it did not.
    const step = events.find((e) => e.type === 'analysis-passed' && (e.values?.targetWeight as number) === 50);
    const checks = Object.fromEntries(((step?.values?.checks ?? []) as CheckResult[]).map((c) => [c.name, c]));
    expect(checks['prediction-mean-shift']).toMatchObject({ outcome: 'skipped' });
    expect(checks['prediction-mean-shift'].detail).toMatch(/^skipped: classifier/);
    expect(checks['prediction-psi'].outcome).toBe('pass');
    expect(checks['prediction-psi'].detail).toMatch(/predicted class frequencies/);
  });

  it('a classifier trained on permuted labels is refused at the golden gate before any traffic moves', async () => {
    const before = stack.router.state();
    const { state, load } = await release(bundles.noise, SHORT);
    expect(state.status).toBe('failed');
    expect(state.reason).toMatch(/golden-set accuracy \d+\.\d% is worse than stable \d+\.\d% by more than 0\.05/);
    expect(stack.router.state().weights).toEqual(before.weights);
    expect(stack.router.state().generation).toBe(before.generation);
    expect(load.failed, load.failures.join('\n')).toBe(0);
    const types = controller.events(state.spec.id).map((e) => e.type);
    expect(types).toContain('smoke-failed');
    expect(types).not.toContain('switched');
  });
});
