import { createPrivateKey, createPublicKey, sign as rsaSign, verify as rsaVerify, type KeyObject } from 'node:crypto';

/**
 * Alipay OpenAPI (gateway.do, "v2" protocol) RSA2 signing of requests and verification of responses.
 *
 * Request signing — "自行实现签名" (https://opendocs.alipay.com/common/02kf5q, the page Alipay's own Node SDK
 * cites above its `sign()`; text as published in copies such as https://juejin.cn/post/6844903816484110349):
 *   1. take every request parameter except byte parameters (files), drop `sign`, drop parameters whose value is
 *      empty ("剔除sign字段，剔除值为空的参数");
 *   2. sort by key in ascending ASCII order ("按照第一个字符的键值ASCII码递增排序……以此类推");
 *   3. join as `key=value` with `&`, values raw (not URL-encoded) — the "待签名字符串";
 *   4. SHA256WithRSA (sign_type RSA2) with the app private key, base64 → `sign`.
 *   `sign_type` itself IS signed under this rule (only `sign` is removed); Alipay's Node SDK does the same
 *   (alipay/alipay-sdk-nodejs-all src/util.ts `sign()`: sorts every key of the snake-cased params, including
 *   sign_type, joins `${key}=${data}` with '&', `createSign('RSA-SHA256').update(signString,'utf8')`).
 *
 * Response verification — "自行实现验签 / 同步返回验签" (Alipay open-platform signing guide, as published in
 * https://developer.aliyun.com/article/707521; the opendocs page id was not confirmed): "开发者只对支付宝返回的json中xxx_response的值做验签
 * （xxx代表接口名）。xxx_response的json值内容需要包含首尾的「{」和「}」……双引号也需要参与验签", verified with
 * SHA256WithRSA against Alipay's public key; `sign` is the sibling of the `xxx_response` node. The signed bytes
 * are the node's text AS SENT: escaped slashes ("http:\/\/"), whitespace and key order are part of it, which is
 * why the same page warns that re-serialising breaks verification. Both Alipay SDKs cut that text out of the raw
 * body rather than re-serialising (Node: src/alipay.ts `getSignStr()` / `checkResponseSign()`; Java:
 * src/main/java/com/alipay/api/internal/parser/json/JsonConverter.java `getSignSourceData()`), and fall back to
 * the `error_response` node when the method's node is absent (Java `getSignSourceData`).
 * The SDKs find the text with indexOf/lastIndexOf on `"sign"`; we walk the JSON instead, so a `"sign"` inside the
 * node, a `sign` placed before the node, or a duplicated key cannot move the cut.
 *
 * Timing: nothing here compares a secret. The only comparison is the RSA verification itself (inside OpenSSL)
 * against a public key, so there is no MAC to compare in constant time.
 */

export type KeyInput = string | KeyObject;

/** Why a response could not be verified. Every one of them means: this answer is no answer. */
export type OpenFailure =
  | 'NOT_TEXT'
  | 'NOT_JSON'
  | 'NOT_AN_OBJECT'
  | 'DUPLICATE_KEY'
  | 'NO_RESPONSE_NODE'
  | 'NODE_NOT_AN_OBJECT'
  | 'NO_SIGN'
  | 'BAD_KEY'
  | 'BAD_SIGNATURE';

export type OpenedResponse =
  | {
      ok: true;
      /** `<method with dots as underscores>_response`, or `error_response`. */
      nodeKey: string;
      /** The exact text that was verified. */
      signedText: string;
      /** JSON.parse(signedText): the data, taken from the verified bytes and nothing else. */
      node: Record<string, unknown>;
    }
  | {
      ok: false;
      failure: OpenFailure;
      /**
       * What the body CLAIMS (code / sub_code of the node), for logs only: it is not verified and no decision may
       * rest on it. Gateway-level errors (bad app_id, bad request signature) typically arrive unsigned, and this
       * is how an operator tells a misconfiguration from an attack.
       */
      unverifiedHint?: string;
    };

/** `alipay.trade.pay` → `alipay_trade_pay_response` (Node SDK: `${method.replaceAll('.', '_')}_response`). */
export function responseNodeKey(method: string): string {
  return `${method.replaceAll('.', '_')}_response`;
}

/** The node Alipay's gateway uses when it answers without reaching the method (Java SDK `AlipayConstants.ERROR_RESPONSE`). */
export const ERROR_RESPONSE_KEY = 'error_response';

// ---------------------------------------------------------------------------------------------------------------
// Keys

/**
 * An RSA private key from PEM (PKCS#1 "RSA PRIVATE KEY" or PKCS#8 "PRIVATE KEY") or from the bare base64 that
 * Alipay's key tool prints (PKCS#8 for Java, PKCS#1 otherwise; the Node SDK's `formatKey` wraps such text).
 * Throws on anything else: a bad private key is a configuration error found before any byte is sent.
 */
export function loadPrivateKey(key: KeyInput): KeyObject {
  const k = typeof key === 'string' ? parsePrivate(key) : key;
  if (k.type !== 'private' || k.asymmetricKeyType !== 'rsa') throw new TypeError('the Alipay app key must be an RSA private key');
  return k;
}

function parsePrivate(text: string): KeyObject {
  if (text.includes('-----BEGIN')) return createPrivateKey(text);
  const der = bareBase64(text);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs1' });
  }
}

/** Alipay's RSA public key from PEM or from the bare base64 (SPKI) shown in Alipay's console. Throws on anything else. */
export function loadPublicKey(key: KeyInput): KeyObject {
  let k: KeyObject;
  if (typeof key === 'string') {
    k = key.includes('-----BEGIN') ? createPublicKey(key) : createPublicKey({ key: bareBase64(key), format: 'der', type: 'spki' });
  } else {
    k = key.type === 'private' ? createPublicKey(key) : key;
  }
  if (k.type !== 'public' || k.asymmetricKeyType !== 'rsa') throw new TypeError('the Alipay public key must be an RSA public key');
  return k;
}

function bareBase64(text: string): Buffer {
  const s = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s)) throw new TypeError('key text is neither PEM nor base64');
  return Buffer.from(s, 'base64');
}

// ---------------------------------------------------------------------------------------------------------------
// Requests

/** A parameter value that takes part in the request; `undefined` and '' are left out ("剔除值为空的参数"). */
export type ParamValue = string | undefined;

/** The "待签名字符串": non-empty params except `sign`, sorted by key (ASCII), `k=v` joined with '&'. */
export function signContent(params: Readonly<Record<string, ParamValue>>): string {
  return Object.keys(params)
    .filter((k) => k !== 'sign' && isPresent(params[k]))
    .sort(asciiOrder)
    .map((k) => `${k}=${params[k]}`)
    .join('&');
}

/**
 * Signs with RSA2 (SHA256WithRSA, PKCS#1 v1.5) and returns exactly what is to be sent: the non-empty params
 * plus `sign`. Sending this object (and nothing else) keeps "what was signed" and "what was sent" the same set.
 */
export function signRequest(params: Readonly<Record<string, ParamValue>>, appPrivateKey: KeyInput): Record<string, string> {
  if ('sign' in params && params.sign !== undefined) throw new TypeError('params must not carry a sign already');
  const content = signContent(params);
  const sign = rsaSign('sha256', Buffer.from(content, 'utf8'), loadPrivateKey(appPrivateKey)).toString('base64');
  const out: Record<string, string> = {};
  for (const k of Object.keys(params).sort(asciiOrder)) {
    const v = params[k];
    if (isPresent(v)) out[k] = v;
  }
  out.sign = sign;
  return out;
}

function isPresent(v: ParamValue): v is string {
  return typeof v === 'string' && v.length > 0;
}

/** Code-unit order: for the ASCII keys Alipay uses this is exactly "ASCII码递增". */
function asciiOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Responses

/** True only if the body's `<method>_response` (or `error_response`) text is signed by Alipay's key. */
export function verifyResponse(rawBody: string | Uint8Array, method: string, alipayPublicKey: KeyInput): boolean {
  return openResponse(rawBody, method, alipayPublicKey).ok;
}

/**
 * Verifies the raw body and hands back the node parsed FROM THE VERIFIED TEXT. Never throws: an unreadable,
 * unsigned or badly signed body is `{ ok: false }`, which every caller must treat as "no answer".
 */
export function openResponse(rawBody: string | Uint8Array, method: string, alipayPublicKey: KeyInput): OpenedResponse {
  let text: string;
  if (typeof rawBody === 'string') {
    text = rawBody;
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(rawBody);
    } catch {
      return { ok: false, failure: 'NOT_TEXT' };
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, failure: 'NOT_JSON' };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { ok: false, failure: 'NOT_AN_OBJECT' };

  const nodeKey = responseNodeKey(method);
  const hint = () => claimed(parsed as Record<string, unknown>, nodeKey);
  const members = topLevelMembers(text);
  if (members === 'duplicate') return { ok: false, failure: 'DUPLICATE_KEY', unverifiedHint: hint() };

  const key = members.has(nodeKey) ? nodeKey : members.has(ERROR_RESPONSE_KEY) ? ERROR_RESPONSE_KEY : undefined;
  if (key === undefined) return { ok: false, failure: 'NO_RESPONSE_NODE' };
  const signedText = members.get(key)!;
  if (!signedText.startsWith('{')) return { ok: false, failure: 'NODE_NOT_AN_OBJECT', unverifiedHint: hint() };

  const signRaw = members.get('sign');
  const sign = signRaw === undefined ? undefined : (JSON.parse(signRaw) as unknown);
  if (typeof sign !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(sign) || sign.length % 4 !== 0) {
    return { ok: false, failure: 'NO_SIGN', unverifiedHint: hint() };
  }

  let publicKey: KeyObject;
  try {
    publicKey = loadPublicKey(alipayPublicKey);
  } catch {
    return { ok: false, failure: 'BAD_KEY', unverifiedHint: hint() };
  }
  let good = false;
  try {
    good = rsaVerify('sha256', Buffer.from(signedText, 'utf8'), publicKey, Buffer.from(sign, 'base64'));
  } catch {
    good = false;
  }
  if (!good) return { ok: false, failure: 'BAD_SIGNATURE', unverifiedHint: hint() };
  return { ok: true, nodeKey: key, signedText, node: JSON.parse(signedText) as Record<string, unknown> };
}

function claimed(body: Record<string, unknown>, nodeKey: string): string | undefined {
  const node = body[nodeKey] ?? body[ERROR_RESPONSE_KEY];
  if (node === null || typeof node !== 'object') return undefined;
  const n = node as Record<string, unknown>;
  const parts = [n.code, n.sub_code].filter((v): v is string => typeof v === 'string').map((v) => v.slice(0, 60));
  return parts.length > 0 ? parts.join(' ') : undefined;
}

/**
 * The raw text of every member value of the top-level object, by decoded key; 'duplicate' if a key repeats
 * (JSON.parse would silently keep the last one, and a signature over the first must not vouch for the second).
 * The text is already known to be valid JSON (JSON.parse accepted it), so this only has to find boundaries.
 */
function topLevelMembers(s: string): Map<string, string> | 'duplicate' {
  const out = new Map<string, string>();
  let i = skipWs(s, 0);
  i++; // '{'
  for (;;) {
    i = skipWs(s, i);
    if (s[i] === '}') return out;
    const keyEnd = endOfString(s, i);
    const key = JSON.parse(s.slice(i, keyEnd)) as string;
    i = skipWs(s, keyEnd) + 1; // ':'
    const start = skipWs(s, i);
    const end = endOfValue(s, start);
    if (out.has(key)) return 'duplicate';
    out.set(key, s.slice(start, end));
    i = skipWs(s, end);
    if (s[i] === ',') i++;
  }
}

function skipWs(s: string, i: number): number {
  while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === '\n' || s[i] === '\r')) i++;
  return i;
}

/** s[i] is '"'; the index just after the closing quote. */
function endOfString(s: string, i: number): number {
  i++;
  while (i < s.length) {
    const c = s[i];
    if (c === '\\') i += 2;
    else if (c === '"') return i + 1;
    else i++;
  }
  return i;
}

function endOfValue(s: string, i: number): number {
  const c = s[i];
  if (c === '"') return endOfString(s, i);
  if (c === '{' || c === '[') {
    let depth = 0;
    while (i < s.length) {
      const d = s[i];
      if (d === '"') {
        i = endOfString(s, i);
        continue;
      }
      if (d === '{' || d === '[') depth++;
      else if (d === '}' || d === ']') {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    return i;
  }
  // number, true, false, null
  while (i < s.length && !',}] \t\n\r'.includes(s[i]!)) i++;
  return i;
}

// ---------------------------------------------------------------------------------------------------------------
// The gateway's side (the simulator plays Alipay with these; the rules are the ones above, read the other way)

/** Alipay's check of a received request: `sign` over the 待签名字符串 of the other parameters, RSA2, app public key. */
export function verifyRequest(params: Readonly<Record<string, string>>, appPublicKey: KeyInput): boolean {
  const sign = params.sign;
  if (typeof sign !== 'string' || sign.length === 0) return false;
  try {
    return rsaVerify('sha256', Buffer.from(signContent(params), 'utf8'), loadPublicKey(appPublicKey), Buffer.from(sign, 'base64'));
  } catch {
    return false;
  }
}

/** SHA256WithRSA over a response node's exact text, base64: the `sign` sibling of `xxx_response`. */
export function signNode(nodeText: string, alipayPrivateKey: KeyInput): string {
  return rsaSign('sha256', Buffer.from(nodeText, 'utf8'), loadPrivateKey(alipayPrivateKey)).toString('base64');
}

/** `{"<nodeKey>":<nodeText>,"sign":"…"}` as Alipay frames an answer; without `sign` when none is given. */
export function frameResponse(nodeKey: string, nodeText: string, sign?: string): string {
  return sign === undefined ? `{${JSON.stringify(nodeKey)}:${nodeText}}` : `{${JSON.stringify(nodeKey)}:${nodeText},"sign":${JSON.stringify(sign)}}`;
}
