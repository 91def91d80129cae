/**
 * The embedded router: an in-process reverse proxy (node:http in front, undici pools behind) that splits
 * traffic by weight, spreads a color's share over its replicas (least outstanding requests), routes the preview
 * header to one color, replays a failed prediction (connection error or 5xx answer) on another replica of the
 * same color first and then on the other color, keeps unhealthy replicas out of rotation, mirrors a share of
 * requests and can pin keys to colors.
 * The preview route is private: the preview header is honoured only with the preview token, and what reaches an
 * instance carries SOURCE_HEADER (preview, mirror) set here only, so preview and shadow traffic never count as live.
 * The hot path is deliberately plain: no framework, one handler object per attempt, metrics in plain numbers,
 * bodies buffered (they are small, and a replay needs them).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import { Pool, type Dispatcher } from 'undici';
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
  CLIENT_KEEP_ALIVE_MS,
  CONNECTIONS_PER_COLOR,
  MAX_BODY_BYTES,
  MAX_MIRROR_IN_FLIGHT,
  UPSTREAM_CONNECT_TIMEOUT_MS,
  UPSTREAM_KEEP_ALIVE_MS,
  UPSTREAM_TIMEOUT_MS,
} from './defaults.js';
import { ActiveHealthChecker, describeError, HealthTracker, type HealthOptions, type Replica } from './health.js';
import { RouterMetrics } from './metrics.js';
import { ensureRequestId } from './request-id.js';
import {
  BAD_REQUEST,
  badGateway,
  errorJson,
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

// Hop-by-hop headers (RFC 9110 7.6.1), those undici computes itself, and the ones only this router may set or
// read: a client must not label its requests as preview/mirror traffic, and the preview token stops here.
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
const RESPONSE_SKIP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'trailer']);
const EMPTY = Buffer.alloc(0);

/** One client request being proxied; the body is buffered so a retry can send it again. */
interface Exchange {
  res: http.ServerResponse;
  /** What undici sends, built once and reused by a replay. */
  request: Dispatcher.DispatchOptions & { headers: string[] };
}

/** What an attempt needs from its router. */
interface AttemptHost {
  m: RouterMetrics;
  tracker: HealthTracker;
  send(ex: Exchange, replica: Replica, replay: Replay): void;
  refuse(res: http.ServerResponse, e: PublicError): void;
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
  private readonly server: http.Server;
  /** Each replica's connection pool; the replica objects themselves live in the tracker. */
  private readonly pools = new Map<Replica, Pool>();
  /** Pools of replicas setUpstreams removed, finishing their requests in flight. */
  private readonly retiring = new Set<Pool>();
  private upstreamChange: Promise<void> = Promise.resolve();
  private readonly tracker: HealthTracker;
  private readonly checker: ActiveHealthChecker;
  private readonly picker: WeightedPicker;
  private readonly mirrorSampler = new ShareSampler(0);
  private current: TrafficState;
  private mirrorsInFlight = 0;
  private readonly maxBody: number;
  private readonly maxMirrors: number;
  private listening: AddressInfo | null = null;
  private readonly host: AttemptHost;

  constructor(private readonly opts: EmbeddedRouterOptions) {
    this.metrics = this.m.registry;
    this.current = initialState(opts.initial);
    this.picker = new WeightedPicker(this.current.weights);
    this.mirrorSampler.set(this.current.mirror.percent);
    this.m.setWeights(this.current.weights);
    this.maxBody = opts.maxBodyBytes ?? MAX_BODY_BYTES;
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
    this.server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => this.onRequest(req, res));
    this.server.keepAliveTimeout = CLIENT_KEEP_ALIVE_MS;
    // Without this, node answers 100 Continue to any body, however large, before the limit can be checked.
    this.server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (this.declaredTooLarge(req)) this.refuseBody(req, res, 0);
      else {
        res.writeContinue();
        this.onRequest(req, res);
      }
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => answerClientError(err, socket));
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
        void pool
          .close()
          .catch(() => undefined)
          .finally(() => this.retiring.delete(pool));
      }
    });
    this.upstreamChange = change.catch(() => undefined);
    return change;
  }

  async close(): Promise<void> {
    await this.checker.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    await Promise.all([...this.pools.values(), ...this.retiring].map((p) => p.destroy()));
  }

  private newPool(r: Replica): Pool {
    const timeout = this.opts.upstreamTimeoutMs ?? UPSTREAM_TIMEOUT_MS;
    return new Pool(`http://${r.address}`, {
      connections: this.opts.connectionsPerColor ?? CONNECTIONS_PER_COLOR,
      connectTimeout: UPSTREAM_CONNECT_TIMEOUT_MS,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      keepAliveTimeout: UPSTREAM_KEEP_ALIVE_MS,
    });
  }

  private commit(change: Partial<TrafficState>): TrafficState {
    this.current = { ...this.current, ...change, generation: this.current.generation + 1 };
    return this.state();
  }

  private declaredTooLarge(req: http.IncomingMessage): boolean {
    const declared = Number(req.headers['content-length']);
    return Number.isFinite(declared) && declared > this.maxBody;
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.on('error', () => res.destroy());
    if (this.declaredTooLarge(req)) {
      this.refuseBody(req, res, 0);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > this.maxBody) {
        req.off('data', onData);
        req.off('end', onEnd);
        chunks.length = 0;
        this.refuseBody(req, res, size);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      const body = chunks.length === 0 ? EMPTY : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
      this.forward(req, res, body);
    };
    req.on('data', onData);
    req.on('end', onEnd);
  }

  /**
   * 413 with a lingering close: the answer is written at once, but the response (and so the connection) ends
   * only once the client has sent the rest of its body, read and dropped here within LINGER_MS / LINGER_BYTES.
   * Closing with unread data would make the kernel reset the connection, and a client still writing would see
   * EPIPE or ECONNRESET instead of the 413.
   */
  private refuseBody(req: http.IncomingMessage, res: http.ServerResponse, alreadyRead: number): void {
    this.m.request('none', PAYLOAD_TOO_LARGE.status);
    const text = errorJson(PAYLOAD_TOO_LARGE);
    res.writeHead(PAYLOAD_TOO_LARGE.status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text), connection: 'close' });
    res.write(text);
    let discarded = alreadyRead;
    let done = false;
    const finish = (cut: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.off('data', onData);
      res.end();
      if (cut) req.socket.destroy();
    };
    const onData = (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > LINGER_BYTES) finish(true);
    };
    const timer = setTimeout(() => finish(true), LINGER_MS);
    req.on('data', onData);
    req.once('end', () => finish(false));
    req.once('close', () => finish(false));
    req.resume();
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
    const method = (req.method ?? 'GET') as Dispatcher.HttpMethod;
    const path = req.url ?? '/';
    const ex: Exchange = {
      res,
      request: {
        method,
        path,
        headers: forwardedHeaders(req),
        body: body.length === 0 && (method === 'GET' || method === 'HEAD') ? null : body,
      },
    };
    const preview = req.headers[PREVIEW_HEADER];
    if (preview !== undefined && preview !== '') {
      const token = req.headers[PREVIEW_TOKEN_HEADER];
      const allowed = this.opts.previewToken !== undefined && typeof token === 'string' && tokenMatches(token, this.opts.previewToken);
      if (!allowed) return this.refuse(res, PREVIEW_FORBIDDEN);
      if (!isColor(preview)) return this.refuse(res, PREVIEW_INVALID);
      // The preview route reaches exactly that color: a smoke test must never be answered by the other one.
      labelSource(ex, 'preview');
      const replica = this.tracker.pick(preview, null) ?? this.tracker.anyReplica(preview);
      if (replica === null) return this.refuse(res, badGateway(preview));
      this.send(ex, replica, replayable(method, path) ? Replay.SAME : Replay.NONE);
      return;
    }
    const sticky = this.current.sticky;
    const key = sticky ? stickyKey(sticky, req.headers) : undefined;
    const preferred = key !== undefined ? stickyColor(key, this.current.weights) : this.picker.next();
    // The preferred color unless none of its replicas is in rotation; with none anywhere, a replica of the
    // preferred color all the same (like nginx's `backup` server: an answer from the idle color beats an error).
    const other = otherColor(preferred);
    const t = this.tracker;
    const replica = t.pick(preferred, null) ?? t.pick(other, null) ?? t.anyReplica(preferred) ?? t.anyReplica(other);
    if (replica === null) return this.refuse(res, badGateway(preferred));
    this.maybeMirror(replica.color, ex);
    this.send(ex, replica, replayable(method, path) ? Replay.ANY : Replay.NONE);
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
    pool.dispatch(ex.request, new Attempt(this.host, ex, target, replay));
  }

  private refuse(res: http.ServerResponse, e: PublicError): void {
    this.m.request('none', e.status);
    sendJson(res, e);
  }

  private maybeMirror(served: Color, ex: Exchange): void {
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
    ensureRequestId(ex.request.headers);
    replica.inFlight++;
    let status = 0;
    const done = (outcome: 'ok' | 'error') => {
      this.mirrorsInFlight--;
      replica.inFlight--;
      this.m.mirror(target, outcome);
    };
    pool.dispatch(
      { ...ex.request, headers: [...ex.request.headers, SOURCE_HEADER, 'mirror' satisfies TrafficSource] },
      {
        onRequestStart: () => undefined,
        onResponseStart: (_c, statusCode) => {
          status = statusCode;
        },
        onResponseData: () => undefined,
        onResponseEnd: () => done(status < 500 ? 'ok' : 'error'),
        onResponseError: () => done('error'),
      },
    );
  }
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

const JSON_TYPE = 'application/json; charset=utf-8';

/** Predictions and reads have no side effects; anything else (say, an admin call) is never replayed. */
function replayable(method: string, path: string): boolean {
  return method === 'GET' || method === 'HEAD' || path.startsWith('/predict');
}

function labelSource(ex: Exchange, source: Exclude<TrafficSource, 'live'>): void {
  ex.request.headers.push(SOURCE_HEADER, source);
}

/**
 * One attempt on one replica, written against undici's own handler interface (onHeaders/onData/onComplete): a
 * handler in the newer controller style is wrapped by undici 7 in an adapter that also parses every answer's
 * headers into an object. Here the raw headers go straight into the client's answer, and the attempt is one
 * object rather than a closure per callback.
 */
class Attempt implements Dispatcher.DispatchHandler {
  private readonly started = performance.now();
  private replay = false;
  private wroteHead = false;
  private resume: (() => void) | null = null;
  private abort: ((err?: Error) => void) | null = null;
  /** The client left: the upstream answer is dropped, and its end is no fault of the replica. */
  private clientGone = false;
  /** Where the replay goes, decided on a 5xx answer and sent once that answer is drained. */
  private next: Replica | null = null;

  constructor(
    private readonly host: AttemptHost,
    private readonly ex: Exchange,
    private readonly replica: Replica,
    private readonly replayTo: Replay,
  ) {}

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    const { host, replica } = this;
    host.m.upstreamSeconds(replica.color, (performance.now() - this.started) / 1000);
    if (statusCode >= 500) {
      if (isUnavailableStatus(statusCode)) host.tracker.markFailure(replica, `upstream answered ${statusCode}`);
      if (this.replayTo !== Replay.NONE && isRetryStatus(statusCode)) {
        this.next = this.replayTarget(false);
        if (this.next !== null) {
          this.replay = true;
          return true;
        }
      }
    }
    host.m.request(replica.color, statusCode);
    this.resume = resume;
    this.ex.res.writeHead(statusCode, responseHeaders(rawHeaders));
    this.wroteHead = true;
    return true;
  }

  onData(chunk: Buffer): boolean {
    const { res } = this.ex;
    if (this.replay || res.write(chunk)) return true;
    if (res.destroyed) {
      // No 'drain' will come: a paused upstream connection would be lost to the pool for good.
      this.clientGone = true;
      this.abort?.(new Error('client closed the connection'));
      return false;
    }
    const resume = this.resume;
    if (resume) res.once('drain', resume);
    return false;
  }

  onComplete(): void {
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
    if (this.wroteHead) ex.res.destroy(err);
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

/** Raw upstream headers as the flat [name, value, ...] list writeHead takes, without the hop-by-hop ones. */
function responseHeaders(raw: Buffer[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toString('latin1');
    if (!RESPONSE_SKIP.has(name.toLowerCase())) out.push(name, raw[i + 1].toString('latin1'));
  }
  return out;
}

function isTimeout(err: Error): boolean {
  const code = (err as { code?: string }).code;
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
}

function sendJson(res: http.ServerResponse, e: PublicError): void {
  const text = errorJson(e);
  res.writeHead(e.status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Node's own answer to an unparsable request (headers over MAX_HEADER_BYTES included) is a bare status line;
 * this one is the JSON error nginx gives for the same request. The socket is half-closed and cut after
 * LINGER_MS, so a client still writing its headers reads the answer first.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const e =
    err.code === 'HPE_HEADER_OVERFLOW' ? HEADERS_TOO_LARGE : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? REQUEST_TIMEOUT : BAD_REQUEST;
  const text = errorJson(e);
  socket.end(
    `HTTP/1.1 ${e.status} ${http.STATUS_CODES[e.status] ?? ''}\r\nContent-Type: ${JSON_TYPE}\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
  );
  socket.on('data', () => undefined);
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

/** Starts an embedded router listening on opts.host:opts.port. */
export async function startEmbeddedRouter(opts: EmbeddedRouterOptions): Promise<EmbeddedRouter> {
  return new EmbeddedRouter(opts).listen();
}
