import type { Unknown } from './fields.js';

/**
 * The states one payment attempt passes through, shared by box and cloud so both name the same
 * thing the same way. Money is charged in the end only in SUCCESS.
 *
 *   CREATED ──pay sent──▶ PAYING ──▶ SUCCESS | FAILED
 *      │                    │ USERPAYING / timeout / unknown: query until final or deadline
 *      │                    ▼
 *      └──cancel──▶ CANCELLING ──▶ REVERSE_PENDING ──▶ REVERSED
 *                        │ (never reached the gateway)      (a success seen later: REFUND_PENDING ──▶ REFUNDED)
 *                        ▼
 *                    CANCELLED
 */
export const ATTEMPT_STATES = [
  'CREATED',
  'PAYING',
  'CANCELLING',
  'REVERSE_PENDING',
  'REFUND_PENDING',
  'SUCCESS',
  'FAILED',
  'CANCELLED',
  'REVERSED',
  'REFUNDED',
] as const;
export type AttemptState = (typeof ATTEMPT_STATES)[number];

export const FINAL_STATES = ['SUCCESS', 'FAILED', 'CANCELLED', 'REVERSED', 'REFUNDED'] as const satisfies readonly AttemptState[];
export type FinalState = (typeof FINAL_STATES)[number];

/** A state read as UNKNOWN (a newer cloud's) is never final: the attempt stays open and is queried again. */
export function isFinal(state: AttemptState | Unknown): state is FinalState {
  return (FINAL_STATES as readonly string[]).includes(state);
}

/** Whether the customer's money stays with the merchant in this final state. */
export function isCharged(state: FinalState): boolean {
  return state === 'SUCCESS';
}

/**
 * Why an attempt ended the way it did; carried on results so every party can tell the cashier. The
 * reasons of protocol v1 are frozen: boxes released before tolerant reading refuse any other value,
 * so a reason added later is never sent to a box that announced v1.
 */
export const V1_RESULT_REASONS = [
  'PAID',
  'INSUFFICIENT_FUNDS',
  'CODE_EXPIRED',
  'CODE_INVALID',
  'DECLINED',
  'USER_GAVE_UP',
  'DEADLINE',
  'CASHIER_CANCEL',
  'RECOVERY_CANCEL',
  'GATEWAY_ERROR',
  'DUPLICATE_PAYMENT',
  'LATE_SUCCESS',
  'TOMBSTONED',
  'UNKNOWN_ATTEMPT',
] as const;
export const RESULT_REASONS = [
  ...V1_RESULT_REASONS,
  /** v2. The wallet charged another amount than the sale's: not paid, the charge is being undone. */
  'AMOUNT_MISMATCH',
] as const;
export type ResultReason = (typeof RESULT_REASONS)[number];
