/**
 * What every bgserve Kubernetes manifest shares: names, labels, the image, ports, probes, resources and the
 * hardened container settings. Values users change at deploy time (image, replicas) are overridden with
 * kustomize (deploy/k8s/kustomization.yaml) rather than by editing the generated files.
 */
import { Deployment } from 'kubernetes-models/apps/v1';
import { type IContainer, type IPodSpec, type IProbe, Service } from 'kubernetes-models/v1';
import { DEFAULT_BUNDLE, PORTS } from '../config/defaults.js';

export const APP = 'bgserve';
export const IMAGE = 'ghcr.io/bgserve/bgserve:latest';
/** Port every instance listens on inside its pod (as in the compose deployment and the image's CMD). */
export const INSTANCE_PORT = 8000;
export const ROUTER_PORT = PORTS.router;
export const CONTROL_PORT = PORTS.control;
export const ADMIN_TOKEN_SECRET = 'bgserve-admin-token';
export const ADMIN_TOKEN_DIR = '/var/run/bgserve';
export const STATE_DIR = '/app/.bgserve';
/** Port the Services expose (the original system's router port). */
export const SERVICE_PORT = 80;

/** Scrape by annotation: Prometheus's kubernetes_sd configuration in prometheus.ts keeps these pods. */
export function scrapeAnnotations(port: number): Record<string, string> {
  return { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(port), 'prometheus.io/path': '/metrics' };
}

const httpProbe = (path: string, periodSeconds: number, failureThreshold: number): IProbe => ({
  httpGet: { path, port: 'http' },
  periodSeconds,
  timeoutSeconds: 2,
  failureThreshold,
});

/**
 * One instance container. Readiness is /ready (503 while loading a bundle or draining: the pod leaves the
 * Service before it stops answering); liveness is /health (the process answers at all).
 * Resources: inference is microseconds per row and RSS stays near 100 MB; the limit leaves room for a second
 * bundle during an admin swap.
 */
export function instanceContainer(args: string[], opts: { admin: boolean }): IContainer {
  return {
    name: 'bgserve',
    image: IMAGE,
    args,
    ports: [{ name: 'http', containerPort: INSTANCE_PORT, protocol: 'TCP' }],
    readinessProbe: httpProbe('/ready', 5, 2),
    livenessProbe: httpProbe('/health', 10, 3),
    startupProbe: httpProbe('/health', 2, 30),
    resources: { requests: { cpu: '250m', memory: '128Mi' }, limits: { memory: '384Mi' } },
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
    volumeMounts: opts.admin ? [{ name: 'admin-token', mountPath: ADMIN_TOKEN_DIR, readOnly: true }] : [],
  };
}

/** `bgserve serve` on the default bundle; with the admin API when a controller loads bundles into the pod. */
export function serveArgs(opts: { admin: boolean; extra?: string[] }): string[] {
  return [
    'serve',
    '--bundle',
    DEFAULT_BUNDLE,
    '--host',
    '0.0.0.0',
    '--port',
    String(INSTANCE_PORT),
    ...(opts.admin ? ['--admin-token-file', `${ADMIN_TOKEN_DIR}/token`] : []),
    ...(opts.extra ?? []),
  ];
}

/** Pod-level settings every bgserve pod shares: the image's non-root user, the admin token secret if used. */
export function podSpec(containers: IContainer[], opts: { admin: boolean; volumes?: NonNullable<IPodSpec['volumes']> }): IPodSpec {
  return {
    securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
    // SIGTERM drains (readiness turns 503, in-flight requests finish): give it time before SIGKILL.
    terminationGracePeriodSeconds: 30,
    containers,
    volumes: [...(opts.admin ? [{ name: 'admin-token', secret: { secretName: ADMIN_TOKEN_SECRET } }] : []), ...(opts.volumes ?? [])],
  };
}

/** Port the judge listens on in its pod (`bgserve judge`, src/judge/). */
export const JUDGE_CONTAINER_PORT = 8095;

/**
 * The judge (`bgserve judge`) between two Services, for a rollout engine's web metrics or webhooks: it sends
 * the image's golden rows to both and answers the verdict. Labelled by `engine` so that the Argo and Flagger
 * variants never select each other's pods. It holds nothing (no admin API, no state): one replica is enough,
 * and a restart costs one retried measurement.
 */
export function judgeWorkload(opts: { engine: string; stableUrl: string; candidateUrl: string }): {
  deployment: Deployment;
  service: Service;
} {
  const name = `${APP}-judge`;
  const labels = { app: APP, component: 'judge', engine: opts.engine };
  const args = ['judge', '--stable', opts.stableUrl, '--candidate', opts.candidateUrl, '--golden', DEFAULT_BUNDLE];
  const container: IContainer = {
    ...instanceContainer([], { admin: false }),
    name: 'judge',
    args: [...args, '--host', '0.0.0.0', '--port', String(JUDGE_CONTAINER_PORT)],
    ports: [{ name: 'http', containerPort: JUDGE_CONTAINER_PORT, protocol: 'TCP' }],
    readinessProbe: httpProbe('/health', 5, 2),
    // Each judgement holds two prediction sets of a few hundred rows: far below an instance's needs.
    resources: { requests: { cpu: '100m', memory: '96Mi' }, limits: { memory: '256Mi' } },
  };
  return {
    deployment: new Deployment({
      metadata: { name, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: podSpec([container], { admin: false }) },
      },
    }),
    service: new Service({
      metadata: { name, labels },
      spec: { selector: labels, ports: [{ name: 'http', port: SERVICE_PORT, targetPort: 'http' }] },
    }),
  };
}
