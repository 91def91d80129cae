import { describe, it, expect, afterAll } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadBundle } from '../../src/model/bundle.js';
import type { Manifest, RegressionMetrics } from '../../src/model/types.js';
import { request } from 'undici';
import { isLive } from '../../src/release/engine.js';
import { ROOT, runCli, stopAll } from '../support/processes.js';
import { startController, startLoad, startStack, waitFor } from '../controller/stack.js';

const V1 = path.join(ROOT, 'models/wine-quality/1.0.0');
const RED = path.join(ROOT, 'data/wine-quality/winequality-red.csv');
let tmp = '';

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
    const m = model.manifest as Manifest & { training: { metrics: RegressionMetrics } };
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

/**
 * A table that is not wine: two inputs with spaces in their names, a text column, a target on a 0-10 scale
 * (the release gates' margins are in target units). Deterministic, so every run trains the same forests.
 */
function housesCsv(rows: number, offset = 0): string {
  const lines = ['house age,floor area,city,price'];
  for (let i = offset; i < offset + rows; i++) {
    const age = (i * 37) % 50;
    const area = 30 + ((i * 53) % 170);
    const price = (3 * area - 2 * age) / 60 + (((i * 7919) % 11) - 5) / 50;
    lines.push(`${age},${area},${i % 3 === 0 ? 'Lyon' : 'Paris'},${price.toFixed(3)}`);
  }
  return `${lines.join('\n')}\n`;
}

async function writeTable(name: string, text: string): Promise<string> {
  const file = path.join(await scratch(), name);
  await writeFile(file, text);
  return file;
}

const FIXED = ['--created-at', '2025-03-01T00:00:00Z', '--seed', '3'];

describe('bgserve train on any CSV (real processes)', () => {
  it('trains on every other numeric column by default, and on all --data rows with --test-data', async () => {
    const data = await writeTable('houses.csv', housesCsv(300));
    const test = await writeTable('houses-test.csv', housesCsv(80, 1000));
    const held = path.join(await scratch(), 'houses', '1.0.0');
    const a = await runCli(['train', '--data', data, '--target', 'price', '--out', held, '--trees', '10', '--holdout', '0.25', ...FIXED]);
    expect(a.code, a.output).toBe(0);
    expect(a.output).toContain('(225 training rows)');
    const m1 = (await loadBundle(held)).manifest;
    // "city" holds text: an id or a label, not an input, so the default leaves it out.
    expect(m1.features.map((f) => f.name)).toEqual(['house age', 'floor area']);
    expect(m1.target).toBe('price');
    expect(m1.training.split).toEqual({ test: 0.25, trainRows: 225, testRows: 75 });
    expect((m1.training.metrics as RegressionMetrics).r2).toBeGreaterThan(0.9);

    const ext = path.join(await scratch(), 'houses', '1.1.0');
    const b = await runCli(['train', '--data', data, '--target', 'price', '--test-data', test, '--out', ext, '--trees', '10', ...FIXED]);
    expect(b.code, b.output).toBe(0);
    expect(b.output).toContain('(300 training rows)');
    expect(b.output).toContain(`metrics on ${test}:`);
    const m2 = (await loadBundle(ext)).manifest;
    expect(m2.training.split).toMatchObject({ test: 0, trainRows: 300, testRows: 80, testData: { rows: 80 } });
    expect(m2.training.split?.testData?.sha256).toMatch(/^[0-9a-f]{64}$/);
    // The golden set is the test table's rows, in the model's columns.
    const golden = (await readFile(path.join(ext, 'golden.csv'), 'utf8')).trim().split('\n');
    expect(golden).toHaveLength(81);
    expect(golden[0]).toBe('house age,floor area,price');
    const expected = housesCsv(80, 1000)
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => {
        const [age, area, , price] = l.split(',');
        return [age, area, price].map((v) => String(Number(v))).join(',');
      });
    expect(golden.slice(1)).toEqual(expected);

    const chosen = path.join(await scratch(), 'houses', '1.2.0');
    const c = await runCli([
      'train',
      '--data',
      data,
      '--target',
      'price',
      '--features',
      'floor area',
      '--out',
      chosen,
      '--trees',
      '5',
      ...FIXED,
    ]);
    expect(c.code, c.output).toBe(0);
    expect((await loadBundle(chosen)).manifest.features.map((f) => f.name)).toEqual(['floor area']);
  });

  it('refuses unusable columns and data with exit code 2 and one line naming the cause', async () => {
    const data = await writeTable('houses-300.csv', housesCsv(300));
    const lines = housesCsv(20).split('\n');
    const holed = await writeTable('holed.csv', [...lines.slice(0, 4), lines[4].replace(/^\d+,/, ','), ...lines.slice(5)].join('\n'));
    const constant = await writeTable('constant.csv', lines.map((l, i) => (i === 0 || l === '' ? l : l.replace(/[^,]*$/, '4'))).join('\n'));
    const headerOnly = await writeTable('header-only.csv', `${lines[0]}\n\n`);
    const out = path.join(await scratch(), 'refused', '1.0.0');
    const cases: Array<[string[], RegExp]> = [
      [['--data', data, '--target', 'rent'], /houses-300\.csv: no target column "rent" \(columns: house age, floor area, city, price\)$/],
      [['--data', data, '--target', 'price', '--features', 'house age,garden'], /no feature column "garden"/],
      [
        ['--data', data, '--target', 'city', '--task', 'regression'],
        /houses-300\.csv line 2: target "city" is not numeric: "Lyon" \(a regression/,
      ],
      [['--data', data, '--target', 'price', '--features', 'city,house age'], /line 2: feature "city" is not numeric: "Lyon"$/],
      [['--data', data, '--target', 'price', '--features', 'price,house age'], /"price" is the target: it cannot also be a feature$/],
      [
        ['--data', holed, '--target', 'price'],
        /holed\.csv line 5: feature "house age" is empty \(fill or drop rows with missing values\)$/,
      ],
      [['--data', constant, '--target', 'price'], /constant\.csv: target "price" is constant \(4 in every row\): nothing to learn$/],
      [['--data', headerOnly, '--target', 'price'], /header-only\.csv: no data rows after the header$/],
      [['--data', data, '--target', 'price', '--holdout', '0'], /--holdout 0 leaves nothing to score: give --test-data <csv>/],
      [['--data', data, '--target', 'price', '--test-data', data, '--holdout', '0.2'], /with --test-data every --data row trains/],
      [['--data', data, '--target', 'price', '--test-data', holed], /holed\.csv line 5: feature "house age" is empty/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(['train', ...args, '--out', out, '--trees', '2']);
      expect(r.code, `${args.join(' ')}: ${r.output}`).toBe(2);
      const text = r.output.trim();
      expect(text.split('\n'), text).toHaveLength(1);
      expect(text).toMatch(/^bgserve: /);
      expect(text).toMatch(message);
    }
  });

  it('a bundle of another table is served on its own features and released through a real stack', async () => {
    const data = await writeTable('houses-release.csv', housesCsv(400));
    const v1 = path.join(await scratch(), 'houses-served', '1.0.0');
    const a = await runCli(['train', '--data', data, '--target', 'price', '--out', v1, '--trees', '30', ...FIXED]);
    expect(a.code, a.output).toBe(0);
    const stack = await startStack({}, 'embedded', v1);
    try {
      const post = async (body: unknown) => {
        const res = await request(`${stack.instances.blue}/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
      };
      const ok = await post({ 'house age': 10, 'floor area': 120 });
      expect(ok.status, JSON.stringify(ok.body)).toBe(200);
      expect(ok.body.prediction).toBeCloseTo((3 * 120 - 2 * 10) / 60, 0);
      // The wine body is refused by this model: its inputs are the bundle's, not the wine columns.
      const wine = await post({ alcohol: 9.4, pH: 3.51 });
      expect(wine.status).toBe(422);
      expect(JSON.stringify(wine.body)).toContain('house age');

      // The next version trains under the instances' bundle root, then goes through a whole release.
      const v2 = path.join(stack.dir, 'bundles', 'houses-served', '1.1.0');
      const b = await runCli(['train', '--data', data, '--target', 'price', '--out', v2, '--trees', '40', ...FIXED]);
      expect(b.code, b.output).toBe(0);
      const { controller } = startController(stack);
      await controller.start();
      const load = await startLoad(stack.router.url, 2, 90_000, v1);
      try {
        const started = await controller.deploy(v2, { analysisMs: 3_000, inconclusiveGraceMs: 5_000 });
        const state = await waitFor(
          'release to end',
          () => {
            const s = controller.history(1)[0];
            return s && s.spec.id === started.spec.id && !isLive(s.status) ? s : undefined;
          },
          90_000,
        );
        expect(state.status, state.reason ?? '').toBe('succeeded');
        expect(state.spec.version).toBe('1.1.0');
        expect(stack.router.state().weights).toEqual({ blue: 0, green: 100 });
      } finally {
        await load.stop();
        await controller.stop();
      }
      expect(load.failed, load.failures.join('\n')).toBe(0);
      expect(load.byColor.green).toBeGreaterThan(0);
    } finally {
      await stack.close();
    }
  }, 150_000);

  it('a text target trains a classifier, served with the class and its probabilities by `bgserve serve`', async () => {
    const out = path.join(await scratch(), 'breast-cancer', '1.0.0');
    const data = path.join(ROOT, 'data/breast-cancer/breast-cancer.csv');
    const r = await runCli(['train', '--data', data, '--target', 'diagnosis', '--out', out, '--trees', '20', ...FIXED]);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toMatch(/held-out metrics:\n {2}rows {5}114\n {2}accuracy 0\.9\d+\n {2}log-loss /);
    const { manifest } = await loadBundle(out);
    expect(manifest).toMatchObject({ task: 'classification', classes: ['benign', 'malignant'], target: 'diagnosis' });
    expect(manifest.features).toHaveLength(30);
    const stack = await startStack({}, 'embedded', out);
    try {
      const golden = (await readFile(path.join(out, 'golden.csv'), 'utf8')).trim().split('\n');
      const header = golden[0].split(',');
      const cells = golden[1].split(',');
      const row = Object.fromEntries(header.slice(0, -1).map((f, j) => [f, Number(cells[j])]));
      const res = await request(`${stack.instances.green}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(row),
      });
      const answer = (await res.body.json()) as { prediction: string; probabilities: Record<string, number> };
      expect(res.statusCode, JSON.stringify(answer)).toBe(200);
      expect(['benign', 'malignant']).toContain(answer.prediction);
      expect(Object.keys(answer.probabilities)).toEqual(['benign', 'malignant']);
      expect(answer.probabilities[answer.prediction]).toBeGreaterThanOrEqual(0.5);
    } finally {
      await stack.close();
    }
  }, 60_000);
});
