import { describe, it, expect } from 'vitest';
import { TrainDataError, checkTargetVaries, chooseColumns } from '../../src/model/columns.js';

const TABLE = ['"house age",floor area,city,price', '10,120,Lyon,5.1', '', '3,80.5,Paris,4.2', '7,95,Lyon,4.9'].join('\n');
const choose = (text: string, target: string, features?: string[], task?: 'regression' | 'classification') =>
  chooseColumns(text, { target, features, task, source: 't.csv' });

describe('chooseColumns', () => {
  it('defaults to every numeric column but the target, in header order, names with spaces kept', () => {
    expect(choose(TABLE, 'price')).toEqual({ features: ['house age', 'floor area'], target: 'price', task: 'regression' });
    expect(choose(TABLE, 'house age')).toEqual({ features: ['floor area', 'price'], target: 'house age', task: 'regression' });
  });

  it('infers a classification from a text target; a numeric target is a class label when asked', () => {
    expect(choose(TABLE, 'city')).toEqual({ features: ['house age', 'floor area', 'price'], target: 'city', task: 'classification' });
    expect(choose(TABLE, 'house age', undefined, 'classification').task).toBe('classification');
    expect(() => choose(TABLE.replace('Paris', ''), 'city')).toThrow(
      /^t\.csv line 4: target "city" is empty \(fill or drop rows with missing labels\)$/,
    );
  });

  it('takes the listed features in the listed order', () => {
    expect(choose(TABLE, 'price', ['floor area', 'house age']).features).toEqual(['floor area', 'house age']);
  });

  it('refuses a text target for a regression, pointing at --task classification', () => {
    expect(() => choose(TABLE, 'city', undefined, 'regression')).toThrow(
      /^t\.csv line 2: target "city" is not numeric: "Lyon" \(a regression needs numbers; a class label needs --task classification\)$/,
    );
  });

  it.each<[string, string, string[] | undefined, RegExp]>([
    ['a missing target', 'rent', undefined, /^t\.csv: no target column "rent" \(columns: house age, floor area, city, price\)$/],
    ['a missing feature', 'price', ['garden'], /^t\.csv: no feature column "garden"/],
    ['a text feature', 'price', ['city'], /^t\.csv line 2: feature "city" is not numeric: "Lyon"$/],
    ['the target as a feature', 'price', ['price'], /"price" is the target: it cannot also be a feature/],
    ['a feature twice', 'price', ['floor area', 'floor area'], /feature "floor area" is listed twice/],
  ])('refuses %s', (_what, target, features, message) => {
    expect(() => choose(TABLE, target, features)).toThrow(TrainDataError);
    expect(() => choose(TABLE, target, features)).toThrow(message);
  });

  it('refuses a numeric column with a hole rather than leaving it out silently, naming the line', () => {
    const holed = TABLE.replace('3,80.5', '3,');
    expect(() => choose(holed, 'price')).toThrow(
      /^t\.csv line 4: feature "floor area" is empty \(fill or drop rows with missing values\)$/,
    );
    // Listed features only: the hole in an unused column does not matter.
    expect(choose(holed, 'price', ['house age']).features).toEqual(['house age']);
  });

  it('refuses ragged rows, a header alone, and a table with no numeric input', () => {
    expect(() => choose(`${TABLE}\n1,2,3`, 'price')).toThrow(/^t\.csv line 6: 3 cells, the header has 4$/);
    expect(() => choose('a,b\n\n', 'b')).toThrow(/^t\.csv: no data rows after the header$/);
    expect(() => choose('name,y\nx,1\nz,2', 'y')).toThrow(/^t\.csv: no numeric column besides the target "y"/);
    expect(() => choose('a,a,y\n1,2,3', 'y')).toThrow(/column "a" appears twice/);
  });
});

describe('checkTargetVaries', () => {
  it('refuses a constant target and accepts any variation', () => {
    expect(() => checkTargetVaries([4, 4, 4], 'price', 't.csv')).toThrow(
      /^t\.csv: target "price" is constant \(4 in every row\): nothing to learn$/,
    );
    expect(() => checkTargetVaries([4, 4, 5], 'price', 't.csv')).not.toThrow();
  });
});
