import { describe, it, expect } from 'vitest';
import { formatMetrics, regressionMetrics } from '../../src/model/metrics.js';

describe('regressionMetrics', () => {
  it('computes RMSE, MAE, R² and rounded accuracy', () => {
    const m = regressionMetrics([5, 6, 7, 6], [5.4, 5.4, 7, 6.6]);
    // errors 0.4, -0.6, 0, 0.6 ; mean label 6, total sum of squares 2
    expect(m.rmse).toBeCloseTo(Math.sqrt((0.16 + 0.36 + 0.36) / 4), 12);
    expect(m.mae).toBeCloseTo(1.6 / 4, 12);
    expect(m.r2).toBeCloseTo(1 - 0.88 / 2, 12);
    expect(m.accuracy).toBe(0.5); // 5.4 -> 5 hit, 5.4 -> 5 miss, 7 hit, 6.6 -> 7 miss
    expect(m.rows).toBe(4);
    expect(formatMetrics(m)).toMatch(/rmse\s+0\.4690/);
  });

  it('reports R² 0 for constant labels and refuses bad input', () => {
    expect(regressionMetrics([3, 3], [3, 4]).r2).toBe(0);
    expect(() => regressionMetrics([], [])).toThrow(/zero rows/);
    expect(() => regressionMetrics([1], [1, 2])).toThrow(/1 labels but 2 predictions/);
  });
});
