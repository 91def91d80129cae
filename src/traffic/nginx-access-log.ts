/**
 * Turns nginx's access log (ACCESS_LOG_FORMAT) back into router metrics, so both drivers export the same
 * request, latency and retry series. nginx flushes its log buffer every second; the reader follows the file.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { COLORS, type Color } from '../config/defaults.js';
import type { RouterMetrics } from './metrics.js';
import { COLOR_UPSTREAM, MIRROR_LOG_FORMAT } from './nginx-config.js';
import type { Upstreams } from './types.js';

export interface AccessRecord {
  /** Colors tried, in order (two when nginx retried or replayed on the other color). */
  attempts: Array<{ color: Color | null; seconds: number | null }>;
  status: number;
}

/**
 * nginx lists attempts with ", " between servers of one upstream and " : " across an internal redirect (a 500
 * replayed through error_page: "500 : 200"). Both are attempts in order; addresses keep their own bare ":".
 */
const ATTEMPT_SEPARATOR = /\s*,\s*|\s+:\s+/;

/** One log line -> record; null for lines that are not ours. */
export function parseAccessLine(line: string, upstreams: Upstreams): AccessRecord | null {
  const parts = line.split('|');
  if (parts.length !== 4) return null;
  const [addrs, , status, times] = parts;
  const code = Number(status);
  if (!Number.isInteger(code)) return null;
  const byAddr = new Map<string, Color>(COLORS.flatMap((c) => upstreams[c].map((u): [string, Color] => [`${u.host}:${u.port}`, c])));
  const timeList = times.split(ATTEMPT_SEPARATOR);
  const attempts =
    addrs === '-'
      ? []
      : addrs.split(ATTEMPT_SEPARATOR).map((addr, i) => {
          const seconds = Number(timeList[i]);
          return { color: byAddr.get(addr.trim()) ?? null, seconds: Number.isFinite(seconds) ? seconds : null };
        });
  return { attempts, status: code };
}

export function recordAccess(rec: AccessRecord, metrics: RouterMetrics): void {
  const last = rec.attempts[rec.attempts.length - 1];
  metrics.request(last?.color ?? 'none', rec.status);
  for (const a of rec.attempts) if (a.color && a.seconds !== null) metrics.upstreamSeconds(a.color, a.seconds);
  const first = rec.attempts[0];
  // Another replica of the same color counts too (from = to), as the embedded router counts it.
  if (rec.attempts.length > 1 && first?.color && last?.color) metrics.retry(first.color, last.color);
}

const MIRROR_TAG = MIRROR_LOG_FORMAT.split('|')[0];

/** A mirrored copy's line (MIRROR_LOG_FORMAT) -> its color and outcome, as the embedded router counts them. */
export function parseMirrorLine(line: string): { color: Color; outcome: 'ok' | 'error' } | null {
  const [tag, upstream, status, ...rest] = line.split('|');
  const color = COLORS.find((c) => COLOR_UPSTREAM[c] === upstream);
  const code = Number(status);
  if (tag !== MIRROR_TAG || rest.length > 0 || !color || !Number.isInteger(code)) return null;
  return { color, outcome: code < 500 ? 'ok' : 'error' };
}

/** Follows the log file from its current end, feeding metrics every interval. */
export class AccessLogFollower {
  private handle: FileHandle | null = null;
  private offset = 0;
  private rest = '';
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  /** The read under way, which close() waits for: closing the handle under it made the read throw (EBADF). */
  private polling: Promise<void> | null = null;

  constructor(
    private readonly file: string,
    /** Replaced when the pools change (setUpstreams), so replicas added later are counted too. */
    public upstreams: Upstreams,
    private readonly metrics: RouterMetrics,
    private readonly intervalMs = 1_000,
  ) {}

  async start(): Promise<void> {
    this.handle = await open(this.file, 'a+');
    this.offset = (await this.handle.stat()).size;
    // A failed read is retried from the same offset at the next tick: router metrics must not take the process down.
    this.timer = setInterval(() => void this.poll().catch(() => undefined), this.intervalMs);
    this.timer.unref();
  }

  /** Reads what was appended since the last poll; close() waits for a poll under way. */
  async poll(): Promise<void> {
    if (!this.handle || this.busy) return;
    this.busy = true;
    const reading = this.readAppended(this.handle);
    this.polling = reading.catch(() => undefined);
    try {
      await reading;
    } finally {
      this.busy = false;
    }
  }

  private async readAppended(handle: FileHandle): Promise<void> {
    const { size } = await handle.stat();
    if (size < this.offset) this.offset = 0; // truncated or rotated in place
    while (this.offset < size) {
      const buf = Buffer.alloc(Math.min(size - this.offset, 1 << 20));
      const { bytesRead } = await handle.read(buf, 0, buf.length, this.offset);
      if (bytesRead === 0) break;
      this.offset += bytesRead;
      const lines = (this.rest + buf.subarray(0, bytesRead).toString('utf8')).split('\n');
      this.rest = lines.pop() ?? '';
      for (const line of lines) {
        const rec = parseAccessLine(line, this.upstreams);
        if (rec) recordAccess(rec, this.metrics);
        const copy = rec ? null : parseMirrorLine(line);
        if (copy) this.metrics.mirror(copy.color, copy.outcome);
      }
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.polling;
    const handle = this.handle;
    this.handle = null;
    await handle?.close();
  }
}
