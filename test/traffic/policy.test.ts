import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  activeColor,
  isRetryStatus,
  isUnavailableStatus,
  parseWeightArgs,
  routeAround,
  ShareSampler,
  stickyColor,
  stickyKey,
  validateMirror,
  validateSticky,
  validateWeights,
  WeightedPicker,
} from '../../src/traffic/policy.js';

describe('weights', () => {
  it('accepts whole percents summing to 100 and explains what is wrong otherwise', () => {
    expect(validateWeights({ blue: 90, green: 10 })).toEqual({ blue: 90, green: 10 });
    expect(() => validateWeights({ blue: 90, green: 20 })).toThrow(/sum to 100 \(got 110\)/);
    try {
      validateWeights({ blue: 50.5, green: '49.5', red: 0 });
      expect.unreachable();
    } catch (err: any) {
      expect(err.details).toEqual({ blue: expect.any(String), green: expect.any(String), red: 'unknown color' });
    }
  });

  it('reads CLI words, implying the other color', () => {
    expect(parseWeightArgs(['blue=90', 'green=10'])).toEqual({ blue: 90, green: 10 });
    expect(parseWeightArgs(['green=25'])).toEqual({ blue: 75, green: 25 });
    expect(() => parseWeightArgs(['blue=ninety'])).toThrow(/cannot read/);
    expect(() => parseWeightArgs(['green=120'])).toThrow();
  });

  it('names the active color only when one holds everything', () => {
    expect(activeColor({ blue: 0, green: 100 })).toBe('green');
    expect(activeColor({ blue: 50, green: 50 })).toBeNull();
  });

  it('smooth weighted round-robin gives the exact split over every 100 picks', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100 }), (green) => {
        const picker = new WeightedPicker({ blue: 100 - green, green });
        let greens = 0;
        for (let i = 0; i < 100; i++) if (picker.next() === 'green') greens++;
        expect(greens).toBe(green);
      }),
    );
  });
});

describe('sticky hashing', () => {
  it('never moves a green key back to blue while green weight grows', () => {
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 100 }), (key, a, b) => {
        const [low, high] = a <= b ? [a, b] : [b, a];
        if (stickyColor(key, { blue: 100 - low, green: low }) === 'green') {
          expect(stickyColor(key, { blue: 100 - high, green: high })).toBe('green');
        }
      }),
    );
  });

  it('spreads keys roughly by weight', () => {
    let greens = 0;
    for (let i = 0; i < 10_000; i++) if (stickyColor(`user-${i}`, { blue: 80, green: 20 }) === 'green') greens++;
    expect(greens / 10_000).toBeGreaterThan(0.17);
    expect(greens / 10_000).toBeLessThan(0.23);
  });

  it('reads the key from a header or a cookie', () => {
    expect(stickyKey({ header: 'x-user' }, { 'x-user': 'u1' })).toBe('u1');
    expect(stickyKey({ header: 'x-user' }, { 'x-user': '' })).toBeUndefined();
    expect(stickyKey({ cookie: 'sid' }, { cookie: 'a=1; sid=abc ; b=2' })).toBe('abc');
    expect(stickyKey({ cookie: 'sid' }, { cookie: 'sidx=1' })).toBeUndefined();
  });

  it('accepts only names nginx can turn into variables', () => {
    expect(validateSticky({ header: 'X-User' })).toEqual({ header: 'x-user' });
    expect(validateSticky(null)).toBeNull();
    expect(() => validateSticky({ header: 'x user' })).toThrow(/not valid/);
    expect(() => validateSticky({ cookie: 'a-b' })).toThrow(/not valid/);
    expect(() => validateSticky({ header: 'a', cookie: 'b' })).toThrow(/exactly one/);
  });
});

describe('mirror and health', () => {
  it('normalises "off" and validates the target', () => {
    expect(validateMirror({ target: 'green', percent: 0 })).toEqual({ target: null, percent: 0 });
    expect(validateMirror({ target: 'green', percent: 20 })).toEqual({ target: 'green', percent: 20 });
    expect(() => validateMirror({ target: 'red', percent: 20 })).toThrow(/not valid/);
  });

  it('samples exactly the share', () => {
    const s = new ShareSampler(30);
    let taken = 0;
    for (let i = 0; i < 1000; i++) if (s.take()) taken++;
    expect(taken).toBe(300);
  });

  it('routes around an unhealthy color only while the other is healthy', () => {
    expect(routeAround('blue', (c) => c !== 'blue')).toBe('green');
    expect(routeAround('blue', () => false)).toBe('blue');
    expect(routeAround('blue', () => true)).toBe('blue');
  });

  it('retries every 5xx nginx can name; ejects a color on gateway-type answers only, never on a 4xx', () => {
    const codes = [200, 400, 404, 413, 422, 429, 500, 501, 502, 503, 504, 505];
    expect(codes.filter(isRetryStatus)).toEqual([500, 502, 503, 504]);
    expect(codes.filter(isUnavailableStatus)).toEqual([502, 503, 504]);
  });
});
