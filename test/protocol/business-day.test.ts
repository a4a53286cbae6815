import { describe, expect, it } from 'vitest';
import { businessDate, businessDateOf, businessDayRange, businessDayRangeOf } from '../../protocol/index.js';

describe('the Beijing business day', () => {
  it('starts at 00:00 Beijing (16:00 UTC the day before) and lasts 24 hours', () => {
    expect(businessDayRange('2026-12-01')).toEqual({ from: Date.parse('2026-11-30T16:00:00Z'), to: Date.parse('2026-12-01T16:00:00Z') });
    expect(businessDateOf(Date.parse('2026-11-30T15:59:59.999Z'))).toBe('2026-11-30');
    expect(businessDateOf(Date.parse('2026-11-30T16:00:00Z'))).toBe('2026-12-01');
  });

  it('a string that is no real day is refused, with the reason', () => {
    for (const bad of ['2026-02-30', '2026-13-01', '0099-01-01x', '26-12-01', '2026-1-1']) {
      expect(businessDate.safeParse(bad).success, bad).toBe(false);
      expect(businessDayRangeOf(bad), bad).toBeUndefined();
    }
    expect(businessDate.safeParse('2024-02-29').success).toBe(true);
    expect(() => businessDayRange('2026-02-30')).toThrow(/not a business day/);
  });
});
