import { z } from 'zod';
import * as f from './fields.js';

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
