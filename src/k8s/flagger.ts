/**
 * The Flagger variant: a Deployment Flagger takes over (it makes `<name>-primary` for the stable version and
 * points `<name>-canary` at the new pods), a Canary whose webhooks call bgserve's judge, and the judge between
 * those two Services. Flagger's webhook contract (https://docs.flagger.app/usage/webhooks): it POSTs
 * {name, namespace, phase, metadata} to the URL; a `pre-rollout` hook gates the start of the analysis and a
 * `rollout` hook runs at every interval; 200 passes, any other answer counts as a failed check, retried at the
 * next interval until `threshold` failures roll the canary back. The judge answers 412 on a failing verdict
 * and 503 while it cannot judge, so both stop the rollout from advancing.
 *
 * node_modules has no typed model of Flagger's CRD: the Canary is a plain object of the fields used here,
 * checked by validateCanary (and by test/packaging/k8s.test.ts).
 */
import { Deployment } from 'kubernetes-models/apps/v1';
import { APP, INSTANCE_PORT, SERVICE_PORT, instanceContainer, judgeWorkload, podSpec, scrapeAnnotations, serveArgs } from './common.js';
import type { ManifestFile } from './plain.js';

export const FLAGGER_TARGET = `${APP}-model`;
/** Flagger's naming: the stable pods behind `<target>-primary`, the new ones behind `<target>-canary`. */
export const FLAGGER_PRIMARY_SERVICE = `${FLAGGER_TARGET}-primary`;
export const FLAGGER_CANARY_SERVICE = `${FLAGGER_TARGET}-canary`;
const JUDGE_URL = `http://${APP}-judge`;

export type FlaggerWebhookType =
  | 'confirm-rollout'
  | 'pre-rollout'
  | 'rollout'
  | 'confirm-promotion'
  | 'post-rollout'
  | 'rollback'
  | 'event';
const WEBHOOK_TYPES: readonly FlaggerWebhookType[] = [
  'confirm-rollout',
  'pre-rollout',
  'rollout',
  'confirm-promotion',
  'post-rollout',
  'rollback',
  'event',
];

export interface FlaggerWebhook {
  name: string;
  type: FlaggerWebhookType;
  url: string;
  timeout: string;
  metadata?: Record<string, string>;
}

/** The fields of flagger.app/v1beta1 Canary this example uses. */
export interface CanarySpec {
  targetRef: { apiVersion: 'apps/v1'; kind: 'Deployment'; name: string };
  provider: string;
  progressDeadlineSeconds: number;
  service: { port: number; targetPort: string };
  analysis: { interval: string; threshold: number; iterations: number; webhooks: FlaggerWebhook[] };
}

export class Canary {
  readonly apiVersion = 'flagger.app/v1beta1';
  readonly kind = 'Canary';
  constructor(
    readonly metadata: { name: string; labels: Record<string, string> },
    readonly spec: CanarySpec,
  ) {}

  toJSON(): unknown {
    return { apiVersion: this.apiVersion, kind: this.kind, metadata: this.metadata, spec: this.spec };
  }

  validate(): void {
    validateCanary(this.toJSON());
  }
}

/** Throws on what Flagger's CRD schema would refuse among the fields used here (types, enums, durations). */
export function validateCanary(o: unknown): void {
  const bad = (what: string) => {
    throw new Error(`Canary: ${what}`);
  };
  const c = o as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown }; spec?: Partial<CanarySpec> };
  if (c.apiVersion !== 'flagger.app/v1beta1' || c.kind !== 'Canary') bad('apiVersion/kind must be flagger.app/v1beta1 Canary');
  if (typeof c.metadata?.name !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(c.metadata.name))
    bad('metadata.name must be a DNS label');
  const s = c.spec;
  if (!s) return bad('spec is required');
  if (s.targetRef?.kind !== 'Deployment' || typeof s.targetRef.name !== 'string') bad('spec.targetRef must name a Deployment');
  if (!Number.isInteger(s.service?.port) || typeof s.service?.targetPort !== 'string')
    bad('spec.service needs an integer port and a named targetPort');
  const duration = /^\d+(ms|s|m|h)$/;
  const a = s.analysis;
  if (!a || !duration.test(a.interval) || !Number.isInteger(a.threshold) || !Number.isInteger(a.iterations))
    bad('spec.analysis needs interval (duration), threshold and iterations');
  for (const [i, h] of (a?.webhooks ?? []).entries()) {
    if (typeof h.name !== 'string' || !WEBHOOK_TYPES.includes(h.type)) bad(`webhooks[${i}]: name and a known type are required`);
    if (!/^https?:\/\//.test(h.url)) bad(`webhooks[${i}].url must be an http(s) URL`);
    if (!duration.test(h.timeout)) bad(`webhooks[${i}].timeout must be a duration`);
    if (h.metadata && !Object.values(h.metadata).every((v) => typeof v === 'string')) bad(`webhooks[${i}].metadata values must be strings`);
  }
}

const TARGET_LABELS = { app: FLAGGER_TARGET };

/** The Deployment Flagger rolls out: a new model version is a new pod template (image or bundle). */
export function flaggerTarget(): Deployment {
  return new Deployment({
    metadata: { name: FLAGGER_TARGET, labels: TARGET_LABELS },
    spec: {
      replicas: 3,
      // Flagger selects by the `app` label and gives the primary copy `app: <name>-primary`.
      selector: { matchLabels: TARGET_LABELS },
      template: {
        metadata: { labels: TARGET_LABELS, annotations: scrapeAnnotations(INSTANCE_PORT) },
        spec: podSpec([instanceContainer(serveArgs({ admin: false }), { admin: false })], { admin: false }),
      },
    },
  });
}

export function canary(): Canary {
  return new Canary(
    { name: FLAGGER_TARGET, labels: { app: APP } },
    {
      targetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: FLAGGER_TARGET },
      // Blue/green on plain Kubernetes Services: no mesh needed; the checks are the judge's webhooks.
      provider: 'kubernetes',
      progressDeadlineSeconds: 600,
      service: { port: SERVICE_PORT, targetPort: 'http' },
      analysis: {
        interval: '30s',
        // Three failed checks roll back: a judge that still cannot judge (503) after 90 s is a stop, not a pass.
        threshold: 3,
        iterations: 4,
        webhooks: [
          { name: 'bgserve-golden-gate', type: 'pre-rollout', url: `${JUDGE_URL}/judge/golden`, timeout: '30s' },
          { name: 'bgserve-prediction-agreement', type: 'rollout', url: `${JUDGE_URL}/judge/agreement`, timeout: '30s' },
        ],
      },
    },
  );
}

export function flaggerManifests(): ManifestFile[] {
  const judge = judgeWorkload({
    engine: 'flagger',
    stableUrl: `http://${FLAGGER_PRIMARY_SERVICE}:${SERVICE_PORT}`,
    candidateUrl: `http://${FLAGGER_CANARY_SERVICE}:${SERVICE_PORT}`,
  });
  return [
    { file: 'flagger/deployment.yaml', objects: [flaggerTarget()] },
    { file: 'flagger/canary.yaml', objects: [canary()] },
    { file: 'flagger/judge.yaml', objects: [judge.deployment, judge.service] },
  ];
}
