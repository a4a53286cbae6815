import { formatDecimal } from '../../protocol/index.js';
import type { ChannelReport, ReconcileReport, ReportedFinding } from './reconcile.js';

/**
 * The run as a person reads it in a terminal or a morning mail: per channel the bill and store
 * counts, then one line per finding (what, which order, how much, what was done), then a verdict
 * that says whether anyone has to act. Amounts in yuan with two decimals, exactly (never a float).
 */
const HEADERS = ['KIND', 'OUT_TRADE_NO', 'MERCHANT', 'AMOUNT', 'STATE', 'STATUS', 'DETAIL'];

export function formatReconcileReport(r: ReconcileReport): string {
  const out = [`reconcile ${r.date} (Beijing business day)${r.apply ? ', applied' : ', dry run (--apply settles)'}`];
  for (const c of r.channels) out.push('', ...channelLines(c));
  out.push('', verdict(r));
  return out.join('\n');
}

function channelLines(c: ChannelReport): string[] {
  const lines = [`channel ${c.channel} (${c.wallet}): ${c.billRows} bill rows, ${c.attempts} attempts, ${c.ok} ok, ${c.findings.length} findings`];
  for (const e of c.errors) lines.push(`  ERROR ${e}`);
  if (c.findings.length > 0) lines.push(...table([HEADERS, ...c.findings.map(cells)]).map((l) => `  ${l}`));
  return lines;
}

function cells(f: ReportedFinding): string[] {
  const detail = f.action ? `${f.detail} — ${f.action}` : f.detail;
  return [f.kind, f.outTradeNo, f.merchantId ?? '-', formatDecimal(f.amount), f.state ?? '-', f.status, detail];
}

function verdict(r: ReconcileReport): string {
  const counts = `${r.open} open, ${r.settled} settled`;
  if (r.exitCode === 2) return `BILL MISSING: a bill could not be fetched or read (see ERROR above); ${counts}`;
  if (r.exitCode === 1) return `NEEDS A PERSON: ${counts}`;
  return `RECONCILED: nothing needs a person (${counts})`;
}

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ');
  return [line(rows[0]!), ...rows.slice(1).map(line)];
}
