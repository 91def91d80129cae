/**
 * Where Compose and Kubernetes replicas come from: the DNS records of a color's service name (Compose answers
 * one A record per container of a scaled service; a headless Kubernetes Service one per ready pod). The
 * controller resolves each color's name every few seconds; when a pool changes, the new replicas are first put on
 * their color's bundle, then the router is given the new pools (applyPool). No API permissions are needed.
 * The decision (what a resolution means for a pool) is pure: nextPool.
 */
import { resolve4 } from 'node:dns/promises';
import { isIP } from 'node:net';
import { COLORS, type Color } from '../config/defaults.js';
import type { Upstream } from '../traffic/types.js';
import type { Clock } from './ports.js';
import { replicaAddress, samePool } from './pools.js';

/** How often the service names are resolved again. */
export const DISCOVERY_EVERY_MS = 5_000;

/** Errors that mean "this name has no addresses now" (a service scaled to 0), not "DNS could not answer". */
const NO_RECORDS = new Set(['ENOTFOUND', 'ENODATA']);

export type Resolution = { addresses: string[] } | { error: { code?: string; message: string } };

export interface PoolDecision {
  pool: Upstream[];
  changed: boolean;
  added: Upstream[];
  removed: Upstream[];
  /** Why the pool was kept as it was despite the resolution (a DNS failure), if it was. */
  kept?: string;
}

/**
 * The pool a resolution gives: one replica per address on the service's port, sorted (stable across answers in
 * another order). A name with no records empties the pool (the color is then unhealthy and the router sends its
 * share to the other color); a DNS failure keeps the pool as it is: a flaky resolver must not take replicas out.
 */
export function nextPool(current: readonly Upstream[], resolution: Resolution, port: number): PoolDecision {
  if ('error' in resolution) {
    if (!NO_RECORDS.has(resolution.error.code ?? '')) {
      return { pool: [...current], changed: false, added: [], removed: [], kept: resolution.error.message };
    }
    return { pool: [], changed: current.length > 0, added: [], removed: [...current] };
  }
  const pool = [...new Set(resolution.addresses)].sort().map((host) => ({ host, port }));
  const had = new Set(current.map(replicaAddress));
  const has = new Set(pool.map(replicaAddress));
  return {
    pool,
    changed: !samePool(current, pool),
    added: pool.filter((u) => !had.has(replicaAddress(u))),
    removed: current.filter((u) => !has.has(replicaAddress(u))),
  };
}

export interface DiscoveryOptions {
  /** Each color's service name and port (e.g. mlservice_blue:8000). */
  services: Record<Color, Upstream>;
  /** Each color's pool now. */
  current(color: Color): readonly Upstream[];
  /** A pool changed: put the new replicas on their bundle, then hand the router the new pools. */
  applyPool(color: Color, decision: PoolDecision): Promise<void>;
  resolve?: (name: string) => Promise<string[]>;
  clock: Clock;
  everyMs?: number;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

async function resolution(resolve: (name: string) => Promise<string[]>, name: string): Promise<Resolution> {
  try {
    return { addresses: await resolve(name) };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { error: { ...(e.code ? { code: e.code } : {}), message: e.message } };
  }
}

/** Resolves every color's service once and applies what changed; returns the decisions that changed a pool. */
export async function discoverOnce(o: DiscoveryOptions): Promise<Array<{ color: Color } & PoolDecision>> {
  const resolve = o.resolve ?? ((name: string) => resolve4(name));
  const changed: Array<{ color: Color } & PoolDecision> = [];
  for (const color of COLORS) {
    const service = o.services[color];
    // An address is its own pool: nothing to discover (a native run with instance URLs on loopback).
    if (isIP(service.host)) continue;
    const decision = nextPool(o.current(color), await resolution(resolve, service.host), service.port);
    if (decision.kept) o.log?.(`could not resolve ${service.host}: kept ${color}'s pool`, { error: decision.kept });
    if (!decision.changed) continue;
    o.log?.(`${color} replicas changed`, {
      added: decision.added.map(replicaAddress),
      removed: decision.removed.map(replicaAddress),
      now: decision.pool.map(replicaAddress),
    });
    await o.applyPool(color, decision);
    changed.push({ color, ...decision });
  }
  return changed;
}

/** discoverOnce every everyMs until stopped. */
export function startDiscovery(o: DiscoveryOptions): { stop(): Promise<void> } {
  const stop = new AbortController();
  const done = (async () => {
    while (!stop.signal.aborted) {
      try {
        await o.clock.sleep(o.everyMs ?? DISCOVERY_EVERY_MS, stop.signal);
      } catch {
        return;
      }
      await discoverOnce(o).catch((err: Error) => o.log?.('replica discovery failed', { error: err.message }));
    }
  })();
  return {
    stop: async () => {
      stop.abort();
      await done;
    },
  };
}
