import { z } from 'zod';
import { amount, currency, outTradeNo, paymentCode, wallet } from '../../protocol/index.js';

/**
 * The payment gateway as the cloud's transaction service sees it: one interface for the scripted
 * simulator today and the WeChat Pay / Alipay / UnionPay adapters later. Every call gets an
 * AbortSignal; the cloud aborts at its per-call timeout and treats that as `unknown` (TIMEOUT).
 * An implementation must never throw for a gateway answer — every answer is an outcome — and the
 * same `outTradeNo` must be idempotent at the gateway (the wallets guarantee this for micropay).
 */
/** The merchant the box was paired to: the adapter finds its wallet sub-ids (sub_mch_id, app_auth_token) by it. */
export const merchantId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'merchant id must be 1–64 of A-Z a-z 0-9 _ -');
/** The channel an attempt started on (a configured provider account); every later call of the attempt uses it. */
export const channelName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'channel name must be 1–32 of a-z 0-9 _ -, starting with a letter or digit');
const routed = { outTradeNo, wallet, merchant: merchantId, channel: channelName };

export const PayRequest = z.strictObject({
  ...routed,
  amount,
  currency,
  code: paymentCode,
  description: z.string().max(128).optional(),
});
export const QueryRequest = z.strictObject(routed);
export const ReverseRequest = z.strictObject(routed);
export const RefundRequest = z.strictObject({
  ...routed,
  /** Idempotency key of the refund itself; an attempt may have several (partial refunds). */
  refundNo: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'refundNo must be 1–64 of A-Z a-z 0-9 _ -'),
  /** What this refund gives back. */
  amount,
  /** The order's total (WeChat's refund names it: total_fee). */
  total: amount,
  currency,
});
export type PayRequest = z.infer<typeof PayRequest>;
export type QueryRequest = z.infer<typeof QueryRequest>;
export type ReverseRequest = z.infer<typeof ReverseRequest>;
export type RefundRequest = z.infer<typeof RefundRequest>;

/** Why a gateway answer is not (yet) known. BANKERROR asks for an immediate query. */
export const UnknownCode = z.enum(['SYSTEMERROR', 'BANKERROR', 'TIMEOUT', 'HTTP_5XX', 'BAD_SIGNATURE', 'OTHER']);
export const FailReason = z.enum(['INSUFFICIENT_FUNDS', 'CODE_EXPIRED', 'CODE_INVALID', 'DECLINED']);
export type UnknownCode = z.infer<typeof UnknownCode>;
export type FailReason = z.infer<typeof FailReason>;

/** Minor units the wallet reports that may be zero (a buyer who paid all with a coupon). */
const minor = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/**
 * Paid. `amount` is the order total as the WALLET reports it: the cloud compares it with the attempt's
 * amount and undoes a charge that differs. The rest is receipt data, when the wallet gives it.
 */
const success = z.strictObject({
  kind: z.literal('success'),
  gatewayTradeNo: z.string().min(1).max(64),
  amount,
  /** When the wallet says the customer paid (epoch ms). */
  paidAt: z.number().int().min(0).optional(),
  /** What the customer's own funds paid (WeChat cash_fee, Alipay buyer_pay_amount). */
  buyerPaid: minor.optional(),
  /** Coupons and discounts the wallet applied (WeChat coupon_fee, Alipay total − buyer_pay). */
  discount: minor.optional(),
});
const failed = z.strictObject({ kind: z.literal('failed'), reason: FailReason, message: z.string().max(200) });
/** USERPAYING / WAIT_BUYER_PAY: the customer is confirming on the phone. */
const inProgress = z.strictObject({ kind: z.literal('in_progress'), message: z.string().max(200).optional() });
const unknown = z.strictObject({ kind: z.literal('unknown'), code: UnknownCode, message: z.string().max(200) });
/** recall=Y / retry_flag=Y: the wallet asks to call again later. */
const retryLater = z.strictObject({ kind: z.literal('retry_later'), message: z.string().max(200) });

export const PayOutcome = z.discriminatedUnion('kind', [success, failed, inProgress, unknown]);
export const QueryOutcome = z.discriminatedUnion('kind', [
  success,
  failed,
  inProgress,
  unknown,
  /** ORDERNOTEXIST: right after a timed-out pay this means "not yet", not "failed". */
  z.strictObject({ kind: z.literal('not_found') }),
  /** The order was reversed/closed at the gateway: nothing is charged. */
  z.strictObject({ kind: z.literal('closed') }),
  /** Charged, then refunded in full. */
  z.strictObject({ kind: z.literal('refunded') }),
]);
export const ReverseOutcome = z.discriminatedUnion('kind', [
  /**
   * Undone: whether or not the customer had paid, nothing stays charged. `action` is what the wallet
   * says it did, where it says (Alipay cancel: close = was not paid, refund = paid and refunded).
   */
  z.strictObject({ kind: z.literal('reversed'), action: z.enum(['close', 'refund']).optional() }),
  retryLater,
  unknown,
  /** Past the wallet's reverse window (WeChat 7 days, Alipay the same day): find out, then refund. */
  z.strictObject({ kind: z.literal('window_passed') }),
  /** The wallet refuses to reverse because the order is PAID (and can no longer be reversed): refund it. */
  z.strictObject({ kind: z.literal('already_paid'), message: z.string().max(200) }),
]);
export const RefundOutcome = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('refunded'), refundNo: z.string().min(1).max(64) }),
  retryLater,
  unknown,
  failed,
]);
export type PayOutcome = z.infer<typeof PayOutcome>;
export type QueryOutcome = z.infer<typeof QueryOutcome>;
export type ReverseOutcome = z.infer<typeof ReverseOutcome>;
export type RefundOutcome = z.infer<typeof RefundOutcome>;

export interface CallOptions {
  signal: AbortSignal;
}

export interface Gateway {
  pay(req: PayRequest, opts: CallOptions): Promise<PayOutcome>;
  query(req: QueryRequest, opts: CallOptions): Promise<QueryOutcome>;
  reverse(req: ReverseRequest, opts: CallOptions): Promise<ReverseOutcome>;
  refund(req: RefundRequest, opts: CallOptions): Promise<RefundOutcome>;
}

/** A channel's gateway: it may own connections (a keep-alive pool), closed when the cloud stops. */
export interface ChannelGateway extends Gateway {
  close(): Promise<void>;
}

/**
 * HTTP wire format, for a gateway in another process (the simulator's, in demos and chaos runs):
 * `POST <base>/v1/<call>` with the request as JSON; 200 with the outcome as JSON.
 */
export const GATEWAY_CALLS = {
  pay: { request: PayRequest, outcome: PayOutcome },
  query: { request: QueryRequest, outcome: QueryOutcome },
  reverse: { request: ReverseRequest, outcome: ReverseOutcome },
  refund: { request: RefundRequest, outcome: RefundOutcome },
} as const;
export type GatewayCall = keyof typeof GATEWAY_CALLS;
