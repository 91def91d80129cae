/**
 * HTTP/1.1 message heads (RFC 9112), parsed strictly from raw bytes: the request line or status line, then the
 * header fields, and how the body is framed. The embedded router reads its clients and its upstreams with this
 * instead of node:http and undici, whose per-message objects and streams cost more than the proxying itself.
 * Anything ambiguous is refused rather than guessed (a request smuggled past a proxy starts with a guess): a
 * bare CR or LF, a space before the colon, an obsolete folded line, both Content-Length and Transfer-Encoding,
 * two different lengths, any coding but a final chunked.
 */

/** How a message's body is delimited. */
export type Framing =
  | { kind: 'none' }
  | { kind: 'length'; length: number }
  | { kind: 'chunked' }
  /** A response read until the connection closes (no length and not chunked). */
  | { kind: 'close' };

interface HeadFields {
  /** Flat [name, value, ...]: names lower-cased, values without surrounding whitespace. */
  headers: string[];
  /** Bytes of the head, the blank line included: where the body starts. */
  size: number;
  framing: Framing;
  /** The connection may carry another message after this one. */
  keepAlive: boolean;
  /** The HTTP/1 minor version: 0 or 1. */
  minor: 0 | 1;
}

export interface RequestHead extends HeadFields {
  method: string;
  target: string;
  /** The client asked for 100 Continue before sending its body. */
  expectContinue: boolean;
  /** An Expect header this parser cannot meet (anything but 100-continue). */
  expectOther: boolean;
}

export interface ResponseHead extends HeadFields {
  status: number;
  /** The status line as sent, without its CRLF: forwarded unchanged. */
  statusLine: string;
}

/** Not a head yet (more bytes needed), or why the bytes can never be one. */
export type HeadProblem = 'incomplete' | 'bad' | 'too_large';

const HEAD_END = Buffer.from('\r\n\r\n');
/** RFC 9110 token characters: method and field names. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/**
 * An origin-form target (/path?query) or the asterisk form, in visible ASCII (RFC 9112 3.2: other bytes are
 * percent-encoded); proxies' absolute form is not asked of a router.
 */
const TARGET = /^(\/[\x21-\x7e]*|\*)$/;
/**
 * Field names as sent, lower-cased once validated: the same few names come on every request, and a map lookup
 * costs less than a token check and a case conversion. Bounded, so a client sending made-up names cannot grow it.
 */
const NAMES = new Map<string, string>();
const MAX_CACHED_NAMES = 1024;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [\t\x20-\x7e\x80-\xff]*)?$/;
const DECIMAL = /^\d{1,15}$/;

/**
 * Where the head starting at `start` ends (the blank line included), or a problem: incomplete while no blank
 * line is in the first `maxBytes`, too_large once `maxBytes` have come without one.
 */
export function headEnd(buf: Buffer, start: number, maxBytes: number): number | HeadProblem {
  const at = buf.indexOf(HEAD_END, start);
  if (at >= 0) return at + 4 - start > maxBytes ? 'too_large' : at + 4;
  return buf.length - start >= maxBytes ? 'too_large' : 'incomplete';
}

export function parseRequestHead(buf: Buffer, start: number, maxBytes: number): RequestHead | HeadProblem {
  const from = start;
  // RFC 9112 2.2: empty lines before a request line are skipped (a client's stray CRLF after a body). They count
  // in size (from + size is where the body starts) and against maxBytes (endless CRLFs are not buffered forever).
  while (buf.length - start >= 2 && buf[start] === 0x0d && buf[start + 1] === 0x0a) start += 2;
  const end = headEnd(buf, start, maxBytes - (start - from));
  if (typeof end !== 'number') return end;
  if (hasForbiddenByte(buf, start, end - 4)) return 'bad';
  const text = buf.toString('latin1', start, end - 4);
  const lines = text.split('\r\n');
  const first = lines[0];
  const sp1 = first.indexOf(' ');
  const sp2 = first.indexOf(' ', sp1 + 1);
  if (sp1 <= 0 || sp2 < 0 || first.indexOf(' ', sp2 + 1) >= 0) return 'bad';
  const method = first.slice(0, sp1);
  const target = first.slice(sp1 + 1, sp2);
  const version = first.slice(sp2 + 1);
  if (!TOKEN.test(method) || !TARGET.test(target)) return 'bad';
  const minor = version === 'HTTP/1.1' ? 1 : version === 'HTTP/1.0' ? 0 : -1;
  if (minor < 0) return 'bad';
  const fields = parseFields(lines, end - from, minor as 0 | 1, false);
  if (fields === 'bad') return 'bad';
  let expectContinue = false;
  let expectOther = false;
  let host = 0;
  const h = fields.headers;
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] === 'host') host++;
    else if (h[i] === 'expect') {
      // RFC 9110 10.1.1: ignored from HTTP/1.0, whose clients know no interim answer.
      if (h[i + 1].toLowerCase() === '100-continue') expectContinue = minor === 1;
      else expectOther = true;
    }
  }
  // RFC 9112 3.2: an HTTP/1.1 request has exactly one Host.
  if ((minor === 1 && host !== 1) || host > 1) return 'bad';
  // A request without length or chunked coding has no body (RFC 9112 6.3).
  if (fields.framing.kind === 'close') fields.framing = { kind: 'none' };
  // Spelled out: spreading `fields` into a new object costs more than the rest of the parse together.
  const { headers, size, framing, keepAlive } = fields;
  return { headers, size, framing, keepAlive, minor: fields.minor, method, target, expectContinue, expectOther };
}

/** `forHead`: the answer to a HEAD request, whose length describes a body that is never sent. */
export function parseResponseHead(buf: Buffer, start: number, maxBytes: number, forHead: boolean): ResponseHead | HeadProblem {
  const end = headEnd(buf, start, maxBytes);
  if (typeof end !== 'number') return end;
  if (hasForbiddenByte(buf, start, end - 4)) return 'bad';
  const text = buf.toString('latin1', start, end - 4);
  const lines = text.split('\r\n');
  const statusLine = lines[0];
  const m = STATUS_LINE.exec(statusLine);
  if (m === null) return 'bad';
  const status = Number(m[2]);
  const fields = parseFields(lines, end - start, m[1] === '1' ? 1 : 0, true);
  if (fields === 'bad') return 'bad';
  // RFC 9112 6.3: these answers end at their head whatever they declare.
  if (forHead || status < 200 || status === 204 || status === 304) fields.framing = { kind: 'none' };
  if (fields.framing.kind === 'close') fields.keepAlive = false;
  const { headers, size, framing, keepAlive, minor } = fields;
  return { headers, size, framing, keepAlive, minor, status, statusLine };
}

function parseFields(lines: string[], size: number, minor: 0 | 1, response: boolean): HeadFields | 'bad' {
  const headers: string[] = [];
  let length = -1;
  let chunked = false;
  let transferEncoding = false;
  let close = false;
  let keepAliveAsked = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(':');
    if (colon <= 0) return 'bad';
    const name = fieldName(line.slice(0, colon));
    if (name === null) return 'bad';
    const value = trimOws(line.slice(colon + 1));
    headers.push(name, value);
    if (name === 'content-length') {
      if (length < 0 && DECIMAL.test(value)) {
        length = Number(value);
        continue;
      }
      // A list of identical lengths is one length (RFC 9110 8.6); anything else is refused.
      for (const part of value.split(',')) {
        const v = trimOws(part);
        if (!DECIMAL.test(v)) return 'bad';
        const n = Number(v);
        if (length >= 0 && length !== n) return 'bad';
        length = n;
      }
    } else if (name === 'transfer-encoding') {
      // Present even when empty: beside a length that is two framings, and alone it frames nothing knowable.
      transferEncoding = true;
      // A tab around a coding is valid whitespace, but node's parser (llhttp) refuses it: a framing two parsers
      // read differently is where request smuggling starts, so it is refused here too.
      if (line.includes('\t', colon)) return 'bad';
      for (const part of value.split(',')) {
        const coding = trimOws(part).toLowerCase();
        if (coding === '') continue;
        // chunked must be the last coding, once (RFC 9112 6.1).
        if (chunked) return 'bad';
        if (coding === 'chunked') chunked = true;
      }
    } else if (name === 'connection') {
      for (const part of value.toLowerCase().split(',')) {
        const option = trimOws(part);
        if (option === 'close') close = true;
        else if (option === 'keep-alive') keepAliveAsked = true;
      }
    }
  }
  if (transferEncoding) {
    if (length >= 0 || minor === 0) return 'bad';
    // A request coded other than chunked has no knowable length (RFC 9112 6.3): refused; a response is read to the close.
    if (!chunked) {
      if (!response) return 'bad';
      return { headers, size, framing: { kind: 'close' }, keepAlive: false, minor };
    }
  }
  const framing: Framing = chunked
    ? { kind: 'chunked' }
    : length > 0
      ? { kind: 'length', length }
      : length === 0
        ? { kind: 'none' }
        : { kind: 'close' };
  const keepAlive = !close && (minor === 1 || keepAliveAsked);
  return { headers, size, framing, keepAlive, minor };
}

/**
 * What no head may hold anywhere: a control character but tab, a CR not followed by LF, an LF not after CR. One
 * pass over the bytes before the head is split into lines at CRLF, so no line needs a check of its own.
 */
function hasForbiddenByte(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const b = buf[i];
    if (b >= 0x20 && b !== 0x7f) continue;
    if (b === 0x09) continue;
    if (b === 0x0d && i + 1 < end && buf[i + 1] === 0x0a) {
      i++;
      continue;
    }
    return true;
  }
  return false;
}

function fieldName(raw: string): string | null {
  const known = NAMES.get(raw);
  if (known !== undefined) return known;
  if (!TOKEN.test(raw)) return null;
  const name = raw.toLowerCase();
  if (NAMES.size < MAX_CACHED_NAMES) NAMES.set(raw, name);
  return name;
}

/**
 * Without the optional whitespace around a value (RFC 9110 5.6.3: spaces and tabs). String.trim would also take a
 * bare CR or LF (a line break to other parsers, a smuggled field), a vertical tab, or obs-text's no-break space.
 */
function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/**
 * The idle time a server says it keeps a connection open for (`Keep-Alive: timeout=N`, RFC 2068 19.7.1.1, sent by
 * node, uvicorn and others), in seconds; undefined when it says nothing or nothing readable.
 */
export function keepAliveTimeoutSeconds(headers: readonly string[]): number | undefined {
  const value = headerValue(headers, 'keep-alive');
  if (value === undefined) return undefined;
  const m = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i.exec(value);
  return m === null ? undefined : Number(m[1]);
}

/** The value of the first header with this lower-case name in a flat list, or undefined. */
export function headerValue(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) return headers[i + 1];
  return undefined;
}
