/**
 * The controller's HTTP client for instances: admin model loads and health, over undici, on every replica of a
 * color. A load is all or nothing: every replica takes the bundle, or the ones that took it are put back on
 * what they served and the load is refused naming the replica that refused. heal() puts a replica that came
 * back (a restart, a new pod) on its color's current bundle.
 */
import { request } from 'undici';
import { COLORS, type Color } from '../config/defaults.js';
import type { Upstream } from '../traffic/types.js';
import { ADMIN_LOAD_TIMEOUT_MS, INSTANCE_PROBE_TIMEOUT_MS } from './defaults.js';
import { defaultMinReady, type PoolView, ReplicaPools, replicaAddress, replicaUrl } from './pools.js';
import type { InstanceAdminPort, LoadOutcome, ModelIdentity, ReplicaView } from './ports.js';

export interface InstanceAdminOptions {
  /** Each color's replicas; or `instances`, one base URL per color. */
  pools?: PoolView;
  instances?: Record<Color, string>;
  /** Bearer token of the instances' admin API. */
  token: string;
  timeoutMs?: number;
  /**
   * The bundle each color was started with: what a replica that took a refused release's bundle is put back on
   * when no release loaded the color yet (checked against the model the replica reports it replaced).
   */
  startBundles?: Partial<Record<Color, string>>;
  /** Fewest ready replicas for a color to count as ready (default: defaultMinReady of its size). */
  minReady?: (replicas: number) => number;
}

type OneLoad = { ok: true; model: ModelIdentity; previous: ModelIdentity | null } | { ok: false; error: string };

export class InstanceAdmin implements InstanceAdminPort {
  private readonly pools: PoolView;
  /** What each color serves as far as this controller made it: set by a load every replica took. */
  private readonly current: Partial<Record<Color, { bundle: string; sha256: string }>> = {};
  /** One load or heal at a time per color: a heal must not put back the old bundle under a release's load. */
  private readonly locks: Record<Color, Promise<unknown>> = { blue: Promise.resolve(), green: Promise.resolve() };

  constructor(private readonly opts: InstanceAdminOptions) {
    if (!opts.pools && !opts.instances) throw new Error('InstanceAdmin needs pools or instances');
    this.pools = opts.pools ?? ReplicaPools.fromUrls(opts.instances as Record<Color, string>);
  }

  private locked<T>(color: Color, fn: () => Promise<T>): Promise<T> {
    const next = this.locks[color].then(fn, fn);
    this.locks[color] = next.catch(() => undefined);
    return next;
  }

  /** The bundle a color was last loaded with by this controller, with its digest (undefined before any). */
  bundleOf(color: Color): { bundle: string; sha256: string } | undefined {
    return this.current[color];
  }

  /** Records what a color serves (the reconcile found it already there), so heal() can put stragglers on it. */
  expect(color: Color, bundle: string, sha256: string): void {
    this.current[color] = { bundle, sha256 };
  }

  private async loadOne(replica: Upstream, bundle: string): Promise<OneLoad> {
    const timeout = this.opts.timeoutMs ?? ADMIN_LOAD_TIMEOUT_MS;
    try {
      const res = await request(new URL('/admin/model', replicaUrl(replica)), {
        method: 'POST',
        headers: { authorization: `Bearer ${this.opts.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ bundle }),
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
      const body = (await res.body.json()) as { model?: ModelIdentity; previous?: ModelIdentity; error?: string; message?: string };
      if (res.statusCode === 200 && body.model) return { ok: true, model: body.model, previous: body.previous ?? null };
      return { ok: false, error: `${res.statusCode} ${body.error ?? ''}: ${body.message ?? ''}`.trim() };
    } catch (err) {
      return { ok: false, error: `admin request failed: ${(err as Error).message}` };
    }
  }

  /** POST /admin/model on every replica; each verifies the bundle and swaps only when it holds. */
  load(color: Color, bundle: string): Promise<LoadOutcome> {
    return this.locked(color, () => this.loadAll(color, bundle));
  }

  private async loadAll(color: Color, bundle: string): Promise<LoadOutcome> {
    const replicas = [...this.pools.replicas(color)];
    if (replicas.length === 0) return { ok: false, error: `${color} has no replicas to load the bundle on` };
    const results = await Promise.all(replicas.map((r) => this.loadOne(r, bundle)));
    const refused = results.flatMap((r, i) => (r.ok ? [] : [`${color} replica ${replicaAddress(replicas[i])}: ${r.error}`]));
    const models = results.flatMap((r) => (r.ok ? [r.model] : []));
    if (refused.length === 0 && new Set(models.map((m) => m.sha256)).size > 1) {
      refused.push(`${color} replicas loaded different models from ${bundle}: ${models.map((m) => m.sha256.slice(0, 12)).join(', ')}`);
    }
    if (refused.length === 0) {
      this.current[color] = { bundle, sha256: models[0].sha256 };
      return { ok: true, model: models[0] };
    }
    const notes = await Promise.all(results.map((r, i) => (r.ok ? this.putBack(color, replicas[i], r.previous) : null)));
    const putBack = notes.filter((n): n is string => n !== null);
    return { ok: false, error: [...refused, ...putBack].join('; ') };
  }

  /** A replica that took a refused release's bundle goes back to what it served before. */
  private async putBack(color: Color, replica: Upstream, previous: ModelIdentity | null): Promise<string> {
    const address = replicaAddress(replica);
    const candidates = [...new Set([this.current[color]?.bundle, this.opts.startBundles?.[color]].filter((b): b is string => !!b))];
    for (const bundle of candidates) {
      const back = await this.loadOne(replica, bundle);
      if (back.ok && (!previous || back.model.sha256 === previous.sha256)) return `${address} put back on ${back.model.version}`;
    }
    return `${address} could NOT be put back on ${previous ? `${previous.name} ${previous.version}` : 'its previous model'}: its bundle is not known here`;
  }

  private async health(replica: Upstream): Promise<{ model: ModelIdentity; state: string | null } | null> {
    try {
      const res = await request(new URL('/health', replicaUrl(replica)), {
        headersTimeout: INSTANCE_PROBE_TIMEOUT_MS,
        bodyTimeout: INSTANCE_PROBE_TIMEOUT_MS,
      });
      const body = (await res.body.json()) as { model?: ModelIdentity; state?: string };
      return res.statusCode === 200 && body.model ? { model: body.model, state: body.state ?? null } : null;
    } catch {
      return null;
    }
  }

  private async readyOne(replica: Upstream): Promise<boolean> {
    try {
      const res = await request(new URL('/ready', replicaUrl(replica)), {
        headersTimeout: INSTANCE_PROBE_TIMEOUT_MS,
        bodyTimeout: INSTANCE_PROBE_TIMEOUT_MS,
      });
      await res.body.dump();
      return res.statusCode === 200;
    } catch {
      return false;
    }
  }

  /** The model a color serves: the one every answering replica reports; null when none answers or they differ. */
  async model(color: Color): Promise<ModelIdentity | null> {
    const answers = (await Promise.all(this.pools.replicas(color).map((r) => this.health(r)))).flatMap((h) => (h ? [h.model] : []));
    if (answers.length === 0 || new Set(answers.map((m) => m.sha256)).size > 1) return null;
    return answers[0];
  }

  /** At least minReady replicas answer /ready with 200. */
  async ready(color: Color): Promise<boolean> {
    const replicas = this.pools.replicas(color);
    if (replicas.length === 0) return false;
    const ready = (await Promise.all(replicas.map((r) => this.readyOne(r)))).filter(Boolean).length;
    return ready >= (this.opts.minReady ?? defaultMinReady)(replicas.length);
  }

  async replicas(color: Color): Promise<ReplicaView[]> {
    return Promise.all(
      this.pools.replicas(color).map(async (r) => {
        const [h, ready] = await Promise.all([this.health(r), this.readyOne(r)]);
        return { address: replicaAddress(r), url: replicaUrl(r), model: h?.model ?? null, ready };
      }),
    );
  }

  /**
   * Puts every answering replica that serves another model than its color's current one back on it (a replica
   * restarted on its start-up bundle, a new pod). Nothing happens for a color no load has set yet.
   */
  async heal(): Promise<Array<{ color: Color; address: string; ok: boolean; error?: string }>> {
    const out: Array<{ color: Color; address: string; ok: boolean; error?: string }> = [];
    for (const color of COLORS) {
      if (!this.current[color]) continue;
      await this.locked(color, async () => {
        const want = this.current[color];
        if (!want) return;
        for (const r of this.pools.replicas(color)) {
          const h = await this.health(r);
          if (!h || h.model.sha256 === want.sha256 || (h.state !== null && h.state !== 'serving')) continue;
          const loaded = await this.loadOne(r, want.bundle);
          out.push({ color, address: replicaAddress(r), ok: loaded.ok, ...(loaded.ok ? {} : { error: loaded.error }) });
        }
      });
    }
    return out;
  }
}
