/**
 * The controller's reader of the instances' prediction rings (GET /admin/predictions, admin token): one cursor
 * per instance URL, so a color of several replicas is read replica by replica and nothing is read twice.
 */
import { request } from 'undici';
import type { Color } from '../config/defaults.js';
import type { PredictionRecord } from '../release/pairing.js';
import { INSTANCE_PROBE_TIMEOUT_MS } from './defaults.js';

/** Each color's instance URLs (every replica), asked afresh on each read so replicas may come and go. */
export type InstanceUrls = (color: Color) => readonly string[] | Promise<readonly string[]>;

export interface PredictionFeedOptions {
  urls: InstanceUrls;
  /** Bearer token of the instances' admin API. */
  token: string;
  /** Pages read per instance and call at most: a ring is read whole in one page (its capacity). */
  maxPages?: number;
}

export interface FeedRead {
  records: PredictionRecord[];
  /** Records the rings overwrote before they were read. */
  missed: number;
  /** Instances that could not be read, with why. */
  errors: string[];
}

interface Page {
  records: PredictionRecord[];
  next: number;
  missed: number;
  /** Records a page holds at most: a shorter page is the last. */
  capacity: number;
}

export class PredictionFeed {
  private readonly cursors = new Map<string, number>();

  constructor(private readonly opts: PredictionFeedOptions) {}

  private async page(url: string, since: number, limit?: number): Promise<Page> {
    const target = new URL('/admin/predictions', url);
    target.searchParams.set('since', String(since));
    if (limit !== undefined) target.searchParams.set('limit', String(limit));
    const res = await request(target, {
      headers: { authorization: `Bearer ${this.opts.token}` },
      headersTimeout: INSTANCE_PROBE_TIMEOUT_MS,
      bodyTimeout: INSTANCE_PROBE_TIMEOUT_MS,
    });
    const body = (await res.body.json()) as Partial<Page> & { message?: string };
    if (res.statusCode !== 200 || !Array.isArray(body.records) || typeof body.next !== 'number') {
      throw new Error(`${res.statusCode} ${body.message ?? 'unexpected answer'}`);
    }
    return { records: body.records, next: body.next, missed: body.missed ?? 0, capacity: body.capacity ?? 0 };
  }

  /** Moves every instance's cursor of `color` to its end: later reads return only what comes after. */
  async mark(color: Color): Promise<string[]> {
    const errors: string[] = [];
    await Promise.all(
      (await this.opts.urls(color)).map(async (url) => {
        try {
          this.cursors.set(url, (await this.page(url, 0, 0)).next);
        } catch (err) {
          errors.push(`${url}: ${(err as Error).message}`);
        }
      }),
    );
    return errors;
  }

  /** What every instance of `color` recorded since its cursor (an instance never marked is read from its oldest). */
  async read(color: Color): Promise<FeedRead> {
    const out: FeedRead = { records: [], missed: 0, errors: [] };
    await Promise.all(
      (await this.opts.urls(color)).map(async (url) => {
        try {
          for (let n = 0; n < (this.opts.maxPages ?? 4); n++) {
            const since = this.cursors.get(url) ?? 0;
            const page = await this.page(url, since);
            this.cursors.set(url, page.next);
            out.missed += page.missed;
            for (const r of page.records) out.records.push(r);
            if (page.records.length < page.capacity) break;
          }
        } catch (err) {
          out.errors.push(`${url}: ${(err as Error).message}`);
        }
      }),
    );
    return out;
  }
}
