import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { prometheusFiles } from '../../src/monitoring/generated-files.js';
import { RULES_FILE, renderLocalPrometheusConfig } from '../../src/monitoring/prometheus-config.js';
import { ROOT } from '../support/processes.js';

const run = promisify(execFile);
const PROM_DIR = path.join(ROOT, 'deploy/prometheus');

/** Runs promtool and returns its exit code with everything it printed, so a failure shows why. */
async function promtool(...args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd: PROM_DIR });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}${String(err)}` };
  }
}

function expectSuccess(result: { code: number; output: string }): void {
  expect(result.code, result.output).toBe(0);
}

describe('deploy/prometheus', () => {
  const tempDirs: string[] = [];
  afterAll(async () => {
    await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('committed files are exactly what `npm run monitoring:generate` writes', async () => {
    for (const file of prometheusFiles()) {
      const committed = await readFile(path.join(ROOT, file.path), 'utf8');
      expect(committed, `${file.path} is stale: run npm run monitoring:generate`).toBe(file.content);
    }
  });

  it('promtool check config accepts prometheus.yml and the rule files it loads', async () => {
    const result = await promtool('check', 'config', 'prometheus.yml');
    expectSuccess(result);
    expect(result.output).toContain('1 rule files found');
  });

  it('promtool check rules accepts the rules', async () => {
    const result = await promtool('check', 'rules', 'rules/bgserve.rules.yml');
    expectSuccess(result);
    expect(result.output).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('promtool test rules: every alert fires and stays quiet where it should', async () => {
    const tests = (await readdir(path.join(PROM_DIR, 'tests'))).filter((f) => f.endsWith('.yml')).sort();
    expect(tests.length).toBeGreaterThanOrEqual(5);
    const result = await promtool('test', 'rules', ...tests.map((t) => `tests/${t}`));
    expectSuccess(result);
    expect(result.output).not.toContain('FAILED');
  });

  it('the alert unit tests cover every alert, both firing and not firing', async () => {
    const rules = await readFile(path.join(PROM_DIR, 'rules/bgserve.rules.yml'), 'utf8');
    const alerts = [...rules.matchAll(/- alert: (\S+)/g)].map((m) => m[1]);
    const dir = path.join(PROM_DIR, 'tests');
    const text = (await Promise.all((await readdir(dir)).map((f) => readFile(path.join(dir, f), 'utf8')))).join('\n');
    for (const alert of alerts) {
      // Each alert needs one test expecting it and one expecting silence.
      const blocks = text.split(/\n\s+- eval_time:/).filter((b) => b.includes(`alertname: ${alert}\n`));
      expect(
        blocks.some((b) => /exp_alerts: \[\]/.test(b)),
        `${alert}: no not-firing case`,
      ).toBe(true);
      expect(
        blocks.some((b) => /exp_alerts:\n\s+- exp_labels:/.test(b)),
        `${alert}: no firing case`,
      ).toBe(true);
    }
  });

  it('renderLocalPrometheusConfig gives a config promtool accepts, with loopback targets and the rules', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bgserve-prom-config-'));
    tempDirs.push(dir);
    const config = renderLocalPrometheusConfig({
      targets: {
        instances: [
          { color: 'blue', address: '127.0.0.1:8001' },
          { color: 'green', address: '127.0.0.1:8002' },
        ],
        control: '127.0.0.1:8090',
      },
      scrapeInterval: '1s',
    });
    const file = path.join(dir, 'prometheus.yml');
    await writeFile(file, config);
    const result = await promtool('check', 'config', file);
    expectSuccess(result);
    expect(config).toContain(RULES_FILE);
    expect(config).toContain('127.0.0.1:8002');
    expect(config).toContain('scrape_interval: 1s');
  });
});
