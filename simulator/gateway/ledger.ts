import { z } from 'zod';
import { currency, outTradeNo, timestamp, type Currency } from '../../protocol/index.js';
import type { Clock } from '../../protocol/clock.js';

/**
 * The gateway's ledger: every money movement, in order. It is the ground truth every other part is
 * reconciled against, so it records what happened to the money, not what anyone was told.
 */
export const LEDGER_KINDS = ['charge', 'reverse', 'refund'] as const;
export type LedgerKind = (typeof LEDGER_KINDS)[number];

export const LedgerEntry = z.strictObject({
  seq: z.number().int().positive(),
  at: timestamp,
  outTradeNo,
  kind: z.enum(LEDGER_KINDS),
  /** Minor units. A reverse of an order that was never charged is recorded with 0. */
  amount: z.number().int().nonnegative(),
  currency,
  /** A refund's own number (the cloud's undo, or a register's refund id): one refund per number, ever. */
  refundNo: z.string().min(1).max(64).optional(),
});
export type LedgerEntry = z.infer<typeof LedgerEntry>;
export const LedgerEntries = z.array(LedgerEntry);

export class Ledger {
  private readonly list: LedgerEntry[] = [];

  constructor(private readonly clock: Clock) {}

  record(outTradeNo: string, kind: LedgerKind, amount: number, currency: Currency, refundNo?: string): LedgerEntry {
    const entry = { seq: this.list.length + 1, at: this.clock.now(), outTradeNo, kind, amount, currency, ...(refundNo === undefined ? {} : { refundNo }) };
    this.list.push(entry);
    return entry;
  }

  entries(): LedgerEntry[] {
    return this.list.map((e) => ({ ...e }));
  }
}

/** Money that stays charged per outTradeNo: charges minus reverses minus refunds. */
export function netCharged(entries: readonly LedgerEntry[]): Map<string, number> {
  const net = new Map<string, number>();
  for (const e of entries) {
    const sign = e.kind === 'charge' ? 1 : -1;
    net.set(e.outTradeNo, (net.get(e.outTradeNo) ?? 0) + sign * e.amount);
  }
  return net;
}
