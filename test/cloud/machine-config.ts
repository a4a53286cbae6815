import type { MachineConfig } from '../../cloud/payments/transaction.js';
import { reverseWindowsOf, WALLET_RULES } from '../../cloud/gateway/wallet-rules.js';

/** The wallets' real timings (WeChat's 15 s gap without the cloud's margin), with a faster reverse retry. */
export const MACHINE_CONFIG: MachineConfig = {
  queryFirstDelayMs: 5_000,
  queryIntervalMs: 5_000,
  pollDeadlineMs: { wechat: 45_000, alipay: 60_000, unionpay: 45_000 },
  reverseMinDelayMs: { wechat: 15_000, alipay: 0, unionpay: 15_000 },
  reverseWindows: reverseWindowsOf(WALLET_RULES),
  reverseRetryMs: 1_000,
  reverseRetryMaxMs: 60_000,
  reverseFastRetries: 3,
  lateCheckDelayMs: 60_000,
  lateCheckTries: 3,
};
