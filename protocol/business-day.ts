import { z } from 'zod';

/**
 * The wallets' business day: a calendar day in Beijing time (UTC+8; China keeps no daylight saving,
 * so every day is 24 hours). Both wallets cut their bills at Beijing midnight; the register's totals,
 * the back office's report and the morning reconciliation count on the same day, whatever the
 * timezone of the machine.
 */
const BEIJING_OFFSET_MS = 8 * 3_600_000;
const DAY_MS = 86_400_000;

/** [from, to) of a Beijing business day in epoch ms; undefined for anything that is not a real `yyyy-MM-dd` day (2026-02-30 included). */
function dayRange(date: string): { from: number; to: number } | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const utc = Date.UTC(y, mo - 1, d);
  // Date.UTC rolls 2026-02-30 over into March, and maps years 0–99 to 1900–1999: what does not come back is no day.
  const back = new Date(utc);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) return undefined;
  const from = utc - BEIJING_OFFSET_MS;
  return { from, to: from + DAY_MS };
}

/** A business day, `yyyy-MM-dd`. */
export const businessDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'date must be yyyy-MM-dd')
  .refine((d) => dayRange(d) !== undefined, 'date must be a real calendar day');
export type BusinessDate = z.infer<typeof businessDate>;

/** The Beijing business day of an instant. */
export function businessDateOf(epochMs: number): BusinessDate {
  return new Date(epochMs + BEIJING_OFFSET_MS).toISOString().slice(0, 10);
}

/** [from, to) of a Beijing business day in epoch ms; undefined for a string that is no real day. */
export function businessDayRangeOf(date: string): { from: number; to: number } | undefined {
  return dayRange(date);
}

/** [from, to) of a valid business day (one `businessDate` accepted). */
export function businessDayRange(date: BusinessDate): { from: number; to: number } {
  const range = dayRange(date);
  if (!range) throw new RangeError(`${date} is not a business day (yyyy-MM-dd)`);
  return range;
}
