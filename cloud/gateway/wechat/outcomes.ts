import type { FailReason, PayOutcome, QueryOutcome, RefundOutcome, ReverseOutcome, UnknownCode } from '../gateway.js';
import { parseTimeEnd } from './bill.js';
import { SOURCES } from './sources.js';

/**
 * WeChat Pay v2 answers → the gateway interface's outcomes (cloud/gateway/gateway.ts). Pure.
 *
 * The one rule above every table: an outcome other than `unknown` needs `return_code` SUCCESS and a
 * `sign` that verified under the provider key. `return_code` FAIL ("此字段是通信标识，非交易标识"), a
 * missing or wrong sign, an unreadable answer, a `result_code` that is neither SUCCESS nor FAIL, an
 * answer about another order, or a code no table knows → `unknown`: the cloud queries, then reverses.
 * Never `success` and never `failed` on such an answer.
 *
 * Each table row is one published code, the outcome it maps to, the page it comes from and the
 * page's own words. The tests check every row against an expectation table of their own.
 */

/** A decoded answer and what its signature check said (see codec.ts). */
export interface CheckedAnswer {
  fields: Readonly<Record<string, string>>;
  signature: 'valid' | 'invalid' | 'missing';
}

export interface Row<R> {
  readonly rule: R;
  readonly source: string;
  /** What the page says (its words, shortened) and why the outcome follows. */
  readonly doc: string;
}

type Unknown = { kind: 'unknown'; code: UnknownCode; message: string };

const MAX_MESSAGE = 200;
function text(message: string): string {
  return message.length <= MAX_MESSAGE ? message : `${message.slice(0, MAX_MESSAGE - 1)}…`;
}
function unknown(code: UnknownCode, message: string): Unknown {
  return { kind: 'unknown', code, message: text(message) };
}
function errText(f: Readonly<Record<string, string>>): string {
  return `${f.err_code ?? '(no err_code)'}${f.err_code_des ? `: ${f.err_code_des}` : ''}`;
}

/** The checks every answer passes before any table is read. */
function gate(a: CheckedAnswer, call: string): Unknown | undefined {
  const f = a.fields;
  if (a.signature === 'invalid') return unknown('BAD_SIGNATURE', `${call}: the answer's sign does not verify`);
  if (f.return_code !== 'SUCCESS') return unknown('OTHER', `${call}: return_code ${f.return_code ?? '(none)'}${f.return_msg ? `: ${f.return_msg}` : ''}`);
  if (a.signature !== 'valid') return unknown('BAD_SIGNATURE', `${call}: the answer has no sign`);
  if (f.result_code !== 'SUCCESS' && f.result_code !== 'FAIL') return unknown('OTHER', `${call}: result_code ${f.result_code ?? '(none)'}`);
  return undefined;
}

/** An answer naming another order or merchant than the one asked about is no answer. */
function aboutAnother(f: Readonly<Record<string, string>>, expect: Expect, call: string): Unknown | undefined {
  if (f.out_trade_no !== undefined && f.out_trade_no !== expect.outTradeNo) return unknown('OTHER', `${call}: answer is about out_trade_no ${f.out_trade_no}`);
  if (expect.subMchId !== undefined && f.sub_mch_id !== undefined && f.sub_mch_id !== expect.subMchId) {
    return unknown('OTHER', `${call}: answer is about sub_mch_id ${f.sub_mch_id}`);
  }
  return undefined;
}

/** What the request asked about. */
export interface Expect {
  outTradeNo: string;
  subMchId?: string;
}

const FEN = /^[1-9][0-9]{0,15}$/;
/** A positive whole number of fen, or undefined (a float, a sign, an exponent, leading zeros: refused). */
export function parseFen(value: string | undefined): number | undefined {
  if (value === undefined || !FEN.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A whole number of fen that may be zero (cash_fee when coupons paid everything), or undefined. */
export function parseMinor(value: string | undefined): number | undefined {
  return value === '0' ? 0 : parseFen(value);
}

type Success = Extract<PayOutcome, { kind: 'success' }>;

/**
 * The receipt fields of a SUCCESS (SOURCES.micropay / SOURCES.orderquery): time_end "支付完成时间"
 * yyyyMMddHHmmss in Beijing time (SOURCES.protocolRules), cash_fee "现金支付金额", coupon_fee "代金券金额".
 * coupon_fee is sent only when a coupon was used; without it the page's own identity "订单金额-代金券金额=
 * 现金支付金额" gives it (0 when cash_fee is the whole total). Receipt data only: a malformed field is left
 * out, it never turns a verified payment into an unknown.
 */
function receipt(f: Readonly<Record<string, string>>, total: number): Pick<Success, 'paidAt' | 'buyerPaid' | 'discount'> {
  const paidAt = parseTimeEnd(f.time_end);
  const buyerPaid = parseMinor(f.cash_fee);
  const derived = buyerPaid !== undefined && buyerPaid <= total ? total - buyerPaid : undefined;
  const discount = f.coupon_fee === undefined ? derived : parseMinor(f.coupon_fee);
  return {
    ...(paidAt === undefined ? {} : { paidAt }),
    ...(buyerPaid === undefined ? {} : { buyerPaid }),
    ...(discount === undefined ? {} : { discount }),
  };
}

/**
 * SUCCESS with the payment's own id and amount; anything missing or malformed is no success. `amount`
 * is total_fee as WeChat reports it, never the amount asked for: the cloud compares the two.
 */
function paid(f: Readonly<Record<string, string>>, expect: Expect, call: string): Success | Unknown {
  if (f.out_trade_no !== expect.outTradeNo) return unknown('OTHER', `${call}: SUCCESS without our out_trade_no`);
  const tradeNo = f.transaction_id;
  const amount = parseFen(f.total_fee);
  if (tradeNo === undefined || tradeNo.length === 0 || tradeNo.length > 64) return unknown('OTHER', `${call}: SUCCESS without a usable transaction_id`);
  if (amount === undefined) return unknown('OTHER', `${call}: SUCCESS with total_fee ${JSON.stringify(f.total_fee ?? null)}, not whole fen`);
  return { kind: 'success', gatewayTradeNo: tradeNo, amount, ...receipt(f, amount) };
}

// ── pay/micropay ───────────────────────────────────────────────────────────────────────────────

export type PayRule = { kind: 'in_progress' } | { kind: 'unknown'; code: UnknownCode } | { kind: 'failed'; reason: FailReason };

const M = SOURCES.micropayLegacy;
const declined = { kind: 'failed', reason: 'DECLINED' } as const;
const askQuery = { kind: 'unknown', code: 'OTHER' } as const;

/**
 * err_code of a micropay answer with result_code FAIL — the page's 错误码 table (SOURCES.micropayLegacy;
 * its rows were read in several SDKs that copy it word for word). Request/configuration errors are a
 * definite "not charged" (the request was refused before any order was made: pay is sent once per
 * out_trade_no), so `failed`. Codes that say an order with this out_trade_no already exists are
 * `unknown` (query it), never `failed`.
 */
export const MICROPAY_ERR_CODES: Readonly<Record<string, Row<PayRule>>> = {
  SYSTEMERROR: { rule: { kind: 'unknown', code: 'SYSTEMERROR' }, source: M, doc: '接口返回错误 — 支付结果未知（有可能已经支付成功）: 请调用查询订单API' },
  BANKERROR: { rule: { kind: 'unknown', code: 'BANKERROR' }, source: M, doc: '银行系统异常 — 银行端超时: 请立即调用被扫订单结果查询API (query at once)' },
  USERPAYING: { rule: { kind: 'in_progress' }, source: M, doc: '用户支付中，需要输入密码: 等待5秒，然后调用被扫订单结果查询API' },
  AUTHCODEEXPIRE: { rule: { kind: 'failed', reason: 'CODE_EXPIRED' }, source: M, doc: '二维码已过期，请用户在微信上刷新后再试' },
  AUTH_CODE_ERROR: { rule: { kind: 'failed', reason: 'CODE_INVALID' }, source: M, doc: '授权码参数错误: 每个二维码仅限使用一次，请刷新再试' },
  AUTH_CODE_INVALID: { rule: { kind: 'failed', reason: 'CODE_INVALID' }, source: M, doc: '授权码检验错误 — 收银员扫描的不是微信支付的条码' },
  NOTENOUGH: { rule: { kind: 'failed', reason: 'INSUFFICIENT_FUNDS' }, source: M, doc: '余额不足: 请收银员提示用户更换当前支付的卡' },
  NOTSUPORTCARD: { rule: declined, source: M, doc: '不支持卡类型: 提示用户换卡支付或绑新卡支付' },
  TRADE_ERROR: { rule: declined, source: M, doc: '交易错误 — 业务错误导致交易失败、用户账号异常、风控、规则限制等' },
  ORDERCLOSED: { rule: declined, source: M, doc: '订单已关闭: 商户订单号异常，请重新下单支付 (this out_trade_no can no longer be paid)' },
  ORDERREVERSED: { rule: declined, source: M, doc: '订单已撤销: 请提示用户重新支付 (a reversed order is closed, or its money returned)' },
  ORDERPAID: { rule: askQuery, source: M, doc: '订单已支付 — paid earlier under this out_trade_no: query for transaction_id, never "failed"' },
  OUT_TRADE_NO_USED: { rule: askQuery, source: M, doc: '商户订单号重复 — 同一笔交易不能多次提交: an order with this number exists; its state is what query says' },
  BUYER_MISMATCH: { rule: askQuery, source: M, doc: '支付帐号错误 — 暂不支持同一笔订单更换支付方: the order exists with another payer; query' },
  INVALID_REQUEST: { rule: askQuery, source: M, doc: '无效请求 — 商户权限异常、重复请求支付、证书错误、频率限制等 (may be a repeated pay): query' },
  PARAM_ERROR: { rule: declined, source: M, doc: '参数错误 — 支付确认失败' },
  NOAUTH: { rule: declined, source: M, doc: '商户无权限 — 商户没有开通被扫支付权限' },
  APPID_NOT_EXIST: { rule: declined, source: M, doc: 'APPID不存在' },
  MCHID_NOT_EXIST: { rule: declined, source: M, doc: 'MCHID不存在' },
  APPID_MCHID_NOT_MATCH: { rule: declined, source: M, doc: 'appid和mch_id不匹配' },
  LACK_PARAMS: { rule: declined, source: M, doc: '缺少参数' },
  XML_FORMAT_ERROR: { rule: declined, source: M, doc: 'XML格式错误' },
  REQUIRE_POST_METHOD: { rule: declined, source: M, doc: '请使用post方法' },
  SIGNERROR: { rule: declined, source: M, doc: '签名错误 — 参数签名结果不正确' },
  NOT_UTF8: { rule: declined, source: M, doc: '编码格式错误' },
};

export function mapPay(a: CheckedAnswer, expect: Expect): PayOutcome {
  const f = a.fields;
  const blocked = gate(a, 'micropay') ?? aboutAnother(f, expect, 'micropay');
  if (blocked) return blocked;
  if (f.result_code === 'SUCCESS') return paid(f, expect, 'micropay');
  const row = f.err_code === undefined ? undefined : MICROPAY_ERR_CODES[f.err_code];
  if (row === undefined) return unknown('OTHER', `micropay: ${errText(f)}`);
  const r = row.rule;
  switch (r.kind) {
    case 'in_progress':
      return { kind: 'in_progress', message: text(errText(f)) };
    case 'unknown':
      return unknown(r.code, `micropay: ${errText(f)}`);
    case 'failed':
      return { kind: 'failed', reason: r.reason, message: text(errText(f)) };
  }
}

// ── pay/orderquery ─────────────────────────────────────────────────────────────────────────────

/**
 * `refund_check`: trade_state REFUND says a refund was made, not that it was in full ("部分退款后…
 * 交易状态将显示为REFUND", SOURCES.refundPartialState), and the answer then carries neither
 * transaction_id nor total_fee. The adapter must ask refundquery by out_trade_no and hand that
 * answer to `mapRefundCheck`, which says `refunded` only when every fen is back.
 */
export type RefundCheck = { kind: 'refund_check'; message: string };

export type QueryRule = { kind: 'success' } | { kind: 'refund_check' } | { kind: 'in_progress' } | { kind: 'closed' } | { kind: 'unknown'; code: UnknownCode };

const Q = SOURCES.orderquery;

/** trade_state of an orderquery answer with result_code SUCCESS (SOURCES.orderquery 交易状态). */
export const TRADE_STATES: Readonly<Record<string, Row<QueryRule>>> = {
  SUCCESS: { rule: { kind: 'success' }, source: Q, doc: '支付成功' },
  REFUND: { rule: { kind: 'refund_check' }, source: SOURCES.refundPartialState, doc: '转入退款 — partial refunds show REFUND too: confirm with refundquery' },
  NOTPAY: { rule: { kind: 'in_progress' }, source: Q, doc: '未支付 — not final: keep polling, then reverse' },
  CLOSED: { rule: { kind: 'closed' }, source: Q, doc: '已关闭' },
  REVOKED: { rule: { kind: 'closed' }, source: Q, doc: '已撤销（付款码支付）' },
  USERPAYING: { rule: { kind: 'in_progress' }, source: Q, doc: '用户支付中（付款码支付）' },
  // 支付失败, yet WeChat's trade_state_desc then reads "支付失败，请撤销订单": only a reverse makes it final.
  PAYERROR: { rule: { kind: 'unknown', code: 'OTHER' }, source: Q, doc: '支付失败(其他原因，如银行返回失败) — WeChat asks for a reverse: not final until reversed' },
  ACCEPT: { rule: { kind: 'in_progress' }, source: Q, doc: '已接收，等待扣款' },
};

/** err_code of an orderquery answer with result_code FAIL. */
export const ORDERQUERY_ERR_CODES: Readonly<Record<string, Row<{ kind: 'not_found' } | { kind: 'unknown'; code: UnknownCode }>>> = {
  // Right after a timed-out pay this means "not yet" (the pay may land late): the cloud treats not_found so.
  ORDERNOTEXIST: { rule: { kind: 'not_found' }, source: Q, doc: '此交易订单号不存在 — 该API只能查提交支付交易返回成功的订单' },
  SYSTEMERROR: { rule: { kind: 'unknown', code: 'SYSTEMERROR' }, source: Q, doc: '系统错误 — 系统异常，请再调用发起查询' },
};

export function mapQuery(a: CheckedAnswer, expect: Expect): QueryOutcome | RefundCheck {
  const f = a.fields;
  const blocked = gate(a, 'orderquery') ?? aboutAnother(f, expect, 'orderquery');
  if (blocked) return blocked;
  if (f.result_code === 'FAIL') {
    const row = f.err_code === undefined ? undefined : ORDERQUERY_ERR_CODES[f.err_code];
    if (row === undefined) return unknown('OTHER', `orderquery: ${errText(f)}`);
    return row.rule.kind === 'not_found' ? { kind: 'not_found' } : unknown(row.rule.code, `orderquery: ${errText(f)}`);
  }
  const state = f.trade_state;
  const row = state === undefined ? undefined : TRADE_STATES[state];
  const desc = `trade_state ${state ?? '(none)'}${f.trade_state_desc ? `: ${f.trade_state_desc}` : ''}`;
  if (row === undefined) return unknown('OTHER', `orderquery: ${desc}`);
  const r = row.rule;
  switch (r.kind) {
    case 'success':
      return paid(f, expect, 'orderquery');
    case 'refund_check':
      return { kind: 'refund_check', message: text(desc) };
    case 'in_progress':
      return { kind: 'in_progress', message: text(desc) };
    case 'closed':
      return { kind: 'closed' };
    case 'unknown':
      return unknown(r.code, `orderquery: ${desc}`);
  }
}

// ── secapi/pay/reverse ─────────────────────────────────────────────────────────────────────────

export type ReverseRule = { kind: 'retry_later' } | { kind: 'window_passed' } | { kind: 'unknown'; code: UnknownCode };

const R = SOURCES.reverse;

/**
 * err_code of a reverse answer with result_code FAIL (SOURCES.reverse 错误码, plus USERPAYING, which
 * WeChat answers while the customer is still paying — absent from older copies of the table). `recall` ("是否需要
 * 继续调用撤销，Y-需要，N-不需要") decides otherwise: SUCCESS + recall N is the only `reversed`.
 */
export const REVERSE_ERR_CODES: Readonly<Record<string, Row<ReverseRule>>> = {
  // Newer copies of the table list it: "用户支付中 — 用户正在支付中的订单不允许撤销，请稍后再试"; the forum shows the answer.
  USERPAYING: { rule: { kind: 'retry_later' }, source: SOURCES.reverseUserPaying, doc: '正在支付中不能发起撤销 — WeChat: "属于撤销失败": reverse again later' },
  REVERSE_EXPIRE: { rule: { kind: 'window_passed' }, source: R, doc: '订单无法撤销 — 订单有7天的撤销有效期，过期将不能撤销: refund instead' },
  SYSTEMERROR: { rule: { kind: 'unknown', code: 'SYSTEMERROR' }, source: R, doc: '接口返回错误 — 系统超时: 请立即调用被扫订单结果查询API…' },
  TRADE_ERROR: { rule: { kind: 'unknown', code: 'OTHER' }, source: R, doc: '订单错误 — 业务错误导致交易失败、用户账号异常、风控、规则限制等: not reversed; keep trying, loudly' },
  INVALID_REQUEST: { rule: { kind: 'unknown', code: 'OTHER' }, source: R, doc: '无效请求 — 商户权限异常、重复请求、证书错误、频率限制等' },
  INVALID_TRANSACTIONID: { rule: { kind: 'unknown', code: 'OTHER' }, source: R, doc: '无效transaction_id' },
  PARAM_ERROR: { rule: { kind: 'unknown', code: 'OTHER' }, source: R, doc: '参数错误' },
  REQUIRE_POST_METHOD: { rule: { kind: 'unknown', code: 'OTHER' }, source: R, doc: '请使用post方法' },
  SIGNERROR: { rule: { kind: 'unknown', code: 'OTHER' }, source: R, doc: '签名错误' },
};

export function mapReverse(a: CheckedAnswer, expect: Expect): ReverseOutcome {
  const f = a.fields;
  const blocked = gate(a, 'reverse') ?? aboutAnother(f, expect, 'reverse');
  if (blocked) return blocked;
  if (f.result_code === 'SUCCESS') {
    if (f.recall === 'N') return { kind: 'reversed' };
    if (f.recall === 'Y') return { kind: 'retry_later', message: 'reverse: recall=Y' };
    return unknown('OTHER', `reverse: SUCCESS with recall ${f.recall ?? '(none)'}`);
  }
  const row = f.err_code === undefined ? undefined : REVERSE_ERR_CODES[f.err_code];
  if (row === undefined) {
    return f.recall === 'Y' ? { kind: 'retry_later', message: text(`reverse: recall=Y, ${errText(f)}`) } : unknown('OTHER', `reverse: ${errText(f)}`);
  }
  const r = row.rule;
  switch (r.kind) {
    case 'retry_later':
      return { kind: 'retry_later', message: text(`reverse: ${errText(f)}`) };
    case 'window_passed':
      return { kind: 'window_passed' };
    case 'unknown':
      return unknown(r.code, `reverse: ${errText(f)}`);
  }
}

// ── secapi/pay/refund ──────────────────────────────────────────────────────────────────────────

export type RefundRule = { kind: 'retry_later' } | { kind: 'failed'; reason: FailReason } | { kind: 'unknown'; code: UnknownCode };

/** Refund application taken: not yet money back (SOURCES.refundAcceptedOnly). Ask refundquery, map with `mapRefundQuery`. */
export type RefundAccepted = { kind: 'accepted'; gatewayRefundNo: string };

const F = SOURCES.refund;
const refundDeclined = { kind: 'failed', reason: 'DECLINED' } as const;

/**
 * err_code of a refund answer with result_code FAIL (SOURCES.refund 错误码). `failed` makes the cloud
 * retry loudly (money is still out); `retry_later`/`unknown` quietly. The same out_refund_no is sent
 * every time ("请不要更换商户退款单号"), so a retry never refunds twice.
 */
export const REFUND_ERR_CODES: Readonly<Record<string, Row<RefundRule>>> = {
  SYSTEMERROR: { rule: { kind: 'unknown', code: 'SYSTEMERROR' }, source: F, doc: '接口返回错误 — 系统超时等: 请不要更换商户退款单号，请使用相同参数再次调用API' },
  BIZERR_NEED_RETRY: { rule: { kind: 'retry_later' }, source: F, doc: '退款业务流程错误，需要商户触发重试来解决 — 并发情况下，业务被拒绝，商户重试即可解决' },
  INVALID_REQ_TOO_MUCH: { rule: { kind: 'retry_later' }, source: F, doc: '无效请求过多 — 请检查业务是否正常，确认业务正常后请在1分钟后再来重试' },
  FREQUENCY_LIMITED: { rule: { kind: 'retry_later' }, source: F, doc: '频率限制 — 该笔退款未受理，请降低频率后重试' },
  NOTENOUGH: { rule: { kind: 'failed', reason: 'INSUFFICIENT_FUNDS' }, source: F, doc: '余额不足 — the MERCHANT\'s refundable balance, not the customer\'s: needs attention' },
  TRADE_OVERDUE: { rule: refundDeclined, source: F, doc: '订单已经超过退款期限 — 支付后一年内可退款: 请选择其他方式自行退款' },
  USER_ACCOUNT_ABNORMAL: { rule: refundDeclined, source: F, doc: '退款请求失败 — 用户帐号注销: 商户可自行处理退款' },
  ERROR: { rule: refundDeclined, source: F, doc: '业务错误 — 该错误都会返回具体的错误原因' },
  INVALID_TRANSACTIONID: { rule: refundDeclined, source: F, doc: '无效transaction_id — 检查原交易号是否存在或发起支付交易接口返回失败' },
  PARAM_ERROR: { rule: refundDeclined, source: F, doc: '参数错误 — 请求参数错误，请重新检查再调用退款申请' },
  APPID_NOT_EXIST: { rule: refundDeclined, source: F, doc: 'APPID不存在' },
  MCHID_NOT_EXIST: { rule: refundDeclined, source: F, doc: 'MCHID不存在' },
  REQUIRE_POST_METHOD: { rule: refundDeclined, source: F, doc: '请使用post方法' },
  SIGNERROR: { rule: refundDeclined, source: F, doc: '签名错误' },
  XML_FORMAT_ERROR: { rule: refundDeclined, source: F, doc: 'XML格式错误' },
};

export interface RefundExpect extends Expect {
  refundNo: string;
  /** refund_fee asked for, fen. */
  amount?: number;
}

function refundRule(r: RefundRule, detail: string): Exclude<RefundOutcome, { kind: 'refunded' }> {
  switch (r.kind) {
    case 'retry_later':
      return { kind: 'retry_later', message: text(detail) };
    case 'failed':
      return { kind: 'failed', reason: r.reason, message: text(detail) };
    case 'unknown':
      return unknown(r.code, detail);
  }
}

export function mapRefundApply(a: CheckedAnswer, expect: RefundExpect): RefundAccepted | Exclude<RefundOutcome, { kind: 'refunded' }> {
  const f = a.fields;
  const blocked = gate(a, 'refund') ?? aboutAnother(f, expect, 'refund');
  if (blocked) return blocked;
  if (f.result_code === 'FAIL') {
    const row = f.err_code === undefined ? undefined : REFUND_ERR_CODES[f.err_code];
    return row === undefined ? unknown('OTHER', `refund: ${errText(f)}`) : refundRule(row.rule, `refund: ${errText(f)}`);
  }
  if (f.out_refund_no !== expect.refundNo) return unknown('OTHER', `refund: SUCCESS for out_refund_no ${f.out_refund_no ?? '(none)'}`);
  if (expect.amount !== undefined && parseFen(f.refund_fee) !== expect.amount) return unknown('OTHER', `refund: SUCCESS with refund_fee ${f.refund_fee ?? '(none)'}`);
  const refundId = f.refund_id;
  if (refundId === undefined || refundId.length === 0) return unknown('OTHER', 'refund: SUCCESS without refund_id');
  return { kind: 'accepted', gatewayRefundNo: refundId };
}

// ── pay/refundquery ────────────────────────────────────────────────────────────────────────────

const RQ = SOURCES.refundquery;

/** refund_status_$n of a refundquery answer (SOURCES.refundquery 退款状态). */
export const REFUND_STATES: Readonly<Record<string, Row<{ kind: 'refunded' } | RefundRule>>> = {
  SUCCESS: { rule: { kind: 'refunded' }, source: RQ, doc: '退款成功' },
  PROCESSING: { rule: { kind: 'retry_later' }, source: RQ, doc: '退款处理中' },
  REFUNDCLOSE: { rule: refundDeclined, source: RQ, doc: '退款关闭 — the refund failed; money is still with the merchant: needs attention' },
  CHANGE: { rule: refundDeclined, source: RQ, doc: '退款异常 — 原路退款银行卡失败 (card cancelled/frozen): handle by hand in the merchant platform' },
};

/** err_code of a refundquery answer with result_code FAIL. */
export const REFUNDQUERY_ERR_CODES: Readonly<Record<string, Row<RefundRule>>> = {
  SYSTEMERROR: { rule: { kind: 'unknown', code: 'SYSTEMERROR' }, source: RQ, doc: '接口返回错误 — 系统超时: 请尝试再次调用' },
  // After an accepted application this is a contradiction, not a failure: ask again (the refund call is idempotent).
  REFUNDNOTEXIST: { rule: { kind: 'unknown', code: 'OTHER' }, source: RQ, doc: '退款订单查询失败 — 订单号错误或订单状态不正确' },
};

/** The refunds listed in a refundquery answer ($n from 0), or a reason they cannot be read. */
function listedRefunds(f: Readonly<Record<string, string>>): { refunds: { no: string; fee: number | undefined; status: string }[] } | { problem: string } {
  const count = Number(f.refund_count ?? NaN);
  if (!Number.isSafeInteger(count) || count < 0 || String(count) !== f.refund_count) return { problem: `refund_count ${f.refund_count ?? '(none)'}` };
  const refunds = [];
  for (let n = 0; n < count; n++) {
    const no = f[`out_refund_no_${n}`];
    const status = f[`refund_status_${n}`];
    if (no === undefined || status === undefined) return { problem: `refund ${n} of ${count} not listed` };
    refunds.push({ no, fee: parseFen(f[`refund_fee_${n}`]), status });
  }
  return { refunds };
}

/** The refund `expect.refundNo` from a refundquery answer (asked by out_refund_no). */
export function mapRefundQuery(a: CheckedAnswer, expect: RefundExpect): RefundOutcome {
  const f = a.fields;
  const blocked = gate(a, 'refundquery') ?? aboutAnother(f, expect, 'refundquery');
  if (blocked) return blocked;
  if (f.result_code === 'FAIL') {
    const row = f.err_code === undefined ? undefined : REFUNDQUERY_ERR_CODES[f.err_code];
    return row === undefined ? unknown('OTHER', `refundquery: ${errText(f)}`) : refundRule(row.rule, `refundquery: ${errText(f)}`);
  }
  const listed = listedRefunds(f);
  if ('problem' in listed) return unknown('OTHER', `refundquery: ${listed.problem}`);
  const mine = listed.refunds.filter((r) => r.no === expect.refundNo);
  if (mine.length !== 1) return unknown('OTHER', `refundquery: out_refund_no ${expect.refundNo} listed ${mine.length} times`);
  const refund = mine[0]!;
  if (expect.amount !== undefined && refund.fee !== expect.amount) return unknown('OTHER', `refundquery: refund_fee of ${expect.refundNo} is not ${expect.amount}`);
  const row = REFUND_STATES[refund.status];
  if (row === undefined) return unknown('OTHER', `refundquery: refund_status ${refund.status}`);
  return row.rule.kind === 'refunded' ? { kind: 'refunded', refundNo: expect.refundNo } : refundRule(row.rule, `refundquery: ${refund.status} (${row.doc.split(' — ')[0]})`);
}

/**
 * Resolves a `refund_check` (trade_state REFUND) from a refundquery answer asked by out_trade_no:
 * `refunded` only when every listed refund is SUCCESS and they add up to total_fee. A refund still
 * PROCESSING, a partial refund, or a list cut short (more than one page) → `unknown`.
 */
export function mapRefundCheck(a: CheckedAnswer, expect: Expect): QueryOutcome {
  const f = a.fields;
  const blocked = gate(a, 'refundquery') ?? aboutAnother(f, expect, 'refundquery');
  if (blocked) return blocked;
  if (f.result_code === 'FAIL') return unknown(f.err_code === 'SYSTEMERROR' ? 'SYSTEMERROR' : 'OTHER', `refundquery: ${errText(f)}`);
  if (f.out_trade_no !== expect.outTradeNo) return unknown('OTHER', 'refundquery: answer without our out_trade_no');
  const total = parseFen(f.total_fee);
  if (total === undefined) return unknown('OTHER', `refundquery: total_fee ${f.total_fee ?? '(none)'}`);
  const listed = listedRefunds(f);
  if ('problem' in listed) return unknown('OTHER', `refundquery: ${listed.problem}`);
  if (f.total_refund_count !== undefined && f.total_refund_count !== f.refund_count) {
    return unknown('OTHER', `refundquery: ${f.refund_count} of ${f.total_refund_count} refunds listed (page with offset)`);
  }
  let back = 0;
  for (const r of listed.refunds) {
    if (r.fee === undefined) return unknown('OTHER', `refundquery: refund ${r.no} has no whole-fen refund_fee`);
    if (r.status === 'PROCESSING') return unknown('OTHER', `refundquery: refund ${r.no} still PROCESSING`);
    if (r.status === 'SUCCESS') back += r.fee;
  }
  if (back === total) return { kind: 'refunded' };
  return unknown('OTHER', back < total ? `refundquery: ${back} of ${total} fen refunded (partial)` : `refundquery: ${back} fen refunded of ${total}`);
}
