/**
 * Pure traffic decisions: validating what callers ask for, picking a color per request, sticky hashing and
 * mirror sampling. No I/O here, so both drivers and the control API share one set of rules.
 */
import { COLORS, isColor, otherColor, type Color } from '../config/defaults.js';
import { mirrorConfig, weightsFor } from '../config/traffic-split.js';
import type { MirrorConfig, StickyConfig, TrafficState, Weights } from './types.js';

/** A caller's mistake in a traffic change; the control API answers it with 422 and these details. */
export class TrafficInputError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'TrafficInputError';
  }
}

function isPercent(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 100;
}

/** Whole percents 0..100 for both colors, summing to 100. */
export function validateWeights(input: unknown): Weights {
  const details: Record<string, string> = {};
  const obj = (typeof input === 'object' && input !== null ? input : {}) as Record<string, unknown>;
  for (const color of COLORS) {
    if (!isPercent(obj[color])) details[color] = 'must be a whole number from 0 to 100';
  }
  for (const key of Object.keys(obj)) if (!isColor(key)) details[key] = 'unknown color';
  if (Object.keys(details).length > 0) throw new TrafficInputError('invalid_weights', 'weights are not valid', details);
  const weights = { blue: obj.blue as number, green: obj.green as number };
  if (weights.blue + weights.green !== 100) {
    throw new TrafficInputError('invalid_weights', `weights must sum to 100 (got ${weights.blue + weights.green})`, {
      sum: String(weights.blue + weights.green),
    });
  }
  return weights;
}

/** The color holding all traffic, or null while traffic is split. */
export function activeColor(weights: Weights): Color | null {
  if (weights.blue === 100) return 'blue';
  if (weights.green === 100) return 'green';
  return null;
}

/**
 * Parses CLI words like `blue=90 green=10`; one color alone gets the rest of 100 implied for the other.
 */
export function parseWeightArgs(args: readonly string[]): Weights {
  const given: Partial<Record<Color, number>> = {};
  for (const arg of args) {
    const match = /^(blue|green)=(\d{1,3})%?$/.exec(arg.trim());
    if (!match) throw new TrafficInputError('invalid_weights', `cannot read "${arg}": expected blue=N or green=N`);
    given[match[1] as Color] = Number(match[2]);
  }
  const colors = Object.keys(given) as Color[];
  if (colors.length === 0) throw new TrafficInputError('invalid_weights', 'give at least one of blue=N, green=N');
  if (colors.length === 1) {
    const only = colors[0];
    const value = given[only] as number;
    return validateWeights({ [only]: value, [otherColor(only)]: 100 - value });
  }
  return validateWeights(given);
}

export function validateMirror(input: unknown): MirrorConfig {
  const obj = (typeof input === 'object' && input !== null ? input : {}) as Record<string, unknown>;
  const details: Record<string, string> = {};
  if (obj.target !== null && !isColor(obj.target)) details.target = 'must be "blue", "green" or null';
  if (!isPercent(obj.percent)) details.percent = 'must be a whole number from 0 to 100';
  if (Object.keys(details).length > 0) throw new TrafficInputError('invalid_mirror', 'mirror is not valid', details);
  const target = obj.target as Color | null;
  const percent = obj.percent as number;
  // One spelling for "off", so drivers compare states simply.
  return target === null || percent === 0 ? mirrorConfig(null) : { target, percent };
}

// Names that are safe both as HTTP names and inside nginx variable names ($http_x_user, $cookie_session).
const HEADER_NAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;
const COOKIE_NAME = /^[A-Za-z0-9_]{1,64}$/;

export function validateSticky(input: unknown): StickyConfig | null {
  if (input === null || input === undefined) return null;
  const obj = (typeof input === 'object' ? input : {}) as Record<string, unknown>;
  const { header, cookie } = obj;
  if (typeof header === 'string' && cookie === undefined) {
    if (!HEADER_NAME.test(header)) {
      throw new TrafficInputError('invalid_sticky', 'sticky header name is not valid', { header: 'letters, digits and dashes' });
    }
    return { header: header.toLowerCase() };
  }
  if (typeof cookie === 'string' && header === undefined) {
    if (!COOKIE_NAME.test(cookie)) {
      throw new TrafficInputError('invalid_sticky', 'sticky cookie name is not valid', { cookie: 'letters, digits and underscores' });
    }
    return { cookie };
  }
  throw new TrafficInputError('invalid_sticky', 'sticky needs exactly one of "header" or "cookie", or null');
}

/** A driver's starting state: all on blue, no mirror, no stickiness, unless `initial` says otherwise. */
export function initialState(initial: Partial<Omit<TrafficState, 'generation'>> = {}): TrafficState {
  return {
    weights: initial.weights ? validateWeights(initial.weights) : weightsFor('blue'),
    mirror: initial.mirror ? validateMirror(initial.mirror) : mirrorConfig(null),
    sticky: validateSticky(initial.sticky ?? null),
    generation: 1,
  };
}

/**
 * Smooth weighted round-robin (nginx's algorithm): an exact split over every 100 picks, interleaved rather than
 * in bursts, with no randomness to make a 90/10 test flaky.
 */
export class WeightedPicker {
  private current = { blue: 0, green: 0 };
  private weights: Weights;

  constructor(weights: Weights) {
    this.weights = weights;
  }

  set(weights: Weights): void {
    this.weights = weights;
    this.current = { blue: 0, green: 0 };
  }

  next(): Color {
    const w = this.weights;
    this.current.blue += w.blue;
    this.current.green += w.green;
    const pick: Color = this.current.blue >= this.current.green ? 'blue' : 'green';
    this.current[pick] -= w.blue + w.green;
    return pick;
  }
}

/** FNV-1a, 32 bit: fast, dependency-free and stable across processes and versions. */
export function fnv1a(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * A key's fixed point in [0, 10000); the key is green while its point lies below green's share. Raising green's
 * weight only moves blue keys to green and lowering it only moves green keys back: no key flaps.
 */
export function stickyColor(key: string, weights: Weights): Color {
  const point = fnv1a(key) % 10_000;
  return point < weights.green * 100 ? 'green' : 'blue';
}

/** Reads the sticky key from request headers (lower-cased names, as node gives them); undefined when absent. */
export function stickyKey(sticky: StickyConfig, headers: Record<string, string | string[] | undefined>): string | undefined {
  if (sticky.header !== undefined) {
    const value = headers[sticky.header];
    const key = Array.isArray(value) ? value[0] : value;
    return key === '' ? undefined : key;
  }
  const cookieHeader = headers.cookie;
  if (typeof cookieHeader !== 'string') return undefined;
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === sticky.cookie) {
      const value = part.slice(eq + 1).trim();
      return value === '' ? undefined : value;
    }
  }
  return undefined;
}

/** Picks exactly `percent` of every 100 calls, spread evenly (an error-diffusion accumulator). */
export class ShareSampler {
  private acc = 0;
  constructor(private percent: number) {}

  set(percent: number): void {
    this.percent = percent;
    this.acc = 0;
  }

  take(): boolean {
    if (this.percent <= 0) return false;
    this.acc += this.percent;
    if (this.acc >= 100) {
      this.acc -= 100;
      return true;
    }
    return false;
  }
}

/**
 * Where a request goes: the preferred color unless it is unhealthy while the other one is healthy. A color at
 * weight 0 still takes over then, like nginx's `backup` server: an answer from the idle color beats an error.
 */
export function routeAround(preferred: Color, healthy: (color: Color) => boolean): Color {
  if (healthy(preferred)) return preferred;
  const other = otherColor(preferred);
  return healthy(other) ? other : preferred;
}

/**
 * Upstream answers replayed once on the other color: the instance failed this request and the other one may
 * not (predictions have no side effects, so a replay is safe). The same list is rendered into nginx's
 * `proxy_next_upstream`, so both drivers retry alike. A 4xx is the caller's mistake and is never replayed.
 */
export const RETRY_STATUSES = [500, 502, 503, 504] as const;

export function isRetryStatus(status: number): boolean {
  return (RETRY_STATUSES as readonly number[]).includes(status);
}

/**
 * Answers that say the instance cannot serve right now (bad gateway, unavailable or draining, timed out): the
 * passive health check takes the color out of rotation for its window. A 500 is one request failing inside a
 * running instance (a faulty model version, say): it is retried, but it does not eject the color, because the
 * release analysis judges that version on its own error ratio and needs it to keep its share of traffic;
 * ejecting it on every 500 would starve the analysis into "inconclusive" instead of a rollback.
 */
export function isUnavailableStatus(status: number): boolean {
  return status === 502 || status === 503 || status === 504;
}
