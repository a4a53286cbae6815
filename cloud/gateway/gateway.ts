import { z } from 'zod';
import { amount, currency, outTradeNo, paymentCode, wallet } from '../../protocol/index.js';

/**
 * The payment gateway as the cloud's transaction service sees it: one interface for the scripted
 * simulator today and the WeChat Pay / Alipay / UnionPay adapters later. Every call gets an
 * AbortSignal; the cloud aborts at its per-call timeout and treats that as `unknown` (TIMEOUT).
 * An implementation must never throw for a gateway answer — every answer is an outcome — and the
 * same `outTradeNo` must be idempotent at the gateway (the wallets guarantee this for micropay).
 */
export const PayRequest = z.strictObject({
  outTradeNo,
  amount,
  currency,
  code: paymentCode,
  wallet,
  description: z.string().max(128).optional(),
});
export const QueryRequest = z.strictObject({ outTradeNo, wallet });
export const ReverseRequest = z.strictObject({ outTradeNo, wallet });
export const RefundRequest = z.strictObject({
  outTradeNo,
  /** Idempotency key of the refund itself. */
  refundNo: z.string().min(1).max(64),
  amount,
  currency,
  wallet,
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

const success = z.strictObject({ kind: z.literal('success'), gatewayTradeNo: z.string().min(1).max(64), amount });
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
  /** Undone: whether or not the customer had paid, nothing stays charged. */
  z.strictObject({ kind: z.literal('reversed') }),
  retryLater,
  unknown,
  /** Past the wallet's reverse window (WeChat 7 days, Alipay 24 h): refund instead. */
  z.strictObject({ kind: z.literal('window_passed') }),
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
