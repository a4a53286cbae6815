import { z } from 'zod';
import * as f from './fields.js';
import { REFUND_REASONS, REFUND_STATES, refundId } from './refunds.js';

/**
 * What each part exports about its attempts, so reconciliation can compare them without reading
 * another part's database: `scanbox-cloud attempts --json` prints CloudAttemptRecord[] and
 * `scanbox-device attempts --json` prints DeviceAttemptRecord[].
 */
export const CloudAttemptRecord = z.object({
  outTradeNo: f.outTradeNo,
  deviceId: f.deviceId,
  saleId: f.saleId,
  amount: f.amount,
  currency: f.currency,
  wallet: f.wallet.nullable(),
  state: f.attemptState,
  reason: f.resultReason.nullable(),
  createdAt: f.timestamp,
  updatedAt: f.timestamp,
  /** The channel the attempt went through, the wallet's own id for it, what the wallet charged. */
  channel: z.string().nullable().optional(),
  gatewayTradeNo: z.string().nullable().optional(),
  charged: z.number().int().nullable().optional(),
  /** Set when a person must look (AMOUNT_MISMATCH). */
  flag: z.string().nullable().optional(),
});
export const DeviceAttemptRecord = z.object({
  outTradeNo: f.outTradeNo,
  saleId: f.saleId,
  saleRef: f.saleRef,
  amount: f.amount,
  currency: f.currency,
  state: f.attemptState,
  reason: f.resultReason.nullable(),
  createdAt: f.timestamp,
  updatedAt: f.timestamp,
});
export type CloudAttemptRecord = z.infer<typeof CloudAttemptRecord>;
export type DeviceAttemptRecord = z.infer<typeof DeviceAttemptRecord>;

/**
 * What each part exports about the refunds the cash registers asked for: `scanbox-cloud refunds
 * --json` prints CloudRefundRecord[], `scanbox-device refunds --json` DeviceRefundRecord[].
 */
export const CloudRefundRecord = z.object({
  refundId,
  deviceId: f.deviceId,
  refundRef: f.saleRef,
  outTradeNo: f.outTradeNo,
  amount: f.amount,
  currency: f.currency,
  state: z.enum(REFUND_STATES),
  reason: z.enum(REFUND_REASONS).nullable(),
  createdAt: f.timestamp,
  updatedAt: f.timestamp,
});
export const DEVICE_REFUND_STATES = ['REQUESTED', 'PENDING', 'REFUNDED', 'NOT_REFUNDED'] as const;
export const DeviceRefundRecord = z.object({
  refundId,
  refundRef: f.saleRef,
  saleRef: f.saleRef.nullable(),
  outTradeNo: f.outTradeNo,
  amount: f.amount,
  currency: f.currency,
  state: z.enum(DEVICE_REFUND_STATES),
  reason: z.enum(REFUND_REASONS).nullable(),
  createdAt: f.timestamp,
  updatedAt: f.timestamp,
});
export type CloudRefundRecord = z.infer<typeof CloudRefundRecord>;
export type DeviceRefundRecord = z.infer<typeof DeviceRefundRecord>;
