import type { DownMessage, WalletTotals } from '../protocol/index.js';
import type { Step } from './step.js';

/**
 * The day's takings for the cash register. The cloud's count is authoritative (it has every result,
 * including ones still on their way to the box), so the box asks it; when it is offline, or the cloud
 * does not answer within `TOTALS_WAIT_MS`, the box answers from its own journal and says so
 * (`confirmed: false`). The journal's count is made by the shell when the line arrives and carried
 * in the event, so this stays pure.
 */
export const TOTALS_WAIT_MS = 5_000;

export interface TotalsRequest {
  id: string;
  date: string;
  deadline: number;
  /** The journal's figures, answered if the cloud's do not come in time. */
  local: WalletTotals[];
}

export function onEcrTotals(t: Step, date: string, local: WalletTotals[]): void {
  if (!t.book.online) return writeTotals(t, date, local, false);
  const id = `totals-${t.now}`;
  t.book.totalsRequests[id] = { id, date, deadline: t.now + TOTALS_WAIT_MS, local };
  t.send('totals', id, { date }, id);
}

export function onTotals(t: Step, m: DownMessage<'totals'>): void {
  const req = t.book.totalsRequests[m.refId];
  if (!req) return t.log('info', "the cloud's totals came after the register was answered; ignored", { refId: m.refId });
  delete t.book.totalsRequests[m.refId];
  if (m.date !== req.date) {
    t.log('error', "the cloud's totals are for another day; answered from the journal", { asked: req.date, got: m.date });
    return writeTotals(t, req.date, req.local, false);
  }
  writeTotals(t, m.date, m.wallets, true);
}

/** Past the wait, or the link went down: the journal's figures, unconfirmed. */
export function answerOverdueTotals(t: Step, all = false): void {
  for (const req of Object.values(t.book.totalsRequests)) {
    if (!all && t.now < req.deadline) continue;
    delete t.book.totalsRequests[req.id];
    t.log('warn', "no totals from the cloud in time; the register gets the journal's, unconfirmed", { date: req.date });
    writeTotals(t, req.date, req.local, false);
  }
}

export function nextTotalsWake(requests: Record<string, TotalsRequest>): number {
  return Math.min(Number.POSITIVE_INFINITY, ...Object.values(requests).map((r) => r.deadline));
}

function writeTotals(t: Step, date: string, wallets: WalletTotals[], confirmed: boolean): void {
  const lines = wallets.map(({ wallet, paidCount, paidAmount, refundCount, refundAmount }) => ({ wallet, paidCount, paidAmount, refundCount, refundAmount, net: paidAmount - refundAmount }));
  t.ecr({ type: 'totals', date, confirmed, currency: 'CNY', wallets: lines });
}
