/**
 * Too-large bodies get their 413: the instance reads and discards the rest of the body (lingering close), so a
 * client still sending reads the JSON answer instead of EPIPE/ECONNRESET; past the time or size bound the
 * connection is destroyed and the instance carries on.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INSTANCE_METRICS } from '../../src/config/metric-names.js';
import { WINE_EXAMPLE } from '../../src/model/wine.js';
import { freePort, startCli, stopAll, stopProcess, waitForHttp, type Started } from '../support/processes.js';
import { appOn, sample } from './helpers.js';

interface Outcome {
  status?: number;
  body?: string;
  /** The error seen before any answer (a reset, a broken pipe). */
  error?: string;
  reusedSocket?: boolean;
}

/** One POST of `body` with node:http, written in 1 MiB pieces as a client streaming an upload would. */
function post(port: number, path: string, body: Buffer, agent?: http.Agent): Promise<Outcome> {
  return new Promise((resolve) => {
    const outcome: Outcome = {};
    const req = http.request({
      host: '127.0.0.1',
      port,
      path,
      method: 'POST',
      agent: agent ?? false,
      headers: { 'content-type': 'application/json', 'content-length': body.length },
    });
    req.on('response', (res) => {
      outcome.status = res.statusCode;
      outcome.reusedSocket = req.reusedSocket;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        outcome.body = Buffer.concat(chunks).toString('utf8');
        resolve(outcome);
      });
      res.on('error', (err) => resolve({ ...outcome, error: err.message }));
    });
    req.on('error', (err) => {
      if (outcome.status === undefined) resolve({ error: `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}` });
    });
    const piece = 1024 * 1024;
    let offset = 0;
    const writeMore = () => {
      while (offset < body.length) {
        const end = Math.min(offset + piece, body.length);
        const ok = req.write(body.subarray(offset, end));
        offset = end;
        if (!ok) return void req.once('drain', writeMore);
      }
      req.end();
    };
    writeMore();
  });
}

/**
 * A raw HTTP/1.1 upload that never closes on its own: announces `contentLength`, sends `sendBytes` of it as
 * fast as the socket takes them, then waits (10 s at most) for the server to close the connection.
 */
function rawUpload(
  port: number,
  contentLength: number,
  sendBytes: number,
): Promise<{ answer: string; sent: number; closedBy: 'server' | 'nobody' }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    let sent = 0;
    const finish = (closedBy: 'server' | 'nobody') => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ answer, sent, closedBy });
    };
    const timer = setTimeout(() => finish('nobody'), 10_000);
    socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    socket.on('error', () => finish('server'));
    socket.on('end', () => finish('server'));
    socket.on('close', () => finish('server'));
    const piece = Buffer.alloc(64 * 1024, 0x20);
    const pump = () => {
      while (sent < sendBytes && !socket.destroyed) {
        const n = Math.min(piece.length, sendBytes - sent);
        sent += n;
        if (!socket.write(piece.subarray(0, n))) return void socket.once('drain', pump);
      }
    };
    socket.write(`POST /predict HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${contentLength}\r\n\r\n`);
    pump();
  });
}

/** A JSON batch body of about `bytes` bytes (valid JSON: a client sending a huge batch, not garbage). */
function hugeBatch(bytes: number): Buffer {
  const row = JSON.stringify(WINE_EXAMPLE);
  const rows = Math.ceil(bytes / (row.length + 1));
  return Buffer.from(`{"instances":[${Array(rows).fill(row).join(',')}]}`);
}

afterAll(() => stopAll());

describe('bgserve serve: 413 for too-large bodies (real process, node:http)', () => {
  let proc: Started;
  let port: number;
  beforeAll(async () => {
    port = await freePort();
    proc = startCli(['serve', '--port', String(port), '--drain-delay-ms', '0', '--log-level', 'warn']);
    await waitForHttp(`http://127.0.0.1:${port}/ready`, { proc, timeoutMs: 30_000 });
  }, 40_000);
  afterAll(() => stopProcess(proc));

  it('answers 20 of 20 45 MB /predict/batch bodies with 413 payload_too_large JSON, and stays healthy', async () => {
    const body = hugeBatch(45 * 1024 * 1024);
    const outcomes: Outcome[] = [];
    const started = Date.now();
    for (let i = 0; i < 20; i++) outcomes.push(await post(port, '/predict/batch', body));
    const seconds = (Date.now() - started) / 1000;

    const errors = outcomes.filter((o) => o.error !== undefined).map((o) => o.error);
    expect(errors, `errors before any answer in ${seconds.toFixed(1)} s`).toEqual([]);
    for (const o of outcomes) {
      expect(o.status).toBe(413);
      expect(JSON.parse(o.body ?? '')).toMatchObject({ error: 'payload_too_large', message: expect.any(String) });
    }

    const health = await fetch(`http://127.0.0.1:${port}/health`);
    expect(health.status).toBe(200);
    const ok = await fetch(`http://127.0.0.1:${port}/predict`, {
      method: 'POST',
      body: JSON.stringify(WINE_EXAMPLE),
      headers: { 'content-type': 'application/json' },
    });
    expect(ok.status).toBe(200);
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(sample(text, INSTANCE_METRICS.errors, { route: '/predict/batch', reason: 'payload_too_large', source: 'live' })).toBe(20);
    expect(sample(text, INSTANCE_METRICS.requests, { route: '/predict/batch', status: '413' })).toBe(20);
  }, 120_000);
});

describe('lingering close bounds (in-process app on a socket)', () => {
  let app: FastifyInstance;
  let port: number;
  beforeAll(async () => {
    app = await appOn(undefined, { linger: { ms: 1_000, bytes: 2 * 1024 * 1024 } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as AddressInfo).port;
  });
  afterAll(() => app.close());

  it('keeps the connection once the refused body is read: the next request reuses it', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const refused = await post(port, '/predict', hugeBatch(1.5 * 1024 * 1024), agent);
      expect(refused.status).toBe(413);
      const next = await post(port, '/predict', Buffer.from(JSON.stringify(WINE_EXAMPLE)), agent);
      expect(next.status).toBe(200);
      expect(next.reusedSocket).toBe(true);
    } finally {
      agent.destroy();
    }
  });

  it('destroys the connection of a client that stops sending, once the time bound passes', async () => {
    const started = Date.now();
    const upload = await rawUpload(port, 100 * 1024 * 1024, 64 * 1024);
    expect(upload.answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(upload.answer).toContain('"error":"payload_too_large"');
    // Closed by the instance (this client never closes), after the 1 s bound and not long after.
    expect(upload.closedBy).toBe('server');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
  });

  it('destroys the connection past the size bound instead of reading an endless body', async () => {
    const total = 40 * 1024 * 1024;
    const upload = await rawUpload(port, total, total);
    expect(upload.answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(upload.closedBy).toBe('server');
    // Reset well before the 40 MB were taken (2 MiB bound, plus what the socket buffers hold).
    expect(upload.sent).toBeLessThan(total);
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
  });
});
