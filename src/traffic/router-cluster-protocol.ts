/**
 * What the router cluster's primary (router-cluster.ts) and its workers (router-cluster-worker.ts) say to each
 * other over node:cluster's IPC channel, and how the workers' health reports add up to one.
 */
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { COLORS } from '../config/defaults.js';
import type { ColorHealth, HealthReport, ReplicaHealth, TrafficState, Upstreams } from './types.js';

/** Everything a worker routes by: the primary's authoritative copy, sent whole on every change. */
export interface WorkerConfig {
  state: TrafficState;
  upstreams: Upstreams;
  previewToken?: string;
}

export type ToWorker =
  | { type: 'init'; listen: { host: string; port: number }; config: WorkerConfig }
  | { type: 'apply'; id: number; config: WorkerConfig }
  | { type: 'health'; id: number }
  | { type: 'metrics'; id: number }
  | { type: 'stop' };

export type FromWorker =
  /** Its message listener is in place: the primary answers with init. */
  | { type: 'hello' }
  | { type: 'ready'; port: number; health: HealthReport }
  | { type: 'failed'; error: string }
  | { type: 'ack'; id: number; error?: string }
  | { type: 'health'; id: number; report: HealthReport }
  | { type: 'metrics'; id: number; metrics: MetricObjectWithValues<MetricValue<string>>[] };

/**
 * One report for the router: a replica is in rotation only when it is in every worker (a passive failure one
 * worker saw shows), and a color is healthy while one of its replicas is, as in a single process.
 */
export function mergeHealth(reports: readonly HealthReport[]): HealthReport | null {
  if (reports.length === 0) return null;
  const out = {} as HealthReport;
  for (const color of COLORS) {
    const colors = reports.map((r) => r[color]);
    const replicas: ReplicaHealth[] = colors[0].replicas.map((first) => {
      const same = colors.map((c) => c.replicas.find((r) => r.address === first.address)).filter((r): r is ReplicaHealth => !!r);
      const healthy = same.every((r) => r.healthy);
      const blamed = same.find((r) => !r.healthy && r.lastError !== null) ?? same.find((r) => r.lastError !== null);
      return {
        address: first.address,
        healthy,
        lastError: blamed?.lastError ?? null,
        checkedAt: latest(same.map((r) => r.checkedAt)),
        ...(first.inFlight !== undefined ? { inFlight: same.reduce((n, r) => n + (r.inFlight ?? 0), 0) } : {}),
      };
    });
    const merged: ColorHealth = {
      healthy: replicas.some((r) => r.healthy),
      lastError: (colors.find((c) => !c.healthy && c.lastError !== null) ?? colors.find((c) => c.lastError !== null))?.lastError ?? null,
      checkedAt: latest(colors.map((c) => c.checkedAt)),
      replicas,
    };
    out[color] = merged;
  }
  return out;
}

/** ISO times compare as strings. */
function latest(times: readonly (string | null)[]): string | null {
  let best: string | null = null;
  for (const t of times) if (t !== null && (best === null || t > best)) best = t;
  return best;
}
