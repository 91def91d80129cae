/**
 * Health of each replica as a router sees it: active checks (GET /ready every interval) and passive marks
 * (a proxied request failed). A replica is in rotation when its last check passed and no request failed on it
 * within the passive window; a color is healthy while at least one of its replicas is. Both drivers use this;
 * nginx has its own passive marks, this reports its active checks.
 */
import { Client } from 'undici';
import { COLORS, type Color } from '../config/defaults.js';
import { HEALTH_INTERVAL_MS, HEALTH_TIMEOUT_MS, PASSIVE_WINDOW_MS } from './defaults.js';
import { upstreamAddress } from './pools.js';
import type { ColorHealth, HealthReport, ReplicaHealth, Upstream, Upstreams } from './types.js';

/**
 * How a color's share is spread over its replicas. Least outstanding requests (ties taken in turn) follows
 * the replicas' real speed: a slow or busy replica gets fewer; round-robin ignores it.
 */
export type Balance = 'least-outstanding' | 'round-robin';

/** One replica's bookkeeping; the same object lives on across setUpstreams while its address stays. */
export class Replica {
  readonly address: string;
  activeOk = true;
  passiveUntil = 0;
  lastError: string | null = null;
  errorAt = 0;
  checkedAt: number | null = null;
  /** Requests sent to it and not yet answered. */
  inFlight = 0;

  constructor(
    readonly color: Color,
    readonly upstream: Upstream,
  ) {
    this.address = upstreamAddress(upstream);
  }
}

export interface HealthOptions {
  /** Active check period (default HEALTH_INTERVAL_MS). */
  intervalMs?: number;
  /** How long one failed request keeps a replica out of rotation (nginx's fail_timeout). */
  passiveWindowMs?: number;
  /** Timeout of one check. */
  timeoutMs?: number;
  onChange?: (color: Color, healthy: boolean) => void;
  now?: () => number;
  balance?: Balance;
}

/** The bookkeeping and the choice of a replica, without timers or sockets. */
export class HealthTracker {
  private pools: Record<Color, Replica[]>;
  private readonly turn: Record<Color, number> = { blue: 0, green: 0 };
  private readonly passiveWindowMs: number;
  private readonly now: () => number;
  private readonly onChange?: (color: Color, healthy: boolean) => void;
  private readonly last: Record<Color, boolean> = { blue: true, green: true };
  private readonly leastOutstanding: boolean;

  constructor(upstreams: Upstreams, opts: HealthOptions = {}) {
    this.passiveWindowMs = opts.passiveWindowMs ?? PASSIVE_WINDOW_MS;
    this.now = opts.now ?? Date.now;
    this.onChange = opts.onChange;
    this.leastOutstanding = (opts.balance ?? 'least-outstanding') === 'least-outstanding';
    this.pools = this.plan(upstreams).next;
    for (const color of COLORS) this.last[color] = this.pools[color].length > 0;
  }

  replicas(color: Color): readonly Replica[] {
    return this.pools[color];
  }

  all(): Replica[] {
    return [...this.pools.blue, ...this.pools.green];
  }

  /**
   * The pools `upstreams` asks for, reusing the replica of an address already in its color (its health and
   * in-flight count go on); nothing changes until apply().
   */
  plan(upstreams: Upstreams): { next: Record<Color, Replica[]>; added: Replica[]; removed: Replica[] } {
    const next: Record<Color, Replica[]> = { blue: [], green: [] };
    const added: Replica[] = [];
    const removed: Replica[] = [];
    for (const color of COLORS) {
      const old = new Map((this.pools?.[color] ?? []).map((r) => [r.address, r]));
      for (const u of upstreams[color]) {
        const kept = old.get(upstreamAddress(u));
        if (kept) old.delete(kept.address);
        const replica = kept ?? new Replica(color, { host: u.host, port: u.port });
        if (!kept) added.push(replica);
        next[color].push(replica);
      }
      removed.push(...old.values());
    }
    return { next, added, removed };
  }

  apply(next: Record<Color, Replica[]>): void {
    this.pools = next;
    for (const color of COLORS) {
      this.turn[color] = 0;
      this.notify(color);
    }
  }

  isReplicaHealthy(r: Replica): boolean {
    return r.activeOk && this.now() >= r.passiveUntil;
  }

  isHealthy(color: Color): boolean {
    const now = this.now();
    for (const r of this.pools[color]) if (r.activeOk && now >= r.passiveUntil) return true;
    return false;
  }

  /**
   * A healthy replica of the color other than `exclude` (the one a replay leaves), by the balance rule; null
   * when there is none. Called on every request: one pass, no allocation.
   */
  pick(color: Color, exclude: Replica | null): Replica | null {
    const list = this.pools[color];
    const n = list.length;
    if (n === 0) return null;
    const start = this.turn[color] % n;
    this.turn[color] = start + 1;
    const now = this.now();
    let best: Replica | null = null;
    for (let i = 0; i < n; i++) {
      const r = list[(start + i) % n];
      if (r === exclude || !r.activeOk || now < r.passiveUntil) continue;
      if (!this.leastOutstanding) return r;
      if (best === null || r.inFlight < best.inFlight) best = r;
    }
    return best;
  }

  /** Any replica of the color, healthy or not (the last resort when no color has a healthy one). */
  anyReplica(color: Color): Replica | null {
    const list = this.pools[color];
    if (list.length === 0) return null;
    return list[this.turn[color]++ % list.length];
  }

  /** The replica at this address, in either color (nginx's access log names upstreams by address). */
  find(address: string): Replica | undefined {
    for (const color of COLORS) for (const r of this.pools[color]) if (r.address === address) return r;
    return undefined;
  }

  /** A proxied request failed on this replica (connection error, 502/503/504: see isUnavailableStatus). */
  markFailure(r: Replica, error: string): void {
    r.passiveUntil = this.now() + this.passiveWindowMs;
    r.lastError = error;
    r.errorAt = this.now();
    this.notify(r.color);
  }

  recordCheck(r: Replica, error: string | null): void {
    r.activeOk = error === null;
    r.checkedAt = this.now();
    if (error !== null) {
      r.lastError = error;
      r.errorAt = this.now();
    } else if (this.now() >= r.passiveUntil) r.lastError = null;
    this.notify(r.color);
  }

  report(): HealthReport {
    return { blue: this.colorReport('blue'), green: this.colorReport('green') };
  }

  private colorReport(color: Color): ColorHealth {
    const list = this.pools[color];
    const replicas: ReplicaHealth[] = list.map((r) => ({
      address: r.address,
      healthy: this.isReplicaHealthy(r),
      lastError: r.lastError,
      checkedAt: r.checkedAt === null ? null : new Date(r.checkedAt).toISOString(),
      inFlight: r.inFlight,
    }));
    let latest: Replica | null = null;
    let checkedAt: number | null = null;
    for (const r of list) {
      if (r.lastError !== null && (latest === null || r.errorAt >= latest.errorAt)) latest = r;
      if (r.checkedAt !== null && (checkedAt === null || r.checkedAt > checkedAt)) checkedAt = r.checkedAt;
    }
    // One replica: its own words, as before pools; several: which one said it.
    const lastError =
      latest === null
        ? list.length === 0
          ? 'no replicas'
          : null
        : list.length > 1
          ? `${latest.address}: ${latest.lastError}`
          : latest.lastError;
    return {
      healthy: this.isHealthy(color),
      lastError,
      checkedAt: checkedAt === null ? null : new Date(checkedAt).toISOString(),
      replicas,
    };
  }

  private notify(color: Color): void {
    const healthy = this.isHealthy(color);
    if (healthy !== this.last[color]) {
      this.last[color] = healthy;
      this.onChange?.(color, healthy);
    }
  }
}

/** Polls GET /ready on every replica and feeds the tracker. */
export class ActiveHealthChecker {
  private readonly clients = new Map<Replica, Client>();
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;

  constructor(
    private readonly tracker: HealthTracker,
    opts: HealthOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? HEALTH_INTERVAL_MS;
    this.timeoutMs = opts.timeoutMs ?? HEALTH_TIMEOUT_MS;
  }

  /** Runs one round now (awaited, so a starting router knows the truth) and then every interval. */
  async start(): Promise<void> {
    await this.checkAll();
    this.timer = setInterval(() => void this.checkAll(), this.intervalMs);
    this.timer.unref();
  }

  async checkAll(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const current = this.tracker.all();
      await this.check(current);
      // Replicas setUpstreams removed: their check connections go with them.
      const live = new Set(current);
      for (const [r, client] of this.clients) {
        if (!live.has(r)) {
          this.clients.delete(r);
          void client.close().catch(() => undefined);
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** Checks these replicas now (setUpstreams checks new ones before they take requests). */
  async check(replicas: readonly Replica[]): Promise<void> {
    await Promise.all(replicas.map((r) => this.checkOne(r)));
  }

  private async checkOne(r: Replica): Promise<void> {
    let client = this.clients.get(r);
    if (!client) {
      const t = this.timeoutMs;
      client = new Client(`http://${r.address}`, { headersTimeout: t, bodyTimeout: t, connectTimeout: t });
      this.clients.set(r, client);
    }
    try {
      const res = await client.request({ path: '/ready', method: 'GET' });
      await res.body.dump();
      this.tracker.recordCheck(r, res.statusCode === 200 ? null : `GET /ready answered ${res.statusCode}`);
    } catch (err) {
      this.tracker.recordCheck(r, `GET /ready failed: ${describeError(err)}`);
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all([...this.clients.values()].map((c) => c.close().catch(() => undefined)));
    this.clients.clear();
  }
}

export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string }).code;
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return [code ?? cause, err.message].filter(Boolean).join(' ');
  }
  return String(err);
}
