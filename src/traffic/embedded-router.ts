/**
 * The embedded router: an in-process reverse proxy that splits traffic by weight, spreads a color's share over
 * its replicas (least outstanding requests), routes the preview header to one color, replays a failed prediction
 * (connection error or 5xx answer) on another replica of the same color first and then on the other color, keeps
 * unhealthy replicas out of rotation, mirrors a share of requests and can pin keys to colors.
 * The preview route is private: the preview header is honoured only with the preview token, and what reaches an
 * instance carries SOURCE_HEADER (preview, mirror) set here only, so preview and shadow traffic never count as live.
 * It speaks HTTP/1.1 on raw sockets at both ends (http1/): node:http's and undici's per-request objects and
 * streams cost several times what the proxying does. Bodies are buffered (they are small, and a replay needs them).
 */
import type { AddressInfo, Server, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import {
  isColor,
  otherColor,
  PREVIEW_HEADER,
  PREVIEW_TOKEN_HEADER,
  SOURCE_HEADER,
  type Color,
  type TrafficSource,
} from '../config/defaults.js';
import { tokenMatches } from '../control/auth.js';
import {
  CLIENT_HEAD_TIMEOUT_MS,
  CLIENT_KEEP_ALIVE_MS,
  CONNECTIONS_PER_COLOR,
  MAX_BODY_BYTES,
  MAX_MIRROR_IN_FLIGHT,
  UPSTREAM_CONNECT_TIMEOUT_MS,
  UPSTREAM_KEEP_ALIVE_MS,
  UPSTREAM_TIMEOUT_MS,
} from './defaults.js';
import { ActiveHealthChecker, describeError, HealthTracker, type HealthOptions, type Replica } from './health.js';
import { createHttp1Server, type ClientAnswers, type ClientResponse, type InboundRequest } from './http1/client-connection.js';
import { headerValue, type ResponseHead } from './http1/head.js';
import { UPSTREAM_TIMEOUT, UpstreamPool, type UpstreamExchange, type UpstreamHandler } from './http1/upstream-pool.js';
import { RouterMetrics } from './metrics.js';
import { ensureRequestId } from './request-id.js';
import {
  BAD_REQUEST,
  badGateway,
  errorJson,
  EXPECTATION_FAILED,
  gatewayTimeout,
  HEADERS_TOO_LARGE,
  LINGER_BYTES,
  LINGER_MS,
  MAX_HEADER_BYTES,
  PAYLOAD_TOO_LARGE,
  PREVIEW_FORBIDDEN,
  PREVIEW_INVALID,
  REQUEST_TIMEOUT,
  type PublicError,
} from './public-errors.js';
import {
  initialState,
  isRetryStatus,
  isUnavailableStatus,
  ShareSampler,
  stickyColor,
  stickyKey,
  validateMirror,
  validateSticky,
  validateWeights,
  WeightedPicker,
} from './policy.js';
import { validateUpstreams } from './pools.js';
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
  /** Keep-alive connections per replica. */
  connectionsPerColor?: number;
  /** Mirrored requests in flight at most; beyond that a mirror copy is dropped (counted), never queued. */
  maxMirrorInFlight?: number;
  /** Upstream response-headers timeout. */
  upstreamTimeoutMs?: number;
  /**
   * The preview route's credential (`<state-dir>/preview-token`): PREVIEW_HEADER is honoured only with this in
   * PREVIEW_TOKEN_HEADER. Absent: preview is off (every preview request is refused).
   */
  previewToken?: string;
}

// Hop-by-hop headers (RFC 9110 7.6.1), the framing this router sets itself, and the ones only this router may
// set or read: a client must not label its requests as preview/mirror traffic, and the preview token stops here.
const REQUEST_SKIP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'content-length',
  'expect',
  SOURCE_HEADER,
  PREVIEW_TOKEN_HEADER,
]);

/** What the client side answers by itself, before a request reaches the routing. */
const CLIENT_ANSWERS: ClientAnswers = {
  bad: refusal(BAD_REQUEST),
  headTooLarge: refusal(HEADERS_TOO_LARGE),
  bodyTooLarge: refusal(PAYLOAD_TOO_LARGE),
  timeout: refusal(REQUEST_TIMEOUT),
  expectation: refusal(EXPECTATION_FAILED),
};

function refusal(e: PublicError): { status: number; json: string } {
  return { status: e.status, json: errorJson(e) };
}

/** One client request being proxied; the body is kept so a replay can send it again. */
interface Exchange {
  res: ClientResponse;
  out: Outbound;
}

/** A request as sent upstream: built once, reused by a replay. */
interface Outbound {
  /** The request line and headers, framing included. */
  head: string;
  body: Buffer | null;
  forHead: boolean;
}

/** What an attempt needs from its router. */
interface AttemptHost {
  m: RouterMetrics;
  tracker: HealthTracker;
  send(ex: Exchange, replica: Replica, replay: Replay): void;
  refuse(res: ClientResponse, e: PublicError): void;
}

/**
 * Where a failed attempt may be replayed: NONE (not replayable, or already replayed as far as allowed), SAME
 * (another replica of its color only: the preview route), ANY (another replica of its color, then the other
 * color), OTHER (only the other color: this attempt already is the same-color replay).
 */
const Replay = { NONE: 0, SAME: 1, ANY: 2, OTHER: 3 } as const;
type Replay = (typeof Replay)[keyof typeof Replay];

export class EmbeddedRouter implements TrafficDriver {
  readonly kind = 'embedded' as const;
  readonly metrics: Registry;
  private readonly m = new RouterMetrics();
  private readonly server: Server;
  private readonly sockets: Set<Socket>;
  /** Each replica's connection pool; the replica objects themselves live in the tracker. */
  private readonly pools = new Map<Replica, UpstreamPool>();
  /** Pools of replicas setUpstreams removed, finishing their requests in flight. */
  private readonly retiring = new Set<UpstreamPool>();
  private upstreamChange: Promise<void> = Promise.resolve();
  private readonly tracker: HealthTracker;
  private readonly checker: ActiveHealthChecker;
  private readonly picker: WeightedPicker;
  private readonly mirrorSampler = new ShareSampler(0);
  private current: TrafficState;
  private mirrorsInFlight = 0;
  private readonly maxMirrors: number;
  private listening: AddressInfo | null = null;
  /** host:port as clients reach it, for a request that came without a Host. */
  private hostHeader = '';
  private readonly host: AttemptHost;

  constructor(private readonly opts: EmbeddedRouterOptions) {
    this.metrics = this.m.registry;
    this.current = initialState(opts.initial);
    this.picker = new WeightedPicker(this.current.weights);
    this.mirrorSampler.set(this.current.mirror.percent);
    this.m.setWeights(this.current.weights);
    this.maxMirrors = opts.maxMirrorInFlight ?? MAX_MIRROR_IN_FLIGHT;
    this.tracker = new HealthTracker(validateUpstreams(opts.upstreams), {
      ...opts.health,
      onChange: (color, healthy) => this.m.setHealthy(color, healthy),
    });
    for (const r of this.tracker.all()) this.pools.set(r, this.newPool(r));
    this.checker = new ActiveHealthChecker(this.tracker, opts.health);
    this.host = {
      m: this.m,
      tracker: this.tracker,
      send: (ex, replica, replay) => this.send(ex, replica, replay),
      refuse: (res, e) => this.refuse(res, e),
    };
    const { server, sockets } = createHttp1Server(
      (req, res) => this.forward(req, res),
      {
        maxHeadBytes: MAX_HEADER_BYTES,
        maxBodyBytes: opts.maxBodyBytes ?? MAX_BODY_BYTES,
        idleMs: CLIENT_KEEP_ALIVE_MS,
        headTimeoutMs: CLIENT_HEAD_TIMEOUT_MS,
        lingerMs: LINGER_MS,
        lingerBytes: LINGER_BYTES,
      },
      CLIENT_ANSWERS,
      (status) => this.m.request('none', status),
    );
    this.server = server;
    this.sockets = sockets;
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
    this.hostHeader = `${this.opts.host}:${this.port}`;
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

  /**
   * New replicas are checked before they take requests (one not ready yet starts out of rotation); removed
   * ones take no new request and keep their connections until what they are answering is done.
   */
  async setUpstreams(upstreams: Upstreams): Promise<void> {
    const valid = validateUpstreams(upstreams);
    const change = this.upstreamChange.then(async () => {
      const { next, added, removed } = this.tracker.plan(valid);
      for (const r of added) this.pools.set(r, this.newPool(r));
      await this.checker.check(added);
      this.tracker.apply(next);
      for (const r of removed) {
        const pool = this.pools.get(r);
        this.pools.delete(r);
        if (!pool) continue;
        this.retiring.add(pool);
        void pool.close().finally(() => this.retiring.delete(pool));
      }
    });
    this.upstreamChange = change.catch(() => undefined);
    return change;
  }

  async close(): Promise<void> {
    await this.checker.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
    await Promise.all([...this.pools.values(), ...this.retiring].map((p) => p.destroy()));
  }

  private newPool(r: Replica): UpstreamPool {
    return new UpstreamPool(r.upstream.host, r.upstream.port, {
      connections: this.opts.connectionsPerColor ?? CONNECTIONS_PER_COLOR,
      connectTimeoutMs: UPSTREAM_CONNECT_TIMEOUT_MS,
      timeoutMs: this.opts.upstreamTimeoutMs ?? UPSTREAM_TIMEOUT_MS,
      keepAliveMs: UPSTREAM_KEEP_ALIVE_MS,
      maxHeadBytes: MAX_HEADER_BYTES,
    });
  }

  private commit(change: Partial<TrafficState>): TrafficState {
    this.current = { ...this.current, ...change, generation: this.current.generation + 1 };
    return this.state();
  }

  private forward(req: InboundRequest, res: ClientResponse): void {
    const { method, target } = req;
    const headers = forwardedHeaders(req, this.hostHeader);
    const preview = headerValue(req.headers, PREVIEW_HEADER);
    if (preview !== undefined && preview !== '') {
      const token = headerValue(req.headers, PREVIEW_TOKEN_HEADER);
      const allowed = this.opts.previewToken !== undefined && token !== undefined && tokenMatches(token, this.opts.previewToken);
      if (!allowed) return this.refuse(res, PREVIEW_FORBIDDEN);
      if (!isColor(preview)) return this.refuse(res, PREVIEW_INVALID);
      // The preview route reaches exactly that color: a smoke test must never be answered by the other one.
      headers.push(SOURCE_HEADER, 'preview' satisfies TrafficSource);
      const replica = this.tracker.pick(preview, null) ?? this.tracker.anyReplica(preview);
      if (replica === null) return this.refuse(res, badGateway(preview));
      this.send({ res, out: outbound(req, headers) }, replica, replayable(method, target) ? Replay.SAME : Replay.NONE);
      return;
    }
    const sticky = this.current.sticky;
    const key = sticky ? stickyKey(sticky, headerRecord(req.headers)) : undefined;
    const preferred = key !== undefined ? stickyColor(key, this.current.weights) : this.picker.next();
    // The preferred color unless none of its replicas is in rotation; with none anywhere, a replica of the
    // preferred color all the same (like nginx's `backup` server: an answer from the idle color beats an error).
    const other = otherColor(preferred);
    const t = this.tracker;
    const replica = t.pick(preferred, null) ?? t.pick(other, null) ?? t.anyReplica(preferred) ?? t.anyReplica(other);
    if (replica === null) return this.refuse(res, badGateway(preferred));
    this.maybeMirror(replica.color, req, headers);
    this.send({ res, out: outbound(req, headers) }, replica, replayable(method, target) ? Replay.ANY : Replay.NONE);
  }

  /**
   * One attempt on one replica. A replayable request that meets a connection error or a 5xx answer
   * (RETRY_STATUSES) goes again to another healthy replica of the same color, else to the other color (a
   * connection error: even an unhealthy one); otherwise the client gets the replica's real answer. Nothing has
   * been written to the client when a replay is decided.
   */
  private send(ex: Exchange, replica: Replica, replay: Replay): void {
    let target = replica;
    let pool = this.pools.get(target);
    if (pool === undefined) {
      // Removed by setUpstreams between a replay's choice and now: another of its color, if any.
      const again = this.tracker.pick(replica.color, null);
      pool = again === null ? undefined : this.pools.get(again);
      if (again === null || pool === undefined) return this.refuse(ex.res, badGateway(replica.color));
      target = again;
    }
    target.inFlight++;
    const attempt = new Attempt(this.host, ex, target, replay);
    attempt.upstream = pool.request(ex.out.head, ex.out.body, ex.out.forHead, attempt);
  }

  private refuse(res: ClientResponse, e: PublicError): void {
    this.m.request('none', e.status);
    res.json(e.status, errorJson(e));
  }

  /** `headers` are the live request's: a mirrored copy gets the request id it shares with them. */
  private maybeMirror(served: Color, req: InboundRequest, headers: string[]): void {
    const target = this.current.mirror.target;
    // A copy to the color that already answers this request would only double its load.
    if (target === null || target === served || !this.mirrorSampler.take()) return;
    const replica = this.tracker.pick(target, null) ?? this.tracker.anyReplica(target);
    const pool = replica && this.pools.get(replica);
    if (this.mirrorsInFlight >= this.maxMirrors || !replica || !pool) {
      this.m.mirror(target, 'dropped');
      return;
    }
    this.mirrorsInFlight++;
    ensureRequestId(headers);
    replica.inFlight++;
    let status = 0;
    const done = (outcome: 'ok' | 'error') => {
      this.mirrorsInFlight--;
      replica.inFlight--;
      this.m.mirror(target, outcome);
    };
    const { head, body, forHead } = outbound(req, [...headers, SOURCE_HEADER, 'mirror' satisfies TrafficSource]);
    pool.request(head, body, forHead, {
      onHead: (head) => {
        status = head.status;
      },
      onData: () => true,
      onEnd: () => done(status < 500 ? 'ok' : 'error'),
      onError: () => done('error'),
    });
  }
}

/**
 * The client's headers as forwarded: without the hop-by-hop and router-only ones, with X-Forwarded-For, and with
 * a Host (the router's own address) when an HTTP/1.0 client sent none: the request goes on as HTTP/1.1, which
 * needs one.
 */
function forwardedHeaders(req: InboundRequest, self: string): string[] {
  const raw = req.headers;
  const out: string[] = [];
  let forwardedFor: string | undefined;
  let host = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (REQUEST_SKIP.has(name)) continue;
    if (name === 'host') host = true;
    if (name === 'x-forwarded-for') {
      forwardedFor = forwardedFor === undefined ? raw[i + 1] : `${forwardedFor}, ${raw[i + 1]}`;
      continue;
    }
    out.push(name, raw[i + 1]);
  }
  out.push('x-forwarded-for', forwardedFor ? `${forwardedFor}, ${req.remoteAddress}` : req.remoteAddress);
  if (!host) out.push('host', self);
  return out;
}

function outbound(req: InboundRequest, headers: string[]): Outbound {
  const { method, body } = req;
  const bodyless = body.length === 0 && (method === 'GET' || method === 'HEAD');
  return { head: requestHead(req, headers, bodyless), body: bodyless ? null : body, forHead: method === 'HEAD' };
}

/** The request line and headers as sent upstream, always HTTP/1.1 (the upstream connection is kept alive). */
function requestHead(req: InboundRequest, headers: string[], bodyless: boolean): string {
  let wire = `${req.method} ${req.target} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) wire += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return wire + (bodyless ? '\r\n' : `content-length: ${req.body.length}\r\n\r\n`);
}

/** As node:http gives headers: the first of each name, cookies joined. Built only for sticky routing. */
function headerRecord(headers: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    if (out[name] === undefined) out[name] = headers[i + 1];
    else if (name === 'cookie') out[name] += `; ${headers[i + 1]}`;
  }
  return out;
}

/** Predictions and reads have no side effects; anything else (say, an admin call) is never replayed. */
function replayable(method: string, path: string): boolean {
  return method === 'GET' || method === 'HEAD' || path.startsWith('/predict');
}

/** One attempt on one replica: the upstream pool's handler, one object rather than a closure per callback. */
class Attempt implements UpstreamHandler {
  upstream: UpstreamExchange | null = null;
  private readonly started = performance.now();
  private replay = false;
  private wroteHead = false;
  /** The client left: the upstream answer is dropped, and its end is no fault of the replica. */
  private clientGone = false;
  /** Where the replay goes, decided on a 5xx answer and sent once that answer is drained. */
  private next: Replica | null = null;
  private readonly resume = () => this.upstream?.resume();

  constructor(
    private readonly host: AttemptHost,
    private readonly ex: Exchange,
    private readonly replica: Replica,
    private readonly replayTo: Replay,
  ) {}

  onHead(head: ResponseHead): void {
    const { host, replica } = this;
    const statusCode = head.status;
    host.m.upstreamSeconds(replica.color, (performance.now() - this.started) / 1000);
    if (statusCode >= 500) {
      if (isUnavailableStatus(statusCode)) host.tracker.markFailure(replica, `upstream answered ${statusCode}`);
      if (this.replayTo !== Replay.NONE && isRetryStatus(statusCode)) {
        this.next = this.replayTarget(false);
        if (this.next !== null) {
          this.replay = true;
          return;
        }
      }
    }
    host.m.request(replica.color, statusCode);
    this.ex.res.head(head);
    this.wroteHead = true;
  }

  onData(chunk: Buffer): boolean {
    const { res } = this.ex;
    if (this.replay || res.write(chunk)) return true;
    if (res.gone) {
      // The client left: the upstream connection is closed rather than read to the end for nobody.
      this.clientGone = true;
      this.upstream?.abort();
      this.replica.inFlight--;
      return false;
    }
    res.onDrain(this.resume);
    return false;
  }

  onEnd(): void {
    this.replica.inFlight--;
    if (this.replay && this.next !== null) this.retry(this.next);
    else this.ex.res.end();
  }

  onError(err: Error): void {
    const { host, replica, ex } = this;
    replica.inFlight--;
    if (this.clientGone) return;
    if (!this.replay) host.tracker.markFailure(replica, describeError(err));
    const next = this.wroteHead ? null : (this.next ?? this.replayTarget(true));
    if (this.wroteHead) ex.res.destroy();
    else if (next !== null) this.retry(next);
    else host.refuse(ex.res, isTimeout(err) ? gatewayTimeout(replica.color) : badGateway(replica.color));
  }

  /**
   * Another healthy replica of this color first, then a healthy one of the other color; after a connection
   * error (`anyOther`), an unhealthy one of the other color too: it may answer where this one could not.
   */
  private replayTarget(anyOther: boolean): Replica | null {
    const { tracker } = this.host;
    const { replica, replayTo } = this;
    if (replayTo === Replay.NONE) return null;
    if (replayTo === Replay.SAME || replayTo === Replay.ANY) {
      const same = tracker.pick(replica.color, replica);
      if (same !== null || replayTo === Replay.SAME) return same;
    }
    const other = otherColor(replica.color);
    return tracker.pick(other, null) ?? (anyOther ? tracker.anyReplica(other) : null);
  }

  private retry(next: Replica): void {
    this.host.m.retry(this.replica.color, next.color);
    const sameColor = next.color === this.replica.color;
    this.host.send(this.ex, next, sameColor && this.replayTo === Replay.ANY ? Replay.OTHER : Replay.NONE);
  }
}

function isTimeout(err: Error): boolean {
  return (err as NodeJS.ErrnoException).code === UPSTREAM_TIMEOUT;
}

/** Starts an embedded router listening on opts.host:opts.port. */
export async function startEmbeddedRouter(opts: EmbeddedRouterOptions): Promise<EmbeddedRouter> {
  return new EmbeddedRouter(opts).listen();
}
