/**
 * bgserve's judge against real instances (`bgserve serve` on 1.0.0, 1.1.0 and a bundle whose every prediction
 * moved by one quality point): the verdicts and their status codes, its refusal of bad requests, and the
 * committed Argo web metrics and Flagger webhooks evaluated against its live answers, the way those engines
 * read them, so a template that could never pass (or never fail) is caught here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { FastifyInstance } from 'fastify';
import { ROOT, freePort, startCli, stopAll, stopProcess, waitForHttp, type Started } from '../support/processes.js';
import { BASE_BUNDLE, GOOD_BUNDLE, deriveBundle } from '../controller/bundles.js';
import { loadGoldenSet } from '../../src/judge/golden-set.js';
import { buildJudgeServer } from '../../src/judge/server.js';
import { PREDICTION_BUCKETS } from '../../src/serve/metrics.js';
import { DEFAULT_ANALYSIS, DEFAULT_GOLDEN_RMSE_MARGIN } from '../../src/release/defaults.js';

interface Answer {
  verdict: 'pass' | 'fail' | 'inconclusive';
  reason: string;
  inconclusive: boolean;
  samples: number;
  figures: { rows: number; rmse: { candidate: number; stable: number }; agreement: number; meanAbsDelta: number; psi: number };
  checks: Array<{ name: string; outcome: string; value: number | null; threshold: number | null }>;
  candidate: { version: string };
}

async function ask(url: string, init?: RequestInit): Promise<{ status: number; body: Answer & { error?: string; message?: string } }> {
  const res = await fetch(url, init);
  return { status: res.status, body: (await res.json()) as Answer & { error?: string; message?: string } };
}

/**
 * Kubernetes' JSONPath as Argo's web provider runs it (k8s.io/client-go/util/jsonpath): `{$.a.b}` picks a
 * field, and a string prints bare (no quotes), numbers and booleans as JSON. Anything else is refused, so a
 * template using more than this evaluator knows fails the test rather than pass unread.
 */
function jsonPath(expr: string, data: unknown): string {
  const m = /^\{\$((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\}$/.exec(expr);
  if (!m) throw new Error(`jsonPath outside what the test evaluates: ${expr}`);
  let v: unknown = data;
  for (const key of m[1].slice(1).split('.')) {
    if (typeof v !== 'object' || v === null || !(key in v)) throw new Error(`${expr}: ${key} not found`);
    v = (v as Record<string, unknown>)[key];
  }
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Argo's conditions are `expr` expressions over `result`; ours compare it with a string literal. */
function condition(expr: string, result: string): boolean {
  const m = /^result == "([^"]*)"$/.exec(expr);
  if (!m) throw new Error(`condition outside what the test evaluates: ${expr}`);
  return result === m[1];
}

/** Argo's reading of one measurement: success first, then failure, else inconclusive. */
function argoPhase(metric: WebMetric, status: number, body: unknown): 'Successful' | 'Failed' | 'Inconclusive' | 'Error' {
  // Argo's web provider: a non-2xx answer is a measurement error, whatever the body says.
  if (status < 200 || status >= 300) return 'Error';
  const result = jsonPath(metric.provider.web.jsonPath, body);
  if (condition(metric.successCondition, result)) return 'Successful';
  if (condition(metric.failureCondition, result)) return 'Failed';
  return 'Inconclusive';
}

interface WebMetric {
  name: string;
  successCondition: string;
  failureCondition: string;
  provider: { web: { url: string; jsonPath: string } };
}

describe('bgserve judge', () => {
  let tmp: string;
  const instances: Record<string, { proc: Started; url: string }> = {};
  let cliJudge: Started;
  let passUrl: string;
  const servers: FastifyInstance[] = [];
  let shiftedUrl: string;
  let fewUrl: string;
  let argoMetrics: WebMetric[];
  let flaggerHooks: Array<{ name: string; type: string; url: string }>;

  async function serve(name: string, bundle: string): Promise<void> {
    const port = await freePort();
    const proc = startCli(['serve', '--bundle', bundle, '--port', String(port), '--log-level', 'warn']);
    instances[name] = { proc, url: `http://127.0.0.1:${port}` };
  }

  async function inProcessJudge(candidate: string, golden: string): Promise<string> {
    const app = buildJudgeServer({
      stable: instances.base.url,
      candidate,
      golden: await loadGoldenSet(golden),
      buckets: PREDICTION_BUCKETS,
    });
    servers.push(app);
    return app.listen({ port: 0, host: '127.0.0.1' });
  }

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'bgserve-judge-'));
    const shifted = await deriveBundle(tmp, { version: '1.0.1-shifted', shift: 1 });
    await Promise.all([serve('base', BASE_BUNDLE), serve('good', GOOD_BUNDLE), serve('shifted', shifted)]);
    const judgePort = await freePort();
    cliJudge = startCli(['judge', '--stable', instances.base.url, '--candidate', instances.good.url, '--port', String(judgePort)]);
    passUrl = `http://127.0.0.1:${judgePort}`;
    await Promise.all([
      ...Object.values(instances).map((i) => waitForHttp(`${i.url}/ready`, { proc: i.proc })),
      waitForHttp(`${passUrl}/health`, { proc: cliJudge }),
    ]);
    // A golden CSV of 20 rows: fewer than the analysis' minSamples.
    const golden = (await readFile(path.join(BASE_BUNDLE, 'golden.csv'), 'utf8')).trim().split('\n');
    const few = path.join(tmp, 'few.csv');
    await writeFile(few, `${golden.slice(0, 21).join('\n')}\n`);
    shiftedUrl = await inProcessJudge(instances.shifted.url, BASE_BUNDLE);
    fewUrl = await inProcessJudge(instances.good.url, few);

    const analysis = parseAllDocuments(await readFile(path.join(ROOT, 'deploy/k8s/argo/analysis.yaml'), 'utf8')).map((d) => d.toJS());
    argoMetrics = analysis.find((o) => o.metadata.name === 'bgserve-judge').spec.metrics;
    const canary = parseAllDocuments(await readFile(path.join(ROOT, 'deploy/k8s/flagger/canary.yaml'), 'utf8'))[0].toJS();
    flaggerHooks = canary.spec.analysis.webhooks;
  }, 120_000);

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await Promise.all([...Object.values(instances).map((i) => stopProcess(i.proc)), cliJudge && stopProcess(cliJudge)]);
    await stopAll();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('passes 1.1.0 against 1.0.0 with 200 and every figure', async () => {
    const { status, body } = await ask(`${passUrl}/judge?check=all`);
    expect(status, body.reason).toBe(200);
    expect(body.verdict).toBe('pass');
    expect(body.inconclusive).toBe(false);
    expect(body.samples).toBe(320);
    expect(body.candidate.version).toBe('1.1.0');
    expect(body.figures.rmse.candidate).toBeLessThan(body.figures.rmse.stable + DEFAULT_GOLDEN_RMSE_MARGIN);
    expect(body.figures.agreement).toBeGreaterThan(0.9);
    expect(body.figures.meanAbsDelta).toBeGreaterThan(0);
    expect(body.figures.psi).toBeGreaterThanOrEqual(0);
    expect(body.checks.map((c) => [c.name, c.outcome])).toEqual([
      ['golden-rmse', 'pass'],
      ['prediction-mean-shift', 'pass'],
      ['prediction-psi', 'pass'],
    ]);
  });

  it('fails a version whose predictions moved by one point with 412 and says why', async () => {
    const golden = await ask(`${shiftedUrl}/judge/golden`);
    expect(golden.status).toBe(412);
    expect(golden.body.verdict).toBe('fail');
    expect(golden.body.reason).toMatch(/^fail: golden-rmse: RMSE [\d.]+ vs stable [\d.]+ on 320 rows/);
    const agreement = await ask(`${shiftedUrl}/judge/agreement`);
    expect(agreement.status).toBe(412);
    expect(agreement.body.figures.meanAbsDelta).toBeCloseTo(1, 5);
    expect(agreement.body.figures.agreement).toBe(0);
    const shift = agreement.body.checks.find((c) => c.name === 'prediction-mean-shift')!;
    expect(shift).toMatchObject({ outcome: 'fail', threshold: DEFAULT_ANALYSIS.maxMeanShiftStd });
    expect(agreement.body.reason).toContain('prediction-mean-shift');
  });

  it('is inconclusive (503) with fewer golden rows than the analysis needs', async () => {
    const { status, body } = await ask(`${fewUrl}/judge/golden`);
    expect(status).toBe(503);
    expect(body).toMatchObject({ verdict: 'inconclusive', inconclusive: true, samples: 20 });
    expect(body.reason).toContain(`20 rows < ${DEFAULT_ANALYSIS.minSamples} needed`);
    // report=true: the same verdict in a 200, for engines that treat a non-2xx as an error.
    const report = await ask(`${fewUrl}/judge/golden?report=true`);
    expect(report.status).toBe(200);
    expect(report.body.verdict).toBe('inconclusive');
  });

  it('refuses bad requests with 400 and the shared error shape', async () => {
    for (const query of ['check=everything', 'report=yes', 'colour=blue', 'check=a&check=b']) {
      const { status, body } = await ask(`${passUrl}/judge?${query}`);
      expect(status, query).toBe(400);
      expect(body, query).toMatchObject({ error: 'bad_request', message: expect.any(String) });
    }
    const contradicts = await ask(`${passUrl}/judge/golden?check=agreement`);
    expect(contradicts.status).toBe(400);
    const post = (body: string) => ask(`${passUrl}/judge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect((await post('[1,2]')).status).toBe(400);
    expect((await post('{"metadata":{"check":7}}')).status).toBe(400);
    const broken = await post('{"name":');
    expect(broken.status).toBe(400);
    expect(broken.body.error).toBe('invalid_json');
  });

  it('measures with the committed Argo web metrics as Argo reads them: pass, fail, inconclusive', async () => {
    expect(argoMetrics.map((m) => m.name)).toEqual(['golden-gate', 'prediction-agreement']);
    const phases = async (judgeUrl: string) =>
      Promise.all(
        argoMetrics.map(async (m) => {
          const res = await fetch(m.provider.web.url.replace('{{args.judge-url}}', judgeUrl));
          return argoPhase(m, res.status, await res.json());
        }),
      );
    expect(await phases(passUrl)).toEqual(['Successful', 'Successful']);
    expect(await phases(shiftedUrl)).toEqual(['Failed', 'Failed']);
    expect((await phases(fewUrl))[0]).toBe('Inconclusive');
  });

  it('answers the committed Flagger webhooks (POSTed payload) with 200 only when the verdict passes', async () => {
    expect(flaggerHooks.map((h) => h.type)).toEqual(['pre-rollout', 'rollout']);
    const call = async (judgeUrl: string, hook: { url: string }) => {
      const res = await fetch(hook.url.replace('http://bgserve-judge', judgeUrl), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'bgserve-model', namespace: 'default', phase: 'Progressing' }),
      });
      return res.status;
    };
    for (const hook of flaggerHooks) {
      expect(await call(passUrl, hook), hook.url).toBe(200);
      expect(await call(shiftedUrl, hook), hook.url).toBe(412);
    }
    expect(await call(fewUrl, flaggerHooks[0])).toBe(503);
  });
});
