/**
 * Alipay amounts (yuan as a decimal string) ↔ fen (integer minor units), exactly, never through a float.
 *
 * Rules and where they come from:
 * - `total_amount` / `refund_amount` are yuan, "精确到小数点后两位", range [0.01, 100000000]:
 *   alipay.trade.pay reference (https://opendocs.alipay.com/apis/api_1/alipay.trade.pay, "订单总金额。单位为元，
 *   精确到小数点后两位，取值范围：[0.01,100000000]", read in its published copies), the same text on Alipay's
 *   Java SDK model (alipay/alipay-sdk-java-all, src/main/java/com/alipay/api/domain/AlipayTradePayModel.java,
 *   field `total_amount`, typed String), and alipay.trade.refund `refund_amount` ("需要退款的金额，该金额不能
 *   大于订单金额，单位为元，支持两位小数", https://docs.open.alipay.com/api_1/alipay.trade.refund).
 * - We always SEND two decimals ("12.30", "0.01"): that is the documented precision and the form every
 *   published example uses ("88.88", "200.12", "0.01"). Sent as a JSON string, so no client ever turns it
 *   into a float on our side.
 * - Alipay RETURNS amounts as strings with two decimals ("refund_fee":"0.01","send_back_fee":"0.00",
 *   "buyer_pay_amount":"0.00" in the published response examples, e.g. https://developer.aliyun.com/article/707647).
 *   We also accept zero or one decimal ("12", "12.3"): still exact, and a reader that is stricter than the
 *   format needs would turn an unexpected but exact answer into an unknown payment.
 * - More than two decimals, a sign, an exponent, spaces, leading zeros or anything else is refused: an amount
 *   we cannot read exactly is never a guess.
 */

/** 100000000.00 yuan: the top of Alipay's documented range, in fen. Well below Number.MAX_SAFE_INTEGER. */
export const ALIPAY_MAX_FEN = 10_000_000_000;
/** 0.01 yuan: the bottom of Alipay's documented range for an amount we send. */
export const ALIPAY_MIN_FEN = 1;

export class AlipayAmountError extends Error {
  override readonly name = 'AlipayAmountError';
}

/** Whole part without leading zeros (or a single 0), at most 9 digits (100000000 has 9), then up to 2 decimals. */
const YUAN = /^(0|[1-9][0-9]{0,8})(?:\.([0-9]{1,2}))?$/;

/** fen → the yuan string Alipay takes: 1 → "0.01", 1230 → "12.30", 100 → "1.00". */
export function fenToYuan(fen: number): string {
  if (typeof fen !== 'number' || !Number.isSafeInteger(fen)) {
    throw new AlipayAmountError(`amount ${String(fen)} is not a whole number of fen`);
  }
  if (fen < ALIPAY_MIN_FEN) throw new AlipayAmountError(`amount ${fen} fen is below Alipay's minimum of 0.01`);
  if (fen > ALIPAY_MAX_FEN) throw new AlipayAmountError(`amount ${fen} fen is above Alipay's maximum of 100000000.00`);
  const yuan = Math.trunc(fen / 100); // exact: both are safe integers and the quotient is truncated
  const cents = fen - yuan * 100;
  return `${yuan}.${cents < 10 ? '0' : ''}${cents}`;
}

/** A yuan string from Alipay → fen. "12.30" → 1230, "12.3" → 1230, "0.00" → 0. Throws on anything inexact. */
export function yuanToFen(text: unknown): number {
  if (typeof text !== 'string') throw new AlipayAmountError(`amount ${describe(text)} is not a decimal string`);
  const m = YUAN.exec(text);
  if (!m) throw new AlipayAmountError(`amount ${describe(text)} is not a yuan amount with at most 2 decimals`);
  const whole = Number(m[1]); // at most 9 digits: exact
  const frac = m[2] === undefined ? 0 : Number(m[2].padEnd(2, '0'));
  const fen = whole * 100 + frac; // at most 99,999,999,999: exact
  if (fen > ALIPAY_MAX_FEN) throw new AlipayAmountError(`amount ${describe(text)} is above Alipay's maximum of 100000000.00`);
  return fen;
}

/** Like yuanToFen, but `undefined` for anything that is not an exact Alipay amount. */
export function tryYuanToFen(text: unknown): number | undefined {
  try {
    return yuanToFen(text);
  } catch {
    return undefined;
  }
}

function describe(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/**
 * Signed yuan text for the places where Alipay writes zero and negative amounts: "0.00" in answers
 * (buyer_pay_amount of a trade paid all by coupon, send_back_fee) and "-0.01" on the refund rows of a trade bill
 * (see bill.ts). Exact, two decimals, no range but Number.isSafeInteger.
 */
export function signedFenToYuan(fen: number): string {
  if (typeof fen !== 'number' || !Number.isSafeInteger(fen)) throw new AlipayAmountError(`amount ${String(fen)} is not a whole number of fen`);
  const abs = Math.abs(fen);
  const yuan = Math.trunc(abs / 100);
  const cents = abs - yuan * 100;
  return `${fen < 0 ? '-' : ''}${yuan}.${cents < 10 ? '0' : ''}${cents}`;
}

/** Whole part up to 13 digits (a day's totals can pass one trade's cap), optional sign, up to 2 decimals. */
const SIGNED_YUAN = /^(-?)(0|[1-9][0-9]{0,12})(?:\.([0-9]{1,2}))?$/;

/** The inverse of signedFenToYuan: "-0.01" → -1, "35.8" → 3580. Throws on anything inexact ("-0" is 0). */
export function signedYuanToFen(text: unknown): number {
  if (typeof text !== 'string') throw new AlipayAmountError(`amount ${describe(text)} is not a decimal string`);
  const m = SIGNED_YUAN.exec(text);
  if (!m) throw new AlipayAmountError(`amount ${describe(text)} is not a yuan amount with at most 2 decimals`);
  const fen = Number(m[2]) * 100 + (m[3] === undefined ? 0 : Number(m[3].padEnd(2, '0'))); // < 2^53: exact
  return m[1] === '-' && fen !== 0 ? -fen : fen;
}
