import { businessDayRangeOf } from '../../protocol/index.js';
import { beijingTimestamp } from '../gateway/alipay/requests.js';

/** The wallets' business day (protocol/business-day.ts) as the reconciliation uses it. */
export interface BusinessDay {
  /** yyyy-MM-dd, as `--date` takes it and Alipay's bill_date names it. */
  date: string;
  /** 00:00:00 Beijing, epoch ms. */
  start: number;
  /** The next day's 00:00:00 Beijing (exclusive). */
  end: number;
}

/** `yyyy-MM-dd` → the day; undefined for anything that is not a real calendar day (2026-02-30 included). */
export function businessDay(date: string): BusinessDay | undefined {
  const range = businessDayRangeOf(date);
  return range && { date, start: range.from, end: range.to };
}

/** WeChat's bill_date form of the day: yyyyMMdd. */
export function wechatBillDate(day: BusinessDay): string {
  return day.date.replaceAll('-', '');
}

/** "2026-01-01 08:00:00" (Beijing): how the report shows a moment, the way the bills write it. */
export function beijingTime(epochMs: number): string {
  return beijingTimestamp(epochMs);
}
