import type { Wallet } from '../../protocol/index.js';
import { ALIPAY_POLICY } from './alipay/policy.js';
import { WECHAT_POLICY } from './wechat/policy.js';

/**
 * How long after a pay a wallet still reverses (cancels) it. Past it the attempt is refunded instead,
 * without a reverse the wallet would refuse. Plain data, so the pure attempt machine and the scripted
 * gateway read the same rule.
 */
export type ReverseWindow =
  /** Within `ms` of the pay (WeChat: 7 days). */
  | { kind: 'within'; ms: number }
  /** Until the end of the pay's calendar day at UTC+offset (Alipay: the Beijing day). */
  | { kind: 'same_day'; utcOffsetMinutes: number };

export function withinReverseWindow(w: ReverseWindow, payAt: number, now: number): boolean {
  if (w.kind === 'within') return now - payAt < w.ms;
  const shift = w.utcOffsetMinutes * 60_000;
  const day = (t: number) => Math.floor((t + shift) / 86_400_000);
  return day(now) === day(payAt);
}

/** One wallet's conversation rules (DESIGN.md: one policy object per wallet, each number sourced in its folder). */
export interface WalletRules {
  /** Give up polling and reverse this long after the pay. */
  pollDeadlineMs: number;
  /** The least time between the pay (its answer, or its timeout) and a reverse. */
  reverseMinDelayMs: number;
  reverseWindow: ReverseWindow;
}

/** Margin on WeChat's 15 s: transit and the two clocks (issue: a wallet measured 14.96 s). */
const REVERSE_GAP_MARGIN_MS = 1_000;

export const WALLET_RULES: Readonly<Record<Wallet, WalletRules>> = {
  wechat: {
    pollDeadlineMs: WECHAT_POLICY.pollDeadlineMs.value,
    reverseMinDelayMs: WECHAT_POLICY.reverseMinDelayMs.value + REVERSE_GAP_MARGIN_MS,
    reverseWindow: { kind: 'within', ms: WECHAT_POLICY.reverseWindowMs.value },
  },
  alipay: {
    pollDeadlineMs: ALIPAY_POLICY.pollDeadlineMs.value,
    reverseMinDelayMs: ALIPAY_POLICY.reverseMinDelayMs.value,
    reverseWindow: { kind: 'same_day', utcOffsetMinutes: ALIPAY_POLICY.cancelSameDayUtcOffsetMinutes.value },
  },
  // UnionPay stays on the generic HTTP gateway: WeChat's cautious numbers and a one-day window.
  unionpay: {
    pollDeadlineMs: 45_000,
    reverseMinDelayMs: WECHAT_POLICY.reverseMinDelayMs.value + REVERSE_GAP_MARGIN_MS,
    reverseWindow: { kind: 'within', ms: 86_400_000 },
  },
};

export function reverseWindowsOf(rules: Readonly<Record<Wallet, WalletRules>>): Record<Wallet, ReverseWindow> {
  return { wechat: rules.wechat.reverseWindow, alipay: rules.alipay.reverseWindow, unionpay: rules.unionpay.reverseWindow };
}
