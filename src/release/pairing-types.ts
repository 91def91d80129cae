/**
 * The vocabulary of the paired shadow comparison (pairing.ts), apart so that the checks and the engine's types
 * can name it without importing the pairing itself (and the defaults it reads).
 */

/** One answer an instance recorded: what it predicted for which input, to a request of which source. */
export interface PredictionRecord {
  id: string;
  prediction: number;
  input: Record<string, number>;
  /** live | preview | mirror (the router's SOURCE_HEADER). */
  source: string;
  at: number;
}

export interface Disagreement {
  id: string;
  stable: number;
  target: number;
  /** |target - stable|. */
  delta: number;
  /** The request's input (kept in memory only: the release log records disagreements without it). */
  input?: Record<string, number>;
}

export interface PairSummary {
  /** Requests answered by both colors and paired. */
  pairs: number;
  /** Two answers agree when within this distance (release/defaults.ts AGREEMENT_TOLERANCE). */
  tolerance: number;
  /** Share of pairs within the tolerance; null without pairs. */
  agreement: number | null;
  /** Share of pairs whose rounded prediction (the quality class) is the same. */
  classAgreement: number | null;
  meanAbsDelta: number | null;
  p95AbsDelta: number | null;
  /** Halves still waiting for (or dropped before) their other half. */
  unpaired: { stable: number; target: number };
  /** Records whose id was already seen on their side (a client reusing ids): ignored, never paired twice. */
  duplicates: number;
  /** Records the instances' rings overwrote before they were read (the controller pulled too late). */
  missed: number;
  /** The largest disagreements, largest first. */
  largest: Disagreement[];
  /**
   * A uniform sample of the pairs as [stable, new] predictions, no inputs: what the status page's scatter draws.
   * In memory only: the release log records the summary without it.
   */
  sample?: Array<[number, number]>;
}
