import type { Color } from '../config/defaults.js';
import type { WindowStats } from '../release/types.js';

/**
 * Where the controller gets the numbers the engine judges. Both providers answer the same question:
 * what did each color do between `fromMs` and now.
 */
export interface MetricsProvider {
  readonly kind: 'scrape' | 'prometheus';
  /** A window opens at `fromMs` (now): providers that diff snapshots take their baseline here. */
  open(fromMs: number): Promise<void>;
  /** Statistics of both colors from `fromMs` to `toMs` (now). Throws when the numbers cannot be had. */
  window(fromMs: number, toMs: number): Promise<WindowStats>;
}

/**
 * A window failed because one color's metrics could not be read at all (its /metrics did not answer), as
 * opposed to a metric source that is itself down. The controller treats a lasting one on the new color as that
 * instance being down: a rollback, where any other failure only makes the window unavailable.
 */
export class ColorUnreadableError extends Error {
  constructor(
    readonly color: Color,
    message: string,
  ) {
    super(message);
  }
}
