/**
 * The smoke checks over a color of several replicas (issue 13): every replica of the new color is asked the golden
 * rows; one on another version, or predicting otherwise than its siblings, fails the check, named.
 */
import { describe, expect, it } from 'vitest';
import type { Color } from '../../src/config/defaults.js';
import type { PreviewAnswer, PreviewPort } from '../../src/controller/ports.js';
import { runSmoke } from '../../src/controller/smoke.js';
import { GOOD_BUNDLE } from './bundles.js';

/** Three green replicas answering as told; blue through the router's preview route. */
function preview(replicas: Array<{ version: string; offset?: number }>): PreviewPort & { asked: string[] } {
  const asked: string[] = [];
  const answer = (color: Color, rows: unknown[], version: string, offset = 0): PreviewAnswer => ({
    predictions: rows.map((_, i) => 5 + (i % 3) * 0.1 + offset),
    model: { name: 'wine-quality', version },
    color,
  });
  return {
    asked,
    predictBatch: async (color, rows) => {
      asked.push(`router ${color}`);
      return answer(color, rows, '1.0.0');
    },
    predictEach: async (color, rows) =>
      replicas.map((r, i) => {
        asked.push(`replica ${color} ${i + 1}`);
        return { replica: `127.0.0.1:${9004 + i}`, answer: answer(color, rows, r.version, r.offset) };
      }),
  };
}

describe('runSmoke on every replica', () => {
  it('passes when every replica answers the version with the same predictions', async () => {
    const p = preview([{ version: '1.1.0' }, { version: '1.1.0' }, { version: '1.1.0' }]);
    const result = await runSmoke(p, 'green', 'blue', GOOD_BUNDLE, '1.1.0');
    expect(result.failures).toEqual([]);
    expect(result.ok).toBe(true);
    expect(p.asked.sort()).toEqual(['replica green 1', 'replica green 2', 'replica green 3', 'router blue']);
  });

  it('fails naming a replica on another version', async () => {
    const result = await runSmoke(
      preview([{ version: '1.1.0' }, { version: '1.0.0' }, { version: '1.1.0' }]),
      'green',
      'blue',
      GOOD_BUNDLE,
      '1.1.0',
    );
    expect(result.ok).toBe(false);
    expect(result.failures).toEqual(['green replica 127.0.0.1:9005 answers version 1.0.0, expected 1.1.0']);
  });

  it('fails naming a replica that predicts otherwise than the others', async () => {
    const result = await runSmoke(
      preview([{ version: '1.1.0' }, { version: '1.1.0' }, { version: '1.1.0', offset: 0.5 }]),
      'green',
      'blue',
      GOOD_BUNDLE,
      '1.1.0',
    );
    expect(result.ok).toBe(false);
    expect(result.failures).toEqual(['green replica 127.0.0.1:9006 predicts otherwise than replica 127.0.0.1:9004 on the golden rows']);
  });
});
