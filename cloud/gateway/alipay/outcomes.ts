import { DEFAULT_MAX_MINOR } from '../../../protocol/index.js';
import type { FailReason, PayOutcome, QueryOutcome, RefundOutcome, ReverseOutcome, UnknownCode } from '../gateway.js';
import { tryYuanToFen } from './amount.js';
import { parseBeijingTimestamp } from './requests.js';
import type { OpenedResponse, OpenFailure } from './sign.js';

/**
 * Verified Alipay answers → the gateway interface's outcomes (cloud/gateway/gateway.ts). Pure and table-driven.
 *
 * The rule above every table: an answer that is not verified, not understood, or that names another order is
 * `unknown` — never `success`, never `failed`. `unknown` sends the cloud to query (and, in the end, to cancel),
 * which is always safe; a wrong `success` or a wrong `failed` moves money the wrong way.
 *
 * Sources (each table below names its own):
 * - [COMMON] Alipay public error codes (公共错误码, https://opendocs.alipay.com/open/common/105806, as published in
 *   https://cnblogs.com/rsapaper/p/9726452.html): 10000 接口调用成功 (look at the business fields), 20000 服务不可用
 *   (isp.unknow-error / aop.unknow-error, 稍后重试), 20001 授权权限不足 (aop.invalid-app-auth-token …),
 *   40001 缺少必选参数, 40002 非法的参数, 40004 业务处理失败 (sub_code per API), 40006 权限不足.
 * - [F2F-DEMO] Alipay's face-to-face Java demo, AbsAlipayTradeService.java (com.alipay.demo.trade, "Created by
 *   liuyangkly on 15/10/28", copied into many public repositories): pay 10000 = paid, 10003 = 等待用户付款 → loop
 *   query, 20000 (`tradeError`) = 状态未知 → query then cancel, anything else = 明确失败; query success =
 *   10000 and trade_status TRADE_SUCCESS or TRADE_FINISHED, stop polling on TRADE_SUCCESS/FINISHED/CLOSED;
 *   cancel success = 10000; cancel `needRetry` = retry_flag "Y" (then cancel again asynchronously).
 * - [PAY] alipay.trade.pay business error codes (https://opendocs.alipay.com/apis/api_1/alipay.trade.pay), read in
 *   their public transcriptions (e.g. the ACQ.* tables of https://jaq-doc.alibaba.com/docs/doc.htm?articleId=104632
 *   and the SDK constant lists that copy the page's 错误码 / 解决方案 columns).
 * - [QUERY] alipay.trade.query trade_status (https://docs.open.alipay.com/api_1/alipay.trade.query, as explained in
 *   Alipay's own support article https://developer.aliyun.com/article/707619): WAIT_BUYER_PAY 交易创建，等待买家付款;
 *   TRADE_CLOSED 在指定时间段内未支付时关闭的交易或在交易完成全额退款成功时关闭的交易; TRADE_SUCCESS 买家付款成功
 *   (可退款); TRADE_FINISHED 买家付款成功 (不可退款, or past the refund period); "只有交易通知状态为TRADE_SUCCESS或
 *   TRADE_FINISHED时，支付宝才会认定为买家付款成功". In-store payments: a cancelled trade is TRADE_CLOSED too
 *   (https://docs.antom.com/ac/gr/trade_status).
 * - [CANCEL] alipay.trade.cancel response (Java SDK AlipayTradeCancelResponse.java, generated from the API page):
 *   retry_flag 是否需要重试 (Y/N); action 本次撤销触发的交易动作: close 交易未支付，触发关闭交易动作，无退款; refund
 *   交易已支付，触发交易退款动作; 未返回：未查询到交易，或接口调用失败. Business codes include ACQ.TRADE_CANCEL_TIME_OUT
 *   超过撤销时间范围 ("可使用退款接口发起交易退款") and ACQ.SELLER_BALANCE_NOT_ENOUGH ("商户支付宝账户充值后重新发起撤销即可").
 * - [REFUND] alipay.trade.refund: 10000 only says the call succeeded; "实际是否退款成功需要依据同步返回参数中的
 *   fund_change（本次退款是否发生了资金变化）参数来判断，如果fund_change返回的参数是Y那么就可以确定为退款成功"
 *   (https://developer.aliyun.com/article/707647). Retrying with the same out_request_no never refunds twice.
 * - [REFUND-QUERY] alipay.trade.fastpay.refund.query refund_status: "REFUND_SUCCESS 退款处理成功；未返回该字段表示退款
 *   请求未收到或者退款失败" and "建议商户在退款发起后间隔10秒以上再发起退款查询请求"
 *   (https://docs.rs/labrador/latest/labrador/struct.AlipayRefundQueryResponse.html, generated from the API page).
 * - [RECEIPT] What a paid trade's answer says besides the total (alipay.trade.pay response as generated from the API
 *   page, https://docs.rs/labrador/latest/labrador/struct.AlipayFaceOrderPayResponse.html): gmt_payment 交易支付时间;
 *   buyer_pay_amount 买家实付金额 "该金额代表该笔交易买家实际支付的金额，不包含商户折扣等金额"; discount_amount 平台优惠金额;
 *   mdiscount_amount 商家优惠金额. alipay.trade.query names the payment time send_pay_date (本次交易打款给卖家的时间; a
 *   published query answer: https://www.kancloud.cn/thinkphp_teams/newthink_pay/405301). Receipt data only: no
 *   decision rests on it, so a field we cannot read exactly is left out rather than making the answer unknown.
 * - [REPEAT] A pay repeated with the out_trade_no of a PAID trade is answered ACQ.TRADE_HAS_SUCCESS 交易已经支付
 *   (Alipay's support article on out_trade_no, https://developer.aliyun.com/article/707511); the pay page's 解决方案
 *   for it: "确认该笔交易信息是否为当前买家的，如果是则认为交易付款成功" — i.e. look the trade up: `next: 'query'`.
 */

// ---------------------------------------------------------------------------------------------------------------
// What the adapter records next to the outcome

/** Raw facts from the VERIFIED node (strings only), for the adapter to record on the attempt. */
export interface AlipayFacts {
  verified: boolean;
  /** Why the answer is not verified (then no other fact is set, except the unverified hint). */
  failure?: OpenFailure;
  /** What an unverified body claims (code / sub_code): for logs only. */
  unverifiedHint?: string;
  nodeKey?: string;
  code?: string;
  msg?: string;
  subCode?: string;
  subMsg?: string;
  outTradeNo?: string;
  tradeNo?: string;
  tradeStatus?: string;
  totalAmount?: string;
  /** alipay.trade.cancel: close / refund / absent. */
  action?: string;
  /** alipay.trade.cancel: Y / N. */
  retryFlag?: string;
  /** alipay.trade.refund: Y / N. */
  fundChange?: string;
  /** alipay.trade.refund: total refunded on the trade so far (yuan string). */
  refundFee?: string;
  outRequestNo?: string;
  /** alipay.trade.fastpay.refund.query. */
  refundStatus?: string;
  refundAmount?: string;
  billDownloadUrl?: string;
  /** [RECEIPT] receipt data of a paid trade. */
  buyerPayAmount?: string;
  gmtPayment?: string;
  sendPayDate?: string;
  discountAmount?: string;
  mdiscountAmount?: string;
}

export interface Mapped<O> {
  outcome: O;
  facts: AlipayFacts;
  /**
   * The call the answer itself asks for before the outcome can be more than `unknown`: `query` after a repeated
   * pay of a paid trade ([REPEAT]), `refund_query` after a refund that moved no money ([REFUND] fund_change N).
   */
  next?: 'query' | 'refund_query';
}

/** What the cloud asked about: answers naming another order are never believed. */
export interface Expectation {
  outTradeNo: string;
  /** The refund id (out_request_no), for refund and refund query. */
  refundNo?: string;
}

export type BillUrlOutcome =
  | { kind: 'url'; url: string }
  /** No bill for that date (none generated, or nothing traded). */
  | { kind: 'no_bill' }
  | { kind: 'unknown'; code: UnknownCode; message: string };

// ---------------------------------------------------------------------------------------------------------------
// Tables (Maps, so an attacker-chosen sub_code such as "constructor" can never hit Object.prototype)

export const SUCCESS_CODE = '10000';
/** [COMMON]/[F2F-DEMO]: alipay.trade.pay only — 等待用户付款 (the customer confirms on the phone). */
export const WAIT_BUYER_PAY_CODE = '10003';
/** [COMMON]: 服务不可用. [F2F-DEMO] `tradeError`: the result is unknown. */
export const SERVICE_UNAVAILABLE_CODE = '20000';
/** [COMMON]: 业务处理失败, with a per-API sub_code. */
export const BUSINESS_FAILED_CODE = '40004';

/**
 * Sub-codes that mean "the system failed, the result is unknown: ask again". ACQ.SYSTEM_ERROR on every trade API
 * ("请立即调用查询订单API，查询当前订单的状态"); AQC.SYSTEM_ERROR is how the cancel/refund pages spell it ("请使用相同的
 * 参数再次调用"); isp./aop.unknow-error are [COMMON]'s 20000 sub-codes; aop.ACQ.SYSTEM_ERROR is named next to them in
 * Alipay's 异常处理 guidance (opendocs open/00f7nv as quoted by third-party notes: "接口返回 code=20000，
 * sub_code=isp.unknow-error 或 aop.ACQ.SYSTEM_ERROR，此时业务处理结果是未知的").
 */
export const SYSTEM_ERROR_SUB_CODES: ReadonlySet<string> = new Set([
  'ACQ.SYSTEM_ERROR',
  'AQC.SYSTEM_ERROR',
  'aop.ACQ.SYSTEM_ERROR',
  'isp.unknow-error',
  'aop.unknow-error',
]);

/**
 * [PAY] 40004 sub-codes that are a definitive "not paid" for alipay.trade.pay ([F2F-DEMO]: every answer other than
 * 10000/10003/20000 is 明确失败 — we take only the documented ones, everything else stays unknown).
 * No separate "code expired" sub-code is published: an expired code is ACQ.PAYMENT_AUTH_CODE_INVALID
 * (解决方案 lists "请用户确认付款码是否过期"), so Alipay never yields CODE_EXPIRED.
 */
export const PAY_FAILURES: ReadonlyMap<string, FailReason> = new Map<string, FailReason>([
  ['ACQ.PAYMENT_AUTH_CODE_INVALID', 'CODE_INVALID'], // 支付授权码无效 / 付款码无效 — 用户刷新条码后，重新扫码发起请求
  ['ACQ.BUYER_BALANCE_NOT_ENOUGH', 'INSUFFICIENT_FUNDS'], // 买家余额不足
  ['ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH', 'INSUFFICIENT_FUNDS'], // 用户银行卡余额不足
  ['ACQ.ERROR_BALANCE_PAYMENT_DISABLE', 'DECLINED'], // 余额支付功能关闭
  ['ACQ.PAYMENT_FAIL', 'DECLINED'], // 支付失败 — 用户刷新条码后，重新发起请求
  ['ACQ.PAYMENT_REQUEST_HAS_RISK', 'DECLINED'], // 支付有风险 — 更换其它付款方式
  ['ACQ.NO_PAYMENT_INSTRUMENTS_AVAILABLE', 'DECLINED'], // 没用可用的支付工具
  ['ACQ.PULL_MOBILE_CASHIER_FAIL', 'DECLINED'], // 唤起移动收银台失败 — 用户刷新条码后，重新扫码发起请求
  ['ACQ.MOBILE_PAYMENT_SWITCH_OFF', 'DECLINED'], // 用户的无线支付开关关闭
  ['ACQ.USER_FACE_PAYMENT_SWITCH_OFF', 'DECLINED'], // 用户当面付付款开关关闭
  ['ACQ.BUYER_ENABLE_STATUS_FORBID', 'DECLINED'], // 买家状态非法
  ['ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR', 'DECLINED'], // 买家付款日限额超限
  ['ACQ.BUYER_PAYMENT_AMOUNT_MONTH_LIMIT_ERROR', 'DECLINED'], // 买家付款月额度超限
  ['ACQ.ERROR_BUYER_CERTIFY_LEVEL_LIMIT', 'DECLINED'], // 买家未通过人行认证
  ['ACQ.BUYER_SELLER_EQUAL', 'DECLINED'], // 买卖家不能相同
  // The merchant's side: the trade was refused before it existed.
  ['ACQ.INVALID_PARAMETER', 'DECLINED'], // 参数无效 — 检查请求参数，修改后重新发起请求
  ['ACQ.ACCESS_FORBIDDEN', 'DECLINED'], // 无权限使用接口 — 联系支付宝小二进行签约
  ['ACQ.PARTNER_ERROR', 'DECLINED'], // 应用APP_ID填写错误
  ['ACQ.TOTAL_FEE_EXCEED', 'DECLINED'], // 订单总金额超过限额
  ['ACQ.EXIST_FORBIDDEN_WORD', 'DECLINED'], // 订单信息中包含违禁词
  ['ACQ.SELLER_BEEN_BLOCKED', 'DECLINED'], // 商家账号被冻结
  ['ACQ.INVALID_STORE_ID', 'DECLINED'], // 商户门店编号无效
  ['ACQ.BEYOND_PAY_RESTRICTION', 'DECLINED'], // 商户收款额度超限
  ['ACQ.BEYOND_PER_RECEIPT_RESTRICTION', 'DECLINED'], // 商户收款金额超过月限额
]);

/**
 * [PAY] 40004 sub-codes on alipay.trade.pay that say something about an EXISTING trade with this out_trade_no —
 * a repeated pay after a timeout lands here. Not a failure: the trade may be paid. Query it.
 */
export const PAY_ASK_QUERY: ReadonlyMap<string, string> = new Map([
  ['ACQ.TRADE_HAS_SUCCESS', 'the trade is already paid (交易已被支付): query it'],
  ['ACQ.TRADE_HAS_CLOSE', 'the trade is already closed (交易已经关闭): query it'],
  ['ACQ.CONTEXT_INCONSISTENT', 'a trade with this out_trade_no exists with other details (交易信息被篡改): query it'],
  ['ACQ.TRADE_BUYER_NOT_MATCH', 'a trade with this out_trade_no exists for another buyer (交易买家不匹配): query it'],
]);

/** [REPEAT] the repeated-pay answer whose documented next step is to look the (paid) trade up. */
export const PAID_ALREADY_SUB_CODE = 'ACQ.TRADE_HAS_SUCCESS';

/** [QUERY]/[F2F-DEMO] trade_status of a 10000 query answer. */
export const QUERY_TRADE_STATUS: ReadonlyMap<string, 'success' | 'in_progress' | 'closed'> = new Map([
  ['TRADE_SUCCESS', 'success'],
  ['TRADE_FINISHED', 'success'],
  ['WAIT_BUYER_PAY', 'in_progress'],
  // Closed unpaid, cancelled, or fully refunded: in every case nothing stays charged.
  ['TRADE_CLOSED', 'closed'],
] as const);

/** [QUERY] 40004 sub-code on alipay.trade.query: 交易不存在. Right after a timed-out pay this means "not yet". */
export const QUERY_NOT_FOUND_SUB_CODES: ReadonlySet<string> = new Set(['ACQ.TRADE_NOT_EXIST']);

/** [CANCEL] 40004 sub-codes on alipay.trade.cancel with a documented next step. */
export const CANCEL_SUB_CODES: ReadonlyMap<string, 'window_passed' | 'retry_later'> = new Map([
  ['ACQ.TRADE_CANCEL_TIME_OUT', 'window_passed'], // 超过撤销时间范围 — 可使用退款接口发起交易退款
  ['ACQ.SELLER_BALANCE_NOT_ENOUGH', 'retry_later'], // 商户的支付宝账户中无足够的资金进行撤销 — 充值后重新发起撤销
] as const);

/** [REFUND] 40004 sub-codes on alipay.trade.refund that are a definitive "this refund did not happen". */
export const REFUND_FAILURES: ReadonlyMap<string, FailReason> = new Map<string, FailReason>([
  ['ACQ.TRADE_NOT_EXIST', 'DECLINED'], // 交易不存在
  ['ACQ.TRADE_HAS_FINISHED', 'DECLINED'], // 交易已完结，不允许进行退款
  ['ACQ.TRADE_STATUS_ERROR', 'DECLINED'], // 交易状态非法
  ['ACQ.TRADE_NOT_ALLOW_REFUND', 'DECLINED'], // 当前交易不允许退款
  ['ACQ.REFUND_AMT_NOT_EQUAL_TOTAL', 'DECLINED'], // 退款金额超限
  ['ACQ.REASON_TRADE_REFUND_FEE_ERR', 'DECLINED'], // 退款金额无效
  ['ACQ.REFUND_FEE_ERROR', 'DECLINED'], // 交易退款金额有误
]);
/** [REFUND] 40004 sub-codes on alipay.trade.refund that ask to call again later with the same out_request_no. */
export const REFUND_RETRY_LATER_SUB_CODES: ReadonlySet<string> = new Set([
  'ACQ.SELLER_BALANCE_NOT_ENOUGH', // 卖家余额不足 — 商户支付宝账户充值后重新发起退款即可
]);

/** Bill download: 40004 sub-codes meaning "no bill for that date" (账单不存在 / 无账单数据; the prefix varies by page). */
export const BILL_NONE_SUB_CODES: ReadonlySet<string> = new Set(['isp.bill_not_exist', 'BILL_NOT_EXIST', 'NO_BILL_DATA']);

// ---------------------------------------------------------------------------------------------------------------
// Mappers

export function mapPay(opened: OpenedResponse, expect: Expectation): Mapped<PayOutcome> {
  if (!opened.ok) return unverified(opened, 'pay');
  const f = factsOf(opened);
  if (namesAnotherOrder(f, expect)) return { outcome: otherOrder(f, 'pay'), facts: f };
  if (f.code === SUCCESS_CODE) return { outcome: success(f, expect, 'pay'), facts: f };
  if (f.code === WAIT_BUYER_PAY_CODE) return { outcome: { kind: 'in_progress', message: describe(f, 'pay') }, facts: f };
  if (isSystemError(f)) return { outcome: unknown('SYSTEMERROR', describe(f, 'pay')), facts: f };
  if (f.code === BUSINESS_FAILED_CODE && f.subCode !== undefined) {
    const reason = PAY_FAILURES.get(f.subCode);
    if (reason !== undefined) return { outcome: { kind: 'failed', reason, message: describe(f, 'pay') }, facts: f };
    const ask = PAY_ASK_QUERY.get(f.subCode);
    if (ask !== undefined) {
      const mapped: Mapped<PayOutcome> = { outcome: unknown('OTHER', `pay ${f.subCode}: ${ask}`), facts: f };
      return f.subCode === PAID_ALREADY_SUB_CODE ? { ...mapped, next: 'query' } : mapped;
    }
  }
  return { outcome: unknown('OTHER', `pay: unrecognised answer ${describe(f, '')}`), facts: f };
}

export function mapQuery(opened: OpenedResponse, expect: Expectation): Mapped<QueryOutcome> {
  if (!opened.ok) return unverified(opened, 'query');
  const f = factsOf(opened);
  if (namesAnotherOrder(f, expect)) return { outcome: otherOrder(f, 'query'), facts: f };
  if (f.code === SUCCESS_CODE) {
    const status = f.tradeStatus === undefined ? undefined : QUERY_TRADE_STATUS.get(f.tradeStatus);
    if (status === 'success') return { outcome: success(f, expect, 'query'), facts: f };
    if (status === 'in_progress') return { outcome: { kind: 'in_progress', message: describe(f, 'query') }, facts: f };
    // TRADE_CLOSED is both "closed unpaid" and "paid, then refunded in full" ([QUERY]). Only a paid trade has a
    // payment time, so send_pay_date tells them apart; both mean nothing stays charged, so neither can move money.
    if (status === 'closed') return { outcome: parseBeijingTimestamp(f.sendPayDate) === undefined ? { kind: 'closed' } : { kind: 'refunded' }, facts: f };
    return { outcome: unknown('OTHER', `query: unrecognised trade_status ${String(f.tradeStatus)}`), facts: f };
  }
  if (isSystemError(f)) return { outcome: unknown('SYSTEMERROR', describe(f, 'query')), facts: f };
  if (f.code === BUSINESS_FAILED_CODE && f.subCode !== undefined && QUERY_NOT_FOUND_SUB_CODES.has(f.subCode)) {
    return { outcome: { kind: 'not_found' }, facts: f };
  }
  return { outcome: unknown('OTHER', `query: unrecognised answer ${describe(f, '')}`), facts: f };
}

/** alipay.trade.cancel → ReverseOutcome. `facts.action` and `facts.retryFlag` are for the attempt's record. */
export function mapCancel(opened: OpenedResponse, expect: Expectation): Mapped<ReverseOutcome> {
  if (!opened.ok) return unverified(opened, 'cancel');
  const f = factsOf(opened);
  if (namesAnotherOrder(f, expect)) return { outcome: otherOrder(f, 'cancel'), facts: f };
  // [F2F-DEMO] needRetry: retry_flag "Y" means call cancel again, whatever the code. We let it win over 10000:
  // another cancel is harmless, a cancel wrongly taken as done leaves money in flight.
  if (f.retryFlag === 'Y') return { outcome: { kind: 'retry_later', message: describe(f, 'cancel (retry_flag=Y)') }, facts: f };
  if (f.code === SUCCESS_CODE) {
    if (f.outTradeNo !== expect.outTradeNo) return { outcome: unknown('OTHER', 'cancel: success without our out_trade_no'), facts: f };
    return { outcome: f.action === 'close' || f.action === 'refund' ? { kind: 'reversed', action: f.action } : { kind: 'reversed' }, facts: f };
  }
  if (isSystemError(f)) return { outcome: unknown('SYSTEMERROR', describe(f, 'cancel')), facts: f };
  if (f.code === BUSINESS_FAILED_CODE && f.subCode !== undefined) {
    const next = CANCEL_SUB_CODES.get(f.subCode);
    if (next === 'window_passed') return { outcome: { kind: 'window_passed' }, facts: f };
    if (next === 'retry_later') return { outcome: { kind: 'retry_later', message: describe(f, 'cancel') }, facts: f };
  }
  return { outcome: unknown('OTHER', `cancel: unrecognised answer ${describe(f, '')}`), facts: f };
}

export function mapRefund(opened: OpenedResponse, expect: Expectation & { refundNo: string }): Mapped<RefundOutcome> {
  if (!opened.ok) return unverified(opened, 'refund');
  const f = factsOf(opened);
  if (namesAnotherOrder(f, expect)) return { outcome: otherOrder(f, 'refund'), facts: f };
  if (f.code === SUCCESS_CODE) {
    if (f.outTradeNo !== expect.outTradeNo) return { outcome: unknown('OTHER', 'refund: success without our out_trade_no'), facts: f };
    if (f.fundChange === 'Y') return { outcome: { kind: 'refunded', refundNo: expect.refundNo }, facts: f };
    // fund_change N: this call moved no money — a repeat of a refund already done, or not done. Ask the refund query.
    return {
      outcome: unknown('OTHER', `refund: 10000 with fund_change=${String(f.fundChange)}: confirm with alipay.trade.fastpay.refund.query`),
      facts: f,
      next: 'refund_query',
    };
  }
  if (isSystemError(f)) return { outcome: unknown('SYSTEMERROR', describe(f, 'refund')), facts: f };
  if (f.code === BUSINESS_FAILED_CODE && f.subCode !== undefined) {
    const reason = REFUND_FAILURES.get(f.subCode);
    if (reason !== undefined) return { outcome: { kind: 'failed', reason, message: describe(f, 'refund') }, facts: f };
    if (REFUND_RETRY_LATER_SUB_CODES.has(f.subCode)) return { outcome: { kind: 'retry_later', message: describe(f, 'refund') }, facts: f };
  }
  return { outcome: unknown('OTHER', `refund: unrecognised answer ${describe(f, '')}`), facts: f };
}

/**
 * alipay.trade.fastpay.refund.query → RefundOutcome: `refunded` only on REFUND_SUCCESS for our out_request_no;
 * a 10000 without it is "not refunded (yet)" → retry_later (send the refund again with the SAME out_request_no,
 * and query no sooner than 10 s after a refund).
 */
export function mapRefundQuery(opened: OpenedResponse, expect: Expectation & { refundNo: string }): Mapped<RefundOutcome> {
  if (!opened.ok) return unverified(opened, 'refund query');
  const f = factsOf(opened);
  if (namesAnotherOrder(f, expect) || (f.outRequestNo !== undefined && f.outRequestNo !== expect.refundNo)) {
    return { outcome: otherOrder(f, 'refund query'), facts: f };
  }
  if (f.code === SUCCESS_CODE) {
    if (f.refundStatus === 'REFUND_SUCCESS') {
      if (f.outRequestNo !== expect.refundNo) return { outcome: unknown('OTHER', 'refund query: REFUND_SUCCESS without our out_request_no'), facts: f };
      return { outcome: { kind: 'refunded', refundNo: expect.refundNo }, facts: f };
    }
    return {
      outcome: { kind: 'retry_later', message: clip(`refund query: refund_status=${String(f.refundStatus)}: not refunded (yet); refund again with the same out_request_no`) },
      facts: f,
    };
  }
  if (isSystemError(f)) return { outcome: unknown('SYSTEMERROR', describe(f, 'refund query')), facts: f };
  return { outcome: unknown('OTHER', `refund query: unrecognised answer ${describe(f, '')}`), facts: f };
}

export function mapBillUrl(opened: OpenedResponse): Mapped<BillUrlOutcome> {
  if (!opened.ok) return unverified(opened, 'bill url query');
  const f = factsOf(opened);
  if (f.code === SUCCESS_CODE) {
    const url = f.billDownloadUrl;
    if (url !== undefined && /^https?:\/\/[^\s]+$/.test(url)) return { outcome: { kind: 'url', url }, facts: f };
    return { outcome: unknown('OTHER', 'bill url query: 10000 without a bill_download_url'), facts: f };
  }
  if (isSystemError(f)) return { outcome: unknown('SYSTEMERROR', describe(f, 'bill url query')), facts: f };
  if (f.code === BUSINESS_FAILED_CODE && f.subCode !== undefined && BILL_NONE_SUB_CODES.has(f.subCode)) {
    return { outcome: { kind: 'no_bill' }, facts: f };
  }
  return { outcome: unknown('OTHER', `bill url query: unrecognised answer ${describe(f, '')}`), facts: f };
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

type Receipt = { paidAt?: number; buyerPaid?: number; discount?: number };
type SuccessOutcome = { kind: 'success'; gatewayTradeNo: string; amount: number } & Receipt;
type UnknownOutcome = { kind: 'unknown'; code: UnknownCode; message: string };

const STRING_FACTS = {
  code: 'code',
  msg: 'msg',
  subCode: 'sub_code',
  subMsg: 'sub_msg',
  outTradeNo: 'out_trade_no',
  tradeNo: 'trade_no',
  tradeStatus: 'trade_status',
  totalAmount: 'total_amount',
  action: 'action',
  retryFlag: 'retry_flag',
  fundChange: 'fund_change',
  refundFee: 'refund_fee',
  outRequestNo: 'out_request_no',
  refundStatus: 'refund_status',
  refundAmount: 'refund_amount',
  billDownloadUrl: 'bill_download_url',
  buyerPayAmount: 'buyer_pay_amount',
  gmtPayment: 'gmt_payment',
  sendPayDate: 'send_pay_date',
  discountAmount: 'discount_amount',
  mdiscountAmount: 'mdiscount_amount',
} as const satisfies Record<string, string>;

function factsOf(opened: Extract<OpenedResponse, { ok: true }>): AlipayFacts {
  const facts: AlipayFacts = { verified: true, nodeKey: opened.nodeKey };
  for (const [name, field] of Object.entries(STRING_FACTS) as [keyof typeof STRING_FACTS, string][]) {
    const v = Object.hasOwn(opened.node, field) ? opened.node[field] : undefined;
    if (typeof v === 'string') facts[name] = v;
  }
  return facts;
}

function isSystemError(f: AlipayFacts): boolean {
  return f.code === SERVICE_UNAVAILABLE_CODE || (f.subCode !== undefined && SYSTEM_ERROR_SUB_CODES.has(f.subCode));
}

/** An answer that carries an out_trade_no other than ours is about another order (a replay, a mix-up). */
function namesAnotherOrder(f: AlipayFacts, expect: Expectation): boolean {
  return f.outTradeNo !== undefined && f.outTradeNo !== expect.outTradeNo;
}

function otherOrder(f: AlipayFacts, what: string) {
  return unknown('OTHER', `${what}: the answer names out_trade_no ${JSON.stringify(f.outTradeNo)}${f.outRequestNo === undefined ? '' : ` / out_request_no ${JSON.stringify(f.outRequestNo)}`}, not ours`);
}

/** 10000 + paid: success only with our out_trade_no, a trade_no and an exact amount in the interface's range. */
function success(f: AlipayFacts, expect: Expectation, what: string): SuccessOutcome | UnknownOutcome {
  if (f.outTradeNo !== expect.outTradeNo) return unknown('OTHER', `${what}: paid, but the answer does not name our out_trade_no`);
  const tradeNo = f.tradeNo;
  if (tradeNo === undefined || tradeNo.length < 1 || tradeNo.length > 64) return unknown('OTHER', `${what}: paid, but without a usable trade_no`);
  const fen = tryYuanToFen(f.totalAmount);
  if (fen === undefined || fen < 1 || fen > DEFAULT_MAX_MINOR) {
    return unknown('OTHER', `${what}: paid, but total_amount ${JSON.stringify(f.totalAmount)} is not an exact amount we can take`);
  }
  // `amount` stays the wallet's total_amount whatever the receipt says: the cloud compares it with the attempt.
  return { kind: 'success', gatewayTradeNo: tradeNo, amount: fen, ...receiptOf(f, fen) };
}

/** [RECEIPT] paidAt, buyerPaid and discount, each only when the answer gives it exactly and it fits the total. */
function receiptOf(f: AlipayFacts, total: number): Receipt {
  const receipt: Receipt = {};
  const paidAt = parseBeijingTimestamp(f.gmtPayment ?? f.sendPayDate);
  if (paidAt !== undefined) receipt.paidAt = paidAt;
  const buyerPaid = tryYuanToFen(f.buyerPayAmount);
  if (buyerPaid !== undefined && buyerPaid <= total) receipt.buyerPaid = buyerPaid;
  const discount = discountOf(f, total, receipt.buyerPaid);
  if (discount !== undefined) receipt.discount = discount;
  return receipt;
}

/**
 * The documented discount fields (platform + merchant) when the answer carries either; otherwise what the buyer did
 * not pay of the total (total − buyer_pay_amount, which also counts points: the interface's definition, gateway.ts).
 */
function discountOf(f: AlipayFacts, total: number, buyerPaid: number | undefined): number | undefined {
  if (f.discountAmount === undefined && f.mdiscountAmount === undefined) return buyerPaid === undefined ? undefined : total - buyerPaid;
  const parts = [f.discountAmount, f.mdiscountAmount].filter((v) => v !== undefined).map(tryYuanToFen);
  if (parts.some((p) => p === undefined)) return undefined;
  const sum = parts.reduce((a: number, p) => a + (p ?? 0), 0);
  return sum <= total ? sum : undefined;
}

function unverified(opened: Extract<OpenedResponse, { ok: false }>, what: string): Mapped<UnknownOutcome> {
  const facts: AlipayFacts = { verified: false, failure: opened.failure };
  if (opened.unverifiedHint !== undefined) facts.unverifiedHint = opened.unverifiedHint;
  const claim = opened.unverifiedHint === undefined ? '' : ` (unverified claim: ${opened.unverifiedHint})`;
  return { outcome: unknown('BAD_SIGNATURE', `${what}: answer not verified: ${opened.failure}${claim}`), facts };
}

function unknown(code: UnknownCode, message: string): UnknownOutcome {
  return { kind: 'unknown', code, message: clip(message) };
}

function describe(f: AlipayFacts, what: string): string {
  const parts = [f.code, f.subCode, f.subMsg ?? f.msg].filter((v) => v !== undefined && v !== '');
  return clip(`${what}${what ? ' ' : ''}${parts.join(' ')}`.trim());
}

/** Outcome messages are at most 200 characters (gateway.ts). */
function clip(s: string): string {
  return s.length > 200 ? `${s.slice(0, 199)}…` : s;
}
