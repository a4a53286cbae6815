import type { MachineConfig } from '../../cloud/payments/transaction.js';

/** The wallets' real timings (cloud/config.ts defaults), with a faster reverse retry. */
export const MACHINE_CONFIG: MachineConfig = {
  queryFirstDelayMs: 5_000,
  queryIntervalMs: 5_000,
  pollDeadlineMs: { wechat: 45_000, alipay: 60_000, unionpay: 45_000 },
  reverseMinDelayMs: 15_000,
  reverseRetryMs: 1_000,
  reverseRetryMaxMs: 60_000,
  reverseFastRetries: 3,
  lateCheckDelayMs: 60_000,
  lateCheckTries: 3,
};
