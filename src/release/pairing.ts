/**
 * Paired shadow comparison (pure): during a shadow phase the router mirrors live requests to the new color, and
 * both answers to one request carry the same request id. Records of both colors come in (in any order, in
 * pieces); each stable live answer is paired with the new color's mirror answer to the same id, and the pairs
 * are summarised: agreement within a tolerance and on the rounded quality class, mean and p95 |delta|, and the
 * largest disagreements with their inputs. Memory is bounded whatever the traffic: unmatched halves wait in
 * capped maps, deltas and a sample of the pairs are kept as capped reservoirs, disagreements as a short top list.
 */
import { AGREEMENT_TOLERANCE } from './defaults.js';
import type { Disagreement, PairSummary, PredictionRecord } from './pairing-types.js';

/** Which half of a pair a record can be: the stable color's live answer, or the new color's mirror answer. */
export type PairSide = 'stable' | 'target';

/** The source each side's records must carry to be paired (others, e.g. preview, never pair). */
export const SIDE_SOURCE: Record<PairSide, string> = { stable: 'live', target: 'mirror' };

export type { Disagreement, PairSummary, PredictionRecord } from './pairing-types.js';

export interface PairingLimits {
  tolerance: number;
  /** Unmatched halves kept per side; the oldest is dropped beyond it. */
  maxPending: number;
  /** Deltas kept for the p95 (a uniform reservoir sample beyond it). */
  maxDeltas: number;
  /** Ids remembered per side to recognise duplicates. */
  maxSeen: number;
  /** Largest disagreements kept. */
  maxLargest: number;
  /** Pairs kept as [stable, new] for the status page's scatter (a uniform reservoir sample beyond it). */
  maxSample: number;
}

export const DEFAULT_PAIRING_LIMITS: PairingLimits = {
  tolerance: AGREEMENT_TOLERANCE,
  // A few seconds of mirrored traffic at thousands of requests a second: both halves of a request arrive within
  // one or two pulls (500 ms apart), so a half waiting longer has lost its other half.
  maxPending: 10_000,
  // The p95 of 10,000 deltas is within a fraction of a percentile of the exact one.
  maxDeltas: 10_000,
  maxSeen: 20_000,
  maxLargest: 10,
  // Enough points to see the cloud around the diagonal, few enough to send to the page every two seconds.
  maxSample: 500,
};

/** The sides' pending halves, each id's first record only. */
class Pending {
  private readonly waiting = new Map<string, PredictionRecord>();
  private readonly seen = new Set<string>();
  dropped = 0;

  constructor(private readonly limits: PairingLimits) {}

  /** False when the id was seen already on this side. */
  remember(id: string): boolean {
    if (this.seen.has(id)) return false;
    this.seen.add(id);
    if (this.seen.size > this.limits.maxSeen) this.seen.delete(this.seen.values().next().value as string);
    return true;
  }

  take(id: string): PredictionRecord | undefined {
    const r = this.waiting.get(id);
    if (r) this.waiting.delete(id);
    return r;
  }

  put(r: PredictionRecord): void {
    this.waiting.set(r.id, r);
    if (this.waiting.size > this.limits.maxPending) {
      this.waiting.delete(this.waiting.keys().next().value as string);
      this.dropped++;
    }
  }

  get size(): number {
    return this.waiting.size;
  }
}

/** Folds records of both sides into pairs and their statistics, in bounded memory. */
export class PairAccumulator {
  private readonly limits: PairingLimits;
  private readonly pending: Record<PairSide, Pending>;
  private pairs = 0;
  private agree = 0;
  private sameClass = 0;
  private deltaSum = 0;
  private readonly deltas: number[] = [];
  private readonly sampled: Array<[number, number]> = [];
  private largest: Disagreement[] = [];
  private duplicates = 0;
  private missed = 0;

  /** `random`: the reservoir's source of randomness (tests pass a seeded one). */
  constructor(
    limits: Partial<PairingLimits> = {},
    private readonly random: () => number = Math.random,
  ) {
    this.limits = { ...DEFAULT_PAIRING_LIMITS, ...limits };
    this.pending = { stable: new Pending(this.limits), target: new Pending(this.limits) };
  }

  /** Records the instances overwrote before they were read. */
  addMissed(n: number): void {
    this.missed += n;
  }

  add(side: PairSide, record: PredictionRecord): void {
    if (record.source !== SIDE_SOURCE[side] || !Number.isFinite(record.prediction)) return;
    const own = this.pending[side];
    if (!own.remember(record.id)) {
      this.duplicates++;
      return;
    }
    const other = this.pending[side === 'stable' ? 'target' : 'stable'].take(record.id);
    if (!other) {
      own.put(record);
      return;
    }
    const [stable, target] = side === 'stable' ? [record, other] : [other, record];
    this.pair(stable, target);
  }

  private pair(stable: PredictionRecord, target: PredictionRecord): void {
    const delta = Math.abs(target.prediction - stable.prediction);
    this.pairs++;
    this.deltaSum += delta;
    if (delta <= this.limits.tolerance) this.agree++;
    if (Math.round(target.prediction) === Math.round(stable.prediction)) this.sameClass++;
    this.keep(this.deltas, delta, this.limits.maxDeltas);
    // A reservoir rather than the latest pairs: the scatter shows the same population as the agreement beside it.
    this.keep(this.sampled, [stable.prediction, target.prediction], this.limits.maxSample);
    const smallest = this.largest.at(-1);
    if (delta > 0 && (this.largest.length < this.limits.maxLargest || (smallest && delta > smallest.delta))) {
      const d = { id: stable.id, stable: stable.prediction, target: target.prediction, delta, input: stable.input };
      this.largest = [...this.largest, d].sort((a, b) => b.delta - a.delta).slice(0, this.limits.maxLargest);
    }
  }

  /** Reservoir sampling (Vitter's algorithm R): every pair so far is kept with the same probability. */
  private keep<T>(reservoir: T[], value: T, max: number): void {
    if (reservoir.length < max) reservoir.push(value);
    else {
      const j = Math.floor(this.random() * this.pairs);
      if (j < max) reservoir[j] = value;
    }
  }

  summary(): PairSummary {
    const n = this.pairs;
    return {
      pairs: n,
      tolerance: this.limits.tolerance,
      agreement: n ? this.agree / n : null,
      classAgreement: n ? this.sameClass / n : null,
      meanAbsDelta: n ? this.deltaSum / n : null,
      p95AbsDelta: quantile(this.deltas, 0.95),
      unpaired: {
        stable: this.pending.stable.size + this.pending.stable.dropped,
        target: this.pending.target.size + this.pending.target.dropped,
      },
      duplicates: this.duplicates,
      missed: this.missed,
      largest: this.largest.map((d) => ({ ...d })),
      sample: this.sampled.map(([a, b]) => [a, b]),
    };
  }

  /** What this accumulator holds in memory, for the bounded-memory guarantee. */
  footprint(): { pending: number; deltas: number; largest: number; sample: number } {
    return {
      pending: this.pending.stable.size + this.pending.target.size,
      deltas: this.deltas.length,
      largest: this.largest.length,
      sample: this.sampled.length,
    };
  }
}

/** Nearest-rank quantile; null for no values. */
export function quantile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** Pairs two lists of records at once (a window's records already gathered). */
export function pairRecords(
  stable: readonly PredictionRecord[],
  target: readonly PredictionRecord[],
  limits: Partial<PairingLimits> = {},
): PairSummary {
  const acc = new PairAccumulator(limits);
  for (const r of stable) acc.add('stable', r);
  for (const r of target) acc.add('target', r);
  return acc.summary();
}

/**
 * The summary as the release log records it: the disagreements without their inputs, and without the sample
 * (both stay in memory: the log keeps verdicts, not hundreds of points per analysis window).
 */
export function withoutInputs(s: PairSummary): PairSummary {
  const { sample: _sample, ...rest } = s;
  return { ...rest, largest: s.largest.map(({ input: _input, ...d }) => d) };
}
