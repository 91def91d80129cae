/**
 * Lingering close for refused bodies. A 413 is decided from Content-Length before the body is read; if the
 * connection were closed with the body still arriving, the unread bytes make the kernel answer with a reset,
 * and most clients (node:http, fetch, curl, requests), still writing, report EPIPE/ECONNRESET instead of the
 * 413. So the rest of the body is read and thrown away, within a time and size bound: a finished body leaves
 * the connection as the client asked (kept alive or closed), and a client still sending past the bound has its
 * connection destroyed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface LingerLimits {
  /** Time from the refusal to the end of the body, at most. */
  ms: number;
  /** Bytes discarded after the refusal, at most. */
  bytes: number;
}

export const LINGER_DEFAULTS: LingerLimits = { ms: 5_000, bytes: 64 * 1024 * 1024 };

/**
 * Reads and discards the rest of `req`'s body after its refusal in `res`; destroys the connection past the
 * limits. Call before the answer is written.
 */
export function lingerOnRefusedBody(req: IncomingMessage, res: ServerResponse, limits: LingerLimits = LINGER_DEFAULTS): void {
  // Bodies Fastify read in full (chunked, over the limit) or injected requests have nothing left to read.
  if (req.complete || req.destroyed || !req.socket) return;
  const socket = req.socket;
  // Node closes a connection that is not kept alive as soon as the answer is written, unread body or not;
  // kept alive, it lets the body arrive, and the connection is closed here once the body is read.
  const closeAfter = !res.shouldKeepAlive;
  res.shouldKeepAlive = true;
  let discarded = 0;
  const done = () => {
    clearTimeout(timer);
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('close', done);
  };
  const onEnd = () => {
    done();
    if (closeAfter) socket.end();
  };
  const giveUp = () => {
    done();
    socket.destroy();
  };
  const onData = (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > limits.bytes) giveUp();
  };
  const timer = setTimeout(giveUp, limits.ms);
  timer.unref();
  // A 'data' listener puts the request in flowing mode: Node does not dump it by itself once the answer is
  // sent, and the chunks are dropped as soon as they are counted.
  req.on('data', onData);
  req.once('end', onEnd);
  req.once('close', done);
}
