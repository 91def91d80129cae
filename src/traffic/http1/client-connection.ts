/**
 * The client side of the embedded router: HTTP/1.1 read straight off a socket. A request's head is parsed in
 * place, its body gathered whole (a replay on another replica needs it; MAX_BODY_BYTES bounds it), and its
 * answer written as one write where the head and body arrive together. Requests on one connection are answered
 * in order; a pipelined one waits in the buffer for the one before it.
 * What node:http did for the router is kept: 100 Continue only for a body within the limit; a JSON 400, 408, 413
 * or 431 for what cannot be served, followed by a lingering close (the rest of the upload is read and dropped,
 * within bounds, so the client reads the answer instead of a reset); idle connections closed after a while.
 */
import net from 'node:net';
import { ChunkedDecoder, chunkHeader, LAST_CHUNK } from './chunked.js';
import { parseRequestHead, type RequestHead, type ResponseHead } from './head.js';
import { writeHeadAndBody } from './write.js';

export interface InboundRequest {
  method: string;
  target: string;
  /** Flat [name, value, ...], names lower-cased. */
  headers: string[];
  body: Buffer;
  remoteAddress: string;
}

/** A refusal the connection makes itself, before any handler sees the request. */
export interface Refusal {
  status: number;
  json: string;
}

export interface ClientLimits {
  maxHeadBytes: number;
  maxBodyBytes: number;
  /** Idle (or silent mid-request) connections are closed after this long. */
  idleMs: number;
  /** A request's head must be complete this long after its first byte. */
  headTimeoutMs: number;
  lingerMs: number;
  lingerBytes: number;
}

export interface ClientAnswers {
  bad: Refusal;
  headTooLarge: Refusal;
  bodyTooLarge: Refusal;
  timeout: Refusal;
  expectation: Refusal;
}

export type RequestHandler = (req: InboundRequest, res: ClientResponse) => void;
/** Told of each refusal the connection answers itself (counted as answered by no color). */
export type RefusalListener = (status: number) => void;

/** Answers that carry a status line's reason phrase; the rest get none, which HTTP allows. */
const REASONS: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  403: 'Forbidden',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  417: 'Expectation Failed',
  431: 'Request Header Fields Too Large',
  502: 'Bad Gateway',
  504: 'Gateway Timeout',
};
/** Hop-by-hop fields of an upstream answer: this connection sets its own framing and persistence. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'trailer', 'te']);
const EMPTY = Buffer.alloc(0);
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
const BodyMode = {
  /** Bytes as they come: the length is known, or there is no body. */
  Raw: 0,
  /** Re-coded chunked: the upstream's length was not known in advance. */
  Chunked: 1,
  /** Written until the connection closes: an HTTP/1.0 client and no known length. */
  UntilClose: 2,
} as const;
type BodyMode = (typeof BodyMode)[keyof typeof BodyMode];

const Phase = {
  Head: 0,
  Body: 1,
  /** A request is with the handler; bytes of the next one wait. */
  Busy: 2,
  /** Refused: what the client still sends is read and dropped until the lingering close. */
  Linger: 3,
} as const;
type Phase = (typeof Phase)[keyof typeof Phase];

/** One answer to one request; the connection moves on to the next request when it ends. */
export class ClientResponse {
  private pendingHead: string | null = null;
  private mode: BodyMode = BodyMode.Raw;
  private ended = false;

  constructor(
    private readonly conn: ClientConnection,
    private readonly keepAlive: boolean,
    private readonly minor: 0 | 1,
    private readonly noBody: boolean,
  ) {}

  /** The client left: nothing more can be written. */
  get gone(): boolean {
    return this.conn.socket.destroyed;
  }

  /** An upstream's answer head, passed on without its hop-by-hop fields; the body follows through write(). */
  head(up: ResponseHead): void {
    let head = `HTTP/1.1${up.statusLine.slice(8)}\r\n`;
    const h = up.headers;
    for (let i = 0; i < h.length; i += 2) if (!HOP_BY_HOP.has(h[i])) head += `${h[i]}: ${h[i + 1]}\r\n`;
    let keepAlive = this.keepAlive;
    const f = up.framing.kind;
    if (this.noBody || f === 'none' || f === 'length') this.mode = BodyMode.Raw;
    else if (this.minor === 1) {
      this.mode = BodyMode.Chunked;
      head += 'transfer-encoding: chunked\r\n';
    } else {
      this.mode = BodyMode.UntilClose;
      keepAlive = false;
    }
    this.pendingHead = head + this.persistence(keepAlive);
    if (!keepAlive) this.conn.closeAfter();
  }

  /** A whole answer of the router's own. */
  json(status: number, text: string, close = false): void {
    const keepAlive = this.keepAlive && !close;
    if (!keepAlive) this.conn.closeAfter();
    const body = this.noBody ? '' : text;
    if (!this.conn.socket.destroyed)
      this.conn.socket.write(
        `HTTP/1.1 ${status} ${REASONS[status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\n` +
          `content-length: ${Buffer.byteLength(text)}\r\n${this.persistence(keepAlive)}${body}`,
      );
    this.finish();
  }

  /** False: the client is not keeping up (wait for onDrain) or has gone (see `gone`). */
  write(chunk: Buffer): boolean {
    const socket = this.conn.socket;
    if (socket.destroyed || this.ended) return false;
    if (this.noBody) return true;
    const head = this.pendingHead;
    this.pendingHead = null;
    if (this.mode !== BodyMode.Chunked) return head === null ? socket.write(chunk) : writeHeadAndBody(socket, head, chunk);
    socket.cork();
    socket.write(`${head ?? ''}${chunkHeader(chunk.length)}`, 'latin1');
    socket.write(chunk);
    const ok = socket.write('\r\n', 'latin1');
    socket.uncork();
    return ok;
  }

  onDrain(resume: () => void): void {
    this.conn.socket.once('drain', resume);
  }

  end(): void {
    if (this.ended) return;
    const socket = this.conn.socket;
    if (!socket.destroyed) {
      if (this.pendingHead !== null)
        socket.write(this.mode === BodyMode.Chunked ? this.pendingHead + LAST_CHUNK : this.pendingHead, 'latin1');
      else if (this.mode === BodyMode.Chunked) socket.write(LAST_CHUNK, 'latin1');
      this.pendingHead = null;
    }
    this.finish();
  }

  /** The answer cannot be completed (the upstream broke off mid-body): the client must not take it as whole. */
  destroy(): void {
    this.ended = true;
    this.conn.socket.destroy();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.conn.answered();
  }

  private persistence(keepAlive: boolean): string {
    if (!keepAlive) return 'connection: close\r\n\r\n';
    return this.minor === 0 ? 'connection: keep-alive\r\n\r\n' : '\r\n';
  }
}

export class ClientConnection {
  private buf: Buffer | null = null;
  private phase: Phase = Phase.Head;
  private head: RequestHead | null = null;
  private headStarted = 0;
  private bodyParts: Buffer[] = [];
  private bodySize = 0;
  private bodyLeft = 0;
  private decoder: ChunkedDecoder | null = null;
  private close = false;
  /** The client half-closed: its requests already read are answered, then the connection ends. */
  private clientEnded = false;
  private pipelining = false;
  private lingered = 0;
  private readonly remoteAddress: string;
  private readonly collect = (piece: Buffer) => {
    this.bodySize += piece.length;
    if (this.bodySize <= this.limits.maxBodyBytes) this.bodyParts.push(piece);
  };

  constructor(
    readonly socket: net.Socket,
    private readonly handler: RequestHandler,
    private readonly limits: ClientLimits,
    private readonly answers: ClientAnswers,
    private readonly onRefusal: RefusalListener,
  ) {
    this.remoteAddress = socket.remoteAddress ?? '';
    socket.setNoDelay(true);
    socket.setTimeout(limits.idleMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('timeout', () => this.onTimeout());
    socket.on('end', () => this.onEnd());
    socket.on('error', () => socket.destroy());
  }

  /** Close once the current answer is written. */
  closeAfter(): void {
    this.close = true;
  }

  /** The current answer is complete: on to the next request, if the connection goes on. */
  answered(): void {
    if (this.phase === Phase.Linger) return;
    if (this.close) {
      this.socket.end();
      return;
    }
    this.phase = Phase.Head;
    this.head = null;
    if (this.socket.isPaused()) this.socket.resume();
    this.nextPipelined();
  }

  /**
   * Requests already read while the one before them was answered, one after another in a loop: answered
   * synchronously (a refusal), each would otherwise start the next one level deeper on the stack, and a long
   * enough pipeline would overflow it. Re-entered from an answer, it leaves the work to the loop under way.
   */
  private nextPipelined(): void {
    if (this.pipelining) return;
    this.pipelining = true;
    try {
      while (this.phase === Phase.Head && this.buf !== null && !this.socket.destroyed) {
        const rest = this.buf;
        this.buf = null;
        this.readHead(rest);
        // An incomplete head waits for more bytes.
        if (this.phase === Phase.Head && this.buf === rest) break;
      }
    } finally {
      this.pipelining = false;
    }
    // The client said it sends nothing more: once what it sent is answered, the connection ends.
    if (this.clientEnded && this.phase !== Phase.Busy) this.afterClientEnd();
  }

  private onData(chunk: Buffer): void {
    switch (this.phase) {
      case Phase.Busy: {
        // A pipelined request: kept until the answer before it is written, within the bounds of one request.
        this.buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
        if (this.buf.length > this.limits.maxHeadBytes + this.limits.maxBodyBytes) this.socket.pause();
        return;
      }
      case Phase.Linger:
        this.linger(chunk, 0);
        return;
      case Phase.Body:
        this.readBody(chunk, 0);
        return;
      case Phase.Head:
        this.readHead(chunk);
        return;
    }
  }

  private readHead(chunk: Buffer): void {
    let buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
    this.buf = null;
    // Empty lines before a request line are skipped (RFC 9112 2.2): a client's stray CRLF after a body.
    let skip = 0;
    while (buf.length - skip >= 2 && buf[skip] === 0x0d && buf[skip + 1] === 0x0a) skip += 2;
    if (skip > 0) {
      // Nothing after them: the connection is idle, not in the middle of a head.
      if (skip === buf.length) return;
      buf = buf.subarray(skip);
    }
    const head = parseRequestHead(buf, 0, this.limits.maxHeadBytes);
    if (head === 'incomplete') {
      const now = Date.now();
      if (this.headStarted === 0) this.headStarted = now;
      else if (now - this.headStarted > this.limits.headTimeoutMs) return this.refuse(this.answers.timeout, -1);
      this.buf = buf;
      return;
    }
    this.headStarted = 0;
    if (head === 'too_large') return this.refuse(this.answers.headTooLarge, -1);
    if (head === 'bad') return this.refuse(this.answers.bad, -1);
    this.head = head;
    if (!head.keepAlive) this.close = true;
    if (head.expectOther) return this.refuse(this.answers.expectation, -1);
    const f = head.framing;
    this.bodyParts = [];
    this.bodySize = 0;
    if (f.kind === 'length') {
      if (f.length > this.limits.maxBodyBytes) {
        // With 100-continue the client waits for a word before sending: it sends nothing, and is told now.
        this.refuse(this.answers.bodyTooLarge, head.expectContinue && buf.length === head.size ? -1 : f.length);
        if (buf.length > head.size) this.linger(buf, head.size);
        return;
      }
      this.bodyLeft = f.length;
    } else if (f.kind === 'chunked') this.decoder = new ChunkedDecoder();
    else {
      this.dispatch(EMPTY, buf, head.size);
      return;
    }
    if (head.expectContinue && buf.length === head.size) this.socket.write(CONTINUE, 'latin1');
    this.phase = Phase.Body;
    this.readBody(buf, head.size);
  }

  private readBody(buf: Buffer, start: number): void {
    if (this.decoder !== null) {
      const end = this.decoder.push(buf, start, this.collect);
      if (end === 'bad') {
        this.decoder = null;
        return this.refuse(this.answers.bad, -1);
      }
      if (this.bodySize > this.limits.maxBodyBytes) {
        // The rest of the coded body is read and dropped, then the connection closes.
        if (end >= 0) this.decoder = null;
        this.refuse(this.answers.bodyTooLarge, end >= 0 ? 0 : Number.POSITIVE_INFINITY);
        return;
      }
      if (end < 0) return;
      this.decoder = null;
      const body = this.bodyParts.length === 1 ? this.bodyParts[0] : Buffer.concat(this.bodyParts, this.bodySize);
      this.dispatch(body, buf, end);
      return;
    }
    const available = buf.length - start;
    if (this.bodyParts.length === 0 && available >= this.bodyLeft) {
      // The usual case: the whole body came with its head, and is passed on without a copy.
      const body = buf.subarray(start, start + this.bodyLeft);
      this.dispatch(body, buf, start + this.bodyLeft);
      return;
    }
    const take = Math.min(available, this.bodyLeft);
    this.bodyParts.push(buf.subarray(start, start + take));
    this.bodySize += take;
    this.bodyLeft -= take;
    if (this.bodyLeft > 0) return;
    this.dispatch(Buffer.concat(this.bodyParts, this.bodySize), buf, start + take);
  }

  /** `rest`: what follows the request in `buf` (a pipelined request), kept for after its answer. */
  private dispatch(body: Buffer, buf: Buffer, restAt: number): void {
    const head = this.head!;
    this.phase = Phase.Busy;
    this.bodyParts = [];
    if (restAt < buf.length) this.buf = buf.subarray(restAt);
    const res = new ClientResponse(this, head.keepAlive, head.minor, head.method === 'HEAD');
    this.handler({ method: head.method, target: head.target, headers: head.headers, body, remoteAddress: this.remoteAddress }, res);
  }

  /**
   * Answers `refusal` and closes lingering: `left` more bytes of this request are read and dropped before the
   * close (-1: unknown, close at once after the answer; Infinity: until the client stops), within LINGER bounds.
   */
  private refuse(refusal: Refusal, left: number): void {
    const minor = this.head?.minor ?? 1;
    this.phase = Phase.Linger;
    this.buf = null;
    this.close = true;
    this.onRefusal(refusal.status);
    new ClientResponse(this, false, minor, false).json(refusal.status, refusal.json, true);
    this.bodyLeft = left;
    this.lingered = 0;
    this.socket.setTimeout(this.limits.lingerMs);
    if (left <= 0 && this.decoder === null) this.socket.end();
  }

  private linger(buf: Buffer, start: number): void {
    const n = buf.length - start;
    this.lingered += n;
    if (this.lingered > this.limits.lingerBytes) {
      this.socket.destroy();
      return;
    }
    if (this.decoder !== null) {
      const end = this.decoder.push(buf, start, () => undefined);
      if (end === 'bad' || end >= 0) {
        this.decoder = null;
        this.socket.end();
      }
      return;
    }
    if (this.bodyLeft > 0) {
      this.bodyLeft -= n;
      if (this.bodyLeft <= 0) this.socket.end();
    }
  }

  /** The client will send nothing more: its answer under way still goes out, then the connection closes. */
  private onEnd(): void {
    this.clientEnded = true;
    // Busy: the answer under way and any request read after it still go out (see nextPipelined).
    if (this.phase !== Phase.Busy) this.afterClientEnd();
  }

  /** A refused request's rest will not come now; a request cut off in its body is never answered. */
  private afterClientEnd(): void {
    if (this.phase === Phase.Body) this.socket.destroy();
    else this.socket.end();
  }

  private onTimeout(): void {
    if (this.phase === Phase.Linger || (this.phase === Phase.Head && this.buf === null)) {
      this.socket.destroy();
      return;
    }
    // Mid-request and silent: told so. Waiting on an upstream is not the client's silence.
    if (this.phase === Phase.Head || this.phase === Phase.Body) this.refuse(this.answers.timeout, -1);
  }
}

/**
 * A plain TCP server whose connections speak HTTP/1.1 to `handler`; `sockets` holds the open ones, to be cut on
 * close. Half-open: a client that ends its side after a request still gets the answer.
 */
export function createHttp1Server(
  handler: RequestHandler,
  limits: ClientLimits,
  answers: ClientAnswers,
  onRefusal: RefusalListener,
): { server: net.Server; sockets: Set<net.Socket> } {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    new ClientConnection(socket, handler, limits, answers, onRefusal);
  });
  return { server, sockets };
}
