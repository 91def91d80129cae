import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { headEnd, headerValue, keepAliveTimeoutSeconds, parseRequestHead, parseResponseHead } from '../../../src/traffic/http1/head.js';

const MAX = 8192;
const bytes = (s: string) => Buffer.from(s, 'latin1');
const req = (s: string, maxBytes = MAX) => parseRequestHead(bytes(s), 0, maxBytes);
const res = (s: string, forHead = false, maxBytes = MAX) => parseResponseHead(bytes(s), 0, maxBytes, forHead);
/** A minimal valid HTTP/1.1 request head with these extra header lines. */
const get = (...lines: string[]) => ['GET / HTTP/1.1', 'Host: a.test', ...lines, '', ''].join('\r\n');
const post = (...lines: string[]) => ['POST /p HTTP/1.1', 'Host: a.test', ...lines, '', ''].join('\r\n');
const answer = (...lines: string[]) => ['HTTP/1.1 200 OK', ...lines, '', ''].join('\r\n');

/** Something the fields below never produce as a name: the parser gives these meaning. */
const SPECIAL = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'expect']);
const TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const token = fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), minLength: 1, maxLength: 12 });
/** Visible ASCII and obs-text: what a field value may hold between its first and last character. */
const visible = fc.oneof(fc.integer({ min: 0x21, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff })).map((c) => String.fromCharCode(c));
const fieldValue = fc
  .array(fc.oneof(visible, visible, fc.constantFrom(' ', '\t')), { maxLength: 20 })
  .map((cs) => cs.join('').replace(/^[ \t]+|[ \t]+$/g, ''));
const ows = fc.constantFrom('', ' ', '\t', '  ', ' \t ');
const field = fc.record({ name: token, before: ows, value: fieldValue, after: ows }).filter((f) => !SPECIAL.has(f.name.toLowerCase()));
const target = fc
  .array(
    fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
    { maxLength: 30 },
  )
  .map((cs) => `/${cs.join('')}`);

interface GeneratedRequest {
  text: string;
  method: string;
  target: string;
  headers: string[];
  length: number;
}

const request = fc
  .record({ method: token, target, fields: fc.array(field, { maxLength: 8 }), length: fc.integer({ min: 0, max: 1e6 }) })
  .map(({ method, target, fields, length }): GeneratedRequest => {
    const lines = [`${method} ${target} HTTP/1.1`, 'Host: h.test'];
    const headers = ['host', 'h.test'];
    for (const f of fields) {
      lines.push(`${f.name}:${f.before}${f.value}${f.after}`);
      headers.push(f.name.toLowerCase(), f.value);
    }
    lines.push(`Content-Length: ${length}`);
    headers.push('content-length', String(length));
    return { text: `${lines.join('\r\n')}\r\n\r\n`, method, target, headers, length };
  });

describe('request heads', () => {
  it('parses the request line, the fields (names lower-cased, values trimmed), the size and the framing', () => {
    const head =
      'POST /predict?x=1 HTTP/1.1\r\nHost: example.test\r\nContent-Type: \t application/json \t\r\nX-Empty:\r\nContent-Length: 12\r\n\r\n';
    expect(req(`${head}{"a":[1,2]}`)).toEqual({
      method: 'POST',
      target: '/predict?x=1',
      minor: 1,
      headers: ['host', 'example.test', 'content-type', 'application/json', 'x-empty', '', 'content-length', '12'],
      size: head.length,
      framing: { kind: 'length', length: 12 },
      keepAlive: true,
      expectContinue: false,
      expectOther: false,
    });
  });

  it('keeps field values with inner spaces, obs-text and repeated names as sent', () => {
    const r = req(get('X-A: one  two', 'x-a: \xe9t\xe9', 'Accept: */*')) as any;
    expect(r.headers).toEqual(['host', 'a.test', 'x-a', 'one  two', 'x-a', '\xe9t\xe9', 'accept', '*/*']);
    expect(headerValue(r.headers, 'x-a')).toBe('one  two');
    expect(headerValue(r.headers, 'accept')).toBe('*/*');
    expect(headerValue(r.headers, 'x-missing')).toBeUndefined();
  });

  it('accepts the asterisk form and any token as a method', () => {
    expect(req('OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n')).toMatchObject({ method: 'OPTIONS', target: '*' });
    expect(req("M-SEARCH!#$%&'*+.^_`|~ /x HTTP/1.1\r\nHost: a\r\n\r\n")).toMatchObject({ method: "M-SEARCH!#$%&'*+.^_`|~", target: '/x' });
  });

  it('parses from `start` and counts size from there: pipelined requests follow each other', () => {
    const first = post('Content-Length: 3');
    const second = get('Connection: close');
    const buf = bytes(`${first}abc${second}`);
    const a = parseRequestHead(buf, 0, MAX) as any;
    expect(a).toMatchObject({ method: 'POST', target: '/p', size: first.length, framing: { kind: 'length', length: 3 } });
    const at = a.size + a.framing.length;
    expect(buf.toString('latin1', a.size, at)).toBe('abc');
    expect(parseRequestHead(buf, at, MAX)).toMatchObject({
      method: 'GET',
      size: second.length,
      keepAlive: false,
      framing: { kind: 'none' },
    });
  });

  it('skips empty lines before the request line, and start + size is still where the body starts', () => {
    const text = `\r\n\r\n${post('Content-Length: 2')}hi`;
    const r = req(text) as any;
    expect(r).toMatchObject({ method: 'POST', target: '/p', framing: { kind: 'length', length: 2 } });
    expect(r.size).toBe(text.length - 2);
    expect(text.slice(r.size)).toBe('hi');
    // Only CRLF pairs are skipped: a lone LF or CR before the request line is not an empty line.
    expect(req(`\n${get()}`)).toBe('bad');
    expect(req(`\r${get()}`)).toBe('bad');
  });

  it('counts skipped empty lines against the head limit, so endless CRLFs cannot be buffered without end', () => {
    const head = get();
    expect(req(`\r\n${head}`, head.length + 2)).toMatchObject({ size: head.length + 2 });
    expect(req(`\r\n${head}`, head.length + 1)).toBe('too_large');
    expect(req('\r\n'.repeat(100), 200)).toBe('too_large');
    expect(req('\r\n'.repeat(99), 200)).toBe('incomplete');
  });

  it('keeps an HTTP/1.1 connection open unless Connection: close is among its options', () => {
    expect(req(get())).toMatchObject({ minor: 1, keepAlive: true });
    expect(req(get('Connection: close'))).toMatchObject({ keepAlive: false });
    expect(req(get('Connection: upgrade, CLOSE'))).toMatchObject({ keepAlive: false });
    expect(req(get('Connection: keep-alive'))).toMatchObject({ keepAlive: true });
    expect(req(get('Connection: closed'))).toMatchObject({ keepAlive: true });
  });

  it('keeps an HTTP/1.0 connection open only when it asks for keep-alive and does not also say close', () => {
    expect(req('GET / HTTP/1.0\r\n\r\n')).toMatchObject({ minor: 0, keepAlive: false, headers: [] });
    expect(req('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n')).toMatchObject({ minor: 0, keepAlive: true });
    expect(req('GET / HTTP/1.0\r\nConnection: foo , keep-alive\r\n\r\n')).toMatchObject({ keepAlive: true });
    expect(req('GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n')).toMatchObject({ keepAlive: false });
    // HTTP/1.0 has no Host requirement, but one Host is still allowed.
    expect(req('GET / HTTP/1.0\r\nHost: a\r\n\r\n')).toMatchObject({ minor: 0, headers: ['host', 'a'] });
  });

  it('frames a body by length, by chunked coding, or not at all', () => {
    expect(req(get())).toMatchObject({ framing: { kind: 'none' } });
    expect(req(post('Content-Length: 0'))).toMatchObject({ framing: { kind: 'none' } });
    expect(req(post('Content-Length: 0017'))).toMatchObject({ framing: { kind: 'length', length: 17 } });
    expect(req(post('Content-Length: 999999999999999'))).toMatchObject({ framing: { kind: 'length', length: 999999999999999 } });
    expect(req(post('Transfer-Encoding: chunked'))).toMatchObject({ framing: { kind: 'chunked' } });
    expect(req(post('Transfer-Encoding: Chunked'))).toMatchObject({ framing: { kind: 'chunked' } });
    expect(req(post('Transfer-Encoding: gzip, chunked'))).toMatchObject({ framing: { kind: 'chunked' } });
    expect(req(post('Transfer-Encoding: gzip', 'Transfer-Encoding: chunked'))).toMatchObject({ framing: { kind: 'chunked' } });
    // Empty list elements are allowed in a list (RFC 9110 5.6.1).
    expect(req(post('Transfer-Encoding: , chunked'))).toMatchObject({ framing: { kind: 'chunked' } });
  });

  it('takes a list of identical lengths, or the same length twice, as one length', () => {
    expect(req(post('Content-Length: 5, 5'))).toMatchObject({ framing: { kind: 'length', length: 5 } });
    expect(req(post('Content-Length: 5,5,5'))).toMatchObject({ framing: { kind: 'length', length: 5 } });
    expect(req(post('Content-Length: 5', 'Content-Length: 5'))).toMatchObject({ framing: { kind: 'length', length: 5 } });
    expect(req(post('Content-Length: 5', 'Content-Length: 05'))).toMatchObject({ framing: { kind: 'length', length: 5 } });
  });

  it('tells 100-continue from expectations it cannot meet', () => {
    expect(req(post('Expect: 100-continue', 'Content-Length: 4'))).toMatchObject({ expectContinue: true, expectOther: false });
    expect(req(post('Expect: 100-Continue', 'Content-Length: 4'))).toMatchObject({ expectContinue: true, expectOther: false });
    expect(req(post('Expect: 200-ok'))).toMatchObject({ expectContinue: false, expectOther: true });
    expect(req(post('Expect: 100-continue, foo'))).toMatchObject({ expectContinue: false, expectOther: true });
    expect(req(post('Expect:'))).toMatchObject({ expectContinue: false, expectOther: true });
    expect(req(post())).toMatchObject({ expectContinue: false, expectOther: false });
  });

  it('ignores 100-continue from an HTTP/1.0 client, which would take the interim answer for the final one', () => {
    const r = req('POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n');
    expect(r).toMatchObject({ minor: 0, expectContinue: false, expectOther: false, framing: { kind: 'length', length: 4 } });
  });

  it('gives back what was generated, its size, and its length, for any valid request', () => {
    fc.assert(
      fc.property(request, fc.uint8Array({ maxLength: 20 }), (g, after) => {
        const buf = Buffer.concat([bytes(g.text), after]);
        expect(parseRequestHead(buf, 0, MAX)).toEqual({
          method: g.method,
          target: g.target,
          minor: 1,
          headers: g.headers,
          size: g.text.length,
          framing: g.length === 0 ? { kind: 'none' } : { kind: 'length', length: g.length },
          keepAlive: true,
          expectContinue: false,
          expectOther: false,
        });
      }),
    );
  });

  it('is incomplete for every proper prefix of a valid request head', () => {
    fc.assert(
      fc.property(request, (g) => {
        const buf = bytes(g.text);
        for (let n = 0; n < buf.length; n++) expect(parseRequestHead(buf.subarray(0, n), 0, MAX)).toBe('incomplete');
        expect(parseRequestHead(buf, 0, MAX)).toMatchObject({ size: buf.length });
      }),
      { numRuns: 50 },
    );
  });

  it('parses the same head wherever it starts in the buffer', () => {
    fc.assert(
      fc.property(request, fc.uint8Array({ maxLength: 40 }), (g, before) => {
        const buf = Buffer.concat([before, bytes(g.text)]);
        const at = parseRequestHead(buf, before.length, MAX);
        expect(at).toEqual(parseRequestHead(bytes(g.text), 0, MAX));
        expect(at).toMatchObject({ size: g.text.length });
      }),
    );
  });

  it('is too_large when the head would exceed maxBytes, blank line included', () => {
    const head = get('X-Pad: 0123456789');
    expect(req(head, head.length)).toMatchObject({ size: head.length });
    expect(req(head, head.length - 1)).toBe('too_large');
    expect(req(`${head}body bytes`, head.length)).toMatchObject({ size: head.length });
  });

  it('is too_large once maxBytes have come without a blank line, incomplete before', () => {
    const partial = `GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ${'x'.repeat(100)}`;
    expect(req(partial, partial.length + 1)).toBe('incomplete');
    expect(req(partial, partial.length)).toBe('too_large');
    expect(req(partial.slice(0, 50), 50)).toBe('too_large');
    // Three of the four bytes of the blank line are in: one more could still fit.
    expect(req(`${partial}\r\n\r`, partial.length + 4)).toBe('incomplete');
    expect(req(`${partial}\r\n\r`, partial.length + 3)).toBe('too_large');
  });

  const smuggling: [string, string][] = [
    ['Content-Length and Transfer-Encoding', post('Content-Length: 5', 'Transfer-Encoding: chunked')],
    ['Transfer-Encoding and Content-Length', post('Transfer-Encoding: chunked', 'Content-Length: 5')],
    ['an empty Transfer-Encoding beside a Content-Length', post('Transfer-Encoding: ', 'Content-Length: 5')],
    ['an empty Transfer-Encoding', post('Transfer-Encoding:')],
    ['two different lengths in a list', post('Content-Length: 5, 6')],
    ['two different lengths in two fields', post('Content-Length: 5', 'Content-Length: 6')],
    ['an empty length', post('Content-Length:')],
    ['a length with an empty list element', post('Content-Length: 5,')],
    ['a signed length', post('Content-Length: +5')],
    ['a negative length', post('Content-Length: -1')],
    ['a hex length', post('Content-Length: 0x5')],
    ['a fractional length', post('Content-Length: 5.0')],
    ['an exponent length', post('Content-Length: 1e3')],
    ['a length with an inner space', post('Content-Length: 5 5')],
    ['a length of 16 digits', post('Content-Length: 1000000000000000')],
    ['a length padded with a no-break space', post('Content-Length: 5,\xa05')],
    ['a coding other than chunked', post('Transfer-Encoding: gzip')],
    ['chunked before another coding', post('Transfer-Encoding: chunked, gzip')],
    ['chunked before another coding in a later field', post('Transfer-Encoding: chunked', 'Transfer-Encoding: gzip')],
    ['chunked twice', post('Transfer-Encoding: chunked, chunked')],
    // Valid whitespace, but refused by node's parser: a framing two parsers read differently is refused.
    ['a tab after chunked', post('Transfer-Encoding: chunked\t')],
    ['a tab before chunked', post('Transfer-Encoding:\tchunked')],
    ['chunked twice in two fields', post('Transfer-Encoding: chunked', 'Transfer-Encoding: chunked')],
    ['chunked in HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ['a space before the colon', post('Content-Length : 5')],
    ['a tab before the colon', post('Content-Length\t: 5')],
    ['an obs-fold line (space)', post('X-A: 1', ' folded')],
    ['an obs-fold line (tab)', post('X-A: 1', '\tTransfer-Encoding: chunked')],
    ['whitespace before the first field', 'GET / HTTP/1.1\r\n Host: a\r\n\r\n'],
    ['a bare LF between fields', post('X-A: 1\nContent-Length: 5')],
    ['a bare LF ending a value', post('X-A: 1\n')],
    ['a bare LF starting a value', post('X-A:\nTransfer-Encoding: chunked')],
    ['a bare LF in a name', post('X\nA: 1')],
    ['a bare LF in the request line', 'GET / HTTP/1.1\nHost: a\r\n\r\n'],
    ['a bare CR inside a value', post('X-A: 1\r2')],
    ['a bare CR ending a value', post('X-A: 1\r')],
    ['a bare CR starting a value', post('X-A:\r1')],
    ['a bare CR in the request line', 'GET /\r HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a NUL in a value', post('X-A: a\x00b')],
    ['a NUL ending a value', post('X-A: a\x00')],
    ['a DEL in a value', post('X-A: a\x7fb')],
    ['a vertical tab around a value', post('X-A: \x0ba')],
    ['a form feed around a value', post('X-A: a\x0c')],
    ['a field without a colon', post('X-A')],
    ['a field without a name', post(': 1')],
    ['a name that is not a token', post('X@A: 1')],
    ['a name with obs-text', post('X-\xe9: 1')],
    ['no Host in HTTP/1.1', 'GET / HTTP/1.1\r\nAccept: */*\r\n\r\n'],
    ['two Hosts', post('Host: b.test')],
    ['two Hosts in HTTP/1.0', 'GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n'],
    ['a method that is not a token', 'GE(T / HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a method with obs-text', 'G\xc9T / HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['no method', ' / HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['two spaces after the method', 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a space in the target', 'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a tab as separator', 'GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['an absolute-form target', 'GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n'],
    ['an authority-form target', 'CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n'],
    ['an empty target', 'GET  HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['HTTP/2.0', 'GET / HTTP/2.0\r\nHost: a\r\n\r\n'],
    ['HTTP/1.2', 'GET / HTTP/1.2\r\nHost: a\r\n\r\n'],
    ['HTTP/0.9 style', 'GET /\r\nHost: a\r\n\r\n'],
    ['a lower-case version', 'GET / http/1.1\r\nHost: a\r\n\r\n'],
    ['a space after the version', 'GET / HTTP/1.1 \r\nHost: a\r\n\r\n'],
  ];

  it.each(smuggling)('refuses %s', (_why, text) => {
    expect(req(text)).toBe('bad');
    // Refused wherever it starts, after a message it follows.
    expect(parseRequestHead(bytes(`${get()}${text}`), get().length, MAX)).toBe('bad');
  });

  it('accepts the well-formed neighbours of the refused shapes', () => {
    expect(req(post('Content-Length: 5'))).toMatchObject({ framing: { kind: 'length', length: 5 } });
    expect(req(post('X-A:1'))).toMatchObject({ headers: ['host', 'a.test', 'x-a', '1'] });
    expect(req(post('X-A: \x80\xff'))).toMatchObject({ headers: ['host', 'a.test', 'x-a', '\x80\xff'] });
    expect(req(post('X-A: a\tb'))).toMatchObject({ headers: ['host', 'a.test', 'x-a', 'a\tb'] });
    expect(req(post('X-A: \xa0a\xa0'))).toMatchObject({ headers: ['host', 'a.test', 'x-a', '\xa0a\xa0'] });
    expect(req('GET / HTTP/1.1\r\nHost:\r\n\r\n')).toMatchObject({ headers: ['host', ''] });
  });
});

describe('headEnd', () => {
  it('finds the end of the blank line from start, or says why not', () => {
    const buf = bytes('xxGET / HTTP/1.1\r\nHost: a\r\n\r\nrest');
    expect(headEnd(buf, 2, MAX)).toBe(buf.indexOf('rest'));
    expect(headEnd(buf, 2, 27)).toBe(buf.indexOf('rest'));
    expect(headEnd(buf, 2, 26)).toBe('too_large');
    expect(headEnd(buf.subarray(0, 20), 2, MAX)).toBe('incomplete');
    expect(headEnd(buf.subarray(0, 20), 2, 18)).toBe('too_large');
  });
});

describe('response heads', () => {
  it('parses the status line, the fields, the size and a length', () => {
    const head = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n';
    expect(res(`${head}abc`)).toEqual({
      status: 200,
      statusLine: 'HTTP/1.1 200 OK',
      minor: 1,
      headers: ['content-type', 'application/json', 'content-length', '3'],
      size: head.length,
      framing: { kind: 'length', length: 3 },
      keepAlive: true,
    });
  });

  it('reads the idle timeout a server announces in Keep-Alive, and nothing from anything else', () => {
    const announced = (value: string | null) => keepAliveTimeoutSeconds(value === null ? [] : ['keep-alive', value]);
    expect(announced('timeout=5')).toBe(5);
    expect(announced('timeout=72')).toBe(72);
    expect(announced('max=100, timeout=2')).toBe(2);
    expect(announced('Timeout = 3')).toBe(3);
    expect(announced(null)).toBeUndefined();
    expect(announced('max=100')).toBeUndefined();
    expect(announced('timeout=soon')).toBeUndefined();
    expect(announced('xtimeout=5')).toBeUndefined();
  });

  it('keeps the status line as sent, reason phrase and all', () => {
    expect(res('HTTP/1.1 404 Not  Found \xe9\tx\r\nContent-Length: 0\r\n\r\n')).toMatchObject({
      status: 404,
      statusLine: 'HTTP/1.1 404 Not  Found \xe9\tx',
      framing: { kind: 'none' },
    });
    expect(res('HTTP/1.1 204\r\n\r\n')).toMatchObject({ status: 204, statusLine: 'HTTP/1.1 204' });
    expect(res('HTTP/1.1 500 \r\nContent-Length: 0\r\n\r\n')).toMatchObject({ status: 500, statusLine: 'HTTP/1.1 500 ' });
    expect(res('HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n')).toMatchObject({ status: 999 });
    expect(parseResponseHead(bytes(`xyz${answer('Content-Length: 0')}`), 3, MAX, false)).toMatchObject({
      status: 200,
      size: answer('Content-Length: 0').length,
    });
  });

  it('frames a body by length, by chunked coding, or by the close of the connection', () => {
    expect(res(answer('Content-Length: 10'))).toMatchObject({ framing: { kind: 'length', length: 10 }, keepAlive: true });
    expect(res(answer('Content-Length: 10, 10'))).toMatchObject({ framing: { kind: 'length', length: 10 } });
    expect(res(answer('Content-Length: 0'))).toMatchObject({ framing: { kind: 'none' }, keepAlive: true });
    expect(res(answer('Transfer-Encoding: chunked'))).toMatchObject({ framing: { kind: 'chunked' }, keepAlive: true });
    expect(res(answer('Transfer-Encoding: gzip, chunked'))).toMatchObject({ framing: { kind: 'chunked' }, keepAlive: true });
    expect(res(answer())).toMatchObject({ framing: { kind: 'close' }, keepAlive: false });
    expect(res(answer('Connection: keep-alive'))).toMatchObject({ framing: { kind: 'close' }, keepAlive: false });
    // Coded but not chunked: nothing says where it ends but the close (RFC 9112 6.3).
    expect(res(answer('Transfer-Encoding: gzip'))).toMatchObject({ framing: { kind: 'close' }, keepAlive: false });
    expect(res(answer('Transfer-Encoding:'))).toMatchObject({ framing: { kind: 'close' }, keepAlive: false });
  });

  it('has no body for HEAD, 1xx, 204 and 304, whatever the fields declare', () => {
    expect(res(answer('Content-Length: 10'), true)).toMatchObject({ framing: { kind: 'none' }, keepAlive: true });
    expect(res(answer('Transfer-Encoding: chunked'), true)).toMatchObject({ framing: { kind: 'none' }, keepAlive: true });
    expect(res(answer(), true)).toMatchObject({ framing: { kind: 'none' }, keepAlive: true });
    expect(res('HTTP/1.1 100 Continue\r\n\r\n')).toMatchObject({ status: 100, framing: { kind: 'none' }, keepAlive: true });
    expect(res('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n')).toMatchObject({ status: 103, framing: { kind: 'none' } });
    expect(res('HTTP/1.1 204 No Content\r\n\r\n')).toMatchObject({ status: 204, framing: { kind: 'none' }, keepAlive: true });
    expect(res('HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n')).toMatchObject({ status: 304, framing: { kind: 'none' } });
    expect(res('HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n')).toMatchObject({ framing: { kind: 'none' }, keepAlive: false });
    // Not a body-less status: read to the close.
    expect(res('HTTP/1.1 205 Reset Content\r\n\r\n')).toMatchObject({ framing: { kind: 'close' }, keepAlive: false });
  });

  it('keeps the connection by version and Connection options', () => {
    expect(res(answer('Connection: close', 'Content-Length: 1'))).toMatchObject({
      keepAlive: false,
      framing: { kind: 'length', length: 1 },
    });
    expect(res('HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n')).toMatchObject({ minor: 0, keepAlive: false });
    expect(res('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n')).toMatchObject({ minor: 0, keepAlive: true });
    expect(res('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n')).toMatchObject({ framing: { kind: 'close' }, keepAlive: false });
  });

  const badResponses: [string, string][] = [
    ['a two-digit status', 'HTTP/1.1 20 OK\r\n\r\n'],
    ['a four-digit status', 'HTTP/1.1 2000 OK\r\n\r\n'],
    ['a status below 100', 'HTTP/1.1 099 Odd\r\n\r\n'],
    ['a status that is not digits', 'HTTP/1.1 2x0 OK\r\n\r\n'],
    ['no space before the reason', 'HTTP/1.1 200OK\r\n\r\n'],
    ['two spaces before the status', 'HTTP/1.1  200 OK\r\n\r\n'],
    ['HTTP/2', 'HTTP/2 200 OK\r\n\r\n'],
    ['HTTP/1.2', 'HTTP/1.2 200 OK\r\n\r\n'],
    ['a lower-case version', 'http/1.1 200 OK\r\n\r\n'],
    ['another protocol', 'ICY 200 OK\r\n\r\n'],
    ['a NUL in the reason', 'HTTP/1.1 200 O\x00K\r\n\r\n'],
    ['a bare CR in the reason', 'HTTP/1.1 200 O\rK\r\nContent-Length: 0\r\n\r\n'],
    ['a bare LF in the reason', 'HTTP/1.1 200 O\nK\r\nContent-Length: 0\r\n\r\n'],
    ['leading empty lines', '\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'],
    ['Content-Length and Transfer-Encoding', answer('Content-Length: 3', 'Transfer-Encoding: chunked')],
    ['two different lengths', answer('Content-Length: 3', 'Content-Length: 4')],
    ['a non-decimal length', answer('Content-Length: 0x3')],
    ['chunked before another coding', answer('Transfer-Encoding: chunked, gzip')],
    ['chunked twice', answer('Transfer-Encoding: chunked, chunked')],
    ['chunked in HTTP/1.0', 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ['a space before the colon', answer('Content-Length : 3')],
    ['an obs-fold line', answer('X-A: 1', ' 2', 'Content-Length: 0')],
    ['a bare LF starting a value', answer('X-A:\nContent-Length: 0')],
    ['a bare CR ending a value', answer('Content-Length: 0\r')],
    ['a NUL in a value', answer('X-A: \x00', 'Content-Length: 0')],
  ];

  it.each(badResponses)('refuses %s', (_why, text) => {
    expect(res(text)).toBe('bad');
  });

  it('refuses a bad framing even when the status has no body', () => {
    expect(res('HTTP/1.1 204 No Content\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n')).toBe('bad');
    expect(res(answer('Content-Length: 1', 'Transfer-Encoding: chunked'), true)).toBe('bad');
  });

  it('is incomplete for every proper prefix of a valid response head, too_large past maxBytes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 100, max: 999 }), fc.array(field, { maxLength: 6 }), (status, fields) => {
        const lines = [`HTTP/1.1 ${status} Reason`, ...fields.map((f) => `${f.name}:${f.before}${f.value}${f.after}`)];
        const text = `${lines.join('\r\n')}\r\nContent-Length: 7\r\n\r\n`;
        const buf = bytes(text);
        for (let n = 0; n < buf.length; n++) expect(parseResponseHead(buf.subarray(0, n), 0, MAX, false)).toBe('incomplete');
        const bodyless = status < 200 || status === 204 || status === 304;
        expect(parseResponseHead(buf, 0, MAX, false)).toEqual({
          status,
          statusLine: `HTTP/1.1 ${status} Reason`,
          minor: 1,
          headers: [...fields.flatMap((f) => [f.name.toLowerCase(), f.value]), 'content-length', '7'],
          size: buf.length,
          framing: bodyless ? { kind: 'none' } : { kind: 'length', length: 7 },
          keepAlive: true,
        });
        expect(parseResponseHead(buf, 0, buf.length - 1, false)).toBe('too_large');
        expect(parseResponseHead(buf.subarray(0, buf.length - 1), 0, buf.length - 1, false)).toBe('too_large');
      }),
      { numRuns: 50 },
    );
  });
});
