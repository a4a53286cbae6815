import { formatAmount, type ResultReason } from '../protocol/index.js';
import type { Screen } from './display.js';

/**
 * Every screen the box can show, in one place, so wording is consistent and the state machine only
 * says which screen. Texts are what a Chinese counter box shows and says; amounts are formatted
 * from integer fen, never from a float.
 */
const REASON_TEXT: Partial<Record<ResultReason, string>> = {
  INSUFFICIENT_FUNDS: '余额不足',
  CODE_EXPIRED: '付款码已过期',
  CODE_INVALID: '付款码无效',
  DECLINED: '支付被拒绝',
  USER_GAVE_UP: '用户取消支付',
  DEADLINE: '支付超时',
  GATEWAY_ERROR: '支付通道异常',
  UNKNOWN_ATTEMPT: '支付未送达',
  TOMBSTONED: '支付已撤销',
  AMOUNT_MISMATCH: '扣款金额不符',
};

export function reasonText(reason: ResultReason | null | undefined): string {
  return (reason && REASON_TEXT[reason]) ?? '支付未成功';
}

export const screens = {
  waitingCode: (amount: number): Screen => ({ screen: `请出示付款码 ${formatAmount(amount)}`, voice: '请出示付款码' }),
  paying: (amount: number): Screen => ({ screen: `支付中，请稍候… ${formatAmount(amount)}`, voice: null }),
  waitingPassword: (): Screen => ({ screen: '等待用户输入密码', voice: '请在手机上输入密码' }),
  success: (amount: number): Screen => ({ screen: `支付成功 ${formatAmount(amount)}`, voice: `支付成功，${formatAmount(amount).slice(1)}元` }),
  attemptFailed: (amount: number, reason: ResultReason | null): Screen => ({
    screen: `${reasonText(reason)}，请重新扫码 ${formatAmount(amount)}`,
    voice: reasonText(reason),
  }),
  timedOut: (amount: number): Screen => ({ screen: `支付超时，正在撤销；可重新扫码 ${formatAmount(amount)}`, voice: '支付超时' }),
  cancelling: (): Screen => ({ screen: '正在取消交易，请稍候…', voice: null }),
  notPaid: (): Screen => ({ screen: '交易已取消，未扣款', voice: '交易已取消' }),
  /** The wallet charged another amount than the sale's: the sale is not paid, and that charge is being returned. */
  amountMismatch: (): Screen => ({ screen: '扣款金额不符，正在退回；本单未收款', voice: '扣款金额不符，本单未收款' }),
  offline: (): Screen => ({ screen: '网络未连接，暂不能收款，请使用其他方式', voice: '网络未连接' }),
  noSale: (): Screen => ({ screen: '请先在收银机上输入金额', voice: null }),
  busy: (): Screen => ({ screen: '正在处理上一笔付款，请稍候', voice: null }),
  badScan: (): Screen => ({ screen: '无法识别，请重新扫码', voice: '请重新扫码' }),
} as const;
