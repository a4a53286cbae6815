import { formatDecimal } from '../../protocol/index.js';
import { table } from '../reconcile/report.js';
import type { DayFigures } from '../store/store.js';
import { addFigures, ZERO_FIGURES, walletOrder, walletTotals, type Figures } from './totals.js';

/**
 * `scanbox-cloud report`: one merchant's business day for the back office — per store and box, per
 * wallet: paid sales and refunds (count and amount) and the net; then each store's and the
 * merchant's totals, per wallet and over all wallets (`wallet` = "all"). The same figures a box's
 * `totals` line gets (totals.ts), summed. Pure: built from the store's dayFigures rows.
 */
export type ReportLevel = 'box' | 'store' | 'merchant';

export interface ReportLine extends Figures {
  level: ReportLevel;
  /** null on the merchant's lines. */
  storeId: string | null;
  /** null on a store's and the merchant's lines. */
  deviceId: string | null;
  /** A wallet, or "all" on a total over every wallet. */
  wallet: string;
  /** paidAmount − refundAmount (fen). */
  net: number;
}

export interface DayReport {
  merchantId: string;
  /** yyyy-MM-dd, Beijing. */
  date: string;
  currency: 'CNY';
  lines: ReportLine[];
}

export const ALL_WALLETS = 'all';

export function dayReport(merchantId: string, date: string, rows: readonly DayFigures[]): DayReport {
  const lines: ReportLine[] = [];
  const line = (level: ReportLevel, storeId: string | null, deviceId: string | null, wallet: string, f: Figures): ReportLine => ({
    level,
    storeId,
    deviceId,
    wallet,
    paidCount: f.paidCount,
    paidAmount: f.paidAmount,
    refundCount: f.refundCount,
    refundAmount: f.refundAmount,
    net: f.paidAmount - f.refundAmount,
  });
  /** Per wallet, then (for the totals) over all of them. */
  const totals = (level: ReportLevel, storeId: string | null, of: readonly DayFigures[]) => {
    const perWallet = walletTotals(of);
    lines.push(...perWallet.map((w) => line(level, storeId, null, w.wallet, w)));
    lines.push(line(level, storeId, null, ALL_WALLETS, perWallet.reduce<Figures>(addFigures, ZERO_FIGURES)));
  };
  for (const storeId of distinct(rows.map((r) => r.storeId))) {
    const ofStore = rows.filter((r) => r.storeId === storeId);
    for (const deviceId of distinct(ofStore.map((r) => r.deviceId))) {
      const ofBox = ofStore.filter((r) => r.deviceId === deviceId).sort((a, b) => walletOrder(a.wallet, b.wallet));
      lines.push(...ofBox.map((r) => line('box', storeId, deviceId, r.wallet, r)));
    }
    totals('store', storeId, ofStore);
  }
  totals('merchant', null, rows);
  return { merchantId, date, currency: 'CNY', lines };
}

function distinct(values: readonly string[]): string[] {
  return [...new Set(values)].sort();
}

// ── how it is printed ───────────────────────────────────────────────────────────────────────────

const yuan = formatDecimal;

/** For a person: a table, amounts in yuan with two decimals (exact, never a float). */
export function formatDayReport(r: DayReport): string {
  const head = `report ${r.date} (Beijing business day), merchant ${r.merchantId}, amounts in yuan (${r.currency})`;
  const header = ['STORE', 'BOX', 'WALLET', 'PAID', 'PAID AMOUNT', 'REFUNDS', 'REFUNDED', 'NET'];
  const cells = r.lines.map((l) => [
    l.storeId ?? '(merchant)',
    l.level === 'box' ? l.deviceId! : l.level === 'store' ? '(store)' : '',
    l.wallet,
    String(l.paidCount),
    yuan(l.paidAmount),
    String(l.refundCount),
    yuan(l.refundAmount),
    yuan(l.net),
  ]);
  const quiet = r.lines.every((l) => l.paidCount === 0 && l.refundCount === 0) ? ['no paid sale and no refund on this day'] : [];
  return [head, ...quiet, ...table([header, ...cells])].join('\n');
}

const CSV_HEADER = ['date', 'merchant', 'level', 'store', 'device', 'wallet', 'paid_count', 'paid_amount', 'refund_count', 'refund_amount', 'net_amount'];

/** For the back office: one line per report line, amounts in yuan with two decimals; quoted where a field needs it (RFC 4180). */
export function dayReportCsv(r: DayReport): string {
  const rows = r.lines.map((l) => [r.date, r.merchantId, l.level, l.storeId ?? '', l.deviceId ?? '', l.wallet, String(l.paidCount), yuan(l.paidAmount), String(l.refundCount), yuan(l.refundAmount), yuan(l.net)]);
  return [CSV_HEADER, ...rows].map((row) => row.map(csvField).join(',')).join('\r\n') + '\r\n';
}

function csvField(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}
