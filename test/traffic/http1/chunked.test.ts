import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ChunkedDecoder, chunkHeader, LAST_CHUNK } from '../../../src/traffic/http1/chunked.js';

const bytes = (s: string) => Buffer.from(s, 'latin1');

/** Decodes `buf` from `start` in one push: the data handed on, and what push returned. */
function decodeAll(buf: Buffer, start = 0) {
  const d = new ChunkedDecoder();
  const pieces: Buffer[] = [];
  const end = d.push(buf, start, (p) => pieces.push(p));
  return { end, data: Buffer.concat(pieces).toString('latin1'), pieces, decoder: d };
}

/** Feeds `buf` as separate buffers cut at `cuts`: the data, and every push's answer. */
function decodeSplit(buf: Buffer, cuts: number[]) {
  const d = new ChunkedDecoder();
  const pieces: Buffer[] = [];
  const answers: (number | 'bad')[] = [];
  let from = 0;
  for (const to of [...cuts, buf.length]) {
    answers.push(d.push(buf.subarray(from, to), 0, (p) => pieces.push(Buffer.from(p))));
    from = to;
    if (answers.at(-1) !== -1) break;
  }
  return { answers, data: Buffer.concat(pieces), decoder: d };
}

const SAMPLE = '5;ext=1\r\nhello\r\n6 ; a="b;c" ; d\r\nworld!\r\nA\r\n0123456789\r\n0\r\nX-Sum: 1\r\nY:\r\n\r\n';
const SAMPLE_DATA = 'helloworld!0123456789';

describe('ChunkedDecoder', () => {
  it('decodes chunks, dropping extensions and trailers, and says where the coding ended', () => {
    const next = 'GET / HTTP/1.1\r\n';
    const { end, data, decoder } = decodeAll(bytes(SAMPLE + next));
    expect(end).toBe(SAMPLE.length);
    expect(data).toBe(SAMPLE_DATA);
    expect(decoder.decoded).toBe(SAMPLE_DATA.length);
    expect(decoder.done).toBe(true);
  });

  it('hands data on as slices of the input, not copies', () => {
    const buf = bytes('3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n');
    const { pieces } = decodeAll(buf);
    expect(pieces.map((p) => p.toString())).toEqual(['abc', 'de']);
    expect(pieces.every((p) => p.buffer === buf.buffer)).toBe(true);
    expect(pieces.map((p) => p.byteOffset - buf.byteOffset)).toEqual([3, 11]);
  });

  it('starts at `start` and counts the end in the same buffer', () => {
    const before = 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n';
    const coding = '4\r\nWiki\r\n0\r\n\r\n';
    const { end, data } = decodeAll(bytes(`${before}${coding}next`), before.length);
    expect(end).toBe(before.length + coding.length);
    expect(data).toBe('Wiki');
  });

  it('decodes an empty body, upper and lower-case hex, and leading zeros up to 13 digits', () => {
    expect(decodeAll(bytes(LAST_CHUNK))).toMatchObject({ end: 5, data: '' });
    expect(decodeAll(bytes('0;x\r\n\r\n'))).toMatchObject({ end: 7, data: '' });
    expect(decodeAll(bytes(`a\r\n${'x'.repeat(10)}\r\nB\r\n${'y'.repeat(11)}\r\n0\r\n\r\n`))).toMatchObject({
      data: `${'x'.repeat(10)}${'y'.repeat(11)}`,
    });
    expect(decodeAll(bytes('000000000000f\r\n0123456789abcde\r\n0000000000000\r\n\r\n'))).toMatchObject({
      end: 49,
      data: '0123456789abcde',
    });
  });

  it('takes spaces and tabs before an extension, and an extension up to 4096 bytes', () => {
    expect(decodeAll(bytes('2 \t ;a=b\r\nhi\r\n0\r\n\r\n'))).toMatchObject({ data: 'hi' });
    expect(decodeAll(bytes('2 \r\nhi\r\n0\t\r\n\r\n'))).toMatchObject({ data: 'hi' });
    expect(decodeAll(bytes(`2;${'e'.repeat(4096)}\r\nhi\r\n0\r\n\r\n`))).toMatchObject({ data: 'hi' });
    expect(decodeAll(bytes(`2;${'e'.repeat(4097)}\r\nhi\r\n0\r\n\r\n`)).end).toBe('bad');
  });

  it('takes trailer lines up to 4096 bytes and refuses longer ones', () => {
    expect(decodeAll(bytes(`0\r\nx:${'t'.repeat(4094)}\r\n\r\n`))).toMatchObject({ end: 4103, data: '' });
    expect(decodeAll(bytes(`0\r\nx:${'t'.repeat(4095)}\r\n\r\n`)).end).toBe('bad');
  });

  it('counts decoded bytes as they come and is done only after the last CRLF', () => {
    const d = new ChunkedDecoder();
    const seen: string[] = [];
    const on = (p: Buffer) => seen.push(p.toString());
    expect(d.push(bytes('6\r\nabc'), 0, on)).toBe(-1);
    expect(d.decoded).toBe(3);
    expect(d.push(bytes('def\r\n1\r\ng\r\n0\r\n'), 0, on)).toBe(-1);
    expect(d.decoded).toBe(7);
    expect(d.done).toBe(false);
    expect(d.push(bytes('\r'), 0, on)).toBe(-1);
    expect(d.done).toBe(false);
    expect(d.push(bytes('\nNEXT'), 0, on)).toBe(1);
    expect(d.done).toBe(true);
    expect(seen).toEqual(['abc', 'def', 'g']);
    // Done: further bytes are the next message's, untouched.
    expect(d.push(bytes('1\r\nz\r\n'), 2, on)).toBe(2);
    expect(seen).toEqual(['abc', 'def', 'g']);
    expect(d.decoded).toBe(7);
  });

  it('gives the same data and end for every single split point of a coded body', () => {
    const buf = bytes(`${SAMPLE}HTTP/1.1 200 OK`);
    for (let cut = 0; cut <= buf.length; cut++) {
      const { answers, data } = decodeSplit(buf, [cut]);
      expect(data.toString('latin1')).toBe(SAMPLE_DATA);
      if (cut < SAMPLE.length) expect(answers).toEqual([-1, SAMPLE.length - cut]);
      else expect(answers).toEqual([SAMPLE.length]);
    }
  });

  it('decodes random chunks cut anywhere back to the same bytes, leaving the next message alone', () => {
    const ext = fc.constantFrom('', ';a', ';a=b', ' ;q="x;y"', '\t;e', ' ');
    const chunk = fc.record({ data: fc.uint8Array({ minLength: 1, maxLength: 300 }), ext, upper: fc.boolean(), zeros: fc.nat(3) });
    const trailer = fc.constantFrom('X-A: 1', 'Checksum: abc', 'y:');
    fc.assert(
      fc.property(
        fc.array(chunk, { maxLength: 8 }),
        ext,
        fc.array(trailer, { maxLength: 3 }),
        fc.uint8Array({ maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (chunks, lastExt, trailers, next, rawCuts) => {
          const parts: Buffer[] = [];
          for (const c of chunks) {
            const hex = c.data.length.toString(16);
            parts.push(bytes(`${'0'.repeat(c.zeros)}${c.upper ? hex.toUpperCase() : hex}${c.ext}\r\n`), Buffer.from(c.data), bytes('\r\n'));
          }
          parts.push(bytes(`0${lastExt}\r\n${trailers.map((t) => `${t}\r\n`).join('')}\r\n`));
          const coding = Buffer.concat(parts);
          const expected = Buffer.concat(chunks.map((c) => Buffer.from(c.data)));
          const buf = Buffer.concat([coding, next]);
          const cuts = [...new Set(rawCuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);

          // As separate buffers, one per arrival.
          const split = decodeSplit(buf, cuts);
          expect(split.data.equals(expected)).toBe(true);
          expect(split.decoder.decoded).toBe(expected.length);
          expect(split.decoder.done).toBe(true);
          const last = split.answers.at(-1) as number;
          expect(split.answers.slice(0, -1).every((a) => a === -1)).toBe(true);
          const lastFrom = [0, ...cuts][split.answers.length - 1];
          expect(lastFrom + last).toBe(coding.length);

          // As one growing buffer, each push starting where the last one stopped.
          const d = new ChunkedDecoder();
          const got: Buffer[] = [];
          let from = 0;
          let end: number | 'bad' = -1;
          for (const to of [...cuts, buf.length]) {
            end = d.push(buf.subarray(0, to), from, (p) => got.push(Buffer.from(p)));
            from = to;
            if (end !== -1) break;
          }
          expect(end).toBe(coding.length);
          expect(Buffer.concat(got).equals(expected)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('decodes what chunkHeader and LAST_CHUNK encode', () => {
    expect(chunkHeader(1)).toBe('1\r\n');
    expect(chunkHeader(255)).toBe('ff\r\n');
    expect(chunkHeader(4096)).toBe('1000\r\n');
    expect(LAST_CHUNK).toBe('0\r\n\r\n');
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 5000 }), { maxLength: 5 }), (chunks) => {
        const coded = Buffer.concat([
          ...chunks.flatMap((c) => [bytes(chunkHeader(c.length)), Buffer.from(c), bytes('\r\n')]),
          bytes(LAST_CHUNK),
        ]);
        const { end, pieces, decoder } = decodeAll(coded);
        expect(end).toBe(coded.length);
        expect(Buffer.concat(pieces).equals(Buffer.concat(chunks))).toBe(true);
        expect(decoder.decoded).toBe(chunks.reduce((n, c) => n + c.length, 0));
      }),
      { numRuns: 50 },
    );
  });

  const bad: [string, string][] = [
    ['an empty size line', '\r\nabc\r\n0\r\n\r\n'],
    ['a size that is not hex', 'g\r\nabc\r\n0\r\n\r\n'],
    ['a 0x prefix', '0x3\r\nabc\r\n0\r\n\r\n'],
    ['a signed size', '+3\r\nabc\r\n0\r\n\r\n'],
    ['a space before the size', ' 3\r\nabc\r\n0\r\n\r\n'],
    ['a second number after a space', '3 4\r\nabc\r\n0\r\n\r\n'],
    ['a word after a space', '3 x\r\nabc\r\n0\r\n\r\n'],
    ['a size of 14 hex digits', '00000000000003\r\nabc\r\n0\r\n\r\n'],
    ['a size beyond 13 hex digits', 'fffffffffffff0\r\n'],
    ['a bare LF after the size', '3\nabc\r\n0\r\n\r\n'],
    ['a bare CR after the size', '3\rabc\r\n0\r\n\r\n'],
    ['a bare LF in an extension', '3;a\nb\r\nabc\r\n0\r\n\r\n'],
    ['a bare CR in an extension', '3;a\rb\r\nabc\r\n0\r\n\r\n'],
    ['an overlong extension', `3;${'e'.repeat(5000)}\r\nabc\r\n0\r\n\r\n`],
    ['more data than the size', '3\r\nabcd\r\n0\r\n\r\n'],
    ['no CRLF after the data', '3\r\nabc0\r\n\r\n'],
    ['a bare LF after the data', '3\r\nabc\n0\r\n\r\n'],
    ['a bare CR after the data', '3\r\nabc\r0\r\n\r\n'],
    ['a bare LF ending the body', '3\r\nabc\r\n0\r\n\n'],
    ['a bare CR ending the body', '3\r\nabc\r\n0\r\n\rx'],
    ['a bare LF after the last chunk', '0\n\r\n'],
    ['a bare LF ending a trailer', '0\r\nX: 1\n\r\n'],
    ['a bare CR in a trailer', '0\r\nX: 1\rY\r\n\r\n'],
    ['an overlong trailer', `0\r\nX: ${'t'.repeat(5000)}\r\n\r\n`],
  ];

  it.each(bad)('refuses %s, in one buffer or byte by byte', (_why, text) => {
    expect(decodeAll(bytes(text)).end).toBe('bad');
    const buf = bytes(text);
    const cuts = Array.from({ length: buf.length - 1 }, (_, i) => i + 1);
    expect(decodeSplit(buf, cuts).answers.at(-1)).toBe('bad');
  });
});
