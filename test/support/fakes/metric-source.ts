/**
 * A metric source in memory: each window is whatever the test's `answer` says for it (numbers, or an error
 * thrown as a real provider would), and every window opened or asked for is kept.
 */
import type { MetricsProvider } from '../../../src/metric-sources/types.js';
import type { WindowStats } from '../../../src/release/types.js';

/** A window's numbers, the error its reading failed with, or a promise (one that never settles: a hung source). */
export type WindowAnswer = (fromMs: number, toMs: number) => WindowStats | Error | Promise<WindowStats>;

export class FakeMetricSource implements MetricsProvider {
  readonly kind = 'scrape' as const;
  readonly opened: number[] = [];
  readonly windows: Array<{ fromMs: number; toMs: number }> = [];

  constructor(public answer: WindowAnswer = () => new Error('no numbers yet')) {}

  async open(fromMs: number): Promise<void> {
    this.opened.push(fromMs);
  }

  async window(fromMs: number, toMs: number): Promise<WindowStats> {
    this.windows.push({ fromMs, toMs });
    const out = this.answer(fromMs, toMs);
    if (out instanceof Error) throw out;
    return await out;
  }
}
