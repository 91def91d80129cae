/**
 * Keep-alive HTTP/1.1 connections to one upstream replica, over raw sockets: a request goes out as one write
 * (head and body together) and its answer is parsed in place, its body handed on as slices of what was read.
 * One request per connection at a time (no pipelining: a slow answer must not hold up the next), at most
 * `connections` of them; past that, requests wait in order for the first connection free.
 */
import net from 'node:net';
import { ChunkedDecoder } from './chunked.js';
import { keepAliveTimeoutSeconds, parseResponseHead, type ResponseHead } from './head.js';
import { writeHeadAndBody } from './write.js';

/** What an upstream answer is delivered to, in this order: head, data (any number), then end; or error at any point. */
export interface UpstreamHandler {
  onHead(head: ResponseHead): void;
  /** False: stop reading from the upstream until the exchange's resume() is called. */
  onData(chunk: Buffer): boolean;
  onEnd(): void;
  onError(err: Error): void;
}

export interface UpstreamPoolOptions {
  connections: number;
  connectTimeoutMs: number;
  /** No byte of an answer for this long, once the request is sent: the exchange fails with UPSTREAM_TIMEOUT. */
  timeoutMs: number;
  /** An idle connection is closed after this long. */
  keepAliveMs: number;
  /** Response head limit, bytes. */
  maxHeadBytes: number;
}

export const UPSTREAM_TIMEOUT = 'UPSTREAM_TIMEOUT';
export const UPSTREAM_BAD_RESPONSE = 'UPSTREAM_BAD_RESPONSE';

/**
 * How much sooner than an upstream's announced keep-alive timeout its idle connection is given up: a request
 * written as the upstream closes is lost to the race (and sent again), so the router closes first.
 */
const KEEP_ALIVE_MARGIN_MS = 1_000;

function upstreamError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** One request on its way: the body is kept so it can be sent again on a fresh connection. */
export class UpstreamExchange {
  connection: UpstreamConnection | null = null;
  aborted = false;
  /** Sent once already, on a kept-alive connection the upstream closed before answering. */
  resent = false;

  constructor(
    readonly head: string,
    readonly body: Buffer | null,
    readonly forHead: boolean,
    readonly handler: UpstreamHandler,
  ) {}

  /** The reader went away: the answer is dropped with its connection (never handed to the next request half read). */
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.connection?.drop();
  }

  resume(): void {
    this.connection?.socket.resume();
  }
}

const Reading = {
  Head: 0,
  Length: 1,
  Chunked: 2,
  UntilClose: 3,
} as const;
type Reading = (typeof Reading)[keyof typeof Reading];

class UpstreamConnection {
  readonly socket: net.Socket;
  exchange: UpstreamExchange | null = null;
  private pending: Buffer | null = null;
  private reading: Reading = Reading.Head;
  private remaining = 0;
  private decoder: ChunkedDecoder | null = null;
  private answered = false;
  /** Whether it has answered a request before: a close before any byte then means a stale keep-alive. */
  private reused = false;
  private connected = false;
  private gone = false;
  private silentTicks = 0;
  private keepAlive = true;
  /** The upstream's announced idle limit less the margin, when shorter than the pool's tick (0: the tick applies). */
  private idleMs = 0;
  private shortIdle = false;
  private readonly deliver = (piece: Buffer) => {
    // Dropped when the reader went away while a chunked body was being decoded.
    const ex = this.exchange;
    if (ex !== null && !ex.handler.onData(piece)) this.socket.pause();
  };

  constructor(
    private readonly pool: UpstreamPool,
    host: string,
    port: number,
  ) {
    const socket = net.connect({ host, port, noDelay: true });
    this.socket = socket;
    socket.setTimeout(pool.opts.connectTimeoutMs);
    socket.on('connect', () => {
      this.connected = true;
      socket.setTimeout(pool.tickMs);
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('timeout', () => this.onSilence());
    socket.on('error', (err) => this.fail(err));
    socket.on('end', () => this.onEnd());
    socket.on('close', () => this.fail(upstreamError('ECONNRESET', 'upstream closed the connection')));
  }

  send(exchange: UpstreamExchange): void {
    this.exchange = exchange;
    exchange.connection = this;
    this.reading = Reading.Head;
    this.answered = false;
    this.silentTicks = 0;
    const { socket } = this;
    if (this.shortIdle) {
      this.shortIdle = false;
      socket.setTimeout(this.pool.tickMs);
    }
    // Paused by the last answer's reader, whose answer is complete all the same.
    if (socket.isPaused()) socket.resume();
    writeHeadAndBody(socket, exchange.head, exchange.body);
  }

  /** Back in the pool's idle list: closed after the upstream's own idle limit, if it announced a short one. */
  rest(): void {
    if (this.idleMs === 0) return;
    this.shortIdle = true;
    this.socket.setTimeout(this.idleMs);
  }

  /** Closes it for good; the exchange on it, if any, hears nothing more. */
  drop(): void {
    this.exchange = null;
    this.destroy();
  }

  destroy(): void {
    if (this.gone) return;
    this.gone = true;
    this.socket.destroy();
    this.pool.forget(this);
  }

  /**
   * One timer per connection, set once (re-arming it on every request costs more than the request's parsing):
   * it fires after a tick of silence; idle, the connection is closed; waiting for an answer, the ticks add up
   * to the answer timeout.
   */
  private onSilence(): void {
    const { opts, tickMs } = this.pool;
    if (!this.connected) {
      this.fail(upstreamError('ECONNTIMEOUT', `connect timeout after ${opts.connectTimeoutMs} ms`));
      return;
    }
    if (this.exchange === null) {
      this.destroy();
      return;
    }
    this.silentTicks++;
    if (this.silentTicks * tickMs >= opts.timeoutMs) this.fail(upstreamError(UPSTREAM_TIMEOUT, `no answer in ${opts.timeoutMs} ms`));
    else this.socket.setTimeout(tickMs);
  }

  private onData(chunk: Buffer): void {
    const ex = this.exchange;
    if (ex === null) {
      // Bytes nobody asked for: the connection's framing can no longer be trusted.
      this.destroy();
      return;
    }
    this.answered = true;
    this.silentTicks = 0;
    let start = 0;
    let buf = chunk;
    if (this.reading === Reading.Head) {
      buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
      this.pending = null;
      for (;;) {
        const head = parseResponseHead(buf, start, this.pool.opts.maxHeadBytes, ex.forHead);
        if (head === 'incomplete') {
          this.pending = start === 0 ? buf : buf.subarray(start);
          return;
        }
        if (typeof head === 'string') {
          this.fail(upstreamError(UPSTREAM_BAD_RESPONSE, `the upstream's answer is not valid HTTP/1.1 (${head} head)`));
          return;
        }
        start += head.size;
        // Interim answers (100, 103) are dropped; a switch of protocols is not something to proxy here.
        if (head.status === 101) {
          this.fail(upstreamError(UPSTREAM_BAD_RESPONSE, 'the upstream switched protocols'));
          return;
        }
        if (head.status < 200) continue;
        this.begin(head);
        if (this.exchange !== ex) return;
        break;
      }
    }
    this.body(buf, start);
  }

  private begin(head: ResponseHead): void {
    const ex = this.exchange!;
    this.keepAlive = head.keepAlive;
    this.idleMs = 0;
    if (head.keepAlive) {
      const announced = keepAliveTimeoutSeconds(head.headers);
      if (announced !== undefined) {
        const idleMs = announced * 1000 - KEEP_ALIVE_MARGIN_MS;
        if (idleMs <= 0) this.keepAlive = false;
        else this.idleMs = idleMs < this.pool.tickMs ? idleMs : 0;
      }
    }
    ex.handler.onHead(head);
    const f = head.framing;
    if (f.kind === 'none' || f.kind === 'length') {
      this.reading = Reading.Length;
      this.remaining = f.kind === 'length' ? f.length : 0;
    } else if (f.kind === 'chunked') {
      this.reading = Reading.Chunked;
      this.decoder = new ChunkedDecoder();
    } else this.reading = Reading.UntilClose;
  }

  private body(buf: Buffer, start: number): void {
    const ex = this.exchange!;
    switch (this.reading) {
      case Reading.Length: {
        const take = Math.min(this.remaining, buf.length - start);
        if (take > 0) {
          this.remaining -= take;
          this.deliver(start === 0 && take === buf.length ? buf : buf.subarray(start, start + take));
          if (this.exchange !== ex) return;
        }
        if (this.remaining === 0) this.complete(buf.length - start - take);
        return;
      }
      case Reading.Chunked: {
        const end = this.decoder!.push(buf, start, this.deliver);
        if (this.exchange !== ex) return;
        if (end === 'bad') this.fail(upstreamError(UPSTREAM_BAD_RESPONSE, "the upstream's chunked body is not valid"));
        else if (end >= 0) this.complete(buf.length - end);
        return;
      }
      case Reading.UntilClose:
        if (start < buf.length) this.deliver(start === 0 ? buf : buf.subarray(start));
        return;
      case Reading.Head:
        return;
    }
  }

  /** `extra`: bytes after the answer, which only a broken upstream sends. */
  private complete(extra: number): void {
    const ex = this.exchange!;
    this.exchange = null;
    this.decoder = null;
    ex.connection = null;
    this.reused = true;
    if (extra > 0 || !this.keepAlive) this.destroy();
    else this.pool.release(this);
    ex.handler.onEnd();
  }

  private onEnd(): void {
    const ex = this.exchange;
    if (ex !== null && this.reading === Reading.UntilClose) {
      this.exchange = null;
      ex.connection = null;
      this.destroy();
      ex.handler.onEnd();
      return;
    }
    this.fail(upstreamError('ECONNRESET', 'upstream closed the connection'));
  }

  private fail(err: Error): void {
    const ex = this.exchange;
    const stale = this.reused && !this.answered;
    this.exchange = null;
    this.destroy();
    if (ex === null || ex.aborted) return;
    ex.connection = null;
    // A kept-alive connection the upstream had just closed: the request never reached it, so it is sent once
    // more on a fresh connection rather than counted against the replica.
    if (stale && !ex.resent && (err as NodeJS.ErrnoException).code !== UPSTREAM_TIMEOUT) {
      ex.resent = true;
      this.pool.dispatch(ex, true);
      return;
    }
    ex.handler.onError(err);
  }
}

export class UpstreamPool {
  private readonly idle: UpstreamConnection[] = [];
  private readonly queue: UpstreamExchange[] = [];
  private readonly live = new Set<UpstreamConnection>();
  private closing = false;
  private closed: (() => void) | null = null;

  /** The connections' timer period: the shorter of the idle and answer timeouts. */
  readonly tickMs: number;

  constructor(
    private readonly host: string,
    private readonly port: number,
    readonly opts: UpstreamPoolOptions,
  ) {
    this.tickMs = Math.min(opts.keepAliveMs, opts.timeoutMs);
  }

  /** Requests sent and not answered, and waiting for a connection. */
  get busy(): number {
    return this.live.size - this.idle.length + this.queue.length;
  }

  request(head: string, body: Buffer | null, forHead: boolean, handler: UpstreamHandler): UpstreamExchange {
    const ex = new UpstreamExchange(head, body, forHead, handler);
    this.dispatch(ex, false);
    return ex;
  }

  /** `fresh`: never on a kept-alive connection (a resend after one closed under it). */
  dispatch(ex: UpstreamExchange, fresh: boolean): void {
    if (this.closing) {
      ex.handler.onError(upstreamError('ECONNRESET', 'the upstream pool is closed'));
      return;
    }
    let conn = fresh ? undefined : this.idle.pop();
    if (conn === undefined) {
      if (this.live.size >= this.opts.connections) {
        this.queue.push(ex);
        return;
      }
      conn = this.connect();
    }
    conn.send(ex);
  }

  release(conn: UpstreamConnection): void {
    while (this.queue.length > 0) {
      const next = this.queue.shift()!;
      if (next.aborted) continue;
      conn.send(next);
      return;
    }
    if (this.closing) {
      conn.destroy();
      return;
    }
    this.idle.push(conn);
    conn.rest();
  }

  forget(conn: UpstreamConnection): void {
    this.live.delete(conn);
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    // A connection lost while requests wait: open another for them.
    while (this.queue.length > 0 && this.live.size < this.opts.connections && !this.closing) {
      const next = this.queue.shift()!;
      if (next.aborted) continue;
      this.connect().send(next);
    }
    if (this.closing && this.live.size === 0) this.closed?.();
  }

  private connect(): UpstreamConnection {
    const conn = new UpstreamConnection(this, this.host, this.port);
    this.live.add(conn);
    return conn;
  }

  /** No new request; those under way finish, then every connection is closed. */
  close(): Promise<void> {
    this.closing = true;
    for (const ex of this.queue.splice(0)) if (!ex.aborted) ex.handler.onError(upstreamError('ECONNRESET', 'the upstream pool is closed'));
    for (const conn of [...this.idle]) conn.destroy();
    if (this.live.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.closed = resolve;
    });
  }

  /** Every connection closed now; requests under way fail. */
  destroy(): Promise<void> {
    const done = this.close();
    for (const conn of [...this.live]) conn.destroy();
    return done;
  }
}
