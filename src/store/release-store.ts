/**
 * Releases and their events, kept crash-safely in an fsynced append-only JSONL log (no native dependency).
 * Each step of the engine is appended as one write (its new release state, then its events) and fsynced
 * before the controller acts on it, so after a crash the log holds every decision that had effects.
 * A torn last line (power loss mid-write) is dropped on open; damage anywhere else is reported, not guessed at.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ReleaseEvent, ReleaseState } from '../release/types.js';

export type LogRecord = { kind: 'release'; state: ReleaseState } | { kind: 'event'; event: ReleaseEvent };

export class StoreError extends Error {}

export interface ReplayResult {
  records: LogRecord[];
  /** Bytes of a torn last line that were dropped. */
  droppedBytes: number;
  /** Length of the intact prefix. */
  validBytes: number;
}

/** Parses a log's bytes; tolerates only a torn (unterminated or unparsable) last line. */
export function replay(text: string): ReplayResult {
  const records: LogRecord[] = [];
  let offset = 0;
  while (offset < text.length) {
    const nl = text.indexOf('\n', offset);
    const isLast = nl === -1 || text.slice(nl + 1).trim() === '';
    const line = text.slice(offset, nl === -1 ? text.length : nl);
    let parsed: LogRecord | null = null;
    try {
      const value = JSON.parse(line) as LogRecord;
      if (nl !== -1 && (value?.kind === 'release' || value?.kind === 'event')) parsed = value;
    } catch {
      parsed = null;
    }
    if (parsed === null) {
      if (line.trim() === '' && !isLast) {
        offset = nl + 1;
        continue;
      }
      if (isLast) return { records, droppedBytes: Buffer.byteLength(text.slice(offset)), validBytes: Buffer.byteLength(text.slice(0, offset)) };
      throw new StoreError(`release log is damaged at byte ${Buffer.byteLength(text.slice(0, offset))} (not the last line): ${line.slice(0, 80)}`);
    }
    records.push(parsed);
    offset = nl + 1;
  }
  return { records, droppedBytes: 0, validBytes: Buffer.byteLength(text) };
}

export class ReleaseStore {
  private readonly releases = new Map<string, ReleaseState>();
  private readonly order: string[] = [];
  private readonly allEvents: ReleaseEvent[] = [];
  private fd: number;

  private constructor(
    readonly file: string,
    records: LogRecord[],
    /** Bytes of a torn tail dropped when the log was opened (0 normally). */
    readonly recoveredBytes: number,
  ) {
    for (const r of records) this.apply(r);
    this.fd = fs.openSync(file, 'a');
  }

  static open(file: string): ReleaseStore {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const existed = fs.existsSync(file);
    const text = existed ? fs.readFileSync(file, 'utf8') : '';
    const { records, droppedBytes, validBytes } = replay(text);
    if (droppedBytes > 0) {
      // Cut the torn tail so the next append starts on a fresh line.
      fs.truncateSync(file, validBytes);
    }
    const store = new ReleaseStore(file, records, droppedBytes);
    if (!existed) syncDir(path.dirname(file));
    return store;
  }

  private apply(r: LogRecord): void {
    if (r.kind === 'release') {
      if (!this.releases.has(r.state.spec.id)) this.order.push(r.state.spec.id);
      this.releases.set(r.state.spec.id, r.state);
    } else {
      this.allEvents.push(r.event);
    }
  }

  /** Appends one engine step (state first, then events) durably: returns after fsync. */
  save(state: ReleaseState, events: readonly ReleaseEvent[] = []): void {
    const records: LogRecord[] = [{ kind: 'release', state }, ...events.map((event) => ({ kind: 'event' as const, event }))];
    const data = records.map((r) => JSON.stringify(r)).join('\n') + '\n';
    fs.writeSync(this.fd, data);
    fs.fsyncSync(this.fd);
    for (const r of records) this.apply(r);
  }

  get(id: string): ReleaseState | undefined {
    return this.releases.get(id);
  }

  latest(): ReleaseState | undefined {
    const id = this.order[this.order.length - 1];
    return id === undefined ? undefined : this.releases.get(id);
  }

  /** Newest first. */
  list(limit = 20): ReleaseState[] {
    return this.order.slice(-limit).reverse().map((id) => this.releases.get(id) as ReleaseState);
  }

  events(releaseId?: string): ReleaseEvent[] {
    return releaseId === undefined ? [...this.allEvents] : this.allEvents.filter((e) => e.releaseId === releaseId);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

function syncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  } catch {
    // Some filesystems refuse fsync on directories; the file's own fsync still holds its content.
  }
}
