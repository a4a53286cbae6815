import type { Wallet } from '../../protocol/index.js';
import type { ScenarioInput } from '../gateway/scenario.js';

/**
 * What the customer at `scanbox-sim counter` does with the next payment code, in the vendor's words,
 * and the scripted gateway's scenario that plays it. `register` says what the POS sees, so the menu,
 * the help and the README tell the same story.
 */
export const BEHAVIOURS = ['pays', 'password', 'timeout', 'declines', 'expired', 'late', 'mismatch', 'gateway-down'] as const;
export type Behaviour = (typeof BEHAVIOURS)[number];

/** `shop`: the product's own timings (a wallet's poll deadline is 45–60 s); `fast`: the demo's, in seconds. */
export type Timings = 'shop' | 'fast';

export interface BehaviourInfo {
  /** What the customer does, said after "the customer …". */
  customer: string;
  /** What the register sees. */
  register: string;
  scenario(timings: Timings): ScenarioInput;
}

export const BEHAVIOUR_INFO: Record<Behaviour, BehaviourInfo> = {
  pays: {
    customer: 'pays',
    register: 'PAYING, then result PAID with the receipt',
    scenario: () => ({ name: 'success' }),
  },
  password: {
    customer: 'must type the password on the phone (USERPAYING), then pays',
    register: 'PAYING, WAITING_PASSWORD, then result PAID',
    // Within the wallet's poll deadline (3 s on fast timings), or the cloud would give up first.
    scenario: (t) => ({ name: 'user_paying', confirmAfterMs: t === 'fast' ? 2_000 : 8_000 }),
  },
  timeout: {
    customer: 'never types the password: the cloud gives up and closes the order',
    register: 'WAITING_PASSWORD, then ATTEMPT_FAILED after the poll deadline; the sale waits for another code or a cancel',
    scenario: () => ({ name: 'user_gives_up', giveUpAfterMs: 3_600_000 }),
  },
  declines: {
    customer: 'is declined by the wallet (insufficient funds)',
    register: 'ATTEMPT_FAILED (INSUFFICIENT_FUNDS) at once; the sale waits for another code or a cancel',
    scenario: () => ({ name: 'failure', reason: 'INSUFFICIENT_FUNDS' }),
  },
  expired: {
    customer: 'shows an expired code',
    register: 'ATTEMPT_FAILED (CODE_EXPIRED) at once; the sale waits for another code or a cancel',
    scenario: () => ({ name: 'failure', reason: 'CODE_EXPIRED' }),
  },
  late: {
    customer: 'is charged late, after the cloud gave up and closed the order: the cloud refunds it',
    register: 'ATTEMPT_FAILED after the poll deadline, never PAID for that code; the wallet shows charge then refund',
    scenario: () => ({ name: 'late_success', landAfterMs: 0 }),
  },
  mismatch: {
    customer: "is charged 0.13 less than the sale's amount by the wallet",
    register: 'result NOT_PAID (AMOUNT_MISMATCH) at once; the cloud undoes the charge',
    scenario: () => ({ name: 'success', chargeDelta: -13 }),
  },
  'gateway-down': {
    customer: 'pays, but the payment gateway never answers this payment',
    register: 'PAYING, then ATTEMPT_FAILED once the cloud has timed out, queried and closed the order',
    scenario: () => ({ name: 'hang', charged: false }),
  },
};

const TEST_CODE_PREFIX: Record<Wallet, string> = { wechat: '13', alipay: '28', unionpay: '62' };
const TEST_CODE_LENGTH: Record<Wallet, number> = { wechat: 18, alipay: 18, unionpay: 19 };

/**
 * The fixed test code of a behaviour for a wallet: the same in every run, so a vendor can print it
 * as a barcode or put it in a script. `13 0000…0 NN` (WeChat), `28 0000…0 NN` (Alipay), `62 …` (UnionPay),
 * NN the behaviour's menu number — valid shapes for the box's code classifier.
 */
export function testCode(behaviour: Behaviour, wallet: Wallet): string {
  const n = String(BEHAVIOURS.indexOf(behaviour) + 1).padStart(2, '0');
  const prefix = TEST_CODE_PREFIX[wallet];
  return `${prefix}${'0'.repeat(TEST_CODE_LENGTH[wallet] - prefix.length - n.length)}${n}`;
}

/** A menu answer: a number (1–8), a behaviour's name, or one of the fixed test codes. */
export type Choice = { behaviour: Behaviour; code?: string };

export function parseChoice(input: string, wallets: readonly Wallet[]): Choice | undefined {
  const text = input.trim().toLowerCase();
  const byNumber = /^\d{1,2}$/.test(text) ? BEHAVIOURS[Number(text) - 1] : undefined;
  if (byNumber) return { behaviour: byNumber };
  const byName = BEHAVIOURS.find((b) => b === text);
  if (byName) return { behaviour: byName };
  for (const behaviour of BEHAVIOURS) {
    for (const wallet of wallets) if (testCode(behaviour, wallet) === text) return { behaviour, code: text };
  }
  return undefined;
}
