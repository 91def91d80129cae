/**
 * The embedded router as several worker processes on one port (node:cluster), like nginx's worker_processes:
 * one Node process tops out at one core. This is the primary's side, a TrafficDriver the router control
 * endpoint drives like a single embedded router. The primary owns the traffic state and the pools, sends the
 * whole of it to every worker on each change and resolves a change once every worker has acknowledged it (so
 * "in effect for new requests" holds across workers). A worker that dies is forked again and gets the current
 * state before it listens; the requests it had in flight are lost to their clients (a worker crash is a bug).
 * The primary accepts connections and hands them to the workers in turn (cluster's round-robin): with
 * keep-alive clients that costs it little, and the load spreads evenly where a shared accept queue would not.
 * Each worker runs its own active checks (a probe per replica per interval per worker: cheap, and a worker
 * needs no message to take a dead replica out) and its own passive marks; the health report merges them
 * (router-cluster-protocol.ts), and the metrics are the workers' summed when scraped.
 */
import cluster, { type Worker } from 'node:cluster';
import os from 'node:os';
import { AggregatorRegistry, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { initialState, validateMirror, validateSticky, validateWeights } from './policy.js';
import { validateUpstreams } from './pools.js';
import { mergeHealth, type FromWorker, type ToWorker, type WorkerConfig } from './router-cluster-protocol.js';
import type { HealthReport, MirrorConfig, StickyConfig, TrafficDriver, TrafficState, Upstreams, Weights } from './types.js';

/**
 * The default: two workers (nginx's two here) only where cores are to spare beside the stack's two instances.
 * Measured on 2 cores shared with the instances and the load generator, a second worker lowered throughput at
 * every concurrency (it competes for the same cores and adds a process; docs/benchmarks.md): one there.
 */
export function defaultRouterWorkers(): number {
  return os.availableParallelism() >= 4 ? 2 : 1;
}

export interface ClusterRouterOptions {
  host: string;
  port: number;
  workers: number;
  upstreams: Upstreams;
  initial?: Partial<Omit<TrafficState, 'generation'>>;
  previewToken?: string;
  /** Logged events (a worker died, was restarted). */
  log?: (line: string) => void;
}

/** How long a worker may take to start listening, and to apply a change. */
const READY_TIMEOUT_MS = 15_000;
const APPLY_TIMEOUT_MS = 10_000;
/** Health and metrics queries: a worker that does not answer in time is left out of that one answer. */
const QUERY_TIMEOUT_MS = 2_000;
/** A worker that dies this soon after it started is restarted only after this long: no crash loop at full speed. */
const RESTART_BACKOFF_MS = 1_000;

interface Slot {
  worker: Worker;
  startedAt: number;
  /** init sent: it gets every later change. */
  initialised: boolean;
  ready: boolean;
  health: HealthReport | null;
  onReady?: (error?: Error) => void;
}

type Answer = FromWorker | 'gone' | 'timeout';

interface Pending {
  slot: Slot;
  resolve: (a: Answer) => void;
  timer: NodeJS.Timeout;
}

/** The workers' metrics, summed (gauges as each declares: the weights alike in all, health the worst). */
class ClusterRegistry extends Registry {
  constructor(private readonly collect: () => Promise<MetricObjectWithValues<MetricValue<string>>[][]>) {
    super();
  }

  override async metrics(): Promise<string> {
    return AggregatorRegistry.aggregate(await this.collect()).metrics();
  }

  override async getMetricsAsJSON(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    return AggregatorRegistry.aggregate(await this.collect()).getMetricsAsJSON();
  }
}

export class ClusterRouter implements TrafficDriver {
  readonly kind = 'embedded' as const;
  readonly metrics: Registry;
  private current: TrafficState;
  private upstreams: Upstreams;
  private readonly slots = new Set<Slot>();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private queue: Promise<unknown> = Promise.resolve();
  private stopping = false;
  private merged: HealthReport | null = null;
  private started = false;
  /** The port the workers share (the one asked for, or the one port 0 picked). */
  private port: number;

  constructor(private readonly opts: ClusterRouterOptions) {
    if (!cluster.isPrimary) throw new Error('the router cluster is started from the primary process');
    this.current = initialState(opts.initial);
    this.upstreams = validateUpstreams(opts.upstreams);
    this.port = opts.port;
    this.metrics = new ClusterRegistry(async () => {
      const answers = await Promise.all(this.live().map((s) => this.ask(s, (id) => ({ type: 'metrics', id }), QUERY_TIMEOUT_MS)));
      return answers.flatMap((a) => (typeof a === 'object' && a.type === 'metrics' ? [a.metrics] : []));
    });
  }

  get url(): string {
    return `http://${this.opts.host}:${this.port}`;
  }

  /** The workers' PIDs. */
  workerPids(): number[] {
    return [...this.slots].map((s) => s.worker.process.pid ?? -1);
  }

  /** Forks the workers and resolves once every one listens. */
  async start(): Promise<this> {
    try {
      await Promise.all(Array.from({ length: this.opts.workers }, () => this.fork()));
    } catch (err) {
      await this.close();
      throw err;
    }
    this.started = true;
    this.mergeCached();
    return this;
  }

  state(): TrafficState {
    return structuredClone(this.current);
  }

  /** As merged at the last refreshHealth() (the control endpoint refreshes before it answers). */
  health(): HealthReport {
    if (this.merged === null) throw new Error('the router cluster has not started');
    return structuredClone(this.merged);
  }

  /** Asks every worker for its report now. */
  async refreshHealth(): Promise<void> {
    await Promise.all(
      this.live().map(async (s) => {
        const a = await this.ask(s, (id) => ({ type: 'health', id }), QUERY_TIMEOUT_MS);
        if (typeof a === 'object' && a.type === 'health') s.health = a.report;
      }),
    );
    this.mergeCached();
  }

  async setWeights(weights: Weights): Promise<TrafficState> {
    const valid = validateWeights(weights);
    return this.change(() => this.commit({ weights: valid }));
  }

  async setMirror(mirror: MirrorConfig): Promise<TrafficState> {
    const valid = validateMirror(mirror);
    return this.change(() => this.commit({ mirror: valid }));
  }

  async setSticky(sticky: StickyConfig | null): Promise<TrafficState> {
    const valid = validateSticky(sticky);
    return this.change(() => this.commit({ sticky: valid }));
  }

  async setUpstreams(upstreams: Upstreams): Promise<void> {
    const valid = validateUpstreams(upstreams);
    await this.change(() => {
      this.upstreams = valid;
    });
  }

  async close(): Promise<void> {
    this.stopping = true;
    await this.queue;
    await Promise.all(
      [...this.slots].map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.worker.isDead()) return resolve();
            const timer = setTimeout(() => s.worker.process.kill('SIGKILL'), 5_000);
            s.worker.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            this.post(s, { type: 'stop' });
          }),
      ),
    );
  }

  private config(): WorkerConfig {
    return { state: this.current, upstreams: this.upstreams, previewToken: this.opts.previewToken };
  }

  private commit(change: Partial<TrafficState>): void {
    this.current = { ...this.current, ...change, generation: this.current.generation + 1 };
  }

  /** Changes go one at a time; each is in the primary's state before it is sent, so a worker starting meanwhile gets it. */
  private change(mutate: () => void): Promise<TrafficState> {
    const job = async (): Promise<TrafficState> => {
      mutate();
      const config = this.config();
      const answers = await Promise.all(
        this.live().map(async (s) => [s, await this.ask(s, (id) => ({ type: 'apply', id, config }), APPLY_TIMEOUT_MS)] as const),
      );
      const failures = answers.flatMap(([s, a]) => {
        // A worker gone meanwhile is no failure: its replacement starts on this very state.
        if (a === 'gone') return [];
        if (a === 'timeout') return [`worker ${s.worker.process.pid} did not apply it within ${APPLY_TIMEOUT_MS} ms`];
        return a.type === 'ack' && a.error !== undefined ? [`worker ${s.worker.process.pid}: ${a.error}`] : [];
      });
      if (failures.length > 0) throw new Error(`the router workers did not all apply the change: ${failures.join('; ')}`);
      return this.state();
    };
    const result = this.queue.then(job, job);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Workers that have their configuration (starting ones included: they apply changes in order after it). */
  private live(): Slot[] {
    return [...this.slots].filter((s) => s.initialised && !s.worker.isDead());
  }

  private mergeCached(): void {
    const merged = mergeHealth([...this.slots].flatMap((s) => (s.health ? [s.health] : [])));
    if (merged !== null) this.merged = merged;
  }

  private post(s: Slot, m: ToWorker): void {
    if (s.worker.isConnected()) s.worker.send(m);
  }

  private ask(s: Slot, message: (id: number) => ToWorker, timeoutMs: number): Promise<Answer> {
    const id = this.nextId++;
    return new Promise<Answer>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve('timeout');
      }, timeoutMs);
      this.pending.set(id, { slot: s, resolve, timer });
      this.post(s, message(id));
    });
  }

  private fork(): Promise<void> {
    const worker = cluster.fork();
    const slot: Slot = { worker, startedAt: Date.now(), initialised: false, ready: false, health: null };
    this.slots.add(slot);
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`a router worker did not listen within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      const done = (error?: Error) => {
        clearTimeout(timer);
        slot.onReady = undefined;
        if (error) reject(error);
        else resolve();
      };
      slot.onReady = done;
    });
    worker.on('message', (m: FromWorker) => this.onMessage(slot, m));
    worker.on('exit', (code, signal) => this.onExit(slot, code, signal));
    // A message to a worker that just died fails with EPIPE / ERR_IPC_CHANNEL_CLOSED as an 'error' event: unheard,
    // it would take the primary (and the whole router) down with the worker. Its 'exit' does the cleaning up.
    worker.on('error', (err: Error) => this.opts.log?.(`worker ${worker.process.pid}: ${err.message}`));
    return ready;
  }

  private onMessage(s: Slot, m: FromWorker): void {
    switch (m.type) {
      case 'hello':
        s.initialised = true;
        this.post(s, { type: 'init', listen: { host: this.opts.host, port: this.port }, config: this.config() });
        return;
      case 'ready':
        s.ready = true;
        s.health = m.health;
        this.port = m.port;
        this.mergeCached();
        s.onReady?.();
        return;
      case 'failed':
        s.onReady?.(new Error(`a router worker could not start: ${m.error}`));
        return;
      default: {
        const p = this.pending.get(m.id);
        if (p === undefined) return;
        this.pending.delete(m.id);
        clearTimeout(p.timer);
        p.resolve(m);
      }
    }
  }

  private onExit(s: Slot, code: number | null, signal: string | null): void {
    this.slots.delete(s);
    for (const [id, p] of this.pending) {
      if (p.slot !== s) continue;
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.resolve('gone');
    }
    this.mergeCached();
    s.onReady?.(new Error(`a router worker exited before it listened (${signal ?? `code ${code}`})`));
    // While starting, the caller hears of it; later the router goes on with a new worker.
    if (this.stopping || !this.started) return;
    const delay = Date.now() - s.startedAt < RESTART_BACKOFF_MS ? RESTART_BACKOFF_MS : 0;
    this.opts.log?.(
      `worker ${s.worker.process.pid} exited (${signal ?? `code ${code}`}); starting another${delay ? ` in ${delay} ms` : ''}`,
    );
    setTimeout(() => {
      if (this.stopping) return;
      this.fork().catch((err: unknown) => this.opts.log?.(`a new worker failed: ${err instanceof Error ? err.message : String(err)}`));
    }, delay);
  }
}

/** Starts `workers` embedded routers on one port, driven as one. */
export function startClusterRouter(opts: ClusterRouterOptions): Promise<ClusterRouter> {
  return new ClusterRouter(opts).start();
}
