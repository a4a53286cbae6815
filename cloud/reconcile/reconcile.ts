import { ErrorCode, formatDecimal, isFinal, ProtocolError } from '../../protocol/index.js';
import type { AlipayGateway } from '../gateway/alipay/adapter.js';
import type { Gateway, QueryOutcome } from '../gateway/gateway.js';
import type { WechatGateway } from '../gateway/wechat/adapter.js';
import type { Merchant } from '../merchants/merchant.js';
import type { Attempt } from '../payments/transaction.js';
import type { Refund } from '../refunds/refund-machine.js';
import type { CloudStore, ReconcileFindingRow, ReconcileFindingStatus } from '../store/store.js';
import { alipayBillRows, wechatBillRows, type BillRow } from './bill-rows.js';
import { compare, FINDING_KINDS, reconcileRefundNo, type Finding, type FindingKind } from './compare.js';
import { beijingTime, businessDay, wechatBillDate, type BusinessDay } from './day.js';

/**
 * The morning run: for each selected channel, download the day's bill (WeChat: the provider's, all
 * sub-merchants at once; Alipay: one per merchant that authorised the app), compare it with the
 * store (compare.ts), and with `apply` settle what a machine may settle:
 *
 * - charged_not_success on an attempt that ended FAILED / CANCELLED / REVERSED: query first (the
 *   money may already have gone back on another day), then refund exactly the net kept there under
 *   reconcileRefundNo(outTradeNo). The wallet is idempotent on that number, the query sees the
 *   refund, and the finding is recorded settled: a re-run never refunds twice. An order with no
 *   attempt here, or one the cloud is still working on, is left to a person.
 * - success_not_charged, refund_only_here: the wallet is asked; an answer that shows the money
 *   where this cloud says it is settles the finding (it is on another day's bill), any other
 *   leaves it open for a person.
 * - amount_mismatch, refund_only_there, duplicate: only a person can say what is right.
 *
 * Every finding is kept in the store (reconcile_findings) with its status; without `apply` nothing
 * is sent to a wallet but the bill downloads, and nothing is written.
 */
export type ReconcileChannel =
  | { name: string; wallet: 'wechat'; bills: Pick<WechatGateway, 'downloadBill'> }
  | { name: string; wallet: 'alipay'; bills: Pick<AlipayGateway, 'downloadBill'> };

export type ReconcileStore = Pick<CloudStore, 'listAttemptsCreated' | 'getAttempt' | 'listMerchants' | 'listReconcileFindings' | 'saveReconcileFindings' | 'listRefunds'>;

export interface ReconcileDeps {
  store: ReconcileStore;
  /** Queries and refunds go here: the cloud's channel router, so they take the channel's own way. */
  gateway: Pick<Gateway, 'query' | 'refund'>;
  /** Every channel that has a bill to reconcile (WeChat and Alipay ones). */
  channels: readonly ReconcileChannel[];
  clock: { now(): number };
  /** Per query or refund. */
  callTimeoutMs: number;
  /** Per bill download (a provider's bill of a busy day is large). */
  billTimeoutMs: number;
}

export interface ReconcileOptions {
  /** yyyy-MM-dd, the Beijing business day the bills are for. */
  date: string;
  /** Only this channel; default every one. */
  channel?: string;
  apply: boolean;
}

export interface ReportedFinding extends Finding {
  status: ReconcileFindingStatus;
  /** What this run or an earlier one did about it. */
  action: string | null;
  /** When a run first recorded it; null when found now and not recorded (a run without apply). */
  firstFoundAt: number | null;
}

export interface ChannelReport {
  channel: string;
  wallet: 'wechat' | 'alipay';
  /** Bills that could not be fetched or read, each naming the channel, day and merchant: exit 2. */
  errors: string[];
  billRows: number;
  attempts: number;
  ok: number;
  findings: ReportedFinding[];
}

export interface ReconcileReport {
  date: string;
  apply: boolean;
  channels: ChannelReport[];
  /** Findings that need a person. */
  open: number;
  settled: number;
  /** 0: nothing needs a person; 1: something does; 2: a bill could not be fetched or read. */
  exitCode: 0 | 1 | 2;
}

/** A usage or configuration error (bad date, unknown channel): nothing was run. */
export class ReconcileUsageError extends ProtocolError {
  constructor(message: string) {
    super(ErrorCode.CONFIG_INVALID, message);
  }
}

/**
 * Around the day's edges: an attempt created at 23:59:59 may be charged after midnight (a customer
 * confirming on the phone, a late success after a reverse). An hour holds every wallet's deadline.
 */
export const DAY_MARGIN_MS = 60 * 60_000;

const fen = formatDecimal;

/** The day `--date` names, or a usage error. */
export function dayOf(date: string): BusinessDay {
  const day = businessDay(date);
  if (!day) throw new ReconcileUsageError(`--date ${JSON.stringify(date)} is not a day (yyyy-MM-dd, the Beijing business day of the bills)`);
  return day;
}

export async function reconcile(deps: ReconcileDeps, opts: ReconcileOptions): Promise<ReconcileReport> {
  const day = dayOf(opts.date);
  const selected = selectChannels(deps.channels, opts.channel);
  const merchants = await deps.store.listMerchants();
  const channels: ChannelReport[] = [];
  for (const c of selected) channels.push(await reconcileChannel(deps, c, day, merchants, opts.apply));
  const all = channels.flatMap((c) => c.findings);
  const open = all.filter((f) => f.status === 'open').length;
  const failed = channels.some((c) => c.errors.length > 0);
  return { date: day.date, apply: opts.apply, channels, open, settled: all.length - open, exitCode: failed ? 2 : open > 0 ? 1 : 0 };
}

function selectChannels(channels: readonly ReconcileChannel[], name: string | undefined): readonly ReconcileChannel[] {
  if (channels.length === 0) throw new ReconcileUsageError('no WeChat or Alipay channel is configured: there is no wallet bill to reconcile');
  if (name === undefined) return channels;
  const found = channels.filter((c) => c.name === name);
  if (found.length === 0) throw new ReconcileUsageError(`channel ${name} is not a WeChat or Alipay channel of this cloud (reconcilable: ${channels.map((c) => c.name).join(', ')})`);
  return found;
}

// ── one channel ─────────────────────────────────────────────────────────────────────────────────

interface Bills {
  rows: BillRow[];
  errors: string[];
  /** Whether a merchant's orders were in the bills fetched (an Alipay merchant whose bill failed is not). */
  covers(merchantId: string | null): boolean;
  /** Whether a bill was asked for the merchant at all (an Alipay merchant without an app_auth_token has none). */
  asked(merchantId: string | null): boolean;
}

async function reconcileChannel(deps: ReconcileDeps, c: ReconcileChannel, day: BusinessDay, merchants: readonly Merchant[], apply: boolean): Promise<ChannelReport> {
  const bills = c.wallet === 'wechat' ? await wechatBills(deps, c, day, merchants) : await alipayBills(deps, c, day, merchants);
  const report: ChannelReport = { channel: c.name, wallet: c.wallet, errors: bills.errors, billRows: bills.rows.length, attempts: 0, ok: 0, findings: [] };
  const all = await attemptsOf(deps.store, c.name, day, bills.rows);
  report.errors.push(...unbilled(c.name, day, all, bills));
  const attempts = all.filter((a) => bills.covers(a.merchantId));
  const refunds = (await refundsOf(deps.store, c.name, day, bills.rows)).filter((r) => bills.covers(r.merchantId));
  const result = compare({ channel: c.name, day, rows: bills.rows, attempts, refunds });
  const byOtn = new Map(attempts.map((a) => [a.outTradeNo, a]));
  const prior = await deps.store.listReconcileFindings(day.date, c.name);
  const settle = new Settler(deps, c.name, byOtn);
  report.attempts = attempts.length;
  report.ok = result.ok;
  report.findings = await merge(result.findings, prior.filter((p) => bills.covers(p.merchantId)), apply ? settle : undefined, deps.clock.now());
  if (apply) await deps.store.saveReconcileFindings(report.findings.map((f) => toRow(f, day.date, c.name, deps.clock.now())));
  return report;
}

/** SUCCESS attempts of a merchant no bill was asked for (its Alipay authorisation is gone): nobody can check them. */
function unbilled(channel: string, day: BusinessDay, attempts: readonly Attempt[], bills: Bills): string[] {
  const ids = new Set(attempts.filter((a) => a.state === 'SUCCESS' && !bills.asked(a.merchantId)).map((a) => a.merchantId ?? '(none)'));
  return [...ids].map((id) => `channel ${channel}: merchant ${id} has SUCCESS attempts around ${day.date} but no bill can be asked for it (no app_auth_token)`);
}

async function wechatBills(deps: ReconcileDeps, c: Extract<ReconcileChannel, { wallet: 'wechat' }>, day: BusinessDay, merchants: readonly Merchant[]): Promise<Bills> {
  const bySubMch = new Map(merchants.filter((m) => m.wechatSubMchId).map((m) => [m.wechatSubMchId!, m.merchantId]));
  const got = await guarded(() => c.bills.downloadBill(wechatBillDate(day), { signal: AbortSignal.timeout(deps.billTimeoutMs) }));
  // The provider's bill lists every sub-merchant: one bill asked, every merchant covered or none.
  const fail = (why: string): Bills => ({ rows: [], errors: [`channel ${c.name}: the WeChat bill of ${day.date} cannot be fetched or read: ${why}`], covers: () => false, asked: () => true });
  if (got.kind === 'unknown') return fail(got.message);
  if (got.kind === 'no_bill') return { rows: [], errors: [], covers: () => true, asked: () => true };
  const rows = guardedSync(() => wechatBillRows(got.bill, c.name, (sub) => bySubMch.get(sub) ?? null));
  return typeof rows === 'string' ? fail(rows) : { rows, errors: [], covers: () => true, asked: () => true };
}

/** One bill per merchant that authorised the app: the others cannot have been charged through it. */
async function alipayBills(deps: ReconcileDeps, c: Extract<ReconcileChannel, { wallet: 'alipay' }>, day: BusinessDay, merchants: readonly Merchant[]): Promise<Bills> {
  const rows: BillRow[] = [];
  const errors: string[] = [];
  const covered = new Set<string>();
  const authorised = merchants.filter((x) => x.alipayAppAuthToken);
  for (const m of authorised) {
    const got = await guarded(() => c.bills.downloadBill(day.date, { merchant: m.merchantId, signal: AbortSignal.timeout(deps.billTimeoutMs) }));
    const fail = (why: string) => errors.push(`channel ${c.name}: the Alipay bill of ${day.date} for merchant ${m.merchantId} cannot be fetched or read: ${why}`);
    if (got.kind === 'unknown') fail(got.message);
    else if (got.kind === 'no_bill') covered.add(m.merchantId);
    else {
      const mine = guardedSync(() => alipayBillRows(got.bill, c.name, m.merchantId));
      if (typeof mine === 'string') fail(mine);
      else (rows.push(...mine), covered.add(m.merchantId));
    }
  }
  const asked = new Set(authorised.map((m) => m.merchantId));
  return { rows, errors, covers: (id) => id !== null && covered.has(id), asked: (id) => id !== null && asked.has(id) };
}

/** A download that throws (a bug, a parser's surprise) is a bill that cannot be read, not a crash of the run. */
async function guarded<T>(download: () => Promise<T>): Promise<T | { kind: 'unknown'; message: string }> {
  try {
    return await download();
  } catch (err) {
    return { kind: 'unknown', message: (err as Error).message };
  }
}

function guardedSync<T>(read: () => T): T | string {
  try {
    return read();
  } catch (err) {
    return (err as Error).message;
  }
}

/** The channel's attempts of the day and its margins, and those the bill names from other days (a refund today of an earlier sale). */
async function attemptsOf(store: ReconcileStore, channel: string, day: BusinessDay, rows: readonly BillRow[]): Promise<Attempt[]> {
  const window = await store.listAttemptsCreated({ channel, from: day.start - DAY_MARGIN_MS, to: day.end + DAY_MARGIN_MS });
  const seen = new Set(window.map((a) => a.outTradeNo));
  const earlier: Attempt[] = [];
  for (const otn of new Set(rows.map((r) => r.outTradeNo))) {
    if (seen.has(otn)) continue;
    const a = await store.getAttempt(otn);
    if (a?.channel === channel) earlier.push(a);
  }
  return [...window, ...earlier];
}

/** The cashier's refunds the bill names, and the channel's REFUNDED ones final on the day and its margins. */
async function refundsOf(store: ReconcileStore, channel: string, day: BusinessDay, rows: readonly BillRow[]): Promise<Refund[]> {
  const named = [...new Set(rows.flatMap((r) => (r.kind === 'refund' && r.refundNo ? [r.refundNo] : [])))];
  const [billed, done] = await Promise.all([
    named.length > 0 ? store.listRefunds({ refundIds: named }) : [],
    store.listRefunds({ channel, state: 'REFUNDED', finalFrom: day.start - DAY_MARGIN_MS, finalTo: day.end + DAY_MARGIN_MS }),
  ]);
  return [...new Map([...billed, ...done].map((r) => [r.refundId, r])).values()];
}

// ── this run's findings and the earlier runs' ───────────────────────────────────────────────────

const keyOf = (f: { outTradeNo: string; kind: string }) => `${f.outTradeNo}\u0000${f.kind}`;

/**
 * Found now and settled before: settled, nothing is done again. Found now otherwise: settled by
 * this run if it can (apply), open if not. Recorded before and not found now: the bill and the
 * store agree by now, so it is settled.
 */
async function merge(found: readonly Finding[], prior: readonly ReconcileFindingRow[], settler: Settler | undefined, now: number): Promise<ReportedFinding[]> {
  const before = new Map(prior.map((p) => [keyOf(p), p]));
  const out: ReportedFinding[] = [];
  for (const f of found) {
    const p = before.get(keyOf(f));
    before.delete(keyOf(f));
    if (p?.status === 'settled') out.push({ ...f, status: 'settled', action: p.action, firstFoundAt: p.foundAt });
    else if (settler) out.push({ ...f, ...(await settler.settle(f)), firstFoundAt: p?.foundAt ?? now });
    else out.push({ ...f, status: 'open', action: p?.action ?? null, firstFoundAt: p?.foundAt ?? null });
  }
  for (const p of before.values()) out.push(fromRow(p, p.status === 'settled' ? p.action : `no longer found: bill and store agree (was: ${p.action ?? 'open'})`));
  return out.sort((a, b) => (a.outTradeNo < b.outTradeNo ? -1 : a.outTradeNo > b.outTradeNo ? 1 : FINDING_KINDS.indexOf(a.kind) - FINDING_KINDS.indexOf(b.kind)));
}

function fromRow(p: ReconcileFindingRow, action: string | null): ReportedFinding {
  // Only this module writes the kinds it reads back.
  return { kind: p.kind as FindingKind, outTradeNo: p.outTradeNo, merchantId: p.merchantId, state: null, amount: p.amount, here: null, there: null, detail: p.detail, status: 'settled', action, firstFoundAt: p.foundAt };
}

function toRow(f: ReportedFinding, billDate: string, channel: string, now: number): ReconcileFindingRow {
  return { billDate, channel, outTradeNo: f.outTradeNo, kind: f.kind, status: f.status, merchantId: f.merchantId, amount: f.amount, detail: f.detail, action: f.action, foundAt: f.firstFoundAt ?? now, updatedAt: now };
}

// ── settling ────────────────────────────────────────────────────────────────────────────────────

type Settled = { status: ReconcileFindingStatus; action: string | null };

class Settler {
  constructor(
    private readonly deps: ReconcileDeps,
    private readonly channel: string,
    private readonly attempts: ReadonlyMap<string, Attempt>,
  ) {}

  settle(f: Finding): Promise<Settled> {
    switch (f.kind) {
      case 'charged_not_success':
        return this.refundKept(f);
      case 'success_not_charged':
        return this.confirmCharged(f);
      case 'refund_only_here':
        return this.confirmUndone(f);
      default:
        return Promise.resolve({ status: 'open', action: null });
    }
  }

  private async refundKept(f: Finding): Promise<Settled> {
    const a = this.attempts.get(f.outTradeNo);
    if (!a) return open('no attempt here: the order may not be this cloud\'s; not refunded by a machine');
    if (!isFinal(a.state)) return open(`the attempt is ${a.state}: the cloud is still working on it; not touched`);
    // Charged twice (or only on another day): which charge would a refund undo? A person says.
    const charges = f.there?.charges ?? [];
    if (charges.length !== 1) return open(`charged ${charges.length} times in the bill: not refunded by a machine`);
    const q = await this.query(a);
    if (q.kind === 'refunded' || q.kind === 'closed') return settled(`the wallet says ${q.kind}: undone on another day's bill; nothing refunded`);
    if (q.kind !== 'success') return open(`query answered ${describe(q)}; not refunded`);
    // WeChat's refund names the order's total (total_fee): the one charge the bill shows.
    return this.refund(a, f.amount, charges[0]!);
  }

  private async refund(a: Attempt, amount: number, total: number): Promise<Settled> {
    const refundNo = reconcileRefundNo(a.outTradeNo);
    const req = { outTradeNo: a.outTradeNo, wallet: a.wallet!, merchant: a.merchantId!, channel: this.channel, refundNo, amount, total, currency: a.currency };
    const r = await this.deps.gateway.refund(req, this.call());
    if (r.kind === 'refunded') return settled(`refunded ${fen(amount)} as ${refundNo}`);
    return open(`refund ${refundNo} of ${fen(amount)} answered ${r.kind}${'message' in r ? `: ${r.message}` : ''}; run again`);
  }

  private async confirmCharged(f: Finding): Promise<Settled> {
    const a = this.attempts.get(f.outTradeNo)!;
    const q = await this.query(a);
    if (q.kind === 'success' && q.amount === a.amount) return settled(`the wallet confirms ${fen(q.amount)} charged${q.paidAt === undefined ? '' : ` at ${beijingTime(q.paidAt)}`}: on another day's bill`);
    return open(`query answered ${describe(q)}: a person must look`);
  }

  private async confirmUndone(f: Finding): Promise<Settled> {
    const q = await this.query(this.attempts.get(f.outTradeNo)!);
    if (q.kind === 'refunded' || q.kind === 'closed') return settled(`the wallet says ${q.kind}: the refund is on another day's bill`);
    return open(`query answered ${describe(q)}: a person must look`);
  }

  private query(a: Attempt): Promise<QueryOutcome> {
    if (!a.merchantId || !a.wallet) return Promise.resolve({ kind: 'unknown', code: 'OTHER', message: 'the attempt names no merchant or wallet' });
    return this.deps.gateway.query({ outTradeNo: a.outTradeNo, wallet: a.wallet, merchant: a.merchantId, channel: this.channel }, this.call());
  }

  private call() {
    return { signal: AbortSignal.timeout(this.deps.callTimeoutMs) };
  }
}

function open(action: string): Settled {
  return { status: 'open', action };
}

function settled(action: string): Settled {
  return { status: 'settled', action };
}

function describe(q: QueryOutcome): string {
  switch (q.kind) {
    case 'success':
      return `success, ${fen(q.amount)} charged`;
    case 'failed':
    case 'unknown':
      return `${q.kind}: ${q.message}`;
    default:
      return q.kind;
  }
}
