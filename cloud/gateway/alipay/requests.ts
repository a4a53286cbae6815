import { fenToYuan } from './amount.js';
import { signRequest, type KeyInput, type ParamValue } from './sign.js';

/**
 * Builders for the signed requests of Alipay face-to-face (当面付) bar-code payment, ISV mode: the provider's
 * `app_id` and app private key sign every call, and the merchant is named by its `app_auth_token`.
 *
 * Common parameters ("公共请求参数", identical on every method page, e.g. alipay.trade.pay
 * https://opendocs.alipay.com/apis/api_1/alipay.trade.pay as published in https://w3cschool.cn/aliminiapp/aliminiapp-2wa52f4q.html):
 *   app_id (≤32), method, format "JSON" (仅支持JSON), charset (we use utf-8), sign_type "RSA2" (推荐使用RSA2),
 *   sign, timestamp "yyyy-MM-dd HH:mm:ss", version "1.0" (固定为1.0), app_auth_token (应用授权令牌, ISV calls on
 *   behalf of a merchant), biz_content (every business parameter, as one JSON string).
 * Alipay's face-to-face demo passes the merchant's token the same way on every call
 * (`request.putOtherTextParam("app_auth_token", builder.getAppAuthToken())` in AbsAlipayTradeService.java of the
 * Alipay F2F Java demo) and Alipay's Node SDK sends app_auth_token as a common (URL) parameter (src/alipay.ts `formatUrl`).
 *
 * Time: `timestamp` is Beijing time (UTC+8, no daylight saving) from the injected clock, whatever the server's
 * zone: the gateway checks it against its own clock (isv.invalid-timestamp), and the SDKs format local time on
 * servers that are in China (Node SDK: `YYYYMMDDHHmmss()` of `utility`).
 */

export const METHODS = {
  pay: 'alipay.trade.pay',
  query: 'alipay.trade.query',
  cancel: 'alipay.trade.cancel',
  refund: 'alipay.trade.refund',
  refundQuery: 'alipay.trade.fastpay.refund.query',
  billUrl: 'alipay.data.dataservice.bill.downloadurl.query',
} as const;
export type AlipayMethod = (typeof METHODS)[keyof typeof METHODS];

/** The provider's application (ISV): one per deployment. */
export interface AlipayApp {
  /** Alipay application id (digits). */
  appId: string;
  /** The app private key (RSA, 2048 bits per Alipay's key tool), PEM or bare base64. */
  privateKey: KeyInput;
}

export interface RequestContext {
  app: AlipayApp;
  /** The merchant's app_auth_token (ISV mode). Left out for a merchant's own app (direct mode). */
  appAuthToken?: string;
  /** Wall clock, ms since the epoch (protocol/clock.ts `Clock.now`). */
  clock: { now(): number };
}

export interface SignedRequest {
  method: AlipayMethod;
  /** Every parameter to send, `sign` included: exactly the signed set. */
  params: Readonly<Record<string, string>>;
  /** The business parameters as they were serialised into `biz_content`. */
  bizContent: Readonly<Record<string, string>>;
  /** `application/x-www-form-urlencoded; charset=utf-8` body carrying `params`, for a POST to gateway.do. */
  form: string;
}

export class AlipayRequestError extends TypeError {
  override readonly name = 'AlipayRequestError';
}

// ---------------------------------------------------------------------------------------------------------------
// Field rules

/**
 * out_trade_no: "64个字符以内" (alipay.trade.pay). The pay page says "仅支持字母、数字、下划线"; our keys are
 * `<deviceId>-<seq>` and carry a hyphen. Whether the live gateway accepts '-' is NOT confirmed from the published
 * material: this pattern admits it so the codec can carry the repository's keys, and the question is open.
 */
const OUT_TRADE_NO = /^[A-Za-z0-9_-]{1,64}$/;
/** out_request_no (refund id): ≤64 (alipay.trade.refund "标识一次退款请求……String 64"). Printable ASCII, no spaces. */
const OUT_REQUEST_NO = /^[\x21-\x7e]{1,64}$/;
/** auth_code: the buyer's payment code, digits ("25~30开头的长度为16~24位的数字", max length 32/64 across page versions). */
const AUTH_CODE = /^[0-9]{1,64}$/;
const APP_ID = /^[0-9]{1,32}$/;
/** app_auth_token: ≤40 on the older pages; we allow printable ASCII up to 128 (the v3 header's length). */
const APP_AUTH_TOKEN = /^[\x21-\x7e]{1,128}$/;
/** bill_date: "日账单格式为yyyy-MM-dd，月账单格式为yyyy-MM" (alipay.data.dataservice.bill.downloadurl.query). */
const BILL_DATE = /^\d{4}-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?$/;

function check(re: RegExp, value: string, what: string): string {
  if (typeof value !== 'string' || !re.test(value)) throw new AlipayRequestError(`${what} ${JSON.stringify(value)} is not valid for Alipay`);
  return value;
}

/** subject: required, ≤256, "不可使用特殊字符，如 /，=，& 等" (alipay.trade.pay). */
function checkSubject(subject: string): string {
  if (typeof subject !== 'string' || subject.length < 1 || subject.length > 256) throw new AlipayRequestError('subject must be 1–256 characters');
  if (/[/=&]/.test(subject)) throw new AlipayRequestError('subject must not contain / = or & (alipay.trade.pay)');
  // Control characters have no business in a title shown on the buyer's phone.
  if (/[\u0000-\u001f\u007f]/.test(subject)) throw new AlipayRequestError('subject must not contain control characters');
  return subject;
}

// ---------------------------------------------------------------------------------------------------------------
// Common parameters

const TZ_OFFSET_MS = 8 * 60 * 60 * 1000;

/** ms since the epoch → "yyyy-MM-dd HH:mm:ss" in Beijing time (UTC+8). */
export function beijingTimestamp(epochMs: number): string {
  if (!Number.isFinite(epochMs)) throw new AlipayRequestError(`clock gave ${epochMs}, not a time`);
  const d = new Date(Math.floor(epochMs) + TZ_OFFSET_MS);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
}

/**
 * "yyyy-MM-dd HH:mm:ss" in Beijing time → ms since the epoch; `undefined` for anything else, an impossible date
 * (2024-02-30) included: the text must be exactly what beijingTimestamp writes for the instant it names. Alipay
 * writes its times in this form (gmt_payment, send_pay_date, gmt_refund_pay; the trade bill's 创建时间/完成时间).
 */
export function parseBeijingTimestamp(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const epochMs = Date.UTC(y, mo - 1, d, h, mi, s) - TZ_OFFSET_MS;
  return Number.isFinite(epochMs) && beijingTimestamp(epochMs) === text ? epochMs : undefined;
}

function build(method: AlipayMethod, bizContent: Record<string, string>, ctx: RequestContext): SignedRequest {
  const params: Record<string, ParamValue> = {
    app_id: check(APP_ID, ctx.app.appId, 'app_id'),
    method,
    format: 'JSON',
    charset: 'utf-8',
    sign_type: 'RSA2',
    timestamp: beijingTimestamp(ctx.clock.now()),
    version: '1.0',
    app_auth_token: ctx.appAuthToken === undefined ? undefined : check(APP_AUTH_TOKEN, ctx.appAuthToken, 'app_auth_token'),
    biz_content: JSON.stringify(bizContent),
  };
  const signed = signRequest(params, ctx.app.privateKey);
  return { method, params: signed, bizContent, form: new URLSearchParams(signed).toString() };
}

// ---------------------------------------------------------------------------------------------------------------
// Methods

export interface PayInput {
  outTradeNo: string;
  /** The customer's payment code as scanned. */
  authCode: string;
  amountFen: number;
  subject: string;
  /**
   * product_code: "当面付场景下，如果签约的是当面付快捷版，则传 OFFLINE_PAYMENT; 其它支付宝当面付产品传
   * FACE_TO_FACE_PAYMENT" (alipay.trade.pay, as published in https://cnblogs.com/yly123/p/16019894.html; the older
   * page marks it 可选 with example FACE_TO_FACE_PAYMENT). Left out unless given; what the gateway assumes when it is
   * absent was not confirmed, so an adapter should set it from the merchant's contract.
   */
  productCode?: 'FACE_TO_FACE_PAYMENT' | 'OFFLINE_PAYMENT';
  storeId?: string;
  terminalId?: string;
}

/** alipay.trade.pay, scene bar_code ("条码支付，取值：bar_code"). */
export function buildPay(input: PayInput, ctx: RequestContext): SignedRequest {
  const biz: Record<string, string> = {
    out_trade_no: check(OUT_TRADE_NO, input.outTradeNo, 'out_trade_no'),
    scene: 'bar_code',
    auth_code: check(AUTH_CODE, input.authCode, 'auth_code'),
    subject: checkSubject(input.subject),
    total_amount: fenToYuan(input.amountFen),
  };
  if (input.productCode !== undefined) biz.product_code = input.productCode;
  if (input.storeId !== undefined) biz.store_id = check(/^[\x21-\x7e]{1,32}$/, input.storeId, 'store_id');
  if (input.terminalId !== undefined) biz.terminal_id = check(/^[\x21-\x7e]{1,32}$/, input.terminalId, 'terminal_id');
  return build(METHODS.pay, biz, ctx);
}

/** alipay.trade.query by out_trade_no ("订单支付时传入的商户订单号，和支付宝交易号不能同时为空"). */
export function buildQuery(input: { outTradeNo: string }, ctx: RequestContext): SignedRequest {
  return build(METHODS.query, { out_trade_no: check(OUT_TRADE_NO, input.outTradeNo, 'out_trade_no') }, ctx);
}

/** alipay.trade.cancel by out_trade_no ("原支付请求的商户订单号，和支付宝交易号不能同时为空"). */
export function buildCancel(input: { outTradeNo: string }, ctx: RequestContext): SignedRequest {
  return build(METHODS.cancel, { out_trade_no: check(OUT_TRADE_NO, input.outTradeNo, 'out_trade_no') }, ctx);
}

export interface RefundInput {
  outTradeNo: string;
  /**
   * out_request_no = our refund id: "标识一次退款请求……如需部分退款，则此参数必传。针对同一次退款请求，如果调用接口失败或
   * 异常了，重试时需要保证退款请求号不能变更，防止该笔交易重复退款。支付宝会保证同样的退款请求号多次请求只会退一次。"
   * (alipay.trade.refund, as quoted on https://docs.rs/labrador/latest/labrador/struct.AlipayTradeRefundModel.html)
   */
  refundNo: string;
  amountFen: number;
  reason?: string;
}

/** alipay.trade.refund. Always sends out_request_no, so a retry can never refund twice. */
export function buildRefund(input: RefundInput, ctx: RequestContext): SignedRequest {
  const biz: Record<string, string> = {
    out_trade_no: check(OUT_TRADE_NO, input.outTradeNo, 'out_trade_no'),
    out_request_no: check(OUT_REQUEST_NO, input.refundNo, 'out_request_no'),
    refund_amount: fenToYuan(input.amountFen),
  };
  if (input.reason !== undefined) {
    if (input.reason.length > 256 || /[\u0000-\u001f\u007f]/.test(input.reason)) throw new AlipayRequestError('refund_reason must be ≤256 printable characters');
    biz.refund_reason = input.reason;
  }
  return build(METHODS.refund, biz, ctx);
}

/** alipay.trade.fastpay.refund.query: out_request_no is required ("退款请求号……必选"). */
export function buildRefundQuery(input: { outTradeNo: string; refundNo: string }, ctx: RequestContext): SignedRequest {
  return build(
    METHODS.refundQuery,
    { out_trade_no: check(OUT_TRADE_NO, input.outTradeNo, 'out_trade_no'), out_request_no: check(OUT_REQUEST_NO, input.refundNo, 'out_request_no') },
    ctx,
  );
}

/**
 * alipay.data.dataservice.bill.downloadurl.query: bill_type "trade" (交易收单的业务账单, what face-to-face
 * merchants reconcile) or "signcustomer" (账务账单); bill_date yyyy-MM-dd or yyyy-MM
 * (https://opendocs.alipay.com/apis/api_15/alipay.data.dataservice.bill.downloadurl.query, as published in
 * https://yq.aliyun.com/articles/710932 and https://developer.aliyun.com/article/707638). The URL answered is valid
 * for 30 seconds ("获取连接后30秒后未下载，链接地址失效").
 */
export function buildBillUrlQuery(input: { billType: 'trade' | 'signcustomer'; billDate: string }, ctx: RequestContext): SignedRequest {
  if (input.billType !== 'trade' && input.billType !== 'signcustomer') throw new AlipayRequestError(`bill_type ${JSON.stringify(input.billType)} is not trade or signcustomer`);
  return build(METHODS.billUrl, { bill_type: input.billType, bill_date: check(BILL_DATE, input.billDate, 'bill_date') }, ctx);
}
