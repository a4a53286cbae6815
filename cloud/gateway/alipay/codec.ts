import type { PayOutcome, QueryOutcome, RefundOutcome, ReverseOutcome } from '../gateway.js';
import { ALIPAY_MAX_FEN, ALIPAY_MIN_FEN, fenToYuan, tryYuanToFen, yuanToFen } from './amount.js';
import {
  mapBillUrl,
  mapCancel,
  mapPay,
  mapQuery,
  mapRefund,
  mapRefundQuery,
  type BillUrlOutcome,
  type Expectation,
  type Mapped,
} from './outcomes.js';
import {
  beijingTimestamp,
  buildBillUrlQuery,
  buildCancel,
  buildPay,
  buildQuery,
  buildRefund,
  buildRefundQuery,
  METHODS,
} from './requests.js';
import { loadPrivateKey, loadPublicKey, openResponse, signContent, signRequest, verifyResponse, type KeyInput } from './sign.js';

/**
 * The Alipay face-to-face (当面付, bar_code) wire codec, in one object for the adapter that will use it: build a
 * signed request, POST `form` to the gateway (https://openapi.alipay.com/gateway.do), then `decode` the raw body
 * (as bytes or text, exactly as received) with Alipay's public key into the gateway interface's outcome plus the
 * raw facts (action, retry_flag, fund_change, refund_status, trade_no …) to record on the attempt.
 *
 * Pure: no HTTP, no clock of its own (the request context carries one), no state. Transport failures (timeout,
 * 5xx, connection reset) are the adapter's to map (TIMEOUT / HTTP_5XX), as http-gateway.ts does.
 */
export const AlipayCodec = {
  methods: METHODS,
  amount: { fenToYuan, yuanToFen, tryYuanToFen, ALIPAY_MIN_FEN, ALIPAY_MAX_FEN },
  sign: { signContent, signRequest, verifyResponse, openResponse, loadPrivateKey, loadPublicKey },
  timestamp: beijingTimestamp,
  request: {
    pay: buildPay,
    query: buildQuery,
    cancel: buildCancel,
    refund: buildRefund,
    refundQuery: buildRefundQuery,
    billUrl: buildBillUrlQuery,
  },
  decode: {
    pay: (raw: string | Uint8Array, alipayPublicKey: KeyInput, expect: Expectation): Mapped<PayOutcome> =>
      mapPay(openResponse(raw, METHODS.pay, alipayPublicKey), expect),
    query: (raw: string | Uint8Array, alipayPublicKey: KeyInput, expect: Expectation): Mapped<QueryOutcome> =>
      mapQuery(openResponse(raw, METHODS.query, alipayPublicKey), expect),
    cancel: (raw: string | Uint8Array, alipayPublicKey: KeyInput, expect: Expectation): Mapped<ReverseOutcome> =>
      mapCancel(openResponse(raw, METHODS.cancel, alipayPublicKey), expect),
    refund: (raw: string | Uint8Array, alipayPublicKey: KeyInput, expect: Expectation & { refundNo: string }): Mapped<RefundOutcome> =>
      mapRefund(openResponse(raw, METHODS.refund, alipayPublicKey), expect),
    refundQuery: (raw: string | Uint8Array, alipayPublicKey: KeyInput, expect: Expectation & { refundNo: string }): Mapped<RefundOutcome> =>
      mapRefundQuery(openResponse(raw, METHODS.refundQuery, alipayPublicKey), expect),
    billUrl: (raw: string | Uint8Array, alipayPublicKey: KeyInput): Mapped<BillUrlOutcome> => mapBillUrl(openResponse(raw, METHODS.billUrl, alipayPublicKey)),
  },
} as const;

export type { AlipayFacts, BillUrlOutcome, Expectation, Mapped } from './outcomes.js';
export type { AlipayApp, AlipayMethod, PayInput, RefundInput, RequestContext, SignedRequest } from './requests.js';
export type { KeyInput, OpenedResponse, OpenFailure } from './sign.js';
