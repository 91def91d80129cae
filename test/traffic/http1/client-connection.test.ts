/**
 * The embedded router's client side over real loopback sockets: exact request bytes written by a raw net client,
 * answers read back as bytes. Most cases drive createHttp1Server with a small handler; one goes through the whole
 * EmbeddedRouter to a fixture upstream, to see what the upstream gets for a chunked upload.
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ClientAnswers,
  type ClientLimits,
  type ClientResponse,
  createHttp1Server,
  type InboundRequest,
} from '../../../src/traffic/http1/client-connection.js';
import type { ResponseHead } from '../../../src/traffic/http1/head.js';
import { type EmbeddedRouter, startEmbeddedRouter } from '../../../src/traffic/embedded-router.js';
import { PREVIEW_HEADER } from '../../../src/config/defaults.js';
import { type ColorUpstream, startColorUpstream } from '../fixtures.js';

const ANSWERS: ClientAnswers = {
  bad: { status: 400, json: '{"error":"bad_request","message":"malformed request"}' },
  headTooLarge: { status: 431, json: '{"error":"headers_too_large","message":"head too large"}' },
  bodyTooLarge: { status: 413, json: '{"error":"payload_too_large","message":"body too large"}' },
  timeout: { status: 408, json: '{"error":"request_timeout","message":"too slow"}' },
  expectation: { status: 417, json: '{"error":"expectation_failed","message":"unmet expectation"}' },
};
const MAX_BODY = 64;
const LIMITS: ClientLimits = {
  maxHeadBytes: 1024,
  maxBodyBytes: MAX_BODY,
  idleMs: 3000,
  headTimeoutMs: 2000,
  lingerMs: 500,
  lingerBytes: 64 * 1024,
};

/** What an upstream's head looks like when its length is not known: hop-by-hop fields the client must not see. */
const STREAM_HEAD: ResponseHead = {
  status: 200,
  statusLine: 'HTTP/1.1 200 OK',
  headers: [
    'content-type',
    'text/plain',
    'connection',
    'keep-alive',
    'keep-alive',
    'timeout=5',
    'transfer-encoding',
    'chunked',
    'x-up',
    '1',
  ],
  size: 0,
  framing: { kind: 'chunked' },
  keepAlive: true,
  minor: 1,
};

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Consecutive answers in `text` (latin1), framed by content-length, chunked, or else the rest of the text. */
function parseAnswers(text: string, headOnly = false): Answer[] {
  const out: Answer[] = [];
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const lines = text.slice(at, end).split('\r\n');
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0])?.[1] ?? Number.NaN);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    at = end + 4;
    let body = '';
    if (status < 200 || headOnly) {
      // no body
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (text.length - at < n) break;
      body = text.slice(at, at + n);
      at += n;
    } else if (headers['transfer-encoding'] === 'chunked') {
      let complete = false;
      for (;;) {
        const eol = text.indexOf('\r\n', at);
        if (eol < 0) break;
        const size = Number.parseInt(text.slice(at, eol), 16);
        if (size === 0) {
          if (text.slice(eol, eol + 4) !== '\r\n\r\n') break;
          at = eol + 4;
          complete = true;
          break;
        }
        if (text.length < eol + 2 + size + 2) break;
        body += text.slice(eol + 2, eol + 2 + size);
        at = eol + 2 + size + 2;
      }
      if (!complete) break;
    } else {
      body = text.slice(at);
      at = text.length;
    }
    out.push({ status, headers, body });
  }
  return out;
}

class RawClient {
  data = '';
  closed = false;
  /** Whether the server ended its side (FIN) rather than resetting. */
  gotEnd = false;
  constructor(readonly socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (s: string) => {
      this.data += s;
    });
    socket.on('end', () => {
      this.gotEnd = true;
    });
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => undefined);
  }

  send(bytes: string): void {
    this.socket.write(bytes, 'latin1');
  }

  async until(pred: (c: RawClient) => boolean, what: string, ms = 2000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred(this)) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.data.slice(-400))} closed=${this.closed}`);
      await sleep(5);
    }
  }

  async answers(n: number, ms = 2000): Promise<Answer[]> {
    await this.until((c) => parseAnswers(c.data).length >= n, `${n} answer(s)`, ms);
    return parseAnswers(this.data);
  }

  async closedBy(ms = 2000): Promise<void> {
    await this.until((c) => c.closed, 'the server to close', ms);
  }
}

const req = (method: string, target: string, body = '', extra = ''): string =>
  `${method} ${target} HTTP/1.1\r\nhost: test\r\n${body ? `content-length: ${Buffer.byteLength(body)}\r\n` : ''}${extra}\r\n${body}`;
const json = (a: Answer) => JSON.parse(a.body) as Record<string, unknown>;

describe('createHttp1Server', () => {
  let server: net.Server | null = null;
  let sockets: Set<net.Socket> = new Set();
  const clients: net.Socket[] = [];
  let seen: InboundRequest[] = [];
  let refusals: number[] = [];
  /** Answers held back by /never, to be given (or not) by the test. */
  let held: ClientResponse[] = [];
  const timers: NodeJS.Timeout[] = [];

  function handler(r: InboundRequest, res: ClientResponse): void {
    // Copied: the body may be a slice of the socket's buffer.
    seen.push({ ...r, body: Buffer.from(r.body) });
    const n = seen.length;
    const url = new URL(r.target, 'http://x');
    const answer = () => res.json(200, JSON.stringify({ n, method: r.method, target: r.target, body: r.body.toString('latin1') }));
    switch (url.pathname) {
      case '/later':
        timers.push(setTimeout(answer, Number(url.searchParams.get('ms') ?? 50)));
        return;
      case '/stream':
        res.head(STREAM_HEAD);
        res.write(Buffer.from('abc'));
        timers.push(
          setTimeout(() => {
            res.write(Buffer.from('defg'));
            res.end();
          }, 20),
        );
        return;
      case '/never':
        held.push(res);
        return;
      default:
        answer();
    }
  }

  async function start(limits: ClientLimits = LIMITS): Promise<number> {
    const made = createHttp1Server(handler, limits, ANSWERS, (status) => refusals.push(status));
    server = made.server;
    sockets = made.sockets;
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return (server.address() as net.AddressInfo).port;
  }

  async function connect(port: number): Promise<RawClient> {
    const socket = net.connect({ host: '127.0.0.1', port });
    clients.push(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  afterEach(async () => {
    for (const t of timers.splice(0)) clearTimeout(t);
    for (const c of clients.splice(0)) c.destroy();
    for (const s of sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = null;
    seen = [];
    refusals = [];
    held = [];
  });

  it('answers three pipelined requests sent in one write in order, the first one slowest', async () => {
    const c = await connect(await start());
    c.send(req('POST', '/later?ms=80', 'one') + req('POST', '/later?ms=10', 'two') + req('GET', '/echo'));
    const answers = await c.answers(3);
    expect(answers.map((a) => [a.status, json(a).n, json(a).target, json(a).body])).toEqual([
      [200, 1, '/later?ms=80', 'one'],
      [200, 2, '/later?ms=10', 'two'],
      [200, 3, '/echo', ''],
    ]);
    expect(seen.map((r) => r.method)).toEqual(['POST', 'POST', 'GET']);
    // Kept alive: a fourth request on the same connection is answered too.
    c.send(req('GET', '/echo?four'));
    expect(json((await c.answers(4))[3]).n).toBe(4);
    expect(c.closed).toBe(false);
  });

  it('gathers a chunked request body sent across several writes into one body', async () => {
    const c = await connect(await start());
    c.send('POST /echo HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel');
    await sleep(20);
    c.send('lo\r\n6;ext=1\r\n world\r\n');
    await sleep(20);
    c.send('0\r\nx-trailer: 1\r\n\r\n');
    const [a] = await c.answers(1);
    expect(a.status).toBe(200);
    expect(json(a).body).toBe('hello world');
    expect(seen).toHaveLength(1);
    expect(seen[0].body.toString()).toBe('hello world');
  });

  it('gathers a content-length body that comes in several writes after its head', async () => {
    const c = await connect(await start());
    c.send('POST /echo HTTP/1.1\r\nhost: test\r\ncontent-length: 11\r\n\r\nhel');
    await sleep(20);
    c.send('lo wo');
    await sleep(20);
    c.send(`rld${req('GET', '/echo?next')}`);
    const answers = await c.answers(2);
    expect(answers.map((a) => json(a).body)).toEqual(['hello world', '']);
    expect(json(answers[1]).target).toBe('/echo?next');
  });

  it('holds pipelined requests larger than a request bound while one is answered, then answers them all', async () => {
    const c = await connect(await start());
    c.send(req('GET', '/later?ms=100'));
    await sleep(20);
    // Each over half of maxHeadBytes + maxBodyBytes: the connection stops reading until the answer before them.
    const big = (i: number) => req('POST', `/echo?${i}`, 'b'.repeat(MAX_BODY), `x-pad: ${'p'.repeat(600)}\r\n`);
    for (let i = 1; i <= 3; i++) {
      c.send(big(i));
      await sleep(10);
    }
    const answers = await c.answers(4);
    expect(answers.map((a) => [a.status, json(a).target])).toEqual([
      [200, '/later?ms=100'],
      [200, '/echo?1'],
      [200, '/echo?2'],
      [200, '/echo?3'],
    ]);
  });

  it('refuses a head over maxHeadBytes with a JSON 431 and closes', async () => {
    const c = await connect(await start());
    c.send(req('GET', '/echo', '', `x-big: ${'h'.repeat(LIMITS.maxHeadBytes)}\r\n`));
    const [a] = await c.answers(1);
    expect(a.status).toBe(431);
    expect(json(a).error).toBe('headers_too_large');
    await c.closedBy();
    expect(seen).toHaveLength(0);
    expect(refusals).toEqual([431]);
  });

  it('answers nothing after a request with Connection: close, even a request pipelined behind it', async () => {
    const c = await connect(await start());
    c.send(req('GET', '/echo?1', '', 'connection: close\r\n') + req('GET', '/echo?2'));
    await c.closedBy();
    expect(parseAnswers(c.data).map((a) => json(a).target)).toEqual(['/echo?1']);
    expect(seen).toHaveLength(1);
  });

  it('closes an HTTP/1.0 connection after its answer, saying so', async () => {
    const c = await connect(await start());
    c.send('GET /echo HTTP/1.0\r\n\r\n');
    const [a] = await c.answers(1);
    expect(a.status).toBe(200);
    expect(a.headers.connection).toBe('close');
    await c.closedBy();
    expect(c.gotEnd).toBe(true);
  });

  it('keeps an HTTP/1.0 connection that asks for keep-alive open, and answers the next request on it', async () => {
    const c = await connect(await start());
    c.send('GET /echo HTTP/1.0\r\nconnection: keep-alive\r\n\r\n');
    const [a] = await c.answers(1);
    expect(a.headers.connection).toBe('keep-alive');
    await sleep(50);
    expect(c.closed).toBe(false);
    c.send('GET /echo?2 HTTP/1.0\r\nconnection: keep-alive\r\n\r\n');
    const answers = await c.answers(2);
    expect(json(answers[1]).n).toBe(2);
  });

  it('answers an HTTP/1.0 client an upstream body of unknown length delimited by the close, never chunked', async () => {
    const c = await connect(await start());
    c.send('GET /stream HTTP/1.0\r\nconnection: keep-alive\r\n\r\n');
    await c.closedBy();
    const [headText, body] = c.data.split('\r\n\r\n');
    expect(headText).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(headText).toContain('\r\nconnection: close');
    expect(headText).not.toMatch(/transfer-encoding|keep-alive/i);
    expect(body).toBe('abcdefg');
  });

  it('re-chunks an upstream body of unknown length for an HTTP/1.1 client, without the upstream hop-by-hop fields', async () => {
    const c = await connect(await start());
    c.send(req('GET', '/stream'));
    const [a] = await c.answers(1);
    expect(a.status).toBe(200);
    expect(a.headers['transfer-encoding']).toBe('chunked');
    expect(a.headers['x-up']).toBe('1');
    expect(a.headers.connection).toBeUndefined();
    expect(a.headers['keep-alive']).toBeUndefined();
    expect(c.data.match(/transfer-encoding/gi)).toHaveLength(1);
    expect(a.body).toBe('abcdefg');
    expect(c.data.endsWith('0\r\n\r\n')).toBe(true);
    expect(c.closed).toBe(false);
  });

  it('closes after the answer when an HTTP/1.1 client sends Connection: close', async () => {
    const c = await connect(await start());
    c.send(req('GET', '/echo', '', 'connection: close\r\n'));
    const [a] = await c.answers(1);
    expect(a.status).toBe(200);
    expect(a.headers.connection).toBe('close');
    await c.closedBy();
    expect(c.gotEnd).toBe(true);
  });

  it('still answers a client that half-closes right after its request, then closes', async () => {
    const port = await start();
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    clients.push(socket);
    const c = new RawClient(socket);
    socket.end(req('POST', '/later?ms=60', 'half'));
    await c.until((x) => x.gotEnd, 'the server to end its side');
    const answers = parseAnswers(c.data);
    expect(answers).toHaveLength(1);
    expect(answers[0].status).toBe(200);
    expect(json(answers[0]).body).toBe('half');
  });

  it('answers a streamed answer whole to a client that half-closed', async () => {
    const port = await start();
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    clients.push(socket);
    const c = new RawClient(socket);
    socket.end(req('GET', '/stream'));
    await c.until((x) => x.gotEnd, 'the server to end its side');
    const answers = parseAnswers(c.data);
    expect(answers.map((a) => a.body)).toEqual(['abcdefg']);
  });

  // BUG: two complete pipelined requests followed by the client's FIN: only the first is answered, the second
  // (already received whole) is dropped without an answer (onEnd in Phase.Busy sets close, answered() then ends).
  it('answers every pipelined request a client sent before half-closing', async () => {
    const port = await start();
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    clients.push(socket);
    const c = new RawClient(socket);
    socket.end(req('POST', '/later?ms=40', 'first') + req('POST', '/echo', 'second'));
    await c.until((x) => x.gotEnd, 'the server to end its side');
    expect(parseAnswers(c.data).map((a) => json(a).body)).toEqual(['first', 'second']);
  });

  it('sends 100 Continue for an expecting body within the limit, then the answer', async () => {
    const c = await connect(await start());
    c.send('POST /echo HTTP/1.1\r\nhost: test\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n');
    await c.until((x) => x.data.length > 0, 'the interim answer');
    expect(c.data).toBe('HTTP/1.1 100 Continue\r\n\r\n');
    expect(seen).toHaveLength(0);
    c.send('hello');
    const answers = await c.answers(2);
    expect(answers.map((a) => a.status)).toEqual([100, 200]);
    expect(json(answers[1]).body).toBe('hello');
  });

  it('refuses an expecting body over the limit with 413 at once, without 100 Continue', async () => {
    const c = await connect(await start());
    c.send(`POST /echo HTTP/1.1\r\nhost: test\r\ncontent-length: ${MAX_BODY + 1}\r\nexpect: 100-continue\r\n\r\n`);
    const [a] = await c.answers(1);
    expect(a.status).toBe(413);
    expect(c.data).not.toContain('100 Continue');
    expect(json(a).error).toBe('payload_too_large');
    await c.closedBy();
    expect(seen).toHaveLength(0);
  });

  it('refuses an Expect other than 100-continue with a JSON 417 and closes', async () => {
    const c = await connect(await start());
    c.send(req('POST', '/echo', 'body', 'expect: something-else\r\n'));
    const [a] = await c.answers(1);
    expect(a.status).toBe(417);
    expect(a.headers['content-type']).toMatch(/^application\/json/);
    expect(a.headers.connection).toBe('close');
    expect(json(a)).toEqual({ error: 'expectation_failed', message: 'unmet expectation' });
    await c.closedBy();
    expect(seen).toHaveLength(0);
    expect(refusals).toEqual([417]);
  });

  it('refuses a malformed request line with a JSON 400 and closes', async () => {
    const c = await connect(await start());
    c.send('GET  /echo HTTP/1.1\r\nhost: test\r\n\r\n');
    const [a] = await c.answers(1);
    expect(a.status).toBe(400);
    expect(a.headers['content-type']).toMatch(/^application\/json/);
    expect(json(a).error).toBe('bad_request');
    await c.closedBy();
    expect(seen).toHaveLength(0);
    expect(refusals).toEqual([400]);
  });

  it('refuses a request with both Content-Length and Transfer-Encoding with 400, forwarding nothing', async () => {
    const c = await connect(await start());
    c.send('POST /echo HTTP/1.1\r\nhost: test\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n');
    const [a] = await c.answers(1);
    expect(a.status).toBe(400);
    expect(json(a).error).toBe('bad_request');
    await c.closedBy();
    expect(seen).toHaveLength(0);
  });

  it('answers HEAD with the length of the body it does not send, then the next pipelined answer right after', async () => {
    const c = await connect(await start());
    c.send(req('HEAD', '/echo') + req('HEAD', '/stream') + req('GET', '/echo?after'));
    await c.until((x) => x.data.includes('/echo?after') && x.data.endsWith('}'), 'the third answer');
    const parts = c.data.split('\r\n\r\n');
    // head 1, head 2, head 3, body 3: no body bytes between the heads.
    expect(parts).toHaveLength(4);
    expect(parts[0]).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    const expectedLength = Buffer.byteLength(JSON.stringify({ n: 1, method: 'HEAD', target: '/echo', body: '' }));
    expect(parts[0]).toContain(`content-length: ${expectedLength}`);
    expect(parts[1]).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(parts[1]).not.toMatch(/transfer-encoding/i);
    expect(parts[2]).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(JSON.parse(parts[3])).toMatchObject({ n: 3, target: '/echo?after' });
  });

  it('serves a slow client that sends its head one byte at a time', async () => {
    const c = await connect(await start());
    const bytes = req('POST', '/echo', 'slow');
    for (const ch of bytes) {
      c.send(ch);
      await sleep(2);
    }
    const [a] = await c.answers(1);
    expect(a.status).toBe(200);
    expect(json(a).body).toBe('slow');
  });

  it('refuses a head still incomplete after headTimeoutMs with 408, even while bytes keep trickling in', async () => {
    const c = await connect(await start({ ...LIMITS, headTimeoutMs: 200 }));
    const started = Date.now();
    for (const ch of 'GET /echo HTTP/1.1\r\nhost: test\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaa') {
      if (c.closed) break;
      c.send(ch);
      await sleep(25);
    }
    await c.closedBy();
    const [a] = parseAnswers(c.data);
    expect(a.status).toBe(408);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(seen).toHaveLength(0);
  });

  it('refuses a client silent mid-head for idleMs with 408', async () => {
    const c = await connect(await start({ ...LIMITS, idleMs: 200 }));
    c.send('GET /echo HTTP/1.1\r\nhost: te');
    await c.closedBy(1500);
    expect(parseAnswers(c.data).map((a) => a.status)).toEqual([408]);
  });

  it('closes an idle kept-alive connection quietly after idleMs', async () => {
    const c = await connect(await start({ ...LIMITS, idleMs: 200 }));
    c.send(req('GET', '/echo'));
    await c.answers(1);
    await c.closedBy(1500);
    expect(parseAnswers(c.data).map((a) => a.status)).toEqual([200]);
  });

  // BUG: a stray CRLF after a request (RFC 9112 2.2 says to skip it) leaves an empty, non-null buffer: the
  // connection then counts as mid-head, so the idle timeout answers an unsolicited 408 instead of closing quietly.
  it('treats a stray CRLF after a request as idle, not as a request begun', async () => {
    const c = await connect(await start({ ...LIMITS, idleMs: 200 }));
    c.send(`${req('POST', '/echo', 'x')}\r\n`);
    await c.answers(1);
    await c.closedBy(1500);
    expect(parseAnswers(c.data).map((a) => a.status)).toEqual([200]);
  });

  // BUG: the same stray CRLF starts the head timer: the next request, sent in two pieces more than headTimeoutMs
  // after it, is refused 408 although its own head took 20 ms.
  it('does not count the wait after a stray CRLF against the next request head', async () => {
    const c = await connect(await start({ ...LIMITS, headTimeoutMs: 150 }));
    c.send(`${req('POST', '/echo', 'x')}\r\n`);
    await c.answers(1);
    await sleep(250);
    const next = req('GET', '/echo?next');
    c.send(next.slice(0, 10));
    await sleep(20);
    c.send(next.slice(10));
    const answers = await c.answers(2);
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
  });

  it('serves the next client after one that left before its answer', async () => {
    const port = await start();
    const gone = await connect(port);
    gone.send(req('GET', '/never'));
    for (const deadline = Date.now() + 2000; held.length === 0; await sleep(5)) {
      if (Date.now() > deadline) throw new Error('the request never reached the handler');
    }
    // A reset, as a client killed mid-request leaves: a FIN alone would be a half-close, still owed its answer.
    gone.socket.resetAndDestroy();
    const deadline = Date.now() + 2000;
    while (!held[0].gone && Date.now() < deadline) await sleep(5);
    expect(held[0].gone).toBe(true);
    // Answering a client that has gone must neither throw nor write anywhere else.
    expect(() => held[0].json(200, '{"late":true}')).not.toThrow();
    const c = await connect(port);
    c.send(req('POST', '/echo', 'next'));
    const [a] = await c.answers(1);
    expect(json(a)).toMatchObject({ n: 2, body: 'next' });
    expect(c.data).not.toContain('late');
  });

  it('accepts a body of exactly maxBodyBytes and refuses one byte more with a JSON 413', async () => {
    const port = await start();
    const ok = await connect(port);
    ok.send(req('POST', '/echo', 'x'.repeat(MAX_BODY)));
    const [a] = await ok.answers(1);
    expect(a.status).toBe(200);
    expect(json(a).body).toBe('x'.repeat(MAX_BODY));

    const over = await connect(port);
    over.send(req('POST', '/echo', 'x'.repeat(MAX_BODY + 1)));
    const [b] = await over.answers(1);
    expect(b.status).toBe(413);
    expect(b.headers['content-type']).toMatch(/^application\/json/);
    expect(json(b)).toEqual({ error: 'payload_too_large', message: 'body too large' });
    await over.closedBy();
    expect(seen).toHaveLength(1);
    expect(refusals).toEqual([413]);
  });

  it('applies maxBodyBytes to chunked bodies too: exactly the limit passes, one more byte is refused', async () => {
    const port = await start();
    const chunked = (n: number) =>
      `POST /echo HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\n${(n - 1).toString(16)}\r\n${'y'.repeat(n - 1)}\r\n1\r\nz\r\n0\r\n\r\n`;
    const ok = await connect(port);
    ok.send(chunked(MAX_BODY));
    const [a] = await ok.answers(1);
    expect(a.status).toBe(200);
    expect(json(a).body).toBe(`${'y'.repeat(MAX_BODY - 1)}z`);
    const over = await connect(port);
    over.send(chunked(MAX_BODY + 1));
    const [b] = await over.answers(1);
    expect(b.status).toBe(413);
    await over.closedBy();
    expect(seen).toHaveLength(1);
  });

  // BUG: a handler that answers synchronously (as the router does for its own refusals) makes answered() call
  // onData() for the next pipelined request inside the current one: ~1000 pipelined requests in one read recurse
  // until "RangeError: Maximum call stack size exceeded", thrown from the socket's 'data' listener (uncaught).
  it('survives many pipelined requests in one write that are answered at once', async () => {
    const c = await connect(await start());
    const n = 3000;
    c.send(req('GET', '/echo').repeat(n));
    await c.until((x) => (x.data.match(/HTTP\/1\.1 200/g) ?? []).length >= n || x.closed, `${n} answers`, 3000);
    expect(parseAnswers(c.data)).toHaveLength(n);
    expect(seen).toHaveLength(n);
  });
});

describe('EmbeddedRouter client side over a fixture upstream', () => {
  let blue: ColorUpstream | null = null;
  let router: EmbeddedRouter | null = null;
  const clients: net.Socket[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await router?.close();
    await blue?.close();
    router = null;
    blue = null;
  });

  async function startRouter(): Promise<RawClient> {
    blue = await startColorUpstream('blue');
    router = await startEmbeddedRouter({
      host: '127.0.0.1',
      port: 0,
      upstreams: { blue: [{ host: '127.0.0.1', port: blue.port }], green: [] },
      initial: { weights: { blue: 100, green: 0 } },
      health: { intervalMs: 100 },
    });
    const socket = net.connect({ host: '127.0.0.1', port: router.port });
    clients.push(socket);
    const c = new RawClient(socket);
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    return c;
  }

  // BUG: same recursion as above through the real router: its 403 for a preview request without the token is
  // answered synchronously, so a client pipelining ~1000 of them in one write overflows the stack (uncaught).
  it('answers a long pipeline of requests the router refuses by itself', async () => {
    const c = await startRouter();
    const n = 3000;
    c.send(req('POST', '/predict', '{}', `${PREVIEW_HEADER}: green\r\n`).repeat(n));
    await c.until((x) => (x.data.match(/HTTP\/1\.1 403/g) ?? []).length >= n || x.closed, `${n} answers`, 3000);
    expect(parseAnswers(c.data).map((a) => a.status)).toEqual(Array(n).fill(403));
    expect(blue!.predicts).toBe(0);
  });

  it('forwards a chunked request body sent in pieces whole, with a content-length and no transfer-encoding', async () => {
    const c = await startRouter();
    const body = '{"alcohol":9.4,"ph":3.51}';
    c.send('POST /predict HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n');
    await sleep(20);
    c.send(`a\r\n${body.slice(0, 10)}\r\n`);
    await sleep(20);
    c.send(`${(body.length - 10).toString(16)}\r\n${body.slice(10)}\r\n0\r\n\r\n`);
    const [a] = await c.answers(1, 5000);
    expect(a.status).toBe(200);
    expect(JSON.parse(a.body)).toEqual({ prediction: 5.5, color: 'blue', echo: { alcohol: 9.4, ph: 3.51 } });
    expect(blue!.lastHeaders?.['content-length']).toBe(String(body.length));
    expect(blue!.lastHeaders?.['transfer-encoding']).toBeUndefined();
  });
});
