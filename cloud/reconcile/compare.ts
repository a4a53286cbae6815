import { formatDecimal, type AttemptState } from '../../protocol/index.js';
import { refundNoOf, type Attempt } from '../payments/transaction.js';
import type { Refund } from '../refunds/refund-machine.js';
import type { BillRow } from './bill-rows.js';
import type { BusinessDay } from './day.js';

/**
 * One channel's bill of one business day against the store's attempts on that channel: pure, so
 * every rule below is tested on hand-built rows. Money is netted per outTradeNo over the day's
 * rows (charges minus refunds and reversals); what the wallet kept is then held against what the
 * attempt says.
 *
 * Which attempts are expected in the bill: the SUCCESS ones paid on the day (the wallet's pay time,
 * else when the attempt was created). The caller passes a margin around the day besides, because
 * an attempt created at 23:59:59 may be charged after midnight, and one created just before the day
 * may be charged on it: those are matched when the bill names them, never expected when it does not.
 *
 * The cashier's refunds (cloud/refunds/) carry their refund id as the wallet's refund number: a bill
 * refund whose number is one of them is matched against it (REFUNDED here, the same amount), and a
 * REFUNDED one that became final on the day is expected in the bill. They explain what they gave
 * back, so a partly refunded sale is judged on its charge alone.
 */
export const FINDING_KINDS = [
  /** The wallet kept money (net > 0) for an order that is not SUCCESS here: the customer paid for nothing. */
  'charged_not_success',
  /** SUCCESS here, but the wallet's bill does not have it, or nets it to nothing. */
  'success_not_charged',
  /** Both say charged, for different amounts. */
  'amount_mismatch',
  /** The bill has a refund this cloud did not make (a refund in the merchant's wallet portal). */
  'refund_only_there',
  /** This cloud refunded, the bill still shows the money kept. */
  'refund_only_here',
  /** One outTradeNo charged twice in the bill, or two SUCCESS attempts for one sale. */
  'duplicate',
  /** A cashier's refund in the bill that is not REFUNDED here, or for another amount. */
  'customer_refund_mismatch',
  /** A cashier's refund REFUNDED here on the day, not in the bill. */
  'customer_refund_not_in_bill',
] as const;
export type FindingKind = (typeof FINDING_KINDS)[number];

/** What the day's bill says about one outTradeNo. */
export interface WalletSide {
  walletTradeNo: string;
  /** Each charge row's amount (fen): more than one is a duplicate. */
  charges: number[];
  refunds: { refundNo: string | null; amount: number }[];
  /** Reversed (fen). */
  reversed: number;
  /** Charges minus refunds minus reversals: what the wallet kept on this day's rows. */
  net: number;
}

export interface Finding {
  kind: FindingKind;
  outTradeNo: string;
  merchantId: string | null;
  /** The attempt's state here; null when no attempt of this channel has the outTradeNo. */
  state: AttemptState | null;
  /**
   * The fen the finding is about: net kept there (charged_not_success, refund_only_here), the
   * attempt's amount (success_not_charged, a sale's duplicate), what the wallet charged
   * (amount_mismatch), the refunds only the wallet made (refund_only_there), the extra charges (a
   * duplicate in the bill).
   */
  amount: number;
  /** The attempt's amount here (fen), when there is an attempt. */
  here: number | null;
  there: WalletSide | null;
  detail: string;
}

export interface CompareInput {
  channel: string;
  day: BusinessDay;
  /** The channel's bill rows of the day (rows of other channels are ignored). */
  rows: readonly BillRow[];
  /** The channel's attempts of the day and its margins, plus any the bill names from earlier days (attempts of other channels are ignored). */
  attempts: readonly Attempt[];
  /** The cashier's refunds the bill names, and the channel's REFUNDED ones final around the day (others are ignored). */
  refunds?: readonly Refund[];
}

export interface CompareResult {
  findings: Finding[];
  /** outTradeNos looked at (in the bill, or expected in it) on which both sides agree. */
  ok: number;
}

/** The refund this reconciliation makes for a charge nobody kept: one per outTradeNo, so a re-run repeats it, never adds one. */
export function reconcileRefundNo(outTradeNo: string): string {
  return `${outTradeNo}-RC`;
}

const fen = formatDecimal;

export function compare(input: CompareInput): CompareResult {
  const rows = input.rows.filter((r) => r.channel === input.channel);
  const attempts = input.attempts.filter((a) => a.channel === input.channel);
  const refunds = (input.refunds ?? []).filter((r) => r.channel === input.channel);
  const sides = walletSides(rows);
  const byOtn = new Map(attempts.map((a) => [a.outTradeNo, a]));
  const merchantOfRow = new Map(rows.map((r) => [r.outTradeNo, r.merchantId]));
  const expectedRefunds = refunds.filter((r) => r.state === 'REFUNDED' && r.finalAt !== null && r.finalAt >= input.day.start && r.finalAt < input.day.end);
  const keys = new Set([...sides.keys(), ...attempts.filter((a) => inDay(a, input.day)).map((a) => a.outTradeNo), ...expectedRefunds.map((r) => r.outTradeNo)]);
  const findings: Finding[] = [];
  for (const otn of [...keys].sort()) {
    const cashier = cashierRefunds(otn, sides.get(otn) ?? null, refunds, expectedRefunds);
    findings.push(...judge(otn, cashier.side, byOtn.get(otn), input.day, merchantOfRow.get(otn) ?? cashier.merchantId), ...cashier.findings(byOtn.get(otn)));
  }
  findings.push(...saleDuplicates(attempts, input.day));
  findings.sort((a, b) => (a.outTradeNo < b.outTradeNo ? -1 : a.outTradeNo > b.outTradeNo ? 1 : FINDING_KINDS.indexOf(a.kind) - FINDING_KINDS.indexOf(b.kind)));
  const flagged = new Set(findings.map((f) => f.outTradeNo));
  return { findings, ok: [...keys].filter((k) => !flagged.has(k)).length };
}

/** Expected in the day's bill if SUCCESS: paid on the day (the wallet's time; the attempt's creation when it gave none). */
function inDay(a: Attempt, day: BusinessDay): boolean {
  const t = a.walletPaidAt ?? a.createdAt;
  return t >= day.start && t < day.end;
}

function walletSides(rows: readonly BillRow[]): Map<string, WalletSide> {
  const sides = new Map<string, WalletSide>();
  for (const r of rows) {
    const s = sides.get(r.outTradeNo) ?? { walletTradeNo: r.walletTradeNo, charges: [], refunds: [], reversed: 0, net: 0 };
    if (r.kind === 'charge') s.charges.push(r.amount);
    if (r.kind === 'refund') s.refunds.push({ refundNo: r.refundNo ?? null, amount: r.amount });
    if (r.kind === 'reverse') s.reversed += r.amount;
    s.net += r.kind === 'charge' ? r.amount : -r.amount;
    sides.set(r.outTradeNo, s);
  }
  return sides;
}

/**
 * The bill's refunds of one outTradeNo that are cashier's refunds here are taken out of its side
 * (what remains is judged as before) and held against the store: each must be REFUNDED here for the
 * same amount, and each REFUNDED here on the day must be in the bill.
 */
function cashierRefunds(otn: string, w: WalletSide | null, refunds: readonly Refund[], expected: readonly Refund[]) {
  const here = new Map(refunds.filter((r) => r.outTradeNo === otn).map((r) => [r.refundId, r]));
  const billed = (w?.refunds ?? []).flatMap((bill) => {
    const r = bill.refundNo === null ? undefined : here.get(bill.refundNo);
    return r ? [{ bill, r }] : [];
  });
  const rest = w && { ...w, refunds: w.refunds.filter((b) => !billed.some((x) => x.bill === b)), net: w.net + sum(billed.map((x) => x.bill)) };
  // A side that held only cashier's refunds (a sale of another day refunded on this one) is no side at all.
  const side = rest && (rest.charges.length > 0 || rest.refunds.length > 0 || rest.reversed > 0) ? rest : null;
  const wrong = billed.filter(({ bill, r }) => r.state !== 'REFUNDED' || r.amount !== bill.amount);
  const missing = expected.filter((r) => r.outTradeNo === otn && !billed.some((x) => x.r === r));
  const merchantId = [...here.values()][0]?.merchantId ?? null;
  const findings = (a: Attempt | undefined): Finding[] => {
    const out: Finding[] = [];
    if (wrong.length > 0) {
      const what = wrong.map(({ bill, r }) => `${r.refundId} ${fen(bill.amount)} (here ${r.state} ${fen(r.amount)})`).join(', ');
      out.push(finding('customer_refund_mismatch', otn, a, w, merchantId, sum(wrong.map((x) => x.bill)), `refunded there: ${what}`));
    }
    if (missing.length > 0) {
      const what = missing.map((r) => `${r.refundId} ${fen(r.amount)}`).join(', ');
      out.push(finding('customer_refund_not_in_bill', otn, a, w, merchantId, sum(missing), `REFUNDED here on the day, not in the bill: ${what}`));
    }
    return out;
  };
  return { side, merchantId, findings };
}

function finding(kind: FindingKind, otn: string, a: Attempt | undefined, w: WalletSide | null, merchantId: string | null, amount: number, detail: string): Finding {
  return { kind, outTradeNo: otn, merchantId: a?.merchantId ?? merchantId, state: a?.state ?? null, amount, here: a?.amount ?? null, there: w, detail };
}

function judge(otn: string, w: WalletSide | null, a: Attempt | undefined, day: BusinessDay, rowMerchant: string | null): Finding[] {
  const out: Finding[] = [];
  const f = (kind: FindingKind, amount: number, detail: string) => out.push(finding(kind, otn, a, w, rowMerchant, amount, detail));
  if (w && w.charges.length > 1) {
    const extra = w.charges.reduce((s, c) => s + c, 0) - w.charges[0]!;
    f('duplicate', extra, `charged ${w.charges.length} times in the bill (${w.charges.map(fen).join(' + ')})`);
  }
  if (!a) judgeUnknown(w, f);
  else if (a.state === 'SUCCESS') judgeSuccess(a, w, day, f);
  else if (a.state === 'REFUNDED') judgeRefunded(w, f);
  else if (w && w.net > 0) f('charged_not_success', w.net, `${a.state} here, ${fen(w.net)} kept there${isSettledState(a.state) ? '' : ': the cloud is still working on it'}`);
  return out;
}

type Report = (kind: FindingKind, amount: number, detail: string) => void;

/** No attempt of this channel: money kept there is nobody's here; refunds there are of an order unknown here. */
function judgeUnknown(w: WalletSide | null, f: Report): void {
  if (!w) return;
  if (w.net > 0) f('charged_not_success', w.net, `${fen(w.net)} kept there; no attempt of this channel here`);
  else if (w.refunds.length > 0 && w.charges.length === 0) f('refund_only_there', sum(w.refunds), `refunded ${fen(sum(w.refunds))} there; no attempt of this channel here`);
}

function judgeSuccess(a: Attempt, w: WalletSide | null, day: BusinessDay, f: Report): void {
  if (!w) {
    if (inDay(a, day)) f('success_not_charged', a.amount, `SUCCESS here for ${fen(a.amount)}; not in the bill`);
    return;
  }
  const foreign = w.refunds.filter((r) => !isOurs(a.outTradeNo, r.refundNo));
  if (foreign.length > 0) return f('refund_only_there', sum(foreign), `SUCCESS here; refunded ${fen(sum(foreign))} there (${foreign.map((r) => r.refundNo ?? 'no refund number').join(', ')})`);
  if (w.net <= 0) return f('success_not_charged', a.amount, `SUCCESS here for ${fen(a.amount)}; the bill nets it to ${fen(w.net)}`);
  if (w.charges.length === 1 && w.net !== a.amount) f('amount_mismatch', w.net, `${fen(a.amount)} here, ${fen(w.net)} charged there`);
}

function judgeRefunded(w: WalletSide | null, f: Report): void {
  if (w && w.net > 0) f('refund_only_here', w.net, `REFUNDED here; ${fen(w.net)} still kept in the bill`);
}

/** The refunds this cloud makes: the attempt machine's own, and this reconciliation's. */
function isOurs(otn: string, refundNo: string | null): boolean {
  return refundNo === refundNoOf(otn) || refundNo === reconcileRefundNo(otn);
}

function isSettledState(state: AttemptState): boolean {
  return state === 'FAILED' || state === 'CANCELLED' || state === 'REVERSED';
}

function sum(refunds: readonly { amount: number }[]): number {
  return refunds.reduce((s, r) => s + r.amount, 0);
}

/** Two SUCCESS attempts for one sale (deviceId, saleId): every one after the first, when it was paid on the day. */
function saleDuplicates(attempts: readonly Attempt[], day: BusinessDay): Finding[] {
  const sales = new Map<string, Attempt[]>();
  for (const a of attempts.filter((x) => x.state === 'SUCCESS')) {
    const key = `${a.deviceId}\u0000${a.saleId}`;
    sales.set(key, [...(sales.get(key) ?? []), a]);
  }
  const out: Finding[] = [];
  for (const paid of sales.values()) {
    const [first, ...later] = paid.sort((x, y) => x.createdAt - y.createdAt || (x.outTradeNo < y.outTradeNo ? -1 : 1));
    for (const a of later.filter((x) => inDay(x, day))) {
      out.push(finding('duplicate', a.outTradeNo, a, null, null, a.amount, `sale ${a.saleId} of ${a.deviceId} is SUCCESS twice here: also ${first!.outTradeNo}`));
    }
  }
  return out;
}
