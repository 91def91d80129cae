/**
 * The chunked transfer coding (RFC 9112 7.1), decoded as bytes arrive: chunk sizes and extensions are read and
 * dropped, data is handed on as slices of the input (no copy), trailers are read and dropped. Strict where the
 * framing is decided: a line ends in CRLF and nothing else, a size is hex digits only. Extensions and trailers
 * are bounded but not parsed: nothing of them goes further (the body is sent on with a length).
 */

const State = {
  Size: 0,
  /** Whitespace after the size: only more of it, an extension or the CR may follow ("5 6" is not a size). */
  SizeWs: 1,
  Extension: 2,
  SizeLf: 3,
  Data: 4,
  DataCr: 5,
  DataLf: 6,
  TrailerStart: 7,
  TrailerLine: 8,
  TrailerLf: 9,
  LastLf: 10,
  Done: 11,
} as const;
type State = (typeof State)[keyof typeof State];

const CR = 0x0d;
const LF = 0x0a;
/** 13 hex digits stay below 2^52: exact in a double, and far beyond any limit a router enforces. */
const MAX_SIZE_DIGITS = 13;
/** A size line's extensions or a trailer line longer than this is refused, not buffered without end. */
const MAX_LINE = 4096;

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x57;
  if (b >= 0x41 && b <= 0x46) return b - 0x37;
  return -1;
}

export class ChunkedDecoder {
  private state: State = State.Size;
  private size = 0;
  private digits = 0;
  private remaining = 0;
  private line = 0;
  /** Body bytes decoded so far. */
  decoded = 0;

  get done(): boolean {
    return this.state === State.Done;
  }

  /**
   * Decodes buf[start..]: each data slice goes to onData. Returns where the coded body ended in buf (the bytes
   * after it belong to the next message), -1 when it has not ended yet, or 'bad'.
   */
  push(buf: Buffer, start: number, onData: (piece: Buffer) => void): number | 'bad' {
    let i = start;
    const n = buf.length;
    while (i < n) {
      const b = buf[i];
      switch (this.state) {
        case State.Size: {
          const v = hexValue(b);
          if (v >= 0) {
            if (++this.digits > MAX_SIZE_DIGITS) return 'bad';
            this.size = this.size * 16 + v;
            i++;
            break;
          }
          if (this.digits === 0) return 'bad';
          if (b === CR) this.state = State.SizeLf;
          else if (b === 0x3b || b === 0x20 || b === 0x09) {
            this.state = b === 0x3b ? State.Extension : State.SizeWs;
            this.line = 0;
          } else return 'bad';
          i++;
          break;
        }
        case State.SizeWs:
          if (b === CR) this.state = State.SizeLf;
          else if (b === 0x3b) this.state = State.Extension;
          else if ((b !== 0x20 && b !== 0x09) || ++this.line > MAX_LINE) return 'bad';
          i++;
          break;
        case State.Extension:
          if (b === CR) this.state = State.SizeLf;
          else if (b === LF || ++this.line > MAX_LINE) return 'bad';
          i++;
          break;
        case State.SizeLf:
          if (b !== LF) return 'bad';
          i++;
          if (this.size === 0) {
            this.state = State.TrailerStart;
          } else {
            this.remaining = this.size;
            this.state = State.Data;
          }
          this.size = 0;
          this.digits = 0;
          break;
        case State.Data: {
          const take = Math.min(this.remaining, n - i);
          onData(buf.subarray(i, i + take));
          this.decoded += take;
          this.remaining -= take;
          i += take;
          if (this.remaining === 0) this.state = State.DataCr;
          break;
        }
        case State.DataCr:
          if (b !== CR) return 'bad';
          this.state = State.DataLf;
          i++;
          break;
        case State.DataLf:
          if (b !== LF) return 'bad';
          this.state = State.Size;
          i++;
          break;
        case State.TrailerStart:
          if (b === CR) this.state = State.LastLf;
          else if (b === LF) return 'bad';
          else {
            this.state = State.TrailerLine;
            this.line = 1;
          }
          i++;
          break;
        case State.TrailerLine:
          if (b === CR) this.state = State.TrailerLf;
          else if (b === LF || ++this.line > MAX_LINE) return 'bad';
          i++;
          break;
        case State.TrailerLf:
          if (b !== LF) return 'bad';
          this.state = State.TrailerStart;
          i++;
          break;
        case State.LastLf:
          if (b !== LF) return 'bad';
          this.state = State.Done;
          return i + 1;
        case State.Done:
          return i;
      }
    }
    return this.state === State.Done ? i : -1;
  }
}

/** One chunk of the coding around `data` (never empty: an empty chunk ends the body). */
export function chunkHeader(size: number): string {
  return `${size.toString(16)}\r\n`;
}

export const LAST_CHUNK = '0\r\n\r\n';
