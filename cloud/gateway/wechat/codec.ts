import type { PayOutcome, QueryOutcome, RefundOutcome, ReverseOutcome } from '../gateway.js';
import {
  mapPay,
  mapQuery,
  mapRefundApply,
  mapRefundCheck,
  mapRefundQuery,
  mapReverse,
  type CheckedAnswer,
  type Expect,
  type RefundAccepted,
  type RefundCheck,
  type RefundExpect,
} from './outcomes.js';
import { WECHAT_POLICY } from './policy.js';
import {
  API_HOSTS,
  buildDownloadBill,
  buildMicropay,
  buildOrderQuery,
  buildRefund,
  buildRefundQuery,
  buildReverse,
  WECHAT_CALLS,
  type BuildOptions,
  type ProviderCredentials,
  type SubMerchant,
} from './requests.js';
import { verifySigned } from './sign.js';
import { decodeXml, encodeXml, MAX_XML_BYTES, WechatXmlError } from './xml.js';

/**
 * The WeChat Pay v2 wire codec in one object, for the adapter that comes next: build a signed request,
 * encode it, and turn the raw answer body into an outcome. No I/O here — the adapter owns the HTTP
 * client (keep-alive pool, per-call timeout, the client certificate for `clientCert` calls, the
 * simulator's address) and maps its own transport failures (timeout, 5xx) to `unknown`.
 *
 * A later adapter's calls, in short:
 *   pay:     build.micropay → POST → answer.pay
 *   query:   build.orderquery → POST → answer.query; on `refund_check`: build.refundQueryByOrder → POST → answer.refundCheck
 *   reverse: build.reverse (client cert) → POST → answer.reverse
 *   refund:  build.refund (client cert) → POST → answer.refundApply; on `accepted`: build.refundQuery → POST → answer.refundQuery
 */

type Unknown = { kind: 'unknown'; code: 'BAD_SIGNATURE'; message: string };

/**
 * Decode an answer body and check its signature with the provider key and the sign type the request
 * was made with. An unreadable body (malformed, oversize, not UTF-8, DOCTYPE…) is an answer that
 * cannot be authenticated: `unknown` BAD_SIGNATURE, as the HTTP gateway treats an unreadable answer.
 */
export function readAnswer(body: string | Uint8Array, creds: Pick<ProviderCredentials, 'apiKey' | 'signType'>, call: string, maxBytes = MAX_XML_BYTES): CheckedAnswer | Unknown {
  let fields: Record<string, string>;
  try {
    fields = decodeXml(body, { maxBytes });
  } catch (err) {
    if (err instanceof WechatXmlError) return { kind: 'unknown', code: 'BAD_SIGNATURE', message: `${call}: unreadable answer (${err.kind})`.slice(0, 200) };
    throw err;
  }
  const sign = fields.sign;
  const signature = sign === undefined || sign === '' ? 'missing' : verifySigned(fields, creds.apiKey, creds.signType) ? 'valid' : 'invalid';
  return { fields, signature };
}

function isUnknown(x: CheckedAnswer | Unknown): x is Unknown {
  return 'kind' in x;
}

type Creds = Pick<ProviderCredentials, 'apiKey' | 'signType'>;

export const WechatCodec = {
  hosts: API_HOSTS,
  calls: WECHAT_CALLS,
  policy: WECHAT_POLICY,
  build: {
    micropay: buildMicropay,
    orderquery: buildOrderQuery,
    reverse: buildReverse,
    refund: buildRefund,
    /** One refund, by its out_refund_no (after an accepted refund). */
    refundQuery: (refundNo: string, creds: ProviderCredentials, merchant: SubMerchant, opts?: BuildOptions) => buildRefundQuery({ refundNo }, creds, merchant, opts),
    /** Every refund of an order, by out_trade_no (to resolve trade_state REFUND). */
    refundQueryByOrder: (outTradeNo: string, creds: ProviderCredentials, merchant: SubMerchant, opts?: BuildOptions) => buildRefundQuery({ outTradeNo }, creds, merchant, opts),
    downloadBill: buildDownloadBill,
  },
  /** The request body: `<xml>` with every value in CDATA. */
  encode: encodeXml,
  answer: {
    pay(body: string | Uint8Array, creds: Creds, expect: Expect): PayOutcome {
      const a = readAnswer(body, creds, 'micropay');
      return isUnknown(a) ? a : mapPay(a, expect);
    },
    query(body: string | Uint8Array, creds: Creds, expect: Expect): QueryOutcome | RefundCheck {
      const a = readAnswer(body, creds, 'orderquery');
      return isUnknown(a) ? a : mapQuery(a, expect);
    },
    refundCheck(body: string | Uint8Array, creds: Creds, expect: Expect): QueryOutcome {
      const a = readAnswer(body, creds, 'refundquery');
      return isUnknown(a) ? a : mapRefundCheck(a, expect);
    },
    reverse(body: string | Uint8Array, creds: Creds, expect: Expect): ReverseOutcome {
      const a = readAnswer(body, creds, 'reverse');
      return isUnknown(a) ? a : mapReverse(a, expect);
    },
    refundApply(body: string | Uint8Array, creds: Creds, expect: RefundExpect): RefundAccepted | Exclude<RefundOutcome, { kind: 'refunded' }> {
      const a = readAnswer(body, creds, 'refund');
      return isUnknown(a) ? a : mapRefundApply(a, expect);
    },
    refundQuery(body: string | Uint8Array, creds: Creds, expect: RefundExpect): RefundOutcome {
      const a = readAnswer(body, creds, 'refundquery');
      return isUnknown(a) ? a : mapRefundQuery(a, expect);
    },
  },
} as const;
