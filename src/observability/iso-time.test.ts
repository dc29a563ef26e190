import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createIsoTime } from './iso-time.js';

describe('createIsoTime', () => {
  it('is Date’s ISO text at every millisecond across seconds, in any order', () => {
    const iso = createIsoTime();
    const base = Date.UTC(2026, 10, 30, 3, 24, 19, 0);
    for (let t = base - 2_500; t < base + 2_500; t++) expect(iso(t)).toBe(new Date(t).toISOString());
    for (const t of [base + 999, base, base + 1000, base - 1, base + 9, base + 10, base + 99, base + 100, 0, -1, -1000, -1001]) {
      expect(iso(t), String(t)).toBe(new Date(t).toISOString());
    }
  });

  it('is Date’s ISO text for any time (before 1970, after 9999, fractions of a millisecond), and throws as Date does', () => {
    const iso = createIsoTime();
    fc.assert(
      fc.property(fc.integer({ min: -8.64e15 + 2000, max: 8.64e15 - 2000 }), fc.integer({ min: -1500, max: 1500 }), (t, step) => {
        expect(iso(t)).toBe(new Date(t).toISOString());
        expect(iso(t + step)).toBe(new Date(t + step).toISOString());
        expect(iso(t + 0.5)).toBe(new Date(t + 0.5).toISOString());
      }),
      { numRuns: 3000 },
    );
    expect(() => iso(NaN)).toThrow(RangeError);
    expect(iso(8.64e15)).toBe(new Date(8.64e15).toISOString());
    expect(() => iso(8.64e15 + 1)).toThrow(RangeError);
    expect(iso(-8.64e15)).toBe(new Date(-8.64e15).toISOString());
    expect(() => iso(-8.64e15 - 1)).toThrow(RangeError);
  });
});
