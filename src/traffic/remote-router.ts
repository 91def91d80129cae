/**
 * TrafficDriver for an embedded router running in a process of its own (router-control.ts): every change is
 * a request to its control endpoint and resolves once the router has applied it (the embedded router applies
 * a change on its next request). state() and health() must answer synchronously, so they come from a snapshot
 * refreshed every `refreshMs` and after each change: the router changes only when this driver asks, so the
 * state is never stale; the health report is at most `refreshMs` older than the router's own.
 */
import { Registry } from 'prom-client';
import { Agent, request } from 'undici';
import { validateMirror, validateSticky, validateWeights, TrafficInputError } from './policy.js';
import { validateUpstreams } from './pools.js';
import { ROUTER_CONTROL_PATH, type RouterSnapshot } from './router-control.js';
import type { DriverKind, HealthReport, MirrorConfig, StickyConfig, TrafficDriver, TrafficState, Upstreams, Weights } from './types.js';

export interface RemoteRouterOptions {
  /** The kind of router the process runs (default: embedded). */
  kind?: DriverKind;
  /** Where clients send requests (the router's public address). */
  url: string;
  /** The router's control endpoint, e.g. http://127.0.0.1:40123. */
  controlUrl: string;
  token: string;
  refreshMs?: number;
  /** Called by close(): stops the router process when this stack owns it. */
  onClose?: () => Promise<void>;
}

/** The router process's metrics, read through its control endpoint when /metrics is scraped. */
class RemoteRegistry extends Registry {
  constructor(private readonly fetchText: () => Promise<string>) {
    super();
  }

  override async metrics(): Promise<string> {
    // A router that does not answer has no metrics to show; the control API's /metrics keeps its own.
    return this.fetchText().catch(() => '');
  }
}

export class RemoteRouter implements TrafficDriver {
  readonly kind: DriverKind;
  readonly url: string;
  readonly metrics: Registry;
  private snapshot!: RouterSnapshot;
  private timer: NodeJS.Timeout | undefined;
  private readonly agent = new Agent({ connections: 4, keepAliveTimeout: 10_000 });
  /** Changes go one at a time, in call order, so the cached state is the last one applied. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(private readonly opts: RemoteRouterOptions) {
    this.kind = opts.kind ?? 'embedded';
    this.url = opts.url;
    this.metrics = new RemoteRegistry(async () => {
      const res = await this.call('GET', '/metrics');
      return res.body.text();
    });
  }

  /** Reads the router's snapshot (fails if it does not answer with this token) and keeps it fresh. */
  static async connect(opts: RemoteRouterOptions): Promise<RemoteRouter> {
    const router = new RemoteRouter(opts);
    try {
      router.snapshot = await router.fetchSnapshot();
    } catch (err) {
      await router.agent.close();
      throw err;
    }
    router.timer = setInterval(() => void router.refresh(), opts.refreshMs ?? 250);
    router.timer.unref();
    return router;
  }

  /** The router process's PID (as it reports it). */
  get pid(): number {
    return this.snapshot.pid;
  }

  state(): TrafficState {
    return structuredClone(this.snapshot.state);
  }

  health(): HealthReport {
    return structuredClone(this.snapshot.health);
  }

  async setWeights(weights: Weights): Promise<TrafficState> {
    return this.change('weights', validateWeights(weights));
  }

  async setMirror(mirror: MirrorConfig): Promise<TrafficState> {
    return this.change('mirror', validateMirror(mirror));
  }

  async setSticky(sticky: StickyConfig | null): Promise<TrafficState> {
    return this.change('sticky', { sticky: validateSticky(sticky) });
  }

  async setUpstreams(upstreams: Upstreams): Promise<void> {
    await this.change('upstreams', validateUpstreams(upstreams));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.queue;
    await this.agent.close();
    await this.opts.onClose?.();
  }

  private change(what: 'weights' | 'mirror' | 'sticky' | 'upstreams', body: unknown): Promise<TrafficState> {
    const job = async () => {
      const res = await this.call('PUT', `${ROUTER_CONTROL_PATH}/${what}`, body);
      const answer = (await res.body.json()) as RouterSnapshot & { error?: string; message?: string; details?: Record<string, string> };
      if (res.statusCode === 422)
        throw new TrafficInputError(answer.error ?? 'invalid', answer.message ?? 'refused by the router', answer.details);
      if (res.statusCode !== 200) throw new Error(`the router refused the ${what} change: ${res.statusCode} ${answer.message ?? ''}`);
      this.snapshot = answer;
      return this.state();
    };
    const result = this.queue.then(job, job);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async refresh(): Promise<void> {
    try {
      const next = await this.fetchSnapshot();
      // A change applied meanwhile may be newer than this read: the higher generation wins.
      if (next.state.generation >= this.snapshot.state.generation) this.snapshot = next;
      else this.snapshot = { ...this.snapshot, health: next.health };
    } catch {
      // The router process is gone or busy: its clients see that directly; the last snapshot stays.
    }
  }

  private async fetchSnapshot(): Promise<RouterSnapshot> {
    const res = await this.call('GET', ROUTER_CONTROL_PATH);
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new Error(`router control at ${this.opts.controlUrl} answered ${res.statusCode}`);
    }
    return (await res.body.json()) as RouterSnapshot;
  }

  private call(method: 'GET' | 'PUT', route: string, body?: unknown) {
    return request(`${this.opts.controlUrl}${route}`, {
      method,
      dispatcher: this.agent,
      headers: { authorization: `Bearer ${this.opts.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      headersTimeout: 5_000,
      bodyTimeout: 5_000,
    });
  }
}
