import { ErrorCode, ProtocolError } from './errors.js';

/**
 * Classify a scanned customer payment code (B-scans-C "auth_code") by wallet.
 *
 * The wallets' published rules for the code the box scans:
 * - WeChat Pay micropay, `auth_code`: "18位纯数字，以10、11、12、13、14、15开头"
 *   (pay.weixin.qq.com/wiki/doc/api/micropay.php?chapter=9_10 — 付款码支付 / 提交付款码支付).
 * - Alipay `alipay.trade.pay`, `auth_code`: "支付授权码，25~30开头的长度为16~24位的数字，实际字符串
 *   长度以开发者获取的付款码长度为准" (opendocs.alipay.com, 统一收单交易支付接口).
 * - UnionPay QR (云闪付 / 银联二维码付款码): "以62开头长度19位数字", as acquirers' aggregated micropay
 *   APIs restate it (e.g. `authCode` "09:银联二维码：以62开头长度19位数字").
 * Wallets may lengthen codes; the 32-character cap is the field size those APIs allow, not a rule.
 */
export type Wallet = 'wechat' | 'alipay' | 'unionpay';
export const WALLETS = ['wechat', 'alipay', 'unionpay'] as const satisfies readonly Wallet[];

export interface PaymentCode {
  wallet: Wallet;
  /** The digits as scanned, terminator removed. */
  code: string;
}

export const MAX_CODE_CHARS = 32;

interface Rule {
  wallet: Wallet;
  prefix: (p2: number) => boolean;
  lengths: readonly [min: number, max: number];
}

const RULES: readonly Rule[] = [
  { wallet: 'wechat', prefix: (p) => p >= 10 && p <= 15, lengths: [18, 18] },
  { wallet: 'alipay', prefix: (p) => p >= 25 && p <= 30, lengths: [16, 24] },
  { wallet: 'unionpay', prefix: (p) => p === 62, lengths: [19, 19] },
];

export function classifyPaymentCode(raw: string): PaymentCode {
  const code = raw.replace(/[\r\n]+$/, '');
  if (code.length === 0) throw new ProtocolError(ErrorCode.CODE_EMPTY, 'payment code is empty');
  if (code.length > MAX_CODE_CHARS) {
    throw new ProtocolError(ErrorCode.CODE_TOO_LONG, `payment code has ${code.length} characters; at most ${MAX_CODE_CHARS} are allowed`);
  }
  if (!/^\d+$/.test(code)) {
    throw new ProtocolError(ErrorCode.CODE_NOT_DIGITS, 'payment code must be digits only (no letters, spaces or symbols)');
  }
  const rule = RULES.find((r) => r.prefix(Number(code.slice(0, 2))));
  if (!rule) {
    throw new ProtocolError(ErrorCode.CODE_UNKNOWN_PREFIX, `payment code prefix ${code.slice(0, 2)} is not WeChat (10–15), Alipay (25–30) or UnionPay (62)`);
  }
  const [min, max] = rule.lengths;
  if (code.length < min || code.length > max) {
    const want = min === max ? `${min}` : `${min}–${max}`;
    throw new ProtocolError(ErrorCode.CODE_WRONG_LENGTH, `${rule.wallet} payment code must have ${want} digits, got ${code.length}`, { wallet: rule.wallet });
  }
  return { wallet: rule.wallet, code };
}

/** For logs: the wallet and the last 4 digits only; a live payment code is a bearer credential. */
export function maskPaymentCode(code: string): string {
  return code.length <= 4 ? '****' : `${'*'.repeat(Math.min(code.length - 4, 20))}${code.slice(-4)}`;
}
