/**
 * node:http as an ordinary client uses it (a fresh connection, the whole body handed to req.end): what a
 * router's answer looks like to such a client, or the socket error it saw instead (EPIPE, ECONNRESET).
 */
import http from 'node:http';

export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /**
   * A socket error after the answer had arrived and before the connection closed (a cut upload). Clients that
   * send the whole body before reading (Python requests, many proxies) see only this error, never the answer.
   */
  uploadError: string | null;
}

export function rawRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer } = {},
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    let answer: Omit<RawAnswer, 'uploadError'> | null = null;
    let uploadError: string | null = null;
    let closed = false;
    // Settled once the connection is closed, not when the upload is handed to the kernel: a router that cuts the
    // connection may do so after the last bytes were buffered (the kernel can hold tens of MiB on loopback).
    const settle = () => {
      if (answer && closed) resolve({ ...answer, uploadError });
    };
    const req = http.request(url, { method: opts.method ?? 'POST', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        answer = { status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString() };
        settle();
      });
      res.on('error', reject);
    });
    req.on('close', () => {
      closed = true;
      settle();
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (!answer) return reject(err);
      uploadError = err.code ?? err.message;
    });
    req.end(opts.body);
  });
}

/**
 * `n` requests one after the other; each outcome is "status error-code" (or content type), with the upload
 * error appended when there was one, or the client's socket error alone when no answer arrived.
 */
export async function outcomes(n: number, send: () => Promise<RawAnswer>): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < n; i++) {
    try {
      const res = await send();
      const body = /json/.test(String(res.headers['content-type'])) ? (JSON.parse(res.text) as { error?: string }) : {};
      seen.push(`${res.status} ${body.error ?? res.headers['content-type']}${res.uploadError ? ` (upload: ${res.uploadError})` : ''}`);
    } catch (err) {
      seen.push((err as NodeJS.ErrnoException).code ?? String(err));
    }
  }
  return seen;
}
