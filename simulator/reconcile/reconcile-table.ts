import { formatDecimal } from '../../protocol/index.js';
import type { AttemptRow, ReconcileReport } from './reconcile.js';

/**
 * The report as text for a terminal or a CI log: a table of attempts (all of them when few, only
 * the offending ones when many), the mismatches, the notes, the totals and one verdict line.
 */
export interface TableOptions {
  /** Show every attempt up to this many; beyond it only attempts with problems. Default 50. */
  maxRows?: number;
}

const HEADERS = ['outTradeNo', 'saleId', 'amount', 'ledger net', 'cloud', 'device', 'check'];

export function formatReconcileReport(report: ReconcileReport, opts: TableOptions = {}): string {
  const maxRows = opts.maxRows ?? 50;
  const rows = report.rows.length <= maxRows ? report.rows : report.rows.filter((r) => r.problems.length > 0);
  const out = [table([HEADERS, ...rows.map(cells)])];
  if (rows.length < report.rows.length) out.push(`(${report.rows.length - rows.length} matching attempts not shown)`);
  if (report.mismatches.length) out.push('', 'MISMATCHES', ...report.mismatches.map((m) => `  ${m.kind.padEnd(18)} ${m.outTradeNo ?? m.saleId ?? '(totals)'}: ${m.detail}`));
  if (report.notes.length) out.push('', 'notes', ...report.notes.map((n) => `  ${n.outTradeNo}: ${n.detail}`));
  const t = report.totals;
  out.push(
    '',
    `attempts ${t.attempts}, sales ${t.sales} (${t.paidSales} paid), successful sales ${formatDecimal(t.paidSalesAmount)}` +
      (t.refunds > 0 ? `, register refunds ${t.refunds} (${t.refunded} refunded, ${formatDecimal(t.refundedAmount)})` : '') +
      `, gateway net charged ${formatDecimal(t.ledgerNet)}`,
    report.ok ? 'RECONCILED: gateway, cloud and boxes agree' : `NOT RECONCILED: ${report.mismatches.length} mismatch(es)`,
  );
  return out.join('\n');
}

function cells(r: AttemptRow): string[] {
  return [
    r.outTradeNo,
    r.saleId ?? '-',
    r.amount === null ? '-' : formatDecimal(r.amount),
    formatDecimal(r.ledgerNet),
    r.cloud ?? '(missing)',
    r.device ?? '(missing)',
    r.problems.length ? r.problems.join(',') : 'ok',
  ];
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}
