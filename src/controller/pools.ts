/**
 * Each color's replicas, as the control side knows them now: fixed for `up --replicas N`, followed by DNS for
 * Compose and Kubernetes (replica-discovery.ts). The instance admin, the smoke checks, the metric source and the
 * status read it on every call, so a pool that changes is seen at once; listeners hear every change (the router
 * then gets the new pools).
 */
import { COLORS, type Color } from '../config/defaults.js';
import type { Upstream, Upstreams } from '../traffic/types.js';

/** "host:port": how a replica is named in errors, status and the routers' health. */
export function replicaAddress(u: Upstream): string {
  return `${u.host}:${u.port}`;
}

export function upstreamOfUrl(url: string): Upstream {
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port === '' ? 80 : Number(u.port) };
}

export function replicaUrl(u: Upstream): string {
  return `http://${u.host.includes(':') ? `[${u.host}]` : u.host}:${u.port}`;
}

/** What every user of the pools reads: a color's replicas now. */
export interface PoolView {
  replicas(color: Color): readonly Upstream[];
}

export class ReplicaPools implements PoolView {
  private pools: Upstreams;
  private readonly listeners = new Set<(pools: Upstreams) => void>();

  constructor(initial: Upstreams) {
    this.pools = copy(initial);
  }

  /** One replica per color, at these base URLs. */
  static fromUrls(urls: Record<Color, string>): ReplicaPools {
    return new ReplicaPools(Object.fromEntries(COLORS.map((c) => [c, [upstreamOfUrl(urls[c])]])) as Upstreams);
  }

  replicas(color: Color): readonly Upstream[] {
    return this.pools[color];
  }

  urls(color: Color): string[] {
    return this.pools[color].map(replicaUrl);
  }

  all(): Upstreams {
    return copy(this.pools);
  }

  /** Replaces one color's pool; listeners hear it only when it really changed. Returns whether it did. */
  set(color: Color, replicas: readonly Upstream[]): boolean {
    if (samePool(this.pools[color], replicas)) return false;
    this.pools = { ...this.pools, [color]: replicas.map((u) => ({ ...u })) };
    for (const l of this.listeners) l(this.all());
    return true;
  }

  onChange(listener: (pools: Upstreams) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

function copy(u: Upstreams): Upstreams {
  return Object.fromEntries(COLORS.map((c) => [c, u[c].map((r) => ({ ...r }))])) as Upstreams;
}

/** Same replicas, whatever the order. */
export function samePool(a: readonly Upstream[], b: readonly Upstream[]): boolean {
  const key = (p: readonly Upstream[]) => p.map(replicaAddress).sort().join(',');
  return key(a) === key(b);
}

/**
 * The fewest ready replicas a color may have while a release runs on it: all but one when it has several (a
 * replica may die and come back without failing the release), its only one otherwise.
 */
export function defaultMinReady(replicas: number): number {
  return replicas > 1 ? replicas - 1 : 1;
}
