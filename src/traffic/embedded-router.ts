/**
 * The embedded router: an in-process reverse proxy (node:http in front, undici pools behind) that splits
 * traffic by weight, routes the preview header to one color, retries a failed prediction once on the other
 * color, keeps unhealthy colors out of rotation, mirrors a share of requests and can pin keys to colors.
 * The hot path is deliberately plain: no framework, cached metric children, bodies buffered (they are small).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream';
import type { Registry } from 'prom-client';
import { Pool, type Dispatcher } from 'undici';
import { isColor, otherColor, PREVIEW_HEADER, type Color } from '../config/defaults.js';
import { ActiveHealthChecker, describeError, HealthTracker, type HealthOptions } from './health.js';
import { RouterMetrics } from './metrics.js';
import {
  initialState,
  routeAround,
  ShareSampler,
  stickyColor,
  stickyKey,
  validateMirror,
  validateSticky,
  validateWeights,
  WeightedPicker,
} from './policy.js';
import type { HealthReport, MirrorConfig, StickyConfig, TrafficDriver, TrafficState, Upstreams, Weights } from './types.js';

export interface EmbeddedRouterOptions {
  host: string;
  /** 0 picks a free port; read the chosen one from `router.port`. */
  port: number;
  upstreams: Upstreams;
  initial?: Partial<Omit<TrafficState, 'generation'>>;
  health?: HealthOptions;
  /** Largest request body forwarded; larger ones get 413 from the router. */
  maxBodyBytes?: number;
  /** Keep-alive connections per color. */
  connectionsPerColor?: number;
  /** Mirrored requests in flight at most; beyond that a mirror copy is dropped (counted), never queued. */
  maxMirrorInFlight?: number;
  /** Upstream response-headers timeout. */
  upstreamTimeoutMs?: number;
}

// Hop-by-hop headers (RFC 9110 7.6.1) and those undici computes itself.
const REQUEST_SKIP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'content-length', 'expect']);
const RESPONSE_SKIP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'trailer']);
const EMPTY = Buffer.alloc(0);

interface Outcome {
  color: Color;
  response?: Dispatcher.ResponseData;
  error?: string;
}

export class EmbeddedRouter implements TrafficDriver {
  readonly kind = 'embedded' as const;
  readonly metrics: Registry;
  private readonly m = new RouterMetrics();
  private readonly server: http.Server;
  private readonly pools: Record<Color, Pool>;
  private readonly tracker: HealthTracker;
  private readonly checker: ActiveHealthChecker;
  private readonly picker: WeightedPicker;
  private readonly mirrorSampler = new ShareSampler(0);
  private current: TrafficState;
  private mirrorsInFlight = 0;
  private readonly maxBody: number;
  private readonly maxMirrors: number;
  private listening: AddressInfo | null = null;

  constructor(private readonly opts: EmbeddedRouterOptions) {
    this.metrics = this.m.registry;
    const base = initialState();
    this.current = {
      weights: opts.initial?.weights ? validateWeights(opts.initial.weights) : base.weights,
      mirror: opts.initial?.mirror ? validateMirror(opts.initial.mirror) : base.mirror,
      sticky: validateSticky(opts.initial?.sticky ?? null),
      generation: base.generation,
    };
    this.picker = new WeightedPicker(this.current.weights);
    this.mirrorSampler.set(this.current.mirror.percent);
    this.m.setWeights(this.current.weights);
    this.maxBody = opts.maxBodyBytes ?? 1024 * 1024;
    this.maxMirrors = opts.maxMirrorInFlight ?? 64;
    const timeout = opts.upstreamTimeoutMs ?? 30_000;
    const pool = (color: Color) =>
      new Pool(`http://${opts.upstreams[color].host}:${opts.upstreams[color].port}`, {
        connections: opts.connectionsPerColor ?? 128,
        connectTimeout: 1_000,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        keepAliveTimeout: 10_000,
      });
    this.pools = { blue: pool('blue'), green: pool('green') };
    this.tracker = new HealthTracker({ ...opts.health, onChange: (color, healthy) => this.m.setHealthy(color, healthy) });
    this.checker = new ActiveHealthChecker(opts.upstreams, this.tracker, opts.health);
    this.server = http.createServer((req, res) => this.onRequest(req, res));
    this.server.keepAliveTimeout = 65_000;
  }

  get url(): string {
    return `http://${this.opts.host}:${this.port}`;
  }

  get port(): number {
    return this.listening?.port ?? this.opts.port;
  }

  async listen(): Promise<this> {
    await this.checker.start();
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.listening = this.server.address() as AddressInfo;
    return this;
  }

  state(): TrafficState {
    return structuredClone(this.current);
  }

  health(): HealthReport {
    return this.tracker.report();
  }

  async setWeights(weights: Weights): Promise<TrafficState> {
    const valid = validateWeights(weights);
    this.picker.set(valid);
    this.m.setWeights(valid);
    return this.commit({ weights: valid });
  }

  async setMirror(mirror: MirrorConfig): Promise<TrafficState> {
    const valid = validateMirror(mirror);
    this.mirrorSampler.set(valid.percent);
    return this.commit({ mirror: valid });
  }

  async setSticky(sticky: StickyConfig | null): Promise<TrafficState> {
    return this.commit({ sticky: validateSticky(sticky) });
  }

  async close(): Promise<void> {
    await this.checker.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    await Promise.all([this.pools.blue.destroy(), this.pools.green.destroy()]);
  }

  private commit(change: Partial<TrafficState>): TrafficState {
    this.current = { ...this.current, ...change, generation: this.current.generation + 1 };
    return this.state();
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > this.maxBody) {
        tooLarge = true;
        sendJson(res, 413, { error: 'payload_too_large', message: `request body exceeds ${this.maxBody} bytes` });
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (tooLarge) return;
      const body = chunks.length === 0 ? EMPTY : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
      this.forward(req, res, body).catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 502, { error: 'bad_gateway', message: describeError(err) });
        else res.destroy();
      });
    });
    req.on('error', () => res.destroy());
  }

  private async forward(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<void> {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const headers = forwardedHeaders(req);
    const payload = body.length === 0 && (method === 'GET' || method === 'HEAD') ? null : body;
    const preview = req.headers[PREVIEW_HEADER];

    let color: Color;
    let retryable: boolean;
    if (isColor(preview)) {
      // The preview route reaches exactly that color: a smoke test must never be answered by the other one.
      color = preview;
      retryable = false;
    } else {
      const sticky = this.current.sticky;
      const key = sticky ? stickyKey(sticky, req.headers) : undefined;
      const preferred = key !== undefined ? stickyColor(key, this.current.weights) : this.picker.next();
      color = routeAround(preferred, (c) => this.tracker.isHealthy(c));
      // Predictions and reads have no side effects; anything else (say, an admin call) is never replayed.
      retryable = method === 'GET' || method === 'HEAD' || path.startsWith('/predict');
      this.maybeMirror(color, method, path, headers, payload);
    }

    let outcome = await this.attempt(color, method, path, headers, payload);
    if (retryable && failed(outcome)) {
      const other = otherColor(color);
      this.m.retry(color, other);
      if (outcome.response) await outcome.response.body.dump();
      outcome = await this.attempt(other, method, path, headers, payload);
    }
    this.respond(res, outcome);
  }

  private async attempt(
    color: Color,
    method: string,
    path: string,
    headers: string[],
    body: Buffer | null,
  ): Promise<Outcome> {
    const started = performance.now();
    try {
      const response = await this.pools[color].request({ method: method as Dispatcher.HttpMethod, path, headers, body });
      this.m.upstreamSeconds(color, (performance.now() - started) / 1000);
      if (response.statusCode === 502 || response.statusCode === 503) {
        this.tracker.markFailure(color, `upstream answered ${response.statusCode}`);
      }
      return { color, response };
    } catch (err) {
      const error = describeError(err);
      this.tracker.markFailure(color, error);
      return { color, error };
    }
  }

  private respond(res: http.ServerResponse, outcome: Outcome): void {
    const { response } = outcome;
    if (!response) {
      this.m.request('none', 502);
      sendJson(res, 502, { error: 'bad_gateway', message: `no answer from ${outcome.color}: ${outcome.error}` });
      return;
    }
    this.m.request(outcome.color, response.statusCode);
    const out: http.OutgoingHttpHeaders = {};
    for (const name in response.headers) {
      if (!RESPONSE_SKIP.has(name)) out[name] = response.headers[name];
    }
    res.writeHead(response.statusCode, out);
    pipeline(response.body, res, () => undefined);
  }

  private maybeMirror(served: Color, method: string, path: string, headers: string[], body: Buffer | null): void {
    const target = this.current.mirror.target;
    // A copy to the color that already answers this request would only double its load.
    if (target === null || target === served || !this.mirrorSampler.take()) return;
    if (this.mirrorsInFlight >= this.maxMirrors) {
      this.m.mirror(target, 'dropped');
      return;
    }
    this.mirrorsInFlight++;
    this.pools[target]
      .request({ method: method as Dispatcher.HttpMethod, path, headers: [...headers, 'x-bgserve-mirror', '1'], body })
      .then(async (r) => {
        await r.body.dump();
        this.m.mirror(target, r.statusCode < 500 ? 'ok' : 'error');
      })
      .catch(() => this.m.mirror(target, 'error'))
      .finally(() => this.mirrorsInFlight--);
  }
}

function failed(outcome: Outcome): boolean {
  return outcome.response === undefined || outcome.response.statusCode === 502 || outcome.response.statusCode === 503;
}

function forwardedHeaders(req: http.IncomingMessage): string[] {
  const raw = req.rawHeaders;
  const out: string[] = [];
  let forwardedFor: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (REQUEST_SKIP.has(name)) continue;
    if (name === 'x-forwarded-for') {
      forwardedFor = raw[i + 1];
      continue;
    }
    out.push(name, raw[i + 1]);
  }
  const remote = req.socket.remoteAddress ?? '';
  out.push('x-forwarded-for', forwardedFor ? `${forwardedFor}, ${remote}` : remote);
  return out;
}

function sendJson(res: http.ServerResponse, status: number, body: { error: string; message: string }): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Starts an embedded router listening on opts.host:opts.port. */
export async function startEmbeddedRouter(opts: EmbeddedRouterOptions): Promise<EmbeddedRouter> {
  return new EmbeddedRouter(opts).listen();
}
