/**
 * The Argo Rollouts variant, for scaling out: a Rollout (N replicas per version) with the blueGreen strategy
 * switches the active Service between ReplicaSets, and AnalysisTemplates run bgserve's checks on Prometheus
 * (every check of the catalogue in release/checks/ that has PromQL, with its default thresholds):
 *
 *   pre-promotion  (preview pods, no live traffic yet): a smoke Job sends the original example request to the
 *                  preview Service and fails on any non-200; the checks of the new pods alone (error ratio,
 *                  p95/p99 latency) on that traffic.
 *                  Then bgserve's judge (judge.yaml) sends the golden rows to the active Service (still the old
 *                  pods) and the preview Service: the golden-set gate, and the agreement and shift of the two
 *                  versions' predictions, with the release engine's thresholds. It runs here because after the
 *                  switch no Service reaches the old pods; a canary Rollout lists bgserve-judge in its analysis
 *                  steps with the judge pointed at its stableService and canaryService (docs/kubernetes.md).
 *   post-promotion (new pods take all traffic):         those, and the checks against the old pods (p99 against
 *                  their p99, the shift of the mean prediction against their distribution).
 *
 * As in bgserve, too few samples is inconclusive (both conditions false), which pauses the rollout rather
 * than promoting or failing it; a failed measurement aborts it and Argo scales the old version back to 100%.
 * The old pods' figures come from a window reaching back before the switch (STABLE_WINDOW), since after a
 * blue-green switch they serve nothing.
 */
import { AnalysisTemplate, Rollout } from '@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1';
import { Service } from 'kubernetes-models/v1';
import { INSTANCE_METRICS } from '../config/metric-names.js';
import { WINE_EXAMPLE } from '../model/wine.js';
import { DEFAULT_ANALYSIS } from '../release/defaults.js';
import type { Scope } from '../monitoring/queries.js';
import { completeConfig } from '../release/analysis.js';
import { CATALOGUE, type Catalogue } from '../release/checks/catalogue.js';
import {
  APP,
  IMAGE,
  INSTANCE_PORT,
  SERVICE_PORT,
  instanceContainer,
  judgeWorkload,
  podSpec,
  scrapeAnnotations,
  serveArgs,
} from './common.js';
import type { ManifestFile } from './plain.js';
import { ROLLOUT_HASH_LABEL } from './prometheus.js';

export const ROLLOUT_LABELS = { app: APP, component: 'rollout' };
export const ACTIVE_SERVICE = `${APP}-active`;
export const PREVIEW_SERVICE = `${APP}-preview`;
export const SMOKE_TEMPLATE = `${APP}-smoke`;
export const ANALYSIS_TEMPLATE = `${APP}-analysis`;
export const JUDGE_TEMPLATE = `${APP}-judge`;
/** Analysis window of each measurement, as bgserve's recording rules. */
export const WINDOW = '1m';
/** Window that reaches back before the switch, for the old pods' figures (they serve nothing after it). */
export const STABLE_WINDOW = '10m';
export const SMOKE_REQUESTS = 100;

const latest: Scope = { window: WINDOW, matchers: `${ROLLOUT_HASH_LABEL}="{{args.latest-hash}}"` };
const stable: Scope = { window: STABLE_WINDOW, matchers: `${ROLLOUT_HASH_LABEL}="{{args.stable-hash}}"` };
const a = DEFAULT_ANALYSIS;

/** Empty (so: inconclusive) unless the new pods answered at least minSamples requests in the window. */
function withEnoughSamples(expr: string): string {
  const requests = `sum(increase(${INSTANCE_METRICS.requests}{${latest.matchers}}[${WINDOW}]))`;
  return `(${expr}) and on() (${requests} >= ${a.minSamples})`;
}

interface Check {
  name: string;
  query: string;
  /** The measurement passes when result[0] <= limit, fails when above; no result is inconclusive. */
  limit: number;
  comparesWithStable: boolean;
}

/** The checks of a catalogue that have PromQL, in its order, on the new and the old pods. */
function promChecks(catalogue: Catalogue): Check[] {
  return catalogue.flatMap((check) => {
    if (!check.promql) return [];
    const { query, limit } = check.promql({ target: latest, stable }, completeConfig(a, catalogue));
    return [{ name: check.name, query: withEnoughSamples(query), limit, comparesWithStable: check.comparesWithStable }];
  });
}

function prometheusMetric(check: Check, opts: { interval: string; count: number; initialDelay?: string }) {
  return {
    name: check.name,
    interval: opts.interval,
    count: opts.count,
    ...(opts.initialDelay ? { initialDelay: opts.initialDelay } : {}),
    failureLimit: 0,
    // Inconclusive measurements pause the rollout after this many (bgserve: wait, then pause).
    inconclusiveLimit: 3,
    successCondition: `len(result) > 0 && result[0] <= ${check.limit}`,
    failureCondition: `len(result) > 0 && result[0] > ${check.limit}`,
    provider: { prometheus: { address: '{{args.prometheus-address}}', query: check.query } },
  };
}

const templateArgs = [{ name: 'latest-hash' }, { name: 'stable-hash' }, { name: 'prometheus-address', value: 'http://prometheus:9090' }];

/** A node one-liner (the image has node, not curl): the original example, SMOKE_REQUESTS times, all 200. */
export function smokeScript(): string {
  return [
    `const body = JSON.stringify(${JSON.stringify(WINE_EXAMPLE)});`,
    `const url = process.env.PREDICT_URL;`,
    `(async () => {`,
    `  for (let i = 0; i < ${SMOKE_REQUESTS}; i++) {`,
    `    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });`,
    `    const out = await res.json().catch(() => ({}));`,
    `    if (res.status !== 200 || !Number.isFinite(out.prediction)) throw new Error('request ' + i + ': ' + res.status + ' ' + JSON.stringify(out));`,
    `  }`,
    `  console.log('smoke: ${SMOKE_REQUESTS} predictions answered');`,
    `})().catch((err) => { console.error(String(err)); process.exit(1); });`,
  ].join('\n');
}

export function smokeTemplate(catalogue: Catalogue = CATALOGUE): AnalysisTemplate {
  return new AnalysisTemplate({
    metadata: { name: SMOKE_TEMPLATE, labels: { app: APP } },
    spec: {
      args: templateArgs,
      metrics: [
        {
          name: 'smoke',
          provider: {
            job: {
              spec: {
                backoffLimit: 0,
                template: {
                  spec: {
                    restartPolicy: 'Never',
                    securityContext: { runAsNonRoot: true, runAsUser: 1000 },
                    containers: [
                      {
                        name: 'smoke',
                        image: IMAGE,
                        command: ['node', '-e', smokeScript()],
                        env: [{ name: 'PREDICT_URL', value: `http://${PREVIEW_SERVICE}:${SERVICE_PORT}/predict` }],
                        resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } },
                      },
                    ],
                  },
                },
              },
            },
          },
        },
        // After the smoke traffic has landed in Prometheus (scrape every 5 s).
        // The preview pods take no live traffic: only the checks of the new pods alone apply.
        ...promChecks(catalogue)
          .filter((c) => !c.comparesWithStable)
          .map((c) => prometheusMetric(c, { interval: '15s', count: 2, initialDelay: '30s' })),
      ],
    },
  });
}

export function analysisTemplate(catalogue: Catalogue = CATALOGUE): AnalysisTemplate {
  return new AnalysisTemplate({
    metadata: { name: ANALYSIS_TEMPLATE, labels: { app: APP } },
    spec: {
      args: templateArgs,
      // Six measurements 10 s apart: a one-minute post-switch window, as bgserve's default analysis length.
      metrics: promChecks(catalogue).map((c) => prometheusMetric(c, { interval: '10s', count: 6, initialDelay: '20s' })),
    },
  });
}

/**
 * bgserve's model checks through its judge (`bgserve judge`, between the active Service: still the old pods
 * before promotion, and the preview Service: the new ones), as Argo web metrics. `report=true` because Argo's
 * web provider takes any non-2xx answer as a measurement error; the verdict is read from the body instead.
 * Conditions follow Argo's documented web-metric semantics (https://argoproj.github.io/argo-rollouts/analysis/web/):
 * `jsonPath` picks `result`, an `expr` condition is evaluated on it, and when neither condition holds the
 * measurement is Inconclusive, which pauses the rollout (as bgserve's "too few samples").
 */
export function judgeMetric(name: string, route: string) {
  return {
    name,
    // The judge asks both versions afresh each time: two measurements a little apart catch a preview pod that
    // was not ready yet without holding the rollout long.
    interval: '15s',
    count: 2,
    failureLimit: 0,
    inconclusiveLimit: 1,
    successCondition: 'result == "pass"',
    failureCondition: 'result == "fail"',
    provider: { web: { url: `{{args.judge-url}}${route}?report=true`, timeoutSeconds: 30, jsonPath: '{$.verdict}' } },
  };
}

export const JUDGE_URL = `http://${APP}-judge`;

export function judgeTemplate(): AnalysisTemplate {
  return new AnalysisTemplate({
    metadata: { name: JUDGE_TEMPLATE, labels: { app: APP } },
    spec: {
      args: [{ name: 'judge-url', value: JUDGE_URL }],
      // Golden-set gate (RMSE against the stable version), then the agreement and shift of the predictions.
      metrics: [judgeMetric('golden-gate', '/judge/golden'), judgeMetric('prediction-agreement', '/judge/agreement')],
    },
  });
}

const hashArgs = [
  { name: 'latest-hash', valueFrom: { podTemplateHashValue: 'Latest' } },
  { name: 'stable-hash', valueFrom: { podTemplateHashValue: 'Stable' } },
];

export function rollout(): Rollout {
  return new Rollout({
    metadata: { name: APP, labels: ROLLOUT_LABELS },
    spec: {
      replicas: 3,
      revisionHistoryLimit: 3,
      selector: { matchLabels: ROLLOUT_LABELS },
      template: {
        metadata: { labels: ROLLOUT_LABELS, annotations: scrapeAnnotations(INSTANCE_PORT) },
        // No admin API: a new model version is a new pod template (image or bundle), rolled out by Argo.
        spec: podSpec([instanceContainer(serveArgs({ admin: false }), { admin: false })], { admin: false }),
      },
      strategy: {
        blueGreen: {
          activeService: ACTIVE_SERVICE,
          previewService: PREVIEW_SERVICE,
          previewReplicaCount: 1,
          autoPromotionEnabled: true,
          prePromotionAnalysis: { templates: [{ templateName: SMOKE_TEMPLATE }, { templateName: JUDGE_TEMPLATE }], args: hashArgs },
          postPromotionAnalysis: { templates: [{ templateName: ANALYSIS_TEMPLATE }], args: hashArgs },
          // Keep the old ReplicaSet up for ten minutes: an aborted post-promotion analysis switches back at once.
          scaleDownDelaySeconds: 600,
          abortScaleDownDelaySeconds: 30,
        },
      },
    },
  });
}

function rolloutService(name: string): Service {
  return new Service({
    metadata: { name, labels: { app: APP } },
    // Argo Rollouts adds the ReplicaSet's pod-template hash to this selector.
    spec: { selector: ROLLOUT_LABELS, ports: [{ name: 'http', port: SERVICE_PORT, targetPort: 'http' }] },
  });
}

export function argoManifests(): ManifestFile[] {
  const judge = judgeWorkload({
    engine: 'argo',
    stableUrl: `http://${ACTIVE_SERVICE}:${SERVICE_PORT}`,
    candidateUrl: `http://${PREVIEW_SERVICE}:${SERVICE_PORT}`,
  });
  return [
    { file: 'argo/rollout.yaml', objects: [rollout(), rolloutService(ACTIVE_SERVICE), rolloutService(PREVIEW_SERVICE)] },
    { file: 'argo/analysis.yaml', objects: [smokeTemplate(), analysisTemplate(), judgeTemplate()] },
    { file: 'argo/judge.yaml', objects: [judge.deployment, judge.service] },
  ];
}
