/**
 * A message head and (the start of) its body, written together as one buffer in one write: cheaper than corking
 * the socket for two writes (node's stream machinery then builds a chunk list for writev). Past COPY_LIMIT the
 * body is not copied; the two go out corked instead.
 */
import type { Socket } from 'node:net';

const COPY_LIMIT = 64 * 1024;

/** False: the socket's buffer is full (wait for 'drain'). */
export function writeHeadAndBody(socket: Socket, head: string, body: Buffer | null): boolean {
  if (body === null || body.length === 0) return socket.write(head, 'latin1');
  if (body.length > COPY_LIMIT) {
    socket.cork();
    socket.write(head, 'latin1');
    const ok = socket.write(body);
    socket.uncork();
    return ok;
  }
  const headBytes = head.length;
  const out = Buffer.allocUnsafe(headBytes + body.length);
  out.write(head, 0, headBytes, 'latin1');
  body.copy(out, headBytes);
  return socket.write(out);
}
