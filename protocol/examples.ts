import type { DownKind, UpKind } from './topics.js';
import type { DownToSend, ResultMessage, ResultMessageV1, UpToSend } from './messages.js';
import type { EcrInbound, EcrOutbound } from './ecr.js';
import type { PairErrorBody, PairRequest, PairResponse } from './pairing.js';

/**
 * One valid example of every message. The tests check each against its schema, and that
 * protocol/README.md shows exactly these, so the documentation cannot drift from the contract.
 */
const ts = 1764086400000;
const money = { outTradeNo: 'sb7K2M9QX4TA-42', saleId: 'sb7K2M9QX4TA-s17', amount: 1234, currency: 'CNY' } as const;

export const UP_EXAMPLES: { [K in UpKind]: UpToSend<K> } = {
  pay: { v: 3, id: 'm-1001', ts, ...money, saleRef: 'R20261125-0042', code: '134567890123456789', wallet: 'wechat' },
  cancel: { v: 3, id: 'm-1002', ts, ...money, reason: 'CASHIER_CANCEL' },
  query: { v: 3, id: 'm-1003', ts, ...money },
  ack: { v: 3, id: 'm-1004', ts, outTradeNo: money.outTradeNo, state: 'SUCCESS' },
  heartbeat: {
    v: 3,
    id: 'm-1005',
    ts,
    status: { firmware: '0.1.0', uptimeS: 3600, outboxDepth: 0, pendingAttempts: 0, scanner: 'open', ecr: 'open' },
  },
  refund: { v: 3, id: 'refund-sb7K2M9QX4TA-r3-1764086500000', ts, refundId: 'sb7K2M9QX4TA-r3', refundRef: 'RF20261125-0007', outTradeNo: money.outTradeNo, amount: 500, currency: 'CNY' },
  totals: { v: 3, id: 'totals-1764086600000', ts, date: '2025-11-26' },
  doctor: {
    v: 3,
    id: 'doctor-1764086700000',
    ts,
    refId: 'cmd-mif3k2x0-5f1c2a9be403',
    firmware: '0.1.0',
    checks: [
      { name: 'scanner', ok: true, detail: '/dev/serial/by-id/usb-scanner: port held by this agent (open)' },
      { name: 'broker', ok: true, detail: 'mqtts://cloud.example:8883: connected as sb7K2M9QX4TA (the agent\'s link is up)' },
      {
        name: 'disk',
        ok: false,
        detail: '61 MiB free in /var/lib/scanbox (under 100 MiB)',
        fix: 'free space on that file system (old logs: journalctl --vacuum-size=50M); never delete journal.db',
      },
    ],
  },
};

export const DOWN_EXAMPLES: { [K in DownKind]: DownToSend<K> } = {
  result: { v: 3, id: 'c-2001', ts, ...money, state: 'SUCCESS', reason: 'PAID', wallet: 'wechat' },
  progress: { v: 3, id: 'c-2002', ts, outTradeNo: money.outTradeNo, stage: 'USERPAYING', message: 'waiting for the customer to enter the password' },
  error: { v: 3, id: 'c-2003', ts, code: 'SCHEMA_INVALID', message: 'up/pay message is invalid: amount: amount must be whole minor units (fen), not a decimal', refId: 'm-1001' },
  command: { v: 3, id: 'c-2004', ts, command: 'resync' },
  refund: { v: 3, id: 'c-2007', ts, refundId: 'sb7K2M9QX4TA-r3', outTradeNo: money.outTradeNo, amount: 500, currency: 'CNY', state: 'REFUNDED', refundedTotal: 500, remaining: 734 },
  totals: {
    v: 3,
    id: 'c-2008',
    ts,
    refId: 'totals-1764086600000',
    date: '2025-11-26',
    currency: 'CNY',
    wallets: [
      { wallet: 'wechat', paidCount: 12, paidAmount: 48200, refundCount: 1, refundAmount: 500 },
      { wallet: 'alipay', paidCount: 7, paidAmount: 20150, refundCount: 0, refundAmount: 0 },
    ],
    asOf: 1764086600500,
  },
};

/**
 * What v2 added to down/result: the wallet's receipt, and the reason AMOUNT_MISMATCH; with the same
 * results as a box that announced v1 is sent them (`resultForVersion`): no receipt, and no reason v1
 * does not have, so the state alone (FAILED) tells it that nothing is paid.
 */
const mismatch = { outTradeNo: 'sb7K2M9QX4TA-43', saleId: 'sb7K2M9QX4TA-s18', amount: 1234, currency: 'CNY' } as const;
export const RESULT_EXAMPLES: { paid: ResultMessage; amountMismatch: ResultMessage; paidV1: ResultMessageV1; amountMismatchV1: ResultMessageV1 } = {
  paid: {
    v: 3,
    id: 'c-2005',
    ts,
    ...money,
    state: 'SUCCESS',
    reason: 'PAID',
    wallet: 'wechat',
    receipt: { walletTradeNo: '4200002946202611251234567890', paidAt: 1764086401000, total: 1234, buyerPaid: 1134, discount: 100 },
  },
  amountMismatch: {
    v: 3,
    id: 'c-2006',
    ts,
    ...mismatch,
    state: 'FAILED',
    reason: 'AMOUNT_MISMATCH',
    wallet: 'alipay',
    receipt: { walletTradeNo: '2026112522001412345678901234', paidAt: 1764086402000, total: 1243 },
  },
  paidV1: { v: 1, id: 'c-2005', ts, ...money, state: 'SUCCESS', reason: 'PAID', wallet: 'wechat' },
  amountMismatchV1: { v: 1, id: 'c-2006', ts, ...mismatch, state: 'FAILED', wallet: 'alipay' },
};

export const PAIR_EXAMPLES: { request: PairRequest; response: PairResponse; error: PairErrorBody } = {
  request: { v: 1, code: '7K2M9QX4TA', hardwareId: 'rk3308-00e04c6812ab', firmware: '0.1.0' },
  response: {
    v: 1,
    deviceId: 'sb7K2M9QX4TA',
    secret: 'q3Jw0yq7oLrXr2k1m1tWfVx8dC9hTn4Zs5aPbE6uGiQ',
    mqttUrl: 'mqtt://cloud.example:1883',
    merchantId: 'M100',
    storeId: 'S1',
  },
  error: { v: 1, error: { code: 'PAIRING_CODE_EXPIRED', message: 'pairing code has expired; create a new one' } },
};

export const ECR_EXAMPLES: { inbound: EcrInbound[]; outbound: EcrOutbound[] } = {
  inbound: [
    { type: 'sale', ref: 'R20261125-0042', amount: 1234, currency: 'CNY' },
    { type: 'cancel', ref: 'R20261125-0042' },
    { type: 'refund', ref: 'R20261125-0042', refundRef: 'RF20261125-0007', amount: 500, currency: 'CNY' },
    { type: 'totals', date: '2025-11-26' },
  ],
  outbound: [
    { type: 'progress', ref: 'R20261125-0042', stage: 'WAITING_CODE', message: '请出示付款码 ¥12.34' },
    { type: 'progress', ref: 'R20261125-0042', stage: 'WAITING_PASSWORD', outTradeNo: money.outTradeNo, message: '等待用户输入密码' },
    {
      type: 'result',
      ref: 'R20261125-0042',
      outcome: 'PAID',
      amount: 1234,
      currency: 'CNY',
      outTradeNo: money.outTradeNo,
      wallet: 'wechat',
      walletTradeNo: '4200002946202611251234567890',
      paidAt: 1764086401000,
      buyerPaid: 1134,
      discount: 100,
    },
    { type: 'result', ref: 'R20261125-0043', outcome: 'NOT_PAID', amount: 1234, currency: 'CNY', reason: 'AMOUNT_MISMATCH', outTradeNo: mismatch.outTradeNo },
    { type: 'error', code: 'SCHEMA_INVALID', message: 'ECR line is invalid: amount: amount must be whole minor units (fen), not a decimal' },
    { type: 'refund_progress', ref: 'R20261125-0042', refundRef: 'RF20261125-0007', outTradeNo: money.outTradeNo, amount: 500, currency: 'CNY', refundId: 'sb7K2M9QX4TA-r3', stage: 'REFUNDING', message: 'refund sent; waiting for the wallet' },
    { type: 'refund_result', ref: 'R20261125-0042', refundRef: 'RF20261125-0007', outTradeNo: money.outTradeNo, amount: 500, currency: 'CNY', refundId: 'sb7K2M9QX4TA-r3', outcome: 'REFUNDED', refundedTotal: 500, remaining: 734 },
    {
      type: 'totals',
      date: '2025-11-26',
      confirmed: true,
      currency: 'CNY',
      wallets: [{ wallet: 'wechat', paidCount: 12, paidAmount: 48200, refundCount: 1, refundAmount: 500, net: 47700 }],
    },
  ],
};
