import type { AttemptState, CloudAttemptRecord, DeviceAttemptRecord } from '../../protocol/index.js';
import type { LedgerEntry, LedgerKind } from '../../simulator/gateway/ledger.js';

/** A small, consistent world (gateway ledger, cloud export, two box journals) covering every final state. */
export interface World {
  ledger: LedgerEntry[];
  cloud: CloudAttemptRecord[];
  devices: DeviceAttemptRecord[][];
}

const T = 1_767_225_600_000;

export function cloudRecord(outTradeNo: string, saleId: string, amount: number, state: AttemptState): CloudAttemptRecord {
  const deviceId = outTradeNo.replace(/-\d+$/, '');
  return { outTradeNo, deviceId, saleId, amount, currency: 'CNY', wallet: 'wechat', state, reason: null, createdAt: T, updatedAt: T + 1 };
}

export function deviceRecord(c: CloudAttemptRecord, state: AttemptState = c.state): DeviceAttemptRecord {
  return { outTradeNo: c.outTradeNo, saleId: c.saleId, saleRef: `R${c.saleId}`, amount: c.amount, currency: 'CNY', state, reason: null, createdAt: T, updatedAt: T + 2 };
}

export function ledgerOf(moves: Array<[outTradeNo: string, kind: LedgerKind, amount: number]>): LedgerEntry[] {
  return moves.map(([outTradeNo, kind, amount], i) => ({ seq: i + 1, at: T + i, outTradeNo, kind, amount, currency: 'CNY' }));
}

export function cleanWorld(): World {
  const a = [
    cloudRecord('boxA-1', 'boxA-s1', 1000, 'SUCCESS'), // plain success
    cloudRecord('boxA-2', 'boxA-s2', 2000, 'FAILED'), // insufficient funds
    cloudRecord('boxA-3', 'boxA-s3', 3000, 'REVERSED'), // timed out, charged, reversed
    cloudRecord('boxA-4', 'boxA-s3', 3000, 'SUCCESS'), // the customer's second try for the same sale
  ];
  const b = [
    cloudRecord('boxB-1', 'boxB-s1', 500, 'REFUNDED'), // late success after reverse, refunded
    cloudRecord('boxB-2', 'boxB-s2', 700, 'SUCCESS'), // paid
    cloudRecord('boxB-3', 'boxB-s2', 700, 'REFUNDED'), // duplicate payment for the same sale, refunded
    cloudRecord('boxB-4', 'boxB-s3', 900, 'CANCELLED'), // never reached the gateway
  ];
  const ledger = ledgerOf([
    ['boxA-1', 'charge', 1000],
    ['boxA-3', 'charge', 3000],
    ['boxA-3', 'reverse', 3000],
    ['boxA-4', 'charge', 3000],
    ['boxB-1', 'reverse', 0],
    ['boxB-1', 'charge', 500],
    ['boxB-1', 'refund', 500],
    ['boxB-2', 'charge', 700],
    ['boxB-3', 'charge', 700],
    ['boxB-3', 'refund', 700],
  ]);
  // Box B saw the late-success attempt as REVERSED (it was told before the refund): not charged either way.
  const devices = [a.map((c) => deviceRecord(c)), b.map((c) => deviceRecord(c, c.outTradeNo === 'boxB-1' ? 'REVERSED' : c.state))];
  return { ledger, cloud: [...a, ...b], devices };
}
