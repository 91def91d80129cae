/**
 * The Kubernetes manifests: the committed YAML is what src/k8s generates, every object validates with
 * kubernetes-models, selectors select the pods they are meant for, Service ports reach named container ports,
 * and the Prometheus pieces are accepted by the real tools (promtool for the config, a real Prometheus for
 * every PromQL query of the AnalysisTemplates).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, PersistentVolumeClaim, Service } from 'kubernetes-models/v1';
import { AnalysisTemplate, Rollout } from '@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1';
import { ROOT, freePort } from '../support/processes.js';
import { renderK8sFiles } from '../../src/k8s/generate.js';
import { validateCanary } from '../../src/k8s/flagger.js';
import { DEFAULT_ANALYSIS } from '../../src/release/defaults.js';
import { startLocalPrometheus, type LocalPrometheus } from '../../src/monitoring/local-prometheus.js';
import { queryInstant } from '../../src/monitoring/prometheus-api.js';

const run = promisify(execFile);

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Record<string, any>;
  data?: Record<string, string>;
}

/** kubernetes-models classes by apiVersion/kind: the committed YAML is read back into them and validated. */
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'argoproj.io/v1alpha1/Rollout': Rollout,
  'argoproj.io/v1alpha1/AnalysisTemplate': AnalysisTemplate,
  // No typed model of Flagger's CRD in node_modules: the fields the example uses, checked by src/k8s/flagger.ts.
  'flagger.app/v1beta1/Canary': class {
    constructor(private readonly data: unknown) {}
    validate() {
      validateCanary(this.data);
    }
  },
};

async function committedObjects(): Promise<Array<K8sObject & { file: string }>> {
  const out: Array<K8sObject & { file: string }> = [];
  for (const dir of ['deploy/k8s', 'deploy/k8s/argo', 'deploy/k8s/flagger']) {
    for (const name of (await readdir(path.join(ROOT, dir))).filter((n) => n.endsWith('.yaml') && n !== 'kustomization.yaml')) {
      const text = await readFile(path.join(ROOT, dir, name), 'utf8');
      for (const doc of parseAllDocuments(text)) out.push({ ...(doc.toJS() as K8sObject), file: `${dir}/${name}` });
    }
  }
  return out;
}

/** Pod template labels and spec of a workload. */
function podTemplate(o: K8sObject): {
  labels: Record<string, string>;
  containers: Array<{ name: string; args?: string[]; ports?: Array<{ name: string; containerPort: number }> }>;
} {
  return { labels: o.spec!.template.metadata.labels, containers: o.spec!.template.spec.containers };
}

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('Kubernetes manifests', async () => {
  const objects = await committedObjects();
  const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'Rollout');
  const services = objects.filter((o) => o.kind === 'Service');

  it('are exactly what `npm run k8s:generate` writes', async () => {
    const files = renderK8sFiles();
    expect(files.length).toBeGreaterThanOrEqual(8);
    for (const file of files) {
      const committed = await readFile(path.join(ROOT, file.path), 'utf8').catch(() => '(missing)');
      expect(committed, `${file.path} is stale: run npm run k8s:generate`).toBe(file.content);
    }
    const kustomized = new Set<string>();
    for (const kfile of files.filter((f) => f.path.endsWith('kustomization.yaml'))) {
      const resources = (parseAllDocuments(kfile.content)[0].toJS() as { resources: string[] }).resources;
      for (const r of resources) kustomized.add(path.posix.join(path.posix.dirname(kfile.path), r));
    }
    expect([...new Set(objects.map((o) => o.file))].sort()).toEqual([...kustomized].sort());
  });

  it('validate with kubernetes-models, every one of them', () => {
    const kinds = new Set<string>();
    for (const o of objects) {
      const Model = MODELS[`${o.apiVersion}/${o.kind}`];
      expect(Model, `${o.file}: no model for ${o.apiVersion} ${o.kind}`).toBeDefined();
      const { file, ...data } = o;
      expect(() => new Model(data).validate(), `${file}: ${o.kind}/${o.metadata.name}`).not.toThrow();
      kinds.add(o.kind);
    }
    expect([...kinds].sort()).toEqual([
      'AnalysisTemplate',
      'Canary',
      'ConfigMap',
      'Deployment',
      'PersistentVolumeClaim',
      'Rollout',
      'Service',
    ]);
  });

  it('refuse a broken object in validation (the check above can fail)', () => {
    const deployment = objects.find((o) => o.kind === 'Deployment')!;
    const { file, ...data } = structuredClone(deployment);
    void file;
    data.spec!.template.spec.containers[0].ports[0].containerPort = 'eight thousand';
    expect(() => new Deployment(data as any).validate()).toThrow();
    const canary = objects.find((o) => o.kind === 'Canary')!;
    for (const breakIt of [
      (c: any) => (c.spec.analysis.webhooks[0].type = 'pre-rollot'),
      (c: any) => (c.spec.analysis.webhooks[1].timeout = 30),
      (c: any) => (c.spec.service.targetPort = 8000),
    ]) {
      const { file: _f, ...broken } = structuredClone(canary);
      breakIt(broken);
      expect(() => validateCanary(broken)).toThrow(/Canary/);
    }
  });

  it('have blue and green Deployments with /ready readiness, /health liveness and resources', () => {
    for (const color of ['blue', 'green']) {
      const d = workloads.find((o) => o.kind === 'Deployment' && o.metadata.name === `bgserve-${color}`)!;
      expect(d, color).toBeDefined();
      const [container] = d.spec!.template.spec.containers;
      expect(container.readinessProbe.httpGet.path).toBe('/ready');
      expect(container.livenessProbe.httpGet.path).toBe('/health');
      expect(container.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
      expect(container.resources.limits.memory).toBeDefined();
      expect(container.args).toEqual(expect.arrayContaining(['serve', '--color', color]));
      expect(d.spec!.template.metadata.annotations['prometheus.io/scrape']).toBe('true');
    }
  });

  it('select with each workload exactly the pods of its template, and no other workload', () => {
    for (const w of workloads) {
      const selector = w.spec!.selector.matchLabels as Record<string, string>;
      expect(matches(selector, podTemplate(w).labels), `${w.metadata.name} selects its own pods`).toBe(true);
      for (const other of workloads.filter((x) => x !== w)) {
        expect(matches(selector, podTemplate(other).labels), `${w.metadata.name} does not select ${other.metadata.name}'s pods`).toBe(
          false,
        );
      }
    }
  });

  it('route every Service to a workload with the named container port it targets', () => {
    for (const s of services) {
      const selected = workloads.filter((w) => matches(s.spec!.selector, podTemplate(w).labels));
      expect(selected.length, `Service ${s.metadata.name} selects a workload`).toBeGreaterThan(0);
      for (const port of s.spec!.ports as Array<{ port: number; targetPort: string | number }>) {
        for (const w of selected) {
          const containerPorts = podTemplate(w).containers.flatMap((c) => c.ports ?? []);
          const found = containerPorts.find((p) => p.name === port.targetPort || p.containerPort === port.targetPort);
          expect(found, `Service ${s.metadata.name}:${port.port} -> ${w.metadata.name} port ${port.targetPort}`).toBeDefined();
        }
      }
    }
  });

  it('probe and annotate the ports the containers listen on', () => {
    for (const w of workloads) {
      // The judges expose no metrics: only the pods Prometheus scrapes carry the annotation.
      if (!w.spec!.template.metadata.annotations) continue;
      const annotated = Number(w.spec!.template.metadata.annotations['prometheus.io/port']);
      for (const c of w.spec!.template.spec.containers as Array<any>) {
        const names = (c.ports ?? []).map((p: { name: string }) => p.name);
        for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe].filter(Boolean))
          expect(names).toContain(probe.httpGet.port);
        const portArg = c.args?.indexOf('--port');
        if (portArg >= 0) expect(c.ports.map((p: { containerPort: number }) => p.containerPort)).toContain(Number(c.args[portArg + 1]));
      }
      const all = w
        .spec!.template.spec.containers.flatMap((c: any) => c.ports ?? [])
        .map((p: { containerPort: number }) => p.containerPort);
      expect(all, `${w.metadata.name} scrape port`).toContain(annotated);
    }
  });

  it('give the Rollout a blueGreen strategy with the active and preview Services and both analyses', () => {
    const rollout = workloads.find((o) => o.kind === 'Rollout')!;
    const bg = rollout.spec!.strategy.blueGreen;
    const names = services.map((s) => s.metadata.name);
    expect(names).toContain(bg.activeService);
    expect(names).toContain(bg.previewService);
    const templates = objects.filter((o) => o.kind === 'AnalysisTemplate').map((o) => o.metadata.name);
    for (const phase of [bg.prePromotionAnalysis, bg.postPromotionAnalysis]) {
      for (const t of phase.templates) expect(templates).toContain(t.templateName);
      expect(phase.args.map((a: { name: string }) => a.name).sort()).toEqual(['latest-hash', 'stable-hash']);
    }
  });

  it("run bgserve's judge between the stable and the new version's Services, before promotion (Argo) and as webhooks (Flagger)", () => {
    const serviceUrl = (name: string) => `http://${name}:80`;
    const judges = workloads.filter((w) => w.metadata.labels?.component === 'judge');
    expect(judges.map((j) => `${j.file}`).sort()).toEqual(['deploy/k8s/argo/judge.yaml', 'deploy/k8s/flagger/judge.yaml']);
    const argsOf = (w: K8sObject) => w.spec!.template.spec.containers[0].args as string[];
    const flag = (args: string[], name: string) => args[args.indexOf(name) + 1];
    const argo = argsOf(judges.find((j) => j.file.includes('argo'))!);
    const bg = workloads.find((o) => o.kind === 'Rollout')!.spec!.strategy.blueGreen;
    expect([argo[0], flag(argo, '--stable'), flag(argo, '--candidate')]).toEqual([
      'judge',
      serviceUrl(bg.activeService),
      serviceUrl(bg.previewService),
    ]);
    expect(bg.prePromotionAnalysis.templates.map((t: { templateName: string }) => t.templateName)).toContain('bgserve-judge');
    const flagger = argsOf(judges.find((j) => j.file.includes('flagger'))!);
    const canary = objects.find((o) => o.kind === 'Canary')!;
    const target = canary.spec!.targetRef.name;
    expect(workloads.map((w) => w.metadata.name)).toContain(target);
    // Flagger's Services: <target>-primary (stable) and <target>-canary (new), on the Canary's service port.
    expect([flag(flagger, '--stable'), flag(flagger, '--candidate')]).toEqual([
      serviceUrl(`${target}-primary`),
      serviceUrl(`${target}-canary`),
    ]);
    expect(canary.spec!.service.port).toBe(80);
    const judgeService = services.find((s) => s.file.includes('flagger') && s.metadata.name === 'bgserve-judge')!;
    for (const hook of canary.spec!.analysis.webhooks) expect(new URL(hook.url).host).toBe(judgeService.metadata.name);
  });

  it("judge with bgserve's checks and thresholds (release/defaults.ts)", () => {
    const post = objects.find((o) => o.kind === 'AnalysisTemplate' && o.metadata.name === 'bgserve-analysis')!;
    const metrics = post.spec!.metrics as Array<{
      name: string;
      successCondition: string;
      failureCondition: string;
      provider: { prometheus: { query: string } };
    }>;
    expect(metrics.map((m) => m.name)).toEqual([
      'error-ratio',
      'latency-p95',
      'latency-p99',
      'latency-p99-vs-stable',
      'prediction-mean-shift',
    ]);
    const limit = (name: string) => metrics.find((m) => m.name === name)!.successCondition;
    expect(limit('error-ratio')).toContain(`<= ${DEFAULT_ANALYSIS.maxErrorRatio}`);
    expect(limit('latency-p95')).toContain(`<= ${DEFAULT_ANALYSIS.maxP95Seconds}`);
    expect(limit('latency-p99')).toContain(`<= ${DEFAULT_ANALYSIS.maxP99Seconds}`);
    expect(limit('prediction-mean-shift')).toContain(`<= ${DEFAULT_ANALYSIS.maxMeanShiftStd}`);
    for (const m of metrics) {
      // No samples: neither condition holds, so the measurement is inconclusive (as bgserve's analysis).
      expect(m.successCondition).toMatch(/^len\(result\) > 0 && /);
      expect(m.failureCondition).toMatch(/^len\(result\) > 0 && /);
      expect(m.provider.prometheus.query).toContain(`>= ${DEFAULT_ANALYSIS.minSamples}`);
    }
  });

  describe('with the real Prometheus tools', () => {
    let tmp: string;
    let prometheus: LocalPrometheus | undefined;

    beforeAll(async () => {
      tmp = await mkdtemp(path.join(os.tmpdir(), 'bgserve-k8s-'));
    });
    afterAll(async () => {
      await prometheus?.stop();
      if (tmp) await rm(tmp, { recursive: true, force: true });
    });

    it('accept the scrape configuration and rules of the Prometheus ConfigMap (promtool)', async () => {
      const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'bgserve-prometheus')!;
      const rules = path.join(tmp, 'bgserve.rules.yml');
      await writeFile(rules, cm.data!['bgserve.rules.yml']);
      const config = path.join(tmp, 'prometheus.yml');
      const text = cm.data!['prometheus.yml'];
      const discovery = 'kubernetes_sd_configs:\n      - role: pod\n';
      expect(text.split(discovery)).toHaveLength(3);
      // Debian builds Prometheus without Kubernetes discovery (promtool rejects the field): check everything
      // else (relabelling, rules, globals) with the discovery swapped for an empty static list.
      await writeFile(
        config,
        text.replaceAll(discovery, 'static_configs:\n      - targets: []\n').replace('/etc/prometheus/bgserve.rules.yml', rules),
      );
      const { stdout } = await run('promtool', ['check', 'config', config]);
      expect(stdout).toContain('SUCCESS');
    });

    it('parse every PromQL query of the AnalysisTemplates', async () => {
      prometheus = await startLocalPrometheus({ port: await freePort(), targets: { instances: [] }, dataDir: path.join(tmp, 'prom') });
      const queries = objects
        .filter((o) => o.kind === 'AnalysisTemplate')
        .flatMap((o) =>
          (o.spec!.metrics as Array<{ name: string; provider: { prometheus?: { query: string } } }>).filter((m) => m.provider.prometheus),
        )
        .map((m) => ({ name: m.name, query: m.provider.prometheus!.query.replace(/\{\{args\.([a-z-]+)\}\}/g, 'hash-$1') }));
      expect(queries.length).toBeGreaterThanOrEqual(8);
      for (const { name, query } of queries) {
        const result = await queryInstant(prometheus.url, query);
        expect(result, `${name}: ${query}`).toMatchObject({ status: 'success' });
      }
    });
  });
});
