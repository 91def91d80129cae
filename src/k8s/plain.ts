/**
 * bgserve on Kubernetes without extra controllers: the compose topology on a cluster.
 *
 *   Service bgserve-active  -> controller pod, embedded router :8080 (weights, canary, mirror, preview header)
 *   Service bgserve-blue / bgserve-green (headless: one DNS record per ready pod; preview one color directly)
 *     -> Deployment bgserve-blue / -green
 *   Service bgserve-controller -> control API :8090 (CLI, status page, /metrics)
 *
 * Each color runs COLOR_REPLICAS pods (change it with kustomize `replicas:`). The controller finds a color's pods
 * in its (headless) Service's DNS records (`--discover-replicas`, re-resolved every 5 s: no API permissions), loads
 * every release's bundle into each of them (all or nothing), puts a new or restarted pod on its color's bundle
 * before its router sends it traffic, and balances each color's share over its pods.
 */
import { Deployment } from 'kubernetes-models/apps/v1';
import { PersistentVolumeClaim, Service } from 'kubernetes-models/v1';
import { COLORS, type Color } from '../config/defaults.js';
import {
  ADMIN_TOKEN_DIR,
  APP,
  CONTROL_PORT,
  IMAGE,
  INSTANCE_PORT,
  ROUTER_PORT,
  SERVICE_PORT,
  STATE_DIR,
  instanceContainer,
  podSpec,
  scrapeAnnotations,
  serveArgs,
} from './common.js';
import { prometheusConfigMap } from './prometheus.js';

export const colorLabels = (color: Color) => ({ app: APP, component: 'instance', color });
export const CONTROLLER_LABELS = { app: APP, component: 'controller' };
export const colorServiceName = (color: Color) => `${APP}-${color}`;
/** Pods per color by default: two, so a pod can restart (or a node drain) without the color going down. */
export const COLOR_REPLICAS = 2;

export function colorDeployment(color: Color): Deployment {
  const labels = colorLabels(color);
  return new Deployment({
    metadata: { name: `${APP}-${color}`, labels },
    spec: {
      // The controller loads bundles into each pod it discovers (see above), so a color scales like any Deployment.
      replicas: COLOR_REPLICAS,
      selector: { matchLabels: labels },
      // One new pod at a time, none taken down first: a new pod is put on its color's bundle as it is discovered.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels, annotations: scrapeAnnotations(INSTANCE_PORT) },
        spec: podSpec([instanceContainer(serveArgs({ admin: true, extra: ['--color', color] }), { admin: true })], { admin: true }),
      },
    },
  });
}

/**
 * Headless (no cluster IP): a DNS lookup of its name answers every ready pod of the color, which is how the
 * controller finds them; a client previewing one color directly gets one of them the same way.
 */
export function colorService(color: Color): Service {
  return new Service({
    metadata: { name: colorServiceName(color), labels: colorLabels(color) },
    spec: { clusterIP: 'None', selector: colorLabels(color), ports: [{ name: 'http', port: INSTANCE_PORT, targetPort: 'http' }] },
  });
}

export function stateClaim(): PersistentVolumeClaim {
  return new PersistentVolumeClaim({
    metadata: { name: `${APP}-controller-state`, labels: CONTROLLER_LABELS },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
  });
}

export function controllerDeployment(): Deployment {
  return new Deployment({
    metadata: { name: `${APP}-controller`, labels: CONTROLLER_LABELS },
    spec: {
      // The release log is a single-writer file on a ReadWriteOnce volume: exactly one controller, replaced not rolled.
      replicas: 1,
      selector: { matchLabels: CONTROLLER_LABELS },
      strategy: { type: 'Recreate' },
      template: {
        metadata: { labels: CONTROLLER_LABELS, annotations: scrapeAnnotations(CONTROL_PORT) },
        spec: podSpec(
          [
            {
              name: 'controller',
              image: IMAGE,
              args: [
                'controller',
                '--host',
                '0.0.0.0',
                '--port',
                String(CONTROL_PORT),
                '--router',
                'embedded',
                '--router-port',
                String(ROUTER_PORT),
                '--blue-url',
                `http://${colorServiceName('blue')}:${INSTANCE_PORT}`,
                '--green-url',
                `http://${colorServiceName('green')}:${INSTANCE_PORT}`,
                '--discover-replicas',
                '--admin-token-file',
                `${ADMIN_TOKEN_DIR}/token`,
                '--prometheus-url',
                'http://prometheus:9090',
              ],
              ports: [
                { name: 'control', containerPort: CONTROL_PORT, protocol: 'TCP' },
                { name: 'router', containerPort: ROUTER_PORT, protocol: 'TCP' },
              ],
              readinessProbe: { httpGet: { path: '/healthz', port: 'control' }, periodSeconds: 5 },
              livenessProbe: { httpGet: { path: '/healthz', port: 'control' }, periodSeconds: 10, failureThreshold: 3 },
              resources: { requests: { cpu: '250m', memory: '128Mi' }, limits: { memory: '384Mi' } },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
              volumeMounts: [
                { name: 'admin-token', mountPath: ADMIN_TOKEN_DIR, readOnly: true },
                { name: 'state', mountPath: STATE_DIR },
              ],
            },
          ],
          { admin: true, volumes: [{ name: 'state', persistentVolumeClaim: { claimName: stateClaim().metadata!.name! } }] },
        ),
      },
    },
  });
}

/** The public entry: the router, whose weights the controller sets. */
export function activeService(): Service {
  return new Service({
    metadata: { name: `${APP}-active`, labels: { app: APP, component: 'router' } },
    spec: { selector: CONTROLLER_LABELS, ports: [{ name: 'http', port: SERVICE_PORT, targetPort: 'router' }] },
  });
}

export function controllerService(): Service {
  return new Service({
    metadata: { name: `${APP}-controller`, labels: CONTROLLER_LABELS },
    spec: { selector: CONTROLLER_LABELS, ports: [{ name: 'control', port: CONTROL_PORT, targetPort: 'control' }] },
  });
}

/** A generated YAML file: its path under deploy/k8s/ and the objects in it, in order. */
export interface ManifestFile {
  file: string;
  objects: Array<{ apiVersion: string; kind: string; metadata?: { name?: string }; toJSON(): unknown; validate(): void }>;
}

export function plainManifests(): ManifestFile[] {
  return [
    ...COLORS.map((color) => ({ file: `${color}.yaml`, objects: [colorDeployment(color), colorService(color)] })),
    { file: 'controller.yaml', objects: [stateClaim(), controllerDeployment(), controllerService(), activeService()] },
    { file: 'prometheus.yaml', objects: [prometheusConfigMap()] },
  ];
}
