import { SOURCES } from './sources.js';

/**
 * WeChat Pay v2 `downloadbill` text, bill_type ALL (SOURCES.downloadbill; the columns as WeChat sends
 * them today: SOURCES.downloadbillCopy). The answer is a CSV-like table: a header row, one row per
 * record (a payment SUCCESS, a refund REFUND, a payment reversed after it was paid REVOKED), then a
 * summary header and one row of totals. Every value starts with a backtick (so a spreadsheet keeps
 * the long ids as text), amounts are yuan with two decimals (the fee five), times Beijing time.
 *
 * Parsed exactly: amounts become integer fen by putting digits together as text, never through a
 * float; a bill whose totals do not add up to its rows (cut short, edited) is refused.
 */

// ── Beijing time (SOURCES.protocolRules: "标准北京时间，时区为东八区"; China has no daylight saving) ──

const BEIJING_OFFSET_MS = 8 * 3_600_000;

type Parts = [year: string, month: string, day: string, hour: string, minute: string, second: string];

function beijingParts(epochMs: number): Parts {
  if (!Number.isFinite(epochMs)) throw new RangeError(`wechat: ${epochMs} is not a time`);
  const d = new Date(Math.floor(epochMs) + BEIJING_OFFSET_MS);
  const p = (n: number, width = 2) => String(n).padStart(width, '0');
  return [p(d.getUTCFullYear(), 4), p(d.getUTCMonth() + 1), p(d.getUTCDate()), p(d.getUTCHours()), p(d.getUTCMinutes()), p(d.getUTCSeconds())];
}

/** epoch ms → `time_end` "yyyyMMddHHmmss" (SOURCES.micropay: 支付完成时间). */
export function formatTimeEnd(epochMs: number): string {
  return beijingParts(epochMs).join('');
}

/** epoch ms → the bill's "yyyy-MM-dd HH:mm:ss". */
export function formatBillTime(epochMs: number): string {
  const [y, mo, d, h, mi, s] = beijingParts(epochMs);
  return `${y}-${mo}-${d} ${h}:${mi}:${s}`;
}

/** epoch ms → the `bill_date` "yyyyMMdd" of the Beijing day it falls on. */
export function billDateOf(epochMs: number): string {
  return beijingParts(epochMs).slice(0, 3).join('');
}

function fromBeijing(m: RegExpExecArray | null): number | undefined {
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const utc = Date.UTC(y, mo - 1, d, h, mi, s);
  // Date.UTC rolls 31 February over into March (and 24:00 into the next day): what does not come back is no time.
  const back = new Date(utc);
  const same = back.getUTCFullYear() === y && back.getUTCMonth() === mo - 1 && back.getUTCDate() === d && back.getUTCHours() === h && back.getUTCMinutes() === mi && back.getUTCSeconds() === s;
  return same ? utc - BEIJING_OFFSET_MS : undefined;
}

/** `time_end` "yyyyMMddHHmmss" (Beijing) → epoch ms; undefined for anything that is not such a time. */
export function parseTimeEnd(text: string | undefined): number | undefined {
  return text === undefined ? undefined : fromBeijing(/^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(text));
}

/** The bill's "yyyy-MM-dd HH:mm:ss" (Beijing) → epoch ms. */
export function parseBillTime(text: string): number | undefined {
  return fromBeijing(/^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(text));
}

// ── exact decimals ──────────────────────────────────────────────────────────────────────────────

/** "12.30" → 1230 (2 decimals), "-0.27000" → -27000 (5): whole units of 10^-decimals, or undefined. */
function parseDecimal(text: string, decimals: number, signed: boolean): number | undefined {
  const m = /^(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?$/.exec(text);
  const frac = m?.[3] ?? '';
  if (!m || (m[1] === '-' && !signed) || frac.length > decimals) return undefined;
  const units = Number(`${m[2]}${frac.padEnd(decimals, '0')}`);
  if (!Number.isSafeInteger(units)) return undefined;
  return m[1] === '-' && units !== 0 ? -units : units;
}

function formatDecimal(units: number, decimals: number): string {
  if (!Number.isSafeInteger(units)) throw new RangeError(`wechat bill: ${units} is not a whole number of units`);
  const digits = String(Math.abs(units)).padStart(decimals + 1, '0');
  return `${units < 0 ? '-' : ''}${digits.slice(0, -decimals)}.${digits.slice(-decimals)}`;
}

// ── the table ───────────────────────────────────────────────────────────────────────────────────

/** The record states an ALL bill lists (SOURCES.downloadbill). */
export const BILL_TRADE_STATES = ['SUCCESS', 'REFUND', 'REVOKED'] as const;
export type BillTradeState = (typeof BILL_TRADE_STATES)[number];

/** One record of the bill. Amounts are fen; `feeMilliFen` is 1/1000 fen (the bill gives the fee to 5 decimals of yuan). */
export interface WechatBillRow {
  /** 交易时间: the payment's time, or the refund's / the reversal's on a REFUND / REVOKED row. */
  tradeTime: number;
  appId: string;
  mchId: string;
  /** 特约商户号: the sub-merchant (sub_mch_id). */
  subMchId: string;
  deviceInfo: string;
  /** 微信订单号 (transaction_id) of the payment, on its refund rows too. */
  transactionId: string;
  outTradeNo: string;
  openId: string;
  /** 交易类型: MICROPAY for a payment-code payment. */
  tradeType: string;
  tradeState: BillTradeState;
  bankType: string;
  currency: string;
  /** 应结订单金额: what the merchant is settled (0 on refund rows). */
  settlementFee: number;
  /** 代金券金额. */
  couponFee: number;
  /** 微信退款单号; the bill writes "0" on a payment row: null here. */
  refundId: string | null;
  /** 商户退款单号 (out_refund_no); "0" → null. */
  outRefundNo: string | null;
  /** 退款金额. */
  refundFee: number;
  /** 充值券退款金额. */
  rechargeCouponRefundFee: number;
  refundType: string;
  refundStatus: string;
  /** 商品名称 (the pay's `body`). */
  body: string;
  attach: string;
  /** 手续费, negative on a refund row (the fee given back). */
  feeMilliFen: number;
  /** 费率, as written ("0.60%"). */
  rate: string;
  /** 订单金额 (total_fee; 0 on refund rows). */
  orderFee: number;
  /** 申请退款金额. */
  refundRequestFee: number;
  rateNote: string;
}

/** The totals row. */
export interface WechatBillSummary {
  count: number;
  settlementTotal: number;
  refundTotal: number;
  rechargeCouponRefundTotal: number;
  feeMilliFen: number;
  orderTotal: number;
  refundRequestTotal: number;
}

export interface WechatBill {
  rows: WechatBillRow[];
  summary: WechatBillSummary;
}

type Kind = 'text' | 'fen' | 'fee' | 'time' | 'state' | 'ref' | 'count';

/** bill_type ALL: the 27 columns in WeChat's order (SOURCES.downloadbillCopy). */
const ROW_COLUMNS = [
  ['交易时间', 'tradeTime', 'time'],
  ['公众账号ID', 'appId', 'text'],
  ['商户号', 'mchId', 'text'],
  ['特约商户号', 'subMchId', 'text'],
  ['设备号', 'deviceInfo', 'text'],
  ['微信订单号', 'transactionId', 'text'],
  ['商户订单号', 'outTradeNo', 'text'],
  ['用户标识', 'openId', 'text'],
  ['交易类型', 'tradeType', 'text'],
  ['交易状态', 'tradeState', 'state'],
  ['付款银行', 'bankType', 'text'],
  ['货币种类', 'currency', 'text'],
  ['应结订单金额', 'settlementFee', 'fen'],
  ['代金券金额', 'couponFee', 'fen'],
  ['微信退款单号', 'refundId', 'ref'],
  ['商户退款单号', 'outRefundNo', 'ref'],
  ['退款金额', 'refundFee', 'fen'],
  ['充值券退款金额', 'rechargeCouponRefundFee', 'fen'],
  ['退款类型', 'refundType', 'text'],
  ['退款状态', 'refundStatus', 'text'],
  ['商品名称', 'body', 'text'],
  ['商户数据包', 'attach', 'text'],
  ['手续费', 'feeMilliFen', 'fee'],
  ['费率', 'rate', 'text'],
  ['订单金额', 'orderFee', 'fen'],
  ['申请退款金额', 'refundRequestFee', 'fen'],
  ['费率备注', 'rateNote', 'text'],
] as const satisfies readonly (readonly [string, keyof WechatBillRow, Kind])[];

const SUMMARY_COLUMNS = [
  ['总交易单数', 'count', 'count'],
  ['应结订单总金额', 'settlementTotal', 'fen'],
  ['退款总金额', 'refundTotal', 'fen'],
  ['充值券退款总金额', 'rechargeCouponRefundTotal', 'fen'],
  ['手续费总金额', 'feeMilliFen', 'fee'],
  ['订单总金额', 'orderTotal', 'fen'],
  ['申请退款总金额', 'refundRequestTotal', 'fen'],
] as const satisfies readonly (readonly [string, keyof WechatBillSummary, Kind])[];

export const BILL_HEADER = ROW_COLUMNS.map((c) => c[0]).join(',');
export const BILL_SUMMARY_HEADER = SUMMARY_COLUMNS.map((c) => c[0]).join(',');

export class WechatBillError extends Error {
  override readonly name = 'WechatBillError';
  constructor(
    /** 1-based line of the bill text. */
    readonly line: number,
    message: string,
  ) {
    super(`wechat bill line ${line}: ${message}`);
  }
}

const FEN_DECIMALS = 2;
const FEE_DECIMALS = 5;

function readValue(kind: Kind, raw: string): unknown {
  switch (kind) {
    case 'text':
      return raw;
    case 'fen':
      return parseDecimal(raw, FEN_DECIMALS, false);
    case 'fee':
      return parseDecimal(raw, FEE_DECIMALS, true);
    case 'time':
      return parseBillTime(raw);
    case 'state':
      return (BILL_TRADE_STATES as readonly string[]).includes(raw) ? raw : undefined;
    case 'ref':
      return raw === '0' || raw === '' ? null : raw;
    case 'count':
      return /^(0|[1-9][0-9]{0,8})$/.test(raw) ? Number(raw) : undefined;
  }
}

function writeValue(kind: Kind, value: unknown, column: string): string {
  switch (kind) {
    case 'fen':
      if (typeof value !== 'number' || value < 0) throw new RangeError(`wechat bill: ${column} ${String(value)} is not fen ≥ 0`);
      return formatDecimal(value, FEN_DECIMALS);
    case 'fee':
      return formatDecimal(value as number, FEE_DECIMALS);
    case 'time':
      return formatBillTime(value as number);
    case 'ref':
      return value === null ? '0' : text(value, column);
    case 'count':
      return String(value);
    default:
      return text(value, column);
  }
}

/** A value the format can carry: no line break, and no ",`" (the value separator). */
function text(value: unknown, column: string): string {
  if (typeof value !== 'string' || /[\r\n]/.test(value) || value.includes(',`')) throw new RangeError(`wechat bill: ${column} cannot be written as ${JSON.stringify(value)}`);
  return value;
}

function writeLine<C extends readonly (readonly [string, string, Kind])[]>(columns: C, record: Record<string, unknown>): string {
  return columns.map(([column, key, kind]) => `\`${writeValue(kind, record[key], column)}`).join(',');
}

/** Splits one data line: every value starts with a backtick, so ",`" separates them even when a value holds a comma. */
function splitValues(line: string, lineNo: number, count: number): string[] {
  if (!line.startsWith('`')) throw new WechatBillError(lineNo, 'a value without its leading backtick');
  const values = line.slice(1).split(',`');
  if (values.length !== count) throw new WechatBillError(lineNo, `${values.length} values, the header has ${count}`);
  return values;
}

function readLine<C extends readonly (readonly [string, string, Kind])[]>(columns: C, line: string, lineNo: number): Record<string, unknown> {
  const values = splitValues(line, lineNo, columns.length);
  const record: Record<string, unknown> = {};
  columns.forEach(([column, key, kind], i) => {
    const value = readValue(kind, values[i]!);
    if (value === undefined) throw new WechatBillError(lineNo, `${column} ${JSON.stringify(values[i])} is not a valid ${kind}`);
    record[key] = value;
  });
  return record;
}

export function summarizeWechatBill(rows: readonly WechatBillRow[]): WechatBillSummary {
  const sum = (pick: (r: WechatBillRow) => number) => rows.reduce((total, r) => total + pick(r), 0);
  return {
    count: rows.length,
    settlementTotal: sum((r) => r.settlementFee),
    refundTotal: sum((r) => r.refundFee),
    rechargeCouponRefundTotal: sum((r) => r.rechargeCouponRefundFee),
    feeMilliFen: sum((r) => r.feeMilliFen),
    orderTotal: sum((r) => r.orderFee),
    refundRequestTotal: sum((r) => r.refundRequestFee),
  };
}

/** The bill text WeChat answers to `downloadbill` with bill_type ALL (CRLF line ends, as WeChat sends them). */
export function formatWechatBill(rows: readonly WechatBillRow[], summary: WechatBillSummary = summarizeWechatBill(rows)): string {
  const lines = [BILL_HEADER, ...rows.map((r) => writeLine(ROW_COLUMNS, { ...r })), BILL_SUMMARY_HEADER, writeLine(SUMMARY_COLUMNS, { ...summary })];
  return `${lines.join('\r\n')}\r\n`;
}

/**
 * The bill text → typed rows and totals. Refused with a WechatBillError naming the line: another
 * header (another bill_type, or a format change WeChat made), a value without its backtick, a wrong
 * number of values, an amount that is not exact yuan, an unknown state, a time that is not one, and
 * totals that are not the sum of the rows.
 */
export function parseWechatBill(body: string): WechatBill {
  const lines = body.replace(/^\uFEFF/, '').split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines[0] !== BILL_HEADER) throw new WechatBillError(1, `not the header of an ALL bill (${JSON.stringify((lines[0] ?? '').slice(0, 40))}…)`);
  const summaryAt = lines.indexOf(BILL_SUMMARY_HEADER);
  if (summaryAt < 0) throw new WechatBillError(lines.length, 'no summary header: the bill is cut short');
  if (summaryAt !== lines.length - 2) throw new WechatBillError(summaryAt + 1, 'the summary header must be followed by exactly one line of totals');
  const rows = lines.slice(1, summaryAt).map((line, i) => readLine(ROW_COLUMNS, line, i + 2) as unknown as WechatBillRow);
  const summary = readLine(SUMMARY_COLUMNS, lines[summaryAt + 1]!, summaryAt + 2) as unknown as WechatBillSummary;
  checkTotals(rows, summary, summaryAt + 2);
  return { rows, summary };
}

function checkTotals(rows: readonly WechatBillRow[], summary: WechatBillSummary, lineNo: number): void {
  const added = summarizeWechatBill(rows);
  for (const [column, key] of SUMMARY_COLUMNS) {
    if (added[key] !== summary[key]) throw new WechatBillError(lineNo, `${column} says ${summary[key]}, the rows add up to ${added[key]}`);
  }
}

export const BILL_SOURCE = SOURCES.downloadbill;
