import { randomInt } from 'node:crypto';
import { isIP } from 'node:net';
import { PayRequest, QueryRequest, RefundRequest, ReverseRequest } from '../gateway.js';
import { withSign, type SignType, SIGN_TYPES } from './sign.js';
import { SOURCES } from './sources.js';

/**
 * Request builders for the WeChat Pay v2 calls of a service provider (服务商): the provider's `appid`
 * and `mch_id` sign every call, the merchant is named by `sub_mch_id`. Each builder checks its input,
 * adds `nonce_str` (crypto RNG) and `sign_type`, and signs. Amounts are integer fen, written as
 * decimal integers — never a float. Nothing here does I/O.
 */

/** One set per wallet, held by the cloud (DESIGN.md "Money and identity"). */
export interface ProviderCredentials {
  /** 服务商的APPID, bound to the provider mch_id. */
  appid: string;
  /** 服务商商户号. */
  mchId: string;
  /** API key (商户平台 → API安全 → API密钥): signs requests, verifies answers. Never sent. */
  apiKey: string;
  signType: SignType;
}

/** The merchant's WeChat ids under the provider. */
export interface SubMerchant {
  /** 子商户号 — required in provider mode. */
  subMchId: string;
  /** 子商户公众账号ID — optional. */
  subAppid?: string;
  /** `body` when the sale has no description: the doc wants "门店品牌名-城市分店名-实际商品名称" (SOURCES.micropay). */
  defaultBody: string;
}

export type WechatCall = 'micropay' | 'orderquery' | 'reverse' | 'refund' | 'refundquery' | 'downloadbill';

/** Where each call goes on https://api.mch.weixin.qq.com (backup host api2.mch.weixin.qq.com), and whether it needs the client certificate. */
export const WECHAT_CALLS: Readonly<Record<WechatCall, { path: string; clientCert: boolean; source: string }>> = {
  // "是否需要证书: 不需要" (SOURCES.micropay)
  micropay: { path: '/pay/micropay', clientCert: false, source: SOURCES.micropay },
  orderquery: { path: '/pay/orderquery', clientCert: false, source: SOURCES.orderquery },
  // "撤销订单API需要双向证书" (SOURCES.micropay notes; SOURCES.reverse "请求需要双向证书")
  reverse: { path: '/secapi/pay/reverse', clientCert: true, source: SOURCES.reverse },
  // secapi: 申请退款 needs the client certificate (SOURCES.refund)
  refund: { path: '/secapi/pay/refund', clientCert: true, source: SOURCES.refund },
  refundquery: { path: '/pay/refundquery', clientCert: false, source: SOURCES.refundquery },
  downloadbill: { path: '/pay/downloadbill', clientCert: false, source: SOURCES.downloadbill },
};

export const API_HOSTS = { primary: 'https://api.mch.weixin.qq.com', backup: 'https://api2.mch.weixin.qq.com' } as const;

/** A signed request, ready for `encodeXml(params)` and a POST to `path`. */
export interface WechatRequest {
  call: WechatCall;
  path: string;
  clientCert: boolean;
  params: Readonly<Record<string, string>>;
}

export interface BuildOptions {
  /** Replaces the random nonce (tests only). */
  nonce?: () => string;
}

const NONCE_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** 32 characters of [0-9A-Za-z] from the crypto RNG, unbiased ("随机字符串，不长于32位", SOURCES.micropay). */
export function randomNonce(length = 32): string {
  let out = '';
  for (let n = 0; n < length; n++) out += NONCE_ALPHABET[randomInt(NONCE_ALPHABET.length)];
  return out;
}

/** Integer fen as WeChat's decimal integer: refuses a float, zero, a negative number, anything unsafe. */
export function fen(amount: number): string {
  if (!Number.isSafeInteger(amount) || amount <= 0) throw new RangeError(`wechat: ${amount} is not a positive whole number of fen`);
  return String(amount);
}

/** The first `max` UTF-8 bytes of `text`, cut between characters. */
function utf8Prefix(text: string, max: number): string {
  let bytes = 0;
  let out = '';
  for (const ch of text) {
    bytes += Buffer.byteLength(ch, 'utf8');
    if (bytes > max) break;
    out += ch;
  }
  return out;
}

function checkId(what: string, value: string, max = 32): string {
  if (value.length === 0 || value.length > max || !/^[\x21-\x7e]+$/.test(value)) throw new RangeError(`wechat: ${what} must be 1–${max} printable ASCII characters`);
  return value;
}

function common(creds: ProviderCredentials, merchant: Pick<SubMerchant, 'subMchId' | 'subAppid'> | undefined, opts: BuildOptions): Record<string, string | undefined> {
  if (!SIGN_TYPES.includes(creds.signType)) throw new RangeError(`wechat: unknown sign type ${String(creds.signType)}`);
  const nonce = (opts.nonce ?? randomNonce)();
  return {
    appid: checkId('appid', creds.appid),
    mch_id: checkId('mch_id', creds.mchId),
    sub_appid: merchant?.subAppid === undefined ? undefined : checkId('sub_appid', merchant.subAppid),
    sub_mch_id: merchant === undefined ? undefined : checkId('sub_mch_id', merchant.subMchId),
    nonce_str: checkId('nonce_str', nonce),
    // Optional, "默认为MD5" (SOURCES.micropay); always sent so the answer's sign type is never a guess.
    sign_type: creds.signType,
  };
}

function finish(call: WechatCall, params: Record<string, string | undefined>, creds: ProviderCredentials): WechatRequest {
  const { path, clientCert } = WECHAT_CALLS[call];
  return { call, path, clientCert, params: withSign(params, creds.apiKey, creds.signType) };
}

/** CNY is the only currency of these merchants (the protocol allows CNY only). */
function cny(currency: string): 'CNY' {
  if (currency !== 'CNY') throw new RangeError(`wechat: currency ${currency} is not CNY`);
  return 'CNY';
}

export interface MicropayExtra {
  /** 终端IP "调用微信支付API的机器IP" — required (SOURCES.micropay). IPv4 or IPv6. */
  spbillCreateIp: string;
  /** 设备号 "终端设备号(商户自定义，如门店编号)", ≤ 32 — optional. */
  deviceInfo?: string;
}

/**
 * 付款码支付 POST /pay/micropay (SOURCES.micropay, SOURCES.micropayLegacy). Fields: appid, mch_id,
 * sub_mch_id, [sub_appid], nonce_str, sign_type, sign, body (String(127)), out_trade_no (≤ 32, the
 * attempt's idempotency key), total_fee (int fen), fee_type CNY, spbill_create_ip, auth_code (the
 * payment code the box scanned), [device_info].
 */
export function buildMicropay(req: PayRequest, creds: ProviderCredentials, merchant: SubMerchant, extra: MicropayExtra, opts: BuildOptions = {}): WechatRequest {
  const r = PayRequest.parse(req);
  if (r.wallet !== 'wechat') throw new RangeError(`wechat: a ${r.wallet} payment cannot go to WeChat Pay`);
  if (isIP(extra.spbillCreateIp) === 0) throw new RangeError(`wechat: spbill_create_ip ${JSON.stringify(extra.spbillCreateIp)} is not an IP address`);
  // body is String(127); cut by UTF-8 bytes, which is never longer than 127 characters either way.
  const body = utf8Prefix(r.description ?? merchant.defaultBody, 127);
  if (body.length === 0) throw new RangeError('wechat: body is empty (no description and no default body)');
  return finish(
    'micropay',
    {
      ...common(creds, merchant, opts),
      body,
      out_trade_no: checkId('out_trade_no', r.outTradeNo),
      total_fee: fen(r.amount),
      fee_type: cny(r.currency),
      spbill_create_ip: extra.spbillCreateIp,
      auth_code: r.code,
      device_info: extra.deviceInfo === undefined ? undefined : checkId('device_info', extra.deviceInfo),
    },
    creds,
  );
}

/** 查询订单 POST /pay/orderquery by out_trade_no (SOURCES.orderquery). */
export function buildOrderQuery(req: QueryRequest, creds: ProviderCredentials, merchant: SubMerchant, opts: BuildOptions = {}): WechatRequest {
  const r = QueryRequest.parse(req);
  return finish('orderquery', { ...common(creds, merchant, opts), out_trade_no: checkId('out_trade_no', r.outTradeNo) }, creds);
}

/** 撤销订单 POST /secapi/pay/reverse by out_trade_no — client certificate (SOURCES.reverse). */
export function buildReverse(req: ReverseRequest, creds: ProviderCredentials, merchant: SubMerchant, opts: BuildOptions = {}): WechatRequest {
  const r = ReverseRequest.parse(req);
  return finish('reverse', { ...common(creds, merchant, opts), out_trade_no: checkId('out_trade_no', r.outTradeNo) }, creds);
}

export interface RefundExtra {
  /** refund_desc, shown to the customer — optional. */
  reason?: string;
}

/**
 * 申请退款 POST /secapi/pay/refund — client certificate (SOURCES.refund). out_refund_no is the refund's
 * idempotency key ("一笔退款失败后重新提交，请不要更换退款单号，请使用原商户退款单号"); total_fee is the
 * order's total ("订单总金额", the request's `total`), refund_fee ≤ total_fee.
 */
export function buildRefund(req: RefundRequest, creds: ProviderCredentials, merchant: SubMerchant, extra: RefundExtra = {}, opts: BuildOptions = {}): WechatRequest {
  const r = RefundRequest.parse(req);
  const total = fen(r.total);
  if (r.amount > r.total) throw new RangeError(`wechat: refund ${r.amount} fen is more than the order's ${r.total}`);
  // out_refund_no: "只能是数字、大小写字母_-|*@", ≤ 64 (SOURCES.refund).
  if (!/^[0-9A-Za-z_\-|*@]{1,64}$/.test(r.refundNo)) throw new RangeError('wechat: out_refund_no must be 1–64 of 0-9 A-Z a-z _ - | * @');
  return finish(
    'refund',
    {
      ...common(creds, merchant, opts),
      out_trade_no: checkId('out_trade_no', r.outTradeNo),
      out_refund_no: r.refundNo,
      total_fee: total,
      refund_fee: fen(r.amount),
      refund_fee_type: cny(r.currency),
      refund_desc: extra.reason === undefined ? undefined : utf8Prefix(extra.reason, 80),
    },
    creds,
  );
}

/**
 * 查询退款 POST /pay/refundquery (SOURCES.refundquery): by out_refund_no (one refund: what
 * RefundOutcome needs) or by out_trade_no (every refund of the order: what a trade_state REFUND needs).
 */
export function buildRefundQuery(
  by: { refundNo: string } | { outTradeNo: string; offset?: number },
  creds: ProviderCredentials,
  merchant: SubMerchant,
  opts: BuildOptions = {},
): WechatRequest {
  if (!('refundNo' in by) && by.offset !== undefined && !(Number.isSafeInteger(by.offset) && by.offset >= 0)) {
    throw new RangeError(`wechat: refundquery offset ${by.offset} is not a whole number ≥ 0`);
  }
  const key =
    'refundNo' in by
      ? { out_refund_no: checkId('out_refund_no', by.refundNo, 64) }
      : { out_trade_no: checkId('out_trade_no', by.outTradeNo), offset: by.offset === undefined ? undefined : String(by.offset) };
  return finish('refundquery', { ...common(creds, merchant, opts), ...key }, creds);
}

export type BillType = 'ALL' | 'SUCCESS' | 'REFUND' | 'RECHARGE_REFUND';

/**
 * 下载对账单 POST /pay/downloadbill (SOURCES.downloadbill): bill_date yyyyMMdd, bill_type. Without a
 * sub-merchant the provider's bill for all its merchants. The answer is bill text, not signed XML
 * (an error comes back as XML) — reading it is the bill work's, not this codec's.
 */
export function buildDownloadBill(
  bill: { date: string; type: BillType },
  creds: ProviderCredentials,
  merchant: SubMerchant | undefined,
  opts: BuildOptions = {},
): WechatRequest {
  if (!/^\d{8}$/.test(bill.date)) throw new RangeError('wechat: bill_date must be yyyyMMdd');
  if (!['ALL', 'SUCCESS', 'REFUND', 'RECHARGE_REFUND'].includes(bill.type)) throw new RangeError(`wechat: unknown bill_type ${bill.type}`);
  return finish('downloadbill', { ...common(creds, merchant, opts), bill_date: bill.date, bill_type: bill.type }, creds);
}
