/**
 * Prometheus scraping on Kubernetes without the Prometheus Operator (no ServiceMonitor): a ConfigMap with a
 * prometheus.yml that discovers pods through the Kubernetes API and keeps those annotated for scraping
 * (common.ts scrapeAnnotations), plus bgserve's recording and alert rules. Mount it into any Prometheus
 * (`--config.file=/etc/prometheus/prometheus.yml`); the job names are the ones the rules select on.
 */
import { ConfigMap } from 'kubernetes-models/v1';
import { stringify } from 'yaml';
import { JOBS } from '../monitoring/queries.js';
import { renderRulesFile } from '../monitoring/prometheus-config.js';
import { APP } from './common.js';

/** Pod label Argo Rollouts puts on each ReplicaSet's pods; kept as a series label for the analysis queries. */
export const ROLLOUT_HASH_LABEL = 'rollouts_pod_template_hash';

const keepAnnotated = [
  { source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_scrape'], regex: 'true', action: 'keep' },
  {
    source_labels: ['__address__', '__meta_kubernetes_pod_annotation_prometheus_io_port'],
    regex: '([^:]+)(?::\\d+)?;(\\d+)',
    replacement: '$1:$2',
    target_label: '__address__',
  },
  { source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_path'], regex: '(.+)', target_label: '__metrics_path__' },
  { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
  { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
];

function podJob(jobName: string, components: string[], extra: unknown[] = []): unknown {
  return {
    job_name: jobName,
    // Instances label their own series with `color` (as in compose): theirs wins over the pod label.
    honor_labels: true,
    kubernetes_sd_configs: [{ role: 'pod' }],
    relabel_configs: [
      { source_labels: ['__meta_kubernetes_pod_label_app'], regex: APP, action: 'keep' },
      { source_labels: ['__meta_kubernetes_pod_label_component'], regex: components.join('|'), action: 'keep' },
      ...keepAnnotated,
      ...extra,
    ],
  };
}

export function renderKubernetesPrometheusConfig(): string {
  return stringify(
    {
      global: { scrape_interval: '5s', evaluation_interval: '5s' },
      rule_files: ['/etc/prometheus/bgserve.rules.yml'],
      scrape_configs: [
        podJob(
          JOBS.instances,
          ['instance', 'rollout'],
          [
            { source_labels: ['__meta_kubernetes_pod_label_color'], regex: '(.+)', target_label: 'color' },
            { source_labels: ['__meta_kubernetes_pod_label_rollouts_pod_template_hash'], regex: '(.+)', target_label: ROLLOUT_HASH_LABEL },
          ],
        ),
        podJob(JOBS.control, ['controller']),
      ],
    },
    { lineWidth: 0 },
  );
}

export function prometheusConfigMap(): ConfigMap {
  return new ConfigMap({
    metadata: { name: `${APP}-prometheus`, labels: { app: APP, component: 'prometheus-config' } },
    data: {
      'prometheus.yml': renderKubernetesPrometheusConfig(),
      'bgserve.rules.yml': renderRulesFile(),
    },
  });
}
