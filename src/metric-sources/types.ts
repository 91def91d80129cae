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
