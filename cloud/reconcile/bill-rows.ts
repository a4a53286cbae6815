import type { AlipayBill, AlipayBillRow } from '../gateway/alipay/bill.js';
import type { WechatBill, WechatBillRow } from '../gateway/wechat/bill.js';

/**
 * Both wallets' bills as one kind of row, so the comparison (compare.ts) never knows whose format it
 * reads. A row is one movement of money for one order: the charge, a refund, or a reversal of a
 * charge (WeChat REVOKED; Alipay writes a cancel that gave the money back as a 退款 row without a
 * refund request number). Amounts are positive fen whatever sign the bill writes them with.
 */
export type BillRowKind = 'charge' | 'refund' | 'reverse';
export type BillWallet = 'wechat' | 'alipay';

export interface BillRow {
  channel: string;
  wallet: BillWallet;
  outTradeNo: string;
  /** WeChat transaction_id, Alipay trade_no. */
  walletTradeNo: string;
  kind: BillRowKind;
  /** fen, > 0. */
  amount: number;
  /** When the money moved (epoch ms): the trade time of the row (WeChat), its completion (Alipay). */
  at: number;
  /** A refund's own number as we sent it (out_refund_no / out_request_no); only on refund rows. */
  refundNo?: string;
  /** Our merchant whose sub-account the row is in; null when the bill names a sub-account no merchant of ours has. */
  merchantId: string | null;
}

/** A bill that parsed but says something no bill of these wallets says (a charge of 0, a refund with a positive amount). */
export class BillRowError extends Error {
  override readonly name = 'BillRowError';
}

// ── WeChat ──────────────────────────────────────────────────────────────────────────────────────

/**
 * The provider's ALL bill (every sub-merchant): SUCCESS → charge of 订单金额 (total_fee, what the
 * cloud asked for and the wallet reports as the amount), REFUND → refund of 退款金额, REVOKED →
 * reverse. A REFUND row whose 退款状态 is not SUCCESS has not given money back (yet): it moves
 * nothing, so it is left out. `merchantOf` maps the row's sub_mch_id to our merchant.
 */
export function wechatBillRows(bill: WechatBill, channel: string, merchantOf: (subMchId: string) => string | null): BillRow[] {
  return bill.rows.flatMap((r) => {
    if (r.tradeState === 'REFUND' && r.refundStatus !== 'SUCCESS') return [];
    return [wechatRow(r, channel, merchantOf(r.subMchId))];
  });
}

function wechatRow(r: WechatBillRow, channel: string, merchantId: string | null): BillRow {
  const base = { channel, wallet: 'wechat' as const, outTradeNo: r.outTradeNo, walletTradeNo: r.transactionId, at: r.tradeTime, merchantId };
  switch (r.tradeState) {
    case 'SUCCESS':
      return { ...base, kind: 'charge', amount: positive(r.orderFee, r, '订单金额') };
    case 'REFUND':
      return { ...base, kind: 'refund', amount: positive(r.refundFee, r, '退款金额'), ...(r.outRefundNo ? { refundNo: r.outRefundNo } : {}) };
    case 'REVOKED':
      // The reversed amount is carried as a refund amount; a bill that leaves it out still names the order's.
      return { ...base, kind: 'reverse', amount: positive(r.refundFee > 0 ? r.refundFee : r.orderFee, r, '退款金额') };
  }
}

function positive(fen: number, r: WechatBillRow, column: string): number {
  if (!Number.isSafeInteger(fen) || fen <= 0) throw new BillRowError(`wechat bill: ${r.tradeState} row of ${r.outTradeNo} has ${column} ${fen} fen; a movement of money is more than 0`);
  return fen;
}

// ── Alipay ──────────────────────────────────────────────────────────────────────────────────────

/**
 * One merchant's trade bill (ISV mode: one per app_auth_token): 交易 → charge of 订单金额, 退款 with
 * a refund request number → refund, 退款 without one → reverse (a cancel that refunded a paid trade,
 * as the bill shows it). Refund rows carry negative amounts in the bill.
 */
export function alipayBillRows(bill: AlipayBill, channel: string, merchantId: string): BillRow[] {
  return bill.rows.map((r) => alipayRow(r, channel, merchantId));
}

function alipayRow(r: AlipayBillRow, channel: string, merchantId: string): BillRow {
  const base = { channel, wallet: 'alipay' as const, outTradeNo: r.outTradeNo, walletTradeNo: r.tradeNo, at: r.completedAt, merchantId };
  if (r.kind === 'trade') {
    if (!Number.isSafeInteger(r.orderAmount) || r.orderAmount <= 0) throw new BillRowError(`alipay bill: 交易 row of ${r.outTradeNo} has 订单金额 ${r.orderAmount} fen; a charge is more than 0`);
    return { ...base, kind: 'charge', amount: r.orderAmount };
  }
  if (!Number.isSafeInteger(r.orderAmount) || r.orderAmount >= 0) throw new BillRowError(`alipay bill: 退款 row of ${r.outTradeNo} has 订单金额 ${r.orderAmount} fen; a refund row is negative`);
  const amount = -r.orderAmount;
  return r.refundNo === '' ? { ...base, kind: 'reverse', amount } : { ...base, kind: 'refund', amount, refundNo: r.refundNo };
}
