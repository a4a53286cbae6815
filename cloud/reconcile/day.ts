import { beijingTimestamp } from '../gateway/alipay/requests.js';

/**
 * The wallets' business day: a calendar day in Beijing time (UTC+8; China keeps no daylight saving,
 * so every day is 24 hours). Both wallets cut their bills at Beijing midnight, whatever the
 * timezone of the machine that runs the reconciliation.
 */
export interface BusinessDay {
  /** yyyy-MM-dd, as `--date` takes it and Alipay's bill_date names it. */
  date: string;
  /** 00:00:00 Beijing, epoch ms. */
  start: number;
  /** The next day's 00:00:00 Beijing (exclusive). */
  end: number;
}

const BEIJING_OFFSET_MS = 8 * 3_600_000;
const DAY_MS = 86_400_000;

/** `yyyy-MM-dd` → the day; undefined for anything that is not a real calendar day (2026-02-30 included). */
export function businessDay(date: string): BusinessDay | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const utc = Date.UTC(y, mo - 1, d);
  // Date.UTC rolls 2026-02-30 over into March, and maps years 0–99 to 1900–1999: what does not come back is no day.
  const back = new Date(utc);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) return undefined;
  const start = utc - BEIJING_OFFSET_MS;
  return { date, start, end: start + DAY_MS };
}

/** WeChat's bill_date form of the day: yyyyMMdd. */
export function wechatBillDate(day: BusinessDay): string {
  return day.date.replaceAll('-', '');
}

/** "2026-01-01 08:00:00" (Beijing): how the report shows a moment, the way the bills write it. */
export function beijingTime(epochMs: number): string {
  return beijingTimestamp(epochMs);
}
