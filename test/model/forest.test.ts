import { describe, it, expect } from 'vitest';
import {
  type FlatForest,
  LEAF,
  serializeForest,
  deserializeForest,
  forestProblem,
  predictScaledRow,
  ForestFormatError,
} from '../../src/model/forest.js';

/** Two stumps on 2 features: tree 0 splits x0 <= 0.5, tree 1 splits x1 <= -1. */
function stumps(): FlatForest {
  return {
    nTrees: 2,
    nFeatures: 2,
    treeOffsets: Int32Array.from([0, 3, 6]),
    feature: Int32Array.from([0, LEAF, LEAF, 1, LEAF, LEAF]),
    threshold: Float64Array.from([0.5, 0, 0, -1, 0, 0]),
    left: Int32Array.from([1, -1, -1, 4, -1, -1]),
    right: Int32Array.from([2, -1, -1, 5, -1, -1]),
    value: Float64Array.from([0, 1, 3, 0, 10, 20]),
  };
}

describe('FlatForest', () => {
  it('goes left when x <= threshold and averages the trees', () => {
    const f = stumps();
    expect(predictScaledRow(f, [0.5, -1])).toBe((1 + 10) / 2);
    expect(predictScaledRow(f, [0.5000001, -0.9])).toBe((3 + 20) / 2);
  });

  it('round-trips through forest.bin exactly', () => {
    const f = stumps();
    const bin = serializeForest(f);
    expect(bin.subarray(0, 8).toString('ascii')).toBe('BGFOREST');
    expect(bin.length).toBe(24 + 4 * 3 + 12 * 6 + 16 * 6);
    const back = deserializeForest(bin);
    expect(back).toEqual(f);
  });

  it('refuses a wrong magic, version, length or structure', () => {
    const bin = serializeForest(stumps());
    const badMagic = Buffer.from(bin);
    badMagic.write('XXXXXXXX', 0, 'ascii');
    expect(() => deserializeForest(badMagic)).toThrow(/not a forest file/);
    const badVersion = Buffer.from(bin);
    badVersion.writeUInt32LE(99, 8);
    expect(() => deserializeForest(badVersion)).toThrow(/unsupported forest file version 99/);
    expect(() => deserializeForest(bin.subarray(0, bin.length - 1))).toThrow(/header implies/);
    expect(() => deserializeForest(bin.subarray(0, 10))).toThrow(ForestFormatError);
    const cyclic = stumps();
    cyclic.left[3] = 0; // points into tree 0 and backwards
    expect(forestProblem(cyclic)).toMatch(/node 3 of tree 1/);
    expect(() => serializeForest(cyclic)).toThrow(/invalid forest/);
    const badFeature = stumps();
    badFeature.feature[0] = 2;
    expect(forestProblem(badFeature)).toMatch(/feature 2, outside 0..1/);
  });
});
