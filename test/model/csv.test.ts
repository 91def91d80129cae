import { describe, it, expect } from 'vitest';
import { CsvError, formatDataset, parseDataset } from '../../src/model/csv.js';

const opts = { features: ['a', 'b'], target: 'y' };

describe('parseDataset', () => {
  it('reads columns by header name, in feature order, skipping blank lines', () => {
    const d = parseDataset('y,b,extra,a\r\n1,2,x,3\n\n4,5.5e1,x,-.5\n', opts);
    expect(d.nRows).toBe(2);
    expect(Array.from(d.x)).toEqual([3, 2, -0.5, 55]);
    expect(Array.from(d.y!)).toEqual([1, 4]);
  });

  it('accepts quoted header names and a missing target when unlabelled', () => {
    const d = parseDataset('"a","b"\n1,2\n', { ...opts, labelled: false });
    expect(d.y).toBeNull();
    expect(d.target).toBeNull();
  });

  it.each([
    ['a,y\n1,2\n', /f.csv line 1: header lacks "b" \(expected columns: a, b, y; found: a, y\)/],
    ['a,b\n1,2\n', /f.csv line 1: header lacks "y"/],
    ['a,b,y\n1,2,3\n1,x,3\n', /f.csv line 3: column "b" is not a number: "x"/],
    ['a,b,y\n1,,3\n', /f.csv line 2: column "b" is not a number: ""/],
    ['a,b,y\n0x10,1,3\n', /f.csv line 2: column "a" is not a number: "0x10"/],
    ['a,b,y\n1,2,Infinity\n', /f.csv line 2: column "y" is not a number/],
    ['a,b,y\n1,2e999,3\n', /f.csv line 2: column "b" is out of range/],
    ['a,b,y\n1,2\n', /f.csv line 2: 2 cells, the header has 3/],
    ['a,a,b,y\n', /f.csv line 1: column "a" appears twice/],
    ['a,b,y\n', /f.csv: no data rows/],
    ['\n\n', /f.csv: empty CSV/],
  ])('refuses %j', (text, message) => {
    expect(() => parseDataset(text, { ...opts, source: 'f.csv' })).toThrow(CsvError);
    expect(() => parseDataset(text, { ...opts, source: 'f.csv' })).toThrow(message);
  });

  it('formatDataset writes rows that parse back to the same numbers', () => {
    const x = Float64Array.from([0.1 + 0.2, 1e-7, 3, 4]);
    const y = Float64Array.from([5, 6]);
    const text = formatDataset(['a', 'b'], 'y', x, y, [1, 0]);
    const d = parseDataset(text, opts);
    expect(Array.from(d.x)).toEqual([3, 4, 0.1 + 0.2, 1e-7]);
    expect(Array.from(d.y!)).toEqual([6, 5]);
  });
});
