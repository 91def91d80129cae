/**
 * The shadow phase's paired comparison, as the controller's PairingPort: reads both colors' prediction rings
 * (prediction-feed.ts), pairs the stable color's live answers with the new color's mirrored ones
 * (release/pairing.ts), and exports the running figures as controller metrics. The last summary, inputs of the
 * largest disagreements included, stays in memory here (the release log records it without them).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Color } from '../config/defaults.js';
import { CONTROLLER_METRICS } from '../config/metric-names.js';
import { PairAccumulator, type PairingLimits, type PairSide, type PairSummary } from '../release/pairing.js';
import type { FeedRead } from './prediction-feed.js';
import type { PairingPort } from './ports.js';

/** What the pairing needs of a feed (PredictionFeed over HTTP; tests may hand in another). */
export interface PredictionReader {
  mark(color: Color): Promise<string[]>;
  read(color: Color): Promise<FeedRead>;
}

class ShadowMetrics {
  private readonly pairs: Counter;
  private readonly agreement: Gauge;
  private readonly classAgreement: Gauge;
  private readonly p95: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.pairs = new Counter({ name: CONTROLLER_METRICS.shadowPairs, help: 'Shadow requests paired by request id.', registers });
    this.agreement = new Gauge({
      name: CONTROLLER_METRICS.shadowAgreement,
      help: "Share of the current shadow comparison's pairs within the agreement tolerance.",
      registers,
    });
    this.classAgreement = new Gauge({
      name: CONTROLLER_METRICS.shadowClassAgreement,
      help: "Share of the current shadow comparison's pairs with the same rounded prediction.",
      registers,
    });
    this.p95 = new Gauge({ name: CONTROLLER_METRICS.shadowAbsDeltaP95, help: 'p95 of |new - stable| over those pairs.', registers });
  }

  show(s: PairSummary, added: number): void {
    this.pairs.inc(added);
    if (s.agreement !== null) this.agreement.set(s.agreement);
    if (s.classAgreement !== null) this.classAgreement.set(s.classAgreement);
    if (s.p95AbsDelta !== null) this.p95.set(s.p95AbsDelta);
  }
}

export interface ShadowPairingOptions {
  feed: PredictionReader;
  registry?: Registry;
  limits?: Partial<PairingLimits>;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

export class ShadowPairing implements PairingPort {
  private readonly metrics: ShadowMetrics | undefined;
  private acc: PairAccumulator | undefined;
  private colors: { stable: Color; target: Color } | undefined;
  private last: PairSummary | undefined;

  constructor(private readonly opts: ShadowPairingOptions) {
    this.metrics = opts.registry ? new ShadowMetrics(opts.registry) : undefined;
  }

  async open(colors: { stable: Color; target: Color }): Promise<void> {
    this.colors = colors;
    this.acc = new PairAccumulator(this.opts.limits);
    this.last = undefined;
    const errors = (await Promise.all([this.opts.feed.mark(colors.stable), this.opts.feed.mark(colors.target)])).flat();
    if (errors.length) this.opts.log?.('prediction rings unreadable as the shadow comparison opened', { errors });
  }

  async summary(): Promise<PairSummary> {
    const { acc, colors } = this;
    if (!acc || !colors) throw new Error('no shadow comparison is open');
    const before = acc.summary().pairs;
    const sides: PairSide[] = ['stable', 'target'];
    const reads = await Promise.all(sides.map((side) => this.opts.feed.read(colors[side])));
    sides.forEach((side, i) => {
      for (const r of reads[i].records) acc.add(side, r);
      acc.addMissed(reads[i].missed);
    });
    const errors = reads.flatMap((r) => r.errors);
    if (errors.length) this.opts.log?.('prediction rings unreadable', { errors });
    const s = acc.summary();
    this.metrics?.show(s, s.pairs - before);
    this.last = s;
    return s;
  }

  /** The latest summary, with the largest disagreements' inputs (memory only). */
  latest(): PairSummary | undefined {
    return this.last;
  }
}
