import { SOURCES } from './sources.js';

/**
 * WeChat Pay's published numbers for the payment conversation (DESIGN.md: "one policy object per
 * wallet, each number with its published source"). Not wired anywhere yet: the cloud's config
 * (`queryFirstDelayMs`, `pollDeadlineMs.wechat`, `reverseMinDelayMs`, …) should be checked against it.
 */
export interface PolicyNumber {
  readonly value: number;
  readonly source: string;
  /** The page's words. */
  readonly quote: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export const WECHAT_POLICY = {
  /** SYSTEMERROR on pay: wait, then query. */
  queryAfterSystemErrorMs: { value: 5_000, source: SOURCES.micropay, quote: '当返回结果为“系统错误”时，商户系统等待5秒后调用【查询订单API】' },
  /** USERPAYING: query again at this interval (a suggestion). */
  userPayingQueryIntervalMs: { value: 10_000, source: SOURCES.micropay, quote: '当返回结果为“USERPAYING”时，商户系统可设置间隔时间(建议10秒)重新查询支付结果' },
  /** …until success or this much time has passed. The page of 2025-08-14 says 45 s; older editions said 30 s. */
  pollDeadlineMs: { value: 45_000, source: SOURCES.micropay, quote: '直到支付成功或超时(建议45秒)' },
  /** No reverse earlier than this after the pay. */
  reverseMinDelayMs: { value: 15_000, source: SOURCES.reverse, quote: '调用支付接口后请勿立即调用撤销订单API，建议支付后至少15s后再调用撤销订单接口' },
  /** Reverse works within this window after the order; later: refund. */
  reverseWindowMs: { value: 7 * DAY_MS, source: SOURCES.reverse, quote: '7天以内的交易单可调用撤销，其他正常支付的单如需实现相同功能请调用申请退款API' },
  /** Refunds are accepted within a year of payment (TRADE_OVERDUE after). */
  refundWindowMs: { value: 365 * DAY_MS, source: SOURCES.refund, quote: '交易时间超过一年的订单无法提交退款' },
  /** Partial refunds per order. */
  maxPartialRefunds: { value: 50, source: SOURCES.refund, quote: '每个支付订单的部分退款次数不能超过50次' },
} as const satisfies Record<string, PolicyNumber>;
