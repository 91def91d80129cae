/**
 * Releases and their events, kept crash-safely in an fsynced append-only JSONL log (no native dependency).
 * Each step of the engine is appended as one write (its new release state, then its events) and fsynced
 * before the controller acts on it, so after a crash the log holds every decision that had effects.
 * A torn last line (power loss mid-write) is cut on open. A damaged line anywhere else (unparsable, or a
 * record of the wrong shape, see record-schema.ts) is skipped, left in the file for a person to inspect,
 * reported as a warning naming the file and line, and kept in `damage`: the stack starts on what is intact
 * rather than not at all.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ReleaseEvent, ReleaseState } from '../release/types.js';
import { checkRecord, type LogRecord } from './record-schema.js';

export type { LogRecord } from './record-schema.js';

/** One skipped line of the log (1-based line number). */
export interface LogDamage {
  line: number;
  problem: string;
}

export interface ReplayResult {
  records: LogRecord[];
  /** Lines that were skipped (never the torn last line). */
  damage: LogDamage[];
  /** Bytes of a torn last line that were dropped. */
  droppedBytes: number;
  /** Length of the intact prefix (everything before a torn last line). */
  validBytes: number;
}

/** Parses a log's bytes: skips damaged lines, reports them, and sets a torn last line apart. */
export function replay(text: string): ReplayResult {
  const records: LogRecord[] = [];
  const damage: LogDamage[] = [];
  let offset = 0;
  for (let line = 1; offset < text.length; line++) {
    const nl = text.indexOf('\n', offset);
    const isLast = nl === -1 || text.slice(nl + 1).trim() === '';
    const raw = text.slice(offset, nl === -1 ? text.length : nl);
    let value: unknown;
    let parsed = nl !== -1;
    try {
      value = JSON.parse(raw);
    } catch {
      parsed = false;
    }
    if (!parsed) {
      // An unterminated or unparsable last line is a write cut short: cut it, as the writer would have.
      if (isLast && raw.trim() !== '') {
        return {
          records,
          damage,
          droppedBytes: Buffer.byteLength(text.slice(offset)),
          validBytes: Buffer.byteLength(text.slice(0, offset)),
        };
      }
      if (raw.trim() !== '') damage.push({ line, problem: `not valid JSON: ${raw.slice(0, 60)}` });
    } else {
      const checked = checkRecord(value);
      if ('record' in checked) records.push(checked.record);
      else damage.push({ line, problem: checked.problem });
    }
    if (nl === -1) break;
    offset = nl + 1;
  }
  return { records, damage, droppedBytes: 0, validBytes: Buffer.byteLength(text) };
}

export interface StoreOpenOptions {
  /** Where warnings about the log go (damaged lines, a cut tail); default: nowhere. */
  onWarning?: (message: string) => void;
}

/**
 * The release log as the controller uses it: every engine step is saved (durably) before it is acted on, and
 * releases and events are read back from it. ReleaseStore is the one on disk.
 */
export interface ReleaseLog {
  /** Appends one engine step (its new state, then its events); returns once it would survive a crash. */
  save(state: ReleaseState, events?: readonly ReleaseEvent[]): void;
  get(id: string): ReleaseState | undefined;
  latest(): ReleaseState | undefined;
  /** Newest first. */
  list(limit?: number): ReleaseState[];
  /** Every event, or one release's, oldest first. */
  events(releaseId?: string): ReleaseEvent[];
  close(): void;
}

export class ReleaseStore implements ReleaseLog {
  private readonly releases = new Map<string, ReleaseState>();
  private readonly order: string[] = [];
  private readonly allEvents: ReleaseEvent[] = [];
  private fd: number;

  private constructor(
    readonly file: string,
    records: LogRecord[],
    /** Bytes of a torn tail dropped when the log was opened (0 normally). */
    readonly recoveredBytes: number,
    /** Lines skipped when the log was opened, oldest first (empty normally). */
    readonly damage: readonly LogDamage[],
  ) {
    for (const r of records) this.apply(r);
    this.fd = fs.openSync(file, 'a');
  }

  static open(file: string, opts: StoreOpenOptions = {}): ReleaseStore {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const existed = fs.existsSync(file);
    const text = existed ? fs.readFileSync(file, 'utf8') : '';
    const { records, damage, droppedBytes, validBytes } = replay(text);
    for (const d of damage) opts.onWarning?.(`release log ${file}:${d.line}: skipped a damaged record (${d.problem})`);
    if (droppedBytes > 0) {
      // Cut the torn tail so the next append starts on a fresh line.
      fs.truncateSync(file, validBytes);
      opts.onWarning?.(`release log ${file}: cut a torn last line (${droppedBytes} bytes, an interrupted write)`);
    }
    const store = new ReleaseStore(file, records, droppedBytes, damage);
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
    const data = `${records.map((r) => JSON.stringify(r)).join('\n')}\n`;
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
    return this.order
      .slice(-limit)
      .reverse()
      .map((id) => this.releases.get(id) as ReleaseState);
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
