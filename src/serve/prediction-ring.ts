/**
 * The instance's recent answers to requests that carried a request id, in a fixed-size ring: what the release
 * controller pulls during a shadow phase (GET /admin/predictions) to pair the stable color's live answer with
 * the new color's mirrored answer to the same request. Inputs are kept here in memory only, never written out;
 * a record is overwritten once `capacity` newer ones came, so memory stays bounded whatever the traffic.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { REQUEST_ID_HEADER, type TrafficSource } from '../config/defaults.js';

/** Records kept: at 500 ms between the controller's pulls, minutes of the mirrored traffic a test makes, seconds at 8k req/s. */
export const PREDICTION_RING_CAPACITY = 4096;

export interface RecordedPrediction {
  /** Position in this instance's sequence of records: the cursor of GET /admin/predictions. */
  seq: number;
  id: string;
  prediction: number;
  input: Record<string, number>;
  source: TrafficSource;
  at: number;
}

interface Slot {
  id: string;
  prediction: number;
  names: readonly string[];
  values: Float64Array;
  source: TrafficSource;
  at: number;
}

export interface RingPage {
  records: RecordedPrediction[];
  /** The cursor to ask from next time. */
  next: number;
  /** Records overwritten before this read could return them. */
  missed: number;
}

export class PredictionRing {
  private readonly slots: Array<Slot | undefined>;
  /** Records ever written: the next record's seq. */
  private written = 0;

  constructor(readonly capacity: number = PREDICTION_RING_CAPACITY) {
    this.slots = new Array<Slot | undefined>(capacity);
  }

  /**
   * Records the answers to one request when it carries an id (the caller's accepted id: `requestId`). A batch's
   * rows are `<id>#<row>`: the same batch mirrored pairs row by row.
   */
  record(
    headers: IncomingHttpHeaders,
    requestId: string,
    source: TrafficSource,
    names: readonly string[],
    rows: Float64Array,
    values: Float64Array,
  ): void {
    if (headers[REQUEST_ID_HEADER] !== requestId) return;
    const width = names.length;
    const at = Date.now();
    for (let i = 0; i < values.length; i++) {
      const id = values.length === 1 ? requestId : `${requestId}#${i}`;
      this.slots[this.written % this.capacity] = {
        id,
        prediction: values[i],
        names,
        values: rows.slice(i * width, (i + 1) * width),
        source,
        at,
      };
      this.written++;
    }
  }

  /**
   * Records from cursor `since` on, at most `limit`. A cursor beyond what was written (the instance restarted)
   * reads from the oldest record kept. `limit` 0 returns no records and the cursor of the end (to read only
   * what comes next).
   */
  since(since: number, limit: number): RingPage {
    if (limit === 0) return { records: [], next: this.written, missed: 0 };
    const oldest = Math.max(0, this.written - this.capacity);
    const from = since > this.written ? oldest : Math.max(since, oldest);
    const missed = since > this.written ? 0 : Math.max(0, oldest - since);
    const to = Math.min(this.written, from + limit);
    const records: RecordedPrediction[] = [];
    for (let seq = from; seq < to; seq++) {
      const s = this.slots[seq % this.capacity] as Slot;
      const input: Record<string, number> = {};
      for (let j = 0; j < s.names.length; j++) input[s.names[j]] = s.values[j];
      records.push({ seq, id: s.id, prediction: s.prediction, input, source: s.source, at: s.at });
    }
    return { records, next: to, missed };
  }
}
