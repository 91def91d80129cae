/**
 * The Argo Rollouts AnalysisTemplate judges like bgserve: its committed queries, with Argo's success and
 * failure conditions, run against a real Prometheus scraping real instances labelled the way the Kubernetes
 * scrape config labels rollout pods (rollouts_pod_template_hash). A good new version passes every check; one
 * that answers errors and slowly (bgserve's test-only fault injection) fails the error and latency checks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { ROOT, freePort, startCli, stopAll, stopProcess, waitForHttp } from '../support/processes.js';
import { WINE_FEATURES } from '../../src/model/wine.js';
import { JOBS } from '../../src/monitoring/queries.js';
import { queryInstant } from '../../src/monitoring/prometheus-api.js';
import { ROLLOUT_HASH_LABEL } from '../../src/k8s/prometheus.js';
import { FAULTS_ENABLE_ENV, FAULTS_ENV } from '../../src/serve/faults.js';

interface Metric {
  name: string;
  successCondition: string;
  failureCondition: string;
  provider: { prometheus: { query: string } };
}

/** Argo's conditions as we write them: `len(result) > 0 && result[0] <= L` / `... > L`. */
function outcome(metric: Metric, values: number[]): 'successful' | 'failed' | 'inconclusive' {
  const limit = Number(/result\[0\] <= (\S+)$/.exec(metric.successCondition)![1]);
  expect(metric.failureCondition).toBe(`len(result) > 0 && result[0] > ${limit}`);
  if (values.length === 0) return 'inconclusive';
  return values[0] <= limit ? 'successful' : 'failed';
}

async function rows(): Promise<string[]> {
  const text = await readFile(path.join(ROOT, 'data/wine-quality/winequality-red.csv'), 'utf8');
  const [header, ...lines] = text.trim().split('\n');
  const names = header.split(',');
  return lines.slice(0, 400).map((line) => {
    const values = line.split(',').map(Number);
    return JSON.stringify(Object.fromEntries(WINE_FEATURES.map((f) => [f, values[names.indexOf(f)]])));
  });
}

describe('Argo AnalysisTemplate (bgserve-analysis) on real metrics', () => {
  let tmp: string;
  let prometheus: ChildProcess | undefined;
  let promUrl: string;
  let metrics: Metric[];
  let smokeCommand: string[];
  const ports: Record<string, number> = {};

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'bgserve-argo-'));
    const analysis = parseAllDocuments(await readFile(path.join(ROOT, 'deploy/k8s/argo/analysis.yaml'), 'utf8')).map((d) => d.toJS());
    metrics = analysis.find((o) => o.metadata.name === 'bgserve-analysis').spec.metrics;
    const smoke = analysis.find((o) => o.metadata.name === 'bgserve-smoke').spec.metrics.find((m: { name: string }) => m.name === 'smoke');
    smokeCommand = smoke.provider.job.spec.template.spec.containers[0].command;

    // Rollout pods run without --color (the pod-template hash tells versions apart), as in rollout.yaml.
    const faulty = { [FAULTS_ENABLE_ENV]: '1', [FAULTS_ENV]: JSON.stringify({ '1.1.0': { errorRate: 0.25, latencyMs: 40 } }) };
    const instances = [
      { hash: 'stable', bundle: 'models/wine-quality/1.0.0', env: {} },
      { hash: 'good', bundle: 'models/wine-quality/1.1.0', env: {} },
      { hash: 'bad', bundle: 'models/wine-quality/1.1.0', env: faulty },
    ];
    const started = await Promise.all(
      instances.map(async (i) => {
        const port = await freePort();
        const proc = startCli(['serve', '--bundle', i.bundle, '--port', String(port), '--host', '127.0.0.1'], i.env);
        return { ...i, port, proc };
      }),
    );
    for (const s of started) ports[s.hash] = s.port;
    await Promise.all(started.map((s) => waitForHttp(`http://127.0.0.1:${s.port}/ready`, { proc: s.proc, timeoutMs: 30_000 })));

    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    const config = {
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      scrape_configs: [
        {
          job_name: JOBS.instances,
          honor_labels: true,
          static_configs: started.map((s) => ({ targets: [`127.0.0.1:${s.port}`], labels: { [ROLLOUT_HASH_LABEL]: s.hash } })),
        },
      ],
    };
    await writeFile(path.join(tmp, 'prometheus.yml'), stringify(config));
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${path.join(tmp, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(tmp, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--log.level=warn',
      ],
      { stdio: 'ignore' },
    );
    await waitForHttp(`${promUrl}/-/ready`, { timeoutMs: 20_000 });

    // Live traffic on every version for a while: the same rows, so predictions are comparable.
    const bodies = await rows();
    const until = Date.now() + 12_000;
    await Promise.all(
      started.flatMap((s) =>
        [0, 1].map(async (worker) => {
          for (let n = worker; Date.now() < until; n += 2) {
            const res = await fetch(`http://127.0.0.1:${s.port}/predict`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: bodies[n % bodies.length],
            });
            await res.arrayBuffer();
          }
        }),
      ),
    );
    // Two more scrapes after the load.
    await new Promise((r) => setTimeout(r, 2_500));
  }, 120_000);

  afterAll(async () => {
    if (prometheus) await stopProcess(prometheus);
    await stopAll();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  async function judge(latest: string): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const m of metrics) {
      const query = m.provider.prometheus.query.replaceAll('{{args.latest-hash}}', latest).replaceAll('{{args.stable-hash}}', 'stable');
      const result = await queryInstant(promUrl, query);
      expect(result.status, `${m.name}: ${JSON.stringify(result)}`).toBe('success');
      const values = result.status === 'success' ? result.samples.map((s) => s.value) : [];
      out[m.name] = `${outcome(m, values)} ${values.map((v) => v.toFixed(4)).join(',')}`.trim();
    }
    return out;
  }

  it('passes a good new version on every check', async () => {
    const verdicts = await judge('good');
    console.log('argo analysis, good version:', verdicts);
    for (const [name, verdict] of Object.entries(verdicts)) expect(verdict, name).toMatch(/^successful /);
  });

  it('fails a version that answers errors and slowly, on the error and latency checks', async () => {
    const verdicts = await judge('bad');
    console.log('argo analysis, faulty version:', verdicts);
    expect(verdicts['error-ratio']).toMatch(/^failed /);
    expect(verdicts['latency-p99-vs-stable']).toMatch(/^failed /);
  });

  it("runs the pre-promotion smoke Job's command: passes a good version, fails a faulty one", async () => {
    const [command, ...args] = smokeCommand;
    expect(command).toBe('node');
    const smoke = (hash: string) =>
      new Promise<number>((resolve) => {
        const child = spawn(process.execPath, args, {
          env: { ...process.env, PREDICT_URL: `http://127.0.0.1:${ports[hash]}/predict` },
          stdio: 'ignore',
        });
        child.on('exit', (code) => resolve(code ?? -1));
      });
    expect(await smoke('good')).toBe(0);
    expect(await smoke('bad')).toBe(1);
  });

  it('is inconclusive, neither passing nor failing, for a version with no traffic', async () => {
    const verdicts = await judge('absent');
    for (const [name, verdict] of Object.entries(verdicts)) expect(verdict, name).toBe('inconclusive');
  });
});
