/**
 * The published pages every WeChat Pay v2 rule in this folder comes from. Each rule's comment (and
 * each row of the outcome tables) names one of these, so a reader can check the rule against its page.
 *
 * "Service provider" (服务商) pages are the `micropay_sl.php` editions (appid + mch_id of the provider,
 * sub_mch_id of the merchant). WeChat has since moved the v2 docs to `pay.weixin.qq.com/doc/v2/...`;
 * both addresses are given where both were found. Where a rule was confirmed only through copies of
 * the page (SDKs, blog reprints, WeChat's own developer forum), the entry says so.
 */
export const SOURCES = {
  /** 安全规范 → 签名算法: sort non-empty params by ASCII key, k=v&…, append &key=, MD5 or HMAC-SHA256, upper case.
   * Worked example (key 192006250b4c09247ec02edce69f6a2d → MD5 9A0A8659…, HMAC-SHA256 6A9AE165…) read from
   * verbatim reprints of the page (e.g. https://blog.csdn.net/aodizhi5710/article/details/101117354, which
   * names https://pay.weixin.qq.com/wiki/doc/api/H5.php?chapter=4_3 as its source); both values re-computed here. */
  sign: 'https://pay.weixin.qq.com/wiki/doc/api/micropay_sl.php?chapter=4_3',
  /** 协议规则: "交易金额：默认为人民币交易，接口中参数支付金额单位为【分】，参数值不能带小数"; "交易时间：标准北京时间，
   * 时区为东八区" (time_end and every other time is Beijing wall-clock time, UTC+8). */
  protocolRules: 'https://pay.weixin.qq.com/wiki/doc/api/micropay_sl.php?chapter=4_2',
  /** 付款码支付 (service provider), updated 2025-08-14: request fields, the pay → query → reverse advice. */
  micropay: 'https://pay.weixin.qq.com/doc/v2/partner/4011941293',
  /** Same API, legacy address (its error-code table is the one quoted by SDKs; see MICROPAY_ERR_CODES). */
  micropayLegacy: 'https://pay.weixin.qq.com/wiki/doc/api/micropay_sl.php?chapter=9_10&index=1',
  /** 查询订单: trade_state values, ORDERNOTEXIST, SYSTEMERROR. */
  orderquery: 'https://pay.weixin.qq.com/wiki/doc/api/micropay_sl.php?chapter=9_2',
  /** 撤销订单: secapi (client certificate), 7-day window, ≥ 15 s after pay, recall Y/N, REVERSE_EXPIRE. */
  reverse: 'https://pay.weixin.qq.com/wiki/doc/api/micropay_sl.php?chapter=9_11',
  /** 撤销订单, current merchant edition (same fields and notes). */
  reverseCurrent: 'https://pay.weixin.qq.com/doc/v2/merchant/4011937361',
  /** A reverse answered err_code USERPAYING "正在支付中不能发起撤销" — not in the reverse page's table;
   * WeChat's forum answer: "属于撤销失败" (the reverse failed). */
  reverseUserPaying: 'https://developers.weixin.qq.com/community/pay/doc/0006aed24d4e388dd7ade90d85b800',
  /** 申请退款: secapi (client certificate), total_fee + refund_fee, out_refund_no, error codes. */
  refund: 'https://pay.weixin.qq.com/wiki/doc/api/micropay_sl.php?chapter=9_4',
  /** "申请退款接口的返回仅代表业务的受理情况，具体退款是否成功，需要通过退款查询接口获取结果" (read on the
   * provider refund page of the current docs, item 6; the v2 page carries the same note). */
  refundAcceptedOnly: 'https://pay.weixin.qq.com/doc/v3/partner/4012709253',
  /** FAQ: "部分退款后，调用查询接口查询该订单，其交易状态将显示为REFUND" — REFUND does not mean refunded in full. */
  refundPartialState: 'https://pay.weixin.qq.com/doc/v3/partner/4013080629',
  /** 查询退款: refund_count, out_refund_no_$n, refund_fee_$n, refund_status_$n (SUCCESS/REFUNDCLOSE/PROCESSING/CHANGE). */
  refundquery: 'https://pay.weixin.qq.com/wiki/doc/api/micropay_sl.php?chapter=9_5',
  /** 下载对账单: bill_date, bill_type; the answer is the bill text (or an unsigned XML error such as
   * return_msg "No Bill Exist"). Text: header row, one row per record, "总交易单数,…" and its values last;
   * "对账单中涉及金额的字段单位为“元”"; every value starts with a backtick; times are Beijing time;
   * "支付成功后撤销的交易会出现在对账单中，跟原支付单订单号一致" (state REVOKED). */
  downloadbill: 'https://pay.weixin.qq.com/wiki/doc/api/micropay_sl.php?chapter=9_6',
  /** The ALL bill's header (27 columns, 特约商户号 … 费率备注) and summary rows as WeChat sends them today,
   * copied verbatim from real answers into this SDK test (the page's own table shows the same columns). */
  downloadbillCopy: 'https://github.com/binarywang/WxJava/blob/develop/weixin-java-pay/src/test/java/com/github/binarywang/wxpay/bean/result/WxPayBillResultTest.java',
  /** A secapi call without a client certificate: WeChat's nginx answers HTTP 400 "No required SSL
   * certificate was sent" (HTML, no XML), as reported against a Python SDK. */
  secapiNoCert: 'https://github.com/zwczou/weixin-python/issues/88',
  /** A secapi call with a certificate WeChat does not accept: HTTP 400 "The SSL certificate error" (nginx HTML). */
  secapiBadCert: 'https://github.com/binarywang/weixin-java-pay-demo/issues/60',
  /** WeChat Pay's notice "关于XML解析存在的安全问题指引" (XXE: disable DOCTYPE / external entities), read in
   * a reprint — the official address was not confirmed here. */
  xmlSecurity: 'https://blog.csdn.net/yelin042/article/details/80913544',
} as const;

export type SourceKey = keyof typeof SOURCES;
