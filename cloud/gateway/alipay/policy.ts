import type { PolicyNumber } from '../wechat/policy.js';

/**
 * Alipay's published numbers for the face-to-face (bar_code) conversation, each with its page. The
 * shape of the conversation differs from WeChat's: no minimum gap before a cancel (the F2F demo
 * cancels right after its last query), and a cancel only on the day of the trade.
 */
/** Alipay's face-to-face Java demo (AbsAlipayTradeService.java, com.alipay.demo.trade), see outcomes.ts [F2F-DEMO]. */
const F2F_DEMO = 'https://opendocs.alipay.com/open/194/106078 (当面付 demo: AbsAlipayTradeService.java)';
const CANCEL_DAY = 'https://global.alipay.com/developer/helpcenter/detail?categoryId=67616&knowId=201602452391&sceneCode=AC_DEV';
const CANCEL = 'https://opendocs.alipay.com/open/13399511_alipay.trade.cancel';

export const ALIPAY_POLICY = {
  /**
   * WAIT_BUYER_PAY: the demo polls a fixed number of queries, then cancels; Alipay publishes no deadline.
   * 60 s is this cloud's own choice (its default before per-wallet rules): a customer typing a password is slow.
   */
  pollDeadlineMs: { value: 60_000, source: F2F_DEMO, quote: '10003 等待用户付款 → 轮询查询; 轮询结束仍未支付 → 撤销 (tradeCancel)' },
  /** No gap before a cancel: the demo cancels right after its last query. */
  reverseMinDelayMs: { value: 0, source: CANCEL, quote: '提交支付交易后调用【查询订单API】，没有明确的支付结果再调用【撤销订单API】' },
  /** Cancel works only on the day of the trade (Beijing time); the next day: refund. */
  cancelSameDayUtcOffsetMinutes: {
    value: 8 * 60,
    source: CANCEL_DAY,
    quote: '当面付撤销接口必须在当天内执行,隔日不能撤销 … 如果已经付款成功,那么就只能在当日00:00之前都可以执行cancel',
  },
} as const satisfies Record<string, PolicyNumber>;
