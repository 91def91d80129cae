/**
 * Checks on paired answers (shadow phase): the stable color's live answer and the new color's answer to the
 * same mirrored request (release/pairing.ts). Where a distribution check sees two histograms, these see each
 * request: a version that answers the same spread of values to the wrong requests fails here only.
 * Without a pairing in the window (a metric source that cannot pair, instances with no prediction ring) they
 * are skipped; with fewer than minSamples pairs they are inconclusive.
 */
import type { PairSummary } from '../pairing-types.js';
import { defineCheck, finding, round, skipForClassifier, UNITS, type SampleRule } from './definition.js';

/** Enough pairs to judge: minSamples, as for every other check. Absent pairs are no sample question (skipped). */
export const pairSamples: SampleRule = ({ pairs }, config) =>
  pairs && pairs.pairs < config.minSamples
    ? { detail: `${pairs.pairs} paired requests < ${config.minSamples} needed`, withThreshold: true }
    : null;

const NOT_PAIRED = 'no paired predictions in this window (the metric source or the instances do not pair)';

const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);

function figures(p: PairSummary): string {
  return `${p.pairs} pairs: ${pct(p.agreement)} within ${p.tolerance}, ${pct(p.classAgreement)} same class, mean |delta| ${round(p.meanAbsDelta ?? 0)}, p95 ${round(p.p95AbsDelta ?? 0)}`;
}

/** Share of paired requests whose two answers differ by more than the agreement tolerance. */
export const pairedDisagreement = defineCheck({
  name: 'paired-disagreement',
  unit: UNITS.ratio,
  thresholds: {
    // 1.1.0 agrees with 1.0.0 on 99.7% of the golden rows: one request in ten answered half a point
    // differently is a model that changed what it says, not a retrained one.
    maxPairedDisagreement: 0.1,
  },
  comparesWithStable: true,
  samples: pairSamples,
  // On class indices "within the tolerance" is "the same class": paired-class-disagreement judges that.
  skip: skipForClassifier,
  threshold: (c) => c.maxPairedDisagreement,
  evaluate({ pairs }, c) {
    if (!pairs || pairs.agreement === null) return finding('skipped', null, null, NOT_PAIRED);
    const share = 1 - pairs.agreement;
    return finding(share <= c.maxPairedDisagreement ? 'pass' : 'fail', share, c.maxPairedDisagreement, figures(pairs));
  },
});

/**
 * Share of paired requests whose rounded answers (the quality class) differ. A classifier's paired answers are
 * its class indices (in the classes' sorted order, the same for two versions trained on the same labels): this is
 * then the share of requests the two versions put in different classes.
 */
export const pairedClassDisagreement = defineCheck({
  name: 'paired-class-disagreement',
  unit: UNITS.ratio,
  thresholds: {
    // A retrained model moves answers near a class boundary across it: 1.1.0 changes the class of 8% of the
    // golden rows. A quarter of requests changing grade is a different model.
    maxPairedClassDisagreement: 0.25,
  },
  comparesWithStable: true,
  samples: pairSamples,
  threshold: (c) => c.maxPairedClassDisagreement,
  evaluate({ pairs }, c) {
    if (!pairs || pairs.classAgreement === null) return finding('skipped', null, null, NOT_PAIRED);
    const share = 1 - pairs.classAgreement;
    return finding(share <= c.maxPairedClassDisagreement ? 'pass' : 'fail', share, c.maxPairedClassDisagreement, figures(pairs));
  },
});

/** 95th percentile of |new - stable| over paired requests. */
export const pairedDeltaP95 = defineCheck({
  name: 'paired-delta-p95',
  unit: UNITS.delta,
  thresholds: {
    // The agreement tolerance: 95% of requests within half a quality point (1.1.0: 0.23 on the golden rows).
    maxPairedDeltaP95: 0.5,
  },
  comparesWithStable: true,
  samples: pairSamples,
  skip: skipForClassifier,
  threshold: (c) => c.maxPairedDeltaP95,
  evaluate({ pairs }, c) {
    if (!pairs || pairs.p95AbsDelta === null) return finding('skipped', null, null, NOT_PAIRED);
    const p95 = pairs.p95AbsDelta;
    const worst = pairs.largest[0];
    const detail = `${figures(pairs)}${worst ? `; largest ${round(worst.stable)} -> ${round(worst.target)} (id ${worst.id})` : ''}`;
    return finding(p95 <= c.maxPairedDeltaP95 ? 'pass' : 'fail', p95, c.maxPairedDeltaP95, detail);
  },
});
