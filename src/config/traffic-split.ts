/**
 * How traffic is split between the colors: one vocabulary for the release engine (what it asks for) and the
 * routers (what they apply), so a release's weights and mirror reach a driver as they are, unconverted. It
 * lives beside the colors rather than in release/ or traffic/ because both import it and neither may depend on
 * the other.
 */
import { otherColor, type Color } from './defaults.js';

/** Share of traffic per color, in whole percent; the two always sum to 100. */
export interface Weights {
  blue: number;
  green: number;
}

/** A router's shadow traffic setting: a share of requests is copied to `target` and its answers are discarded. */
export interface MirrorConfig {
  target: Color | null;
  /** Share of requests copied, whole percent 0..100 (0 when target is null). */
  percent: number;
}

/** A mirror that is on (the release engine's `null` is a mirror that is off). */
export interface Mirror extends MirrorConfig {
  target: Color;
}

/** The one spelling of "no mirror" a router holds, so states compare simply. */
export const MIRROR_OFF: Readonly<MirrorConfig> = Object.freeze({ target: null, percent: 0 });

/** What a router is told for a release's mirror (an active one, or off for `null`). */
export function mirrorConfig(mirror: Mirror | null): MirrorConfig {
  return mirror ?? { ...MIRROR_OFF };
}

/** `percent` of the traffic on `color` and the rest on the other one (all of it by default). */
export function weightsFor(color: Color, percent = 100): Weights {
  const weights = { blue: 0, green: 0 };
  weights[color] = percent;
  weights[otherColor(color)] = 100 - percent;
  return weights;
}
