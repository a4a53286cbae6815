import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { SOURCES } from './sources.js';

/**
 * WeChat Pay v2 request/response signatures (SOURCES.sign, "签名算法"):
 *  1. take every parameter whose value is not empty, except `sign` itself;
 *  2. sort them by parameter name in ASCII order (names are case-sensitive);
 *  3. join as `k1=v1&k2=v2…` (stringA) — raw values, no URL encoding;
 *  4. append `&key=<API key>` (stringSignTemp);
 *  5. MD5(stringSignTemp), or HMAC-SHA256 keyed with the API key over stringSignTemp; hex, upper case.
 * The receiver recomputes the same over what it received ("验证调用返回…时，传送的sign参数不参与签名")
 * and must accept fields it does not know ("微信接口可能增加字段，验证签名时必须支持增加的扩展字段"),
 * which this does: every received field takes part.
 */
export const SIGN_TYPES = ['MD5', 'HMAC-SHA256'] as const;
export type SignType = (typeof SIGN_TYPES)[number];

/** A flat v2 message: names to string values. `undefined` is treated as absent. */
export type WechatParams = Readonly<Record<string, string | undefined>>;

const HEX_LENGTH: Record<SignType, number> = { MD5: 32, 'HMAC-SHA256': 64 };

/** ASCII (code unit) order — what the doc means by "参数名ASCII码从小到大排序（字典序）". */
function asciiCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** stringA of the doc: non-empty fields but `sign`, in ASCII order of their names, `k=v` joined by `&`. */
export function canonicalString(params: WechatParams): string {
  return Object.keys(params)
    .filter((k) => k !== 'sign' && params[k] !== undefined && params[k] !== '')
    .sort(asciiCompare)
    .map((k) => `${k}=${params[k]}`)
    .join('&');
}

/** The `sign` value of `params` under `key` (upper-case hex). */
export function signParams(params: WechatParams, key: string, type: SignType): string {
  if (key.length === 0) throw new Error('wechat sign: the API key is empty');
  const temp = `${canonicalString(params)}&key=${key}`;
  const digest = type === 'MD5' ? createHash('md5').update(temp, 'utf8') : createHmac('sha256', key).update(temp, 'utf8');
  return digest.digest('hex').toUpperCase();
}

/** `params` with its `sign` added (any `sign` it had is replaced). Empty values are kept out of the message too. */
export function withSign(params: WechatParams, key: string, type: SignType): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) if (k !== 'sign' && v !== undefined && v !== '') out[k] = v;
  out.sign = signParams(out, key, type);
  return out;
}

/**
 * Whether `params.sign` is the signature of `params` under `key`. A missing or empty `sign` is never valid.
 * `type` is the sign type the request was made with (WeChat signs an answer the way the request was
 * signed, and the official SDKs verify with the configured type); without it the type is read from
 * the length of the sign (32 hex digits MD5, 64 HMAC-SHA256). The comparison takes the same time
 * wherever the first difference is.
 */
export function verifySigned(params: WechatParams, key: string, type?: SignType): boolean {
  const given = params.sign;
  if (typeof given !== 'string' || given.length === 0 || key.length === 0) return false;
  const t = type ?? (given.length === HEX_LENGTH.MD5 ? 'MD5' : given.length === HEX_LENGTH['HMAC-SHA256'] ? 'HMAC-SHA256' : undefined);
  if (t === undefined) return false;
  const expected = Buffer.from(signParams(params, key, t), 'utf8');
  const received = Buffer.from(given, 'utf8');
  return expected.length === received.length && timingSafeEqual(expected, received);
}

/** Where these rules come from (for the codec's documentation and the tests). */
export const SIGN_SOURCE = SOURCES.sign;
