import { Outage, OUTAGE_PAGE } from './outage.js';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import type { FailReason, PayOutcome, QueryOutcome, RefundOutcome, ReverseOutcome, UnknownCode } from '../../cloud/gateway/gateway.js';
import { signedFenToYuan, tryYuanToFen } from '../../cloud/gateway/alipay/amount.js';
import { formatAlipayBill, type AlipayBillRowInput } from '../../cloud/gateway/alipay/bill.js';
import { beijingTimestamp, METHODS, type AlipayMethod } from '../../cloud/gateway/alipay/requests.js';
import { ERROR_RESPONSE_KEY, frameResponse, responseNodeKey, signNode, verifyRequest, type KeyInput } from '../../cloud/gateway/alipay/sign.js';
import { classifyPaymentCode } from '../../protocol/index.js';
import type { LedgerEntry } from './ledger.js';
import type { OrderDetail, OrderView, ScriptedGateway } from './scripted-gateway.js';

/**
 * Alipay's open gateway (https://openapi.alipay.com/gateway.do) for face-to-face bar-code payment in ISV mode, over
 * HTTPS on loopback, in front of the scripted wallet: the adapter under test talks the real wire protocol to it.
 *
 * Like Alipay it checks the request (common parameters, the app's RSA2 signature, the merchant's app_auth_token),
 * hands the business call to the ScriptedGateway (merchant = the app_auth_token, channel = this simulator's), and
 * answers `{"<method>_response":{…},"sign":"…"}` signed with "Alipay's" key, with the fields the real API returns.
 * What each answer looks like and where that comes from is in the codec (cloud/gateway/alipay/*.ts, whose sources
 * this file reuses by reference: [COMMON] [PAY] [QUERY] [CANCEL] [REFUND] [REFUND-QUERY] [REPEAT] [RECEIPT] of
 * outcomes.ts, bill.ts for the bill). A TIMEOUT from the scripted wallet (the `hang` scenario) is no answer at all:
 * the request stays open until the client gives up.
 */
export type WireFault = 'bad_signature' | 'no_signature' | 'http_500';

export interface AlipaySimulatorDeps {
  gateway: ScriptedGateway;
  /** The channel name the scripted orders are booked under (default "alipay"). */
  channel?: string;
  appId: string;
  appPublicKey: KeyInput;
  alipayPrivateKey: KeyInput;
  tls: { cert: string | Buffer; key: string | Buffer };
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  logger?: Logger;
  /** The merchants that authorised the app. Left out: every app_auth_token is taken as authorised. */
  appAuthTokens?: Iterable<string>;
  /** Wall clock for bill links and export times (default Date.now). */
  clock?: { now(): number };
}

export interface AlipaySimulator {
  /** The gateway.do URL, for the adapter's `endpoint`. */
  url: string;
  port: number;
  /** Queues a wire fault for the next call of `method`: a tampered or missing signature, or an HTTP 500 (not processed). */
  faults: {
    next(method: AlipayMethod, fault: WireFault): void;
    /** A share of every call, from now on, is refused with HTTP 503 before Alipay acts (0 heals it). */
    outage(share: number): void;
  };
  /** TLS connections accepted so far (a keep-alive client opens one for many calls). */
  connections(): number;
  /** gateway.do requests received so far. */
  requests(): number;
  /** Another merchant authorises the app. */
  authorize(appAuthToken: string): void;
  close(): Promise<void>;
}

type Node = Record<string, unknown>;
/** What the gateway says: a node (signed once the app is known), or nothing until the client gives up. */
type Answer = { node: Node; signed: boolean; nodeKey?: string } | 'hang';
interface Call {
  method: AlipayMethod;
  biz: Record<string, unknown>;
  /** The app_auth_token, or the app itself for a call on its own behalf. */
  merchant: string;
  signal: AbortSignal;
}

const MAX_FORM_BYTES = 64 * 1024;
/** [URL] "获取连接后30秒后未下载，链接地址失效". */
const BILL_LINK_MS = 30_000;
const KNOWN_METHODS = new Set<string>(Object.values(METHODS));
/** A masked buyer, as Alipay shows one (buyer_logon_id / 对方账户); the simulator has no real buyer to show. */
const BUYER = { buyer_logon_id: '159****5620', buyer_user_id: '2088102177846880' } as const;

/** [PAY] the sub_code answered for each scripted failure; the codec's PAY_FAILURES reads them back. */
const PAY_FAILURE_ANSWERS: Readonly<Record<FailReason, readonly [string, string]>> = {
  INSUFFICIENT_FUNDS: ['ACQ.BUYER_BALANCE_NOT_ENOUGH', '买家余额不足'],
  CODE_INVALID: ['ACQ.PAYMENT_AUTH_CODE_INVALID', '支付授权码无效'],
  // Alipay publishes no "expired" sub-code: an expired code is an invalid one (outcomes.ts PAY_FAILURES).
  CODE_EXPIRED: ['ACQ.PAYMENT_AUTH_CODE_INVALID', '支付授权码无效'],
  DECLINED: ['ACQ.PAYMENT_FAIL', '支付失败'],
};

export async function startAlipaySimulator(deps: AlipaySimulatorDeps): Promise<AlipaySimulator> {
  const sim = new AlipaySim(deps);
  const outage = new Outage();
  const server = createServer({ cert: deps.tls.cert, key: deps.tls.key }, (req, res) => {
    if (outage.hit()) return void res.writeHead(503, { 'content-type': 'text/html' }).end(OUTAGE_PAGE);
    sim.handle(req, res).catch((err: unknown) => {
      // The path only: a query string may carry app_auth_token and sign.
      sim.log.error({ err, path: (req.url ?? '').split('?')[0] }, 'alipay simulator request failed');
      if (!res.headersSent && !res.destroyed) res.writeHead(500).end();
    });
  });
  server.on('secureConnection', () => sim.tlsConnections++);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.port ?? 0, deps.host ?? '127.0.0.1', resolve);
  });
  const { port, address } = server.address() as AddressInfo;
  sim.origin = `https://${address.includes(':') ? `[${address}]` : address}:${port}`;
  return {
    url: `${sim.origin}/gateway.do`,
    port,
    faults: { next: (method, fault) => sim.queueFault(method, fault), outage: (share) => outage.set(share) },
    connections: () => sim.tlsConnections,
    requests: () => sim.gatewayRequests,
    authorize: (token) => sim.tokens?.add(token),
    close: () =>
      new Promise<void>((resolve) => {
        // Hanging calls hold connections open on purpose; they must not keep the server alive.
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

class AlipaySim {
  readonly log: Logger;
  readonly tokens: Set<string> | undefined;
  tlsConnections = 0;
  gatewayRequests = 0;
  origin = '';
  private readonly channel: string;
  private readonly clock: { now(): number };
  private readonly faults = new Map<string, WireFault[]>();
  /** What each pay named as its subject: the scripted wallet keeps no titles, the bill shows them. */
  private readonly subjects = new Map<string, string>();
  private readonly bills = new Map<string, { zip: Buffer; name: string; until: number }>();

  constructor(private readonly deps: AlipaySimulatorDeps) {
    this.log = deps.logger ?? pino({ level: 'silent' });
    this.tokens = deps.appAuthTokens === undefined ? undefined : new Set(deps.appAuthTokens);
    this.channel = deps.channel ?? 'alipay';
    this.clock = deps.clock ?? { now: () => Date.now() };
  }

  queueFault(method: AlipayMethod, fault: WireFault): void {
    this.faults.set(method, [...(this.faults.get(method) ?? []), fault]);
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.origin);
    if (req.method === 'POST' && url.pathname === '/gateway.do') return this.gatewayDo(req, res, url);
    if (req.method === 'GET' && url.pathname === '/downloadBillFile.resource') return this.serveBill(res, url);
    res.writeHead(404, { 'content-type': 'text/plain' }).end(`no route ${req.method} ${url.pathname}`);
  }

  // ── gateway.do ──────────────────────────────────────────────────────────────────────────────────

  private async gatewayDo(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    this.gatewayRequests++;
    let params: Record<string, string>;
    try {
      params = mergeParams(url.searchParams, new URLSearchParams(await readBody(req)));
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 400;
      return void res.writeHead(status, { 'content-type': 'text/plain' }).end((err as Error).message);
    }
    const admitted = this.admit(params);
    if ('node' in admitted) return this.respond(res, params.method, admitted);
    const fault = this.faults.get(admitted.method)?.shift();
    // A failing front end: the call never reaches the business system.
    if (fault === 'http_500') return void res.writeHead(500, { 'content-type': 'text/html' }).end('<html><body>500 Internal Server Error</body></html>');
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const answer = await this.business({ ...admitted, signal: abort.signal });
    this.log.debug({ method: admitted.method, outTradeNo: admitted.biz.out_trade_no, answer: answer === 'hang' ? 'hang' : answer.node.code }, 'alipay simulator call');
    if (answer !== 'hang' && !abort.signal.aborted) this.respond(res, admitted.method, answer, fault);
  }

  /**
   * [COMMON] the gateway's own checks, before any business logic, with its published codes: 40001 缺少必选参数,
   * 40002 非法的参数, 20001 授权权限不足. Refusals made before the app is known are unsigned (there is no app key pair
   * to sign with); after that they are signed like any answer (Alipay's Node SDK shows a signed isv.invalid-signature
   * answer in its `formatResponse` comment, alipay-sdk-nodejs-all src/alipay.ts).
   */
  private admit(p: Record<string, string>): Omit<Call, 'signal'> | Exclude<Answer, 'hang'> {
    const unsigned = (nodeKey: string | undefined, code: string, subCode: string, subMsg: string) => ({ node: gatewayError(code, subCode, subMsg), signed: false, ...(nodeKey ? { nodeKey } : {}) });
    const signed = (code: string, subCode: string, subMsg: string) => ({ node: gatewayError(code, subCode, subMsg), signed: true });
    if (!p.method) return unsigned(ERROR_RESPONSE_KEY, '40001', 'isv.missing-method', '缺少方法名参数');
    if (!KNOWN_METHODS.has(p.method)) return unsigned(ERROR_RESPONSE_KEY, '40002', 'isv.invalid-method', '不存在的方法名');
    if (!p.app_id) return unsigned(undefined, '40001', 'isv.missing-app-id', '缺少appId参数');
    if (p.app_id !== this.deps.appId) return unsigned(undefined, '40002', 'isv.invalid-app-id', '无效的AppID参数');
    const missing = [
      ['sign', 'isv.missing-signature', '缺少签名参数'],
      ['sign_type', 'isv.missing-signature-type', '缺少签名类型参数'],
      ['timestamp', 'isv.missing-timestamp', '缺少时间戳参数'],
      ['version', 'isv.missing-version', '缺少版本参数'],
    ].find(([k]) => !p[k!]);
    if (missing) return signed('40001', missing[1]!, missing[2]!);
    if (p.sign_type !== 'RSA2') return signed('40002', 'isv.invalid-signature-type', '无效的签名类型');
    if (!/^(utf-8|UTF-8)$/.test(p.charset ?? 'utf-8')) return signed('40002', 'isv.invalid-charset', '字符集错误');
    if (!/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(p.timestamp!)) return signed('40002', 'isv.invalid-timestamp', '非法的时间戳参数');
    if (!verifyRequest(p, this.deps.appPublicKey)) return signed('40002', 'isv.invalid-signature', '验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配');
    const token = p.app_auth_token;
    if (token !== undefined && this.tokens !== undefined && !this.tokens.has(token)) return signed('20001', 'aop.invalid-app-auth-token', '无效的应用授权令牌');
    const biz = parseBiz(p.biz_content);
    if (biz === undefined) return signed('40002', 'isv.invalid-parameter', '参数无效');
    return { method: p.method as AlipayMethod, biz, merchant: token ?? this.deps.appId };
  }

  private business(call: Call): Promise<Answer> {
    switch (call.method) {
      case METHODS.pay:
        return this.pay(call);
      case METHODS.query:
        return this.query(call);
      case METHODS.cancel:
        return this.cancel(call);
      case METHODS.refund:
        return this.refund(call);
      case METHODS.refundQuery:
        return Promise.resolve(this.refundQuery(call));
      case METHODS.billUrl:
        return Promise.resolve(this.billUrl(call));
    }
  }

  private respond(res: ServerResponse, method: string | undefined, answer: Exclude<Answer, 'hang'>, fault?: WireFault): void {
    if (res.headersSent || res.destroyed) return;
    const nodeKey = answer.nodeKey ?? responseNodeKey(method ?? 'unknown');
    const text = alipayJson(answer.node);
    const sign = answer.signed && fault !== 'no_signature' ? signNode(text, this.deps.alipayPrivateKey) : undefined;
    // bad_signature: the signature is over the answer as it was; the body carries it altered in transit.
    const sent = fault === 'bad_signature' ? text.replace(/}$/, ',"tampered":"1"}') : text;
    res.writeHead(200, { 'content-type': 'application/json;charset=utf-8' }).end(frameResponse(nodeKey, sent, sign));
  }

  // ── alipay.trade.pay ────────────────────────────────────────────────────────────────────────────

  private async pay(call: Call): Promise<Answer> {
    const b = call.biz;
    const outTradeNo = text(b.out_trade_no);
    const amount = tryYuanToFen(b.total_amount);
    if (!outTradeNo || b.scene !== 'bar_code' || !text(b.subject) || amount === undefined || amount < 1) return invalidParameter();
    const code = text(b.auth_code) ?? '';
    if (!isAlipayCode(code)) return bizFail(...PAY_FAILURE_ANSWERS.CODE_INVALID, { out_trade_no: outTradeNo });
    const prior = this.deps.gateway.order(outTradeNo);
    if (!this.subjects.has(outTradeNo)) this.subjects.set(outTradeNo, text(b.subject)!);
    const req = { outTradeNo, wallet: 'alipay', merchant: call.merchant, channel: this.channel, amount, currency: 'CNY', code, description: text(b.subject)! } as const;
    const outcome = await this.deps.gateway.pay(req, { signal: call.signal });
    return prior !== undefined && prior.status !== 'absent' ? this.repeatPay(outcome, prior, amount) : this.firstPay(outcome, outTradeNo);
  }

  private firstPay(o: PayOutcome, outTradeNo: string): Answer {
    switch (o.kind) {
      case 'success':
        return ok({ ...paidFields(o, outTradeNo), gmt_payment: beijingTimestamp(o.paidAt ?? this.clock.now()) });
      case 'in_progress':
        return this.waitingForBuyer(outTradeNo);
      case 'failed':
        return bizFail(...PAY_FAILURE_ANSWERS[o.reason], { out_trade_no: outTradeNo });
      case 'unknown':
        return trouble(o.code);
    }
  }

  /** [REPEAT] the same out_trade_no again: Alipay reports on the trade it has instead of paying anew. */
  private repeatPay(o: PayOutcome, prior: OrderView, amount: number): Answer {
    const ids = { out_trade_no: prior.outTradeNo };
    if (o.kind === 'success') return bizFail('ACQ.TRADE_HAS_SUCCESS', '交易已被支付', ids);
    if (o.kind === 'in_progress') return this.waitingForBuyer(prior.outTradeNo);
    if (o.kind === 'unknown') return trouble(o.code);
    if (prior.status === 'closed') return bizFail('ACQ.TRADE_HAS_CLOSE', '交易已经关闭', ids);
    if (prior.amount !== amount) return bizFail('ACQ.CONTEXT_INCONSISTENT', '交易信息被篡改', ids);
    return bizFail(...PAY_FAILURE_ANSWERS[o.reason], ids);
  }

  /** [F2F-DEMO] 10003: the buyer confirms on the phone. */
  private waitingForBuyer(outTradeNo: string): Answer {
    const view = this.deps.gateway.order(outTradeNo);
    return {
      node: { code: '10003', msg: ' order success pay inprocess', ...this.tradeIds(outTradeNo), ...(view ? { total_amount: signedFenToYuan(view.amount) } : {}), ...BUYER },
      signed: true,
    };
  }

  // ── alipay.trade.query ──────────────────────────────────────────────────────────────────────────

  private async query(call: Call): Promise<Answer> {
    const outTradeNo = text(call.biz.out_trade_no);
    if (!outTradeNo) return invalidParameter();
    const o = await this.deps.gateway.query({ outTradeNo, wallet: 'alipay', merchant: call.merchant, channel: this.channel }, { signal: call.signal });
    return this.queryAnswer(o, outTradeNo);
  }

  private queryAnswer(o: QueryOutcome, outTradeNo: string): Answer {
    switch (o.kind) {
      case 'success':
        return ok({ ...paidFields(o, outTradeNo), trade_status: 'TRADE_SUCCESS', send_pay_date: beijingTimestamp(o.paidAt ?? this.clock.now()) });
      case 'in_progress':
        return ok({ ...this.tradeIds(outTradeNo), trade_status: 'WAIT_BUYER_PAY', ...this.totalOf(outTradeNo) });
      case 'not_found':
        return bizFail('ACQ.TRADE_NOT_EXIST', '交易不存在', { out_trade_no: outTradeNo });
      case 'unknown':
        return trouble(o.code);
      default:
        // failed, closed, refunded: [QUERY] TRADE_CLOSED, with the payment time only if it had been paid.
        return ok({ ...this.tradeIds(outTradeNo), trade_status: 'TRADE_CLOSED', ...this.totalOf(outTradeNo), ...this.paidTime(outTradeNo) });
    }
  }

  // ── alipay.trade.cancel ─────────────────────────────────────────────────────────────────────────

  private async cancel(call: Call): Promise<Answer> {
    const outTradeNo = text(call.biz.out_trade_no);
    if (!outTradeNo) return invalidParameter();
    const o = await this.deps.gateway.reverse({ outTradeNo, wallet: 'alipay', merchant: call.merchant, channel: this.channel }, { signal: call.signal });
    return this.cancelAnswer(o, outTradeNo);
  }

  /** [CANCEL] retry_flag on every answer; action close (was unpaid) / refund (was paid) on success. */
  private cancelAnswer(o: ReverseOutcome, outTradeNo: string): Answer {
    const ids = { out_trade_no: outTradeNo };
    switch (o.kind) {
      case 'reversed':
        return ok({ ...this.tradeIds(outTradeNo), retry_flag: 'N', ...(o.action ? { action: o.action } : {}) });
      case 'retry_later':
        return bizFail('ACQ.SYSTEM_ERROR', '系统错误', { ...ids, retry_flag: 'Y' });
      case 'window_passed':
      case 'already_paid':
        return bizFail('ACQ.TRADE_CANCEL_TIME_OUT', '超过撤销时间范围', { ...ids, retry_flag: 'N' });
      case 'unknown':
        return trouble(o.code);
    }
  }

  // ── alipay.trade.refund / alipay.trade.fastpay.refund.query ─────────────────────────────────────

  private async refund(call: Call): Promise<Answer> {
    const b = call.biz;
    const outTradeNo = text(b.out_trade_no);
    const amount = tryYuanToFen(b.refund_amount);
    if (!outTradeNo || amount === undefined || amount < 1) return invalidParameter();
    // "如需部分退款，则此参数必传": without out_request_no the refund is the trade's one full refund.
    const refundNo = text(b.out_request_no) ?? outTradeNo;
    const prior = this.detail(outTradeNo);
    const route = { outTradeNo, wallet: 'alipay', merchant: call.merchant, channel: this.channel } as const;
    const o = await this.deps.gateway.refund({ ...route, refundNo, amount, total: prior?.charged ?? amount, currency: 'CNY' }, { signal: call.signal });
    return this.refundAnswer(o, outTradeNo, refundNo, prior);
  }

  /** [REFUND] fund_change says whether THIS call moved money: N for a repeat of a refund already made. */
  private refundAnswer(o: RefundOutcome, outTradeNo: string, refundNo: string, prior: OrderDetail | undefined): Answer {
    const ids = { out_trade_no: outTradeNo };
    switch (o.kind) {
      case 'refunded': {
        const repeat = prior?.refunds.some((r) => r.refundNo === refundNo) ?? false;
        const done = this.detail(outTradeNo)?.refunds.find((r) => r.refundNo === refundNo);
        const refunded = this.deps.gateway.order(outTradeNo)?.refunded ?? 0;
        return ok({ ...this.tradeIds(outTradeNo), ...BUYER, fund_change: repeat ? 'N' : 'Y', refund_fee: signedFenToYuan(refunded), ...(done ? { gmt_refund_pay: beijingTimestamp(done.at) } : {}) });
      }
      case 'failed':
        if (prior === undefined || prior.status === 'absent') return bizFail('ACQ.TRADE_NOT_EXIST', '交易不存在', ids);
        if (prior.status !== 'charged') return bizFail('ACQ.TRADE_STATUS_ERROR', '交易状态非法', ids);
        return bizFail('ACQ.REFUND_AMT_NOT_EQUAL_TOTAL', '退款金额超限', ids);
      case 'retry_later':
        return bizFail('ACQ.SELLER_BALANCE_NOT_ENOUGH', '卖家余额不足', ids);
      case 'unknown':
        return trouble(o.code);
    }
  }

  /** [REFUND-QUERY] REFUND_SUCCESS for a refund that happened; no refund_status for one Alipay never got. */
  private refundQuery(call: Call): Answer {
    const outTradeNo = text(call.biz.out_trade_no);
    const refundNo = text(call.biz.out_request_no);
    if (!outTradeNo || !refundNo) return invalidParameter();
    const d = this.detail(outTradeNo);
    if (d === undefined) return bizFail('ACQ.TRADE_NOT_EXIST', '交易不存在', { out_trade_no: outTradeNo });
    const r = d.refunds.find((x) => x.refundNo === refundNo);
    if (r === undefined) return ok(this.tradeIds(outTradeNo));
    return ok({
      ...this.tradeIds(outTradeNo),
      out_request_no: refundNo,
      total_amount: signedFenToYuan(d.charged),
      refund_amount: signedFenToYuan(r.amount),
      refund_status: 'REFUND_SUCCESS',
      gmt_refund_pay: beijingTimestamp(r.at),
    });
  }

  // ── bills ───────────────────────────────────────────────────────────────────────────────────────

  /** [URL] a link to this merchant's trade bill of bill_date, served by this simulator for 30 seconds. */
  private billUrl(call: Call): Answer {
    const date = text(call.biz.bill_date);
    if (!date || !/^\d{4}-\d{2}(-\d{2})?$/.test(date)) return { node: gatewayError('40002', 'isv.invalid-parameter', '参数无效'), signed: true };
    // This simulator writes daily trade bills only; a monthly or signcustomer bill is "none".
    const rows = call.biz.bill_type === 'trade' && date.length === 10 ? this.billRows(call.merchant, date) : [];
    if (rows.length === 0) return bizFail('isp.bill_not_exist', '账单不存在', {});
    const account = pidOf(call.merchant);
    const name = `${account}_${date.replaceAll('-', '')}.csv.zip`;
    const token = randomBytes(16).toString('hex');
    this.bills.set(token, { zip: formatAlipayBill(rows, date, { account, exportedAt: this.clock.now() }), name, until: this.clock.now() + BILL_LINK_MS });
    const query = new URLSearchParams({ bizType: 'trade', fileType: 'csv.zip', bizDates: date.replaceAll('-', ''), downloadFileName: name, token });
    return ok({ bill_download_url: `${this.origin}/downloadBillFile.resource?${query.toString()}` });
  }

  private serveBill(res: ServerResponse, url: URL): void {
    const token = url.searchParams.get('token') ?? '';
    const bill = this.bills.get(token);
    if (bill === undefined || bill.until < this.clock.now()) {
      this.bills.delete(token);
      return void res.writeHead(404, { 'content-type': 'text/plain' }).end('the bill link is unknown or expired');
    }
    res.writeHead(200, { 'content-type': 'application/oct-stream', 'content-disposition': `attachment; filename="${bill.name}"` }).end(bill.zip);
  }

  /** [FILE] a 交易 row per charge and a 退款 row per refund (a cancel that refunded included) completed that day. */
  private billRows(merchant: string, date: string): AlipayBillRowInput[] {
    const onDay = (t: number) => beijingTimestamp(t).startsWith(date);
    const moves = byOrder(this.deps.gateway.ledger.entries().filter((e) => e.amount > 0 && onDay(e.at)));
    const rows: AlipayBillRowInput[] = [];
    for (const d of this.deps.gateway.orderDetails()) {
      if (d.wallet !== 'alipay' || d.channel !== this.channel || d.merchant !== merchant) continue;
      const base = { tradeNo: d.gatewayTradeNo, outTradeNo: d.outTradeNo, subject: this.subjects.get(d.outTradeNo) ?? '', createdAt: d.createdAt, counterparty: `*${BUYER.buyer_logon_id}` };
      for (const e of moves.get(d.outTradeNo) ?? []) {
        if (e.kind === 'charge') rows.push({ ...base, kind: 'trade', completedAt: e.at, orderAmount: e.amount, merchantReceived: e.amount, alipayDiscount: d.discount });
        if (e.kind === 'reverse') rows.push({ ...base, kind: 'refund', completedAt: e.at, orderAmount: -e.amount, merchantReceived: -e.amount });
      }
      for (const r of d.refunds.filter((x) => onDay(x.at))) {
        rows.push({ ...base, kind: 'refund', completedAt: r.at, orderAmount: -r.amount, merchantReceived: -r.amount, refundNo: r.refundNo });
      }
    }
    return rows.sort((a, b) => a.completedAt - b.completedAt);
  }

  // ── order facts ─────────────────────────────────────────────────────────────────────────────────

  private detail(outTradeNo: string): OrderDetail | undefined {
    return this.deps.gateway.orderDetails().find((d) => d.outTradeNo === outTradeNo);
  }

  private tradeIds(outTradeNo: string): Node {
    const d = this.detail(outTradeNo);
    return { ...(d ? { trade_no: d.gatewayTradeNo } : {}), out_trade_no: outTradeNo };
  }

  private totalOf(outTradeNo: string): Node {
    const amount = this.deps.gateway.order(outTradeNo)?.amount ?? 0;
    return amount > 0 ? { total_amount: signedFenToYuan(amount) } : {};
  }

  private paidTime(outTradeNo: string): Node {
    const paidAt = this.detail(outTradeNo)?.paidAt ?? null;
    return paidAt === null ? {} : { send_pay_date: beijingTimestamp(paidAt) };
  }
}

// ── answers ───────────────────────────────────────────────────────────────────────────────────────

function ok(fields: Node): Answer {
  return { node: { code: '10000', msg: 'Success', ...fields }, signed: true };
}

function bizFail(subCode: string, subMsg: string, fields: Node): Answer {
  return { node: { code: '40004', msg: 'Business Failed', sub_code: subCode, sub_msg: subMsg, ...fields }, signed: true };
}

function invalidParameter(): Answer {
  return bizFail('ACQ.INVALID_PARAMETER', '参数无效', {});
}

const GATEWAY_MSG: Readonly<Record<string, string>> = { '40001': 'Missing Required Arguments', '40002': 'Invalid Arguments', '20001': 'Insufficient Token Permissions' };

function gatewayError(code: string, subCode: string, subMsg: string): Node {
  return { code, msg: GATEWAY_MSG[code] ?? 'Error', sub_code: subCode, sub_msg: subMsg };
}

/** A scripted unknown: TIMEOUT is no answer (the hang); BANKERROR has no Alipay twin, so it is the business system's error. */
function trouble(code: UnknownCode): Answer {
  if (code === 'TIMEOUT') return 'hang';
  if (code === 'BANKERROR') return bizFail('ACQ.SYSTEM_ERROR', '系统错误', {});
  return { node: { code: '20000', msg: 'Service Currently Unavailable', sub_code: 'isp.unknow-error', sub_msg: '系统繁忙' }, signed: true };
}

/** [RECEIPT] the fields of a paid trade (pay and query answers). Coupons are the platform's (discount_amount). */
function paidFields(o: Extract<PayOutcome, { kind: 'success' }>, outTradeNo: string): Node {
  const buyerPaid = o.buyerPaid ?? o.amount;
  const discount = o.discount ?? 0;
  return {
    trade_no: o.gatewayTradeNo,
    out_trade_no: outTradeNo,
    ...BUYER,
    total_amount: signedFenToYuan(o.amount),
    receipt_amount: signedFenToYuan(o.amount),
    buyer_pay_amount: signedFenToYuan(buyerPaid),
    point_amount: '0.00',
    invoice_amount: signedFenToYuan(buyerPaid),
    fund_bill_list: [{ fund_channel: 'ALIPAYACCOUNT', amount: signedFenToYuan(buyerPaid) }],
    ...(discount > 0 ? { discount_amount: signedFenToYuan(discount) } : {}),
  };
}

/** Alipay escapes '/' in its JSON ("http:\/\/…"); the signature covers those bytes, which the codec must keep. */
function alipayJson(node: Node): string {
  return JSON.stringify(node).replaceAll('/', '\\/');
}

// ── request plumbing ──────────────────────────────────────────────────────────────────────────────

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new HttpError(413, `body over ${MAX_FORM_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** URL and form parameters together (the SDKs put the common ones in the URL); a key given twice is refused. */
function mergeParams(...sources: URLSearchParams[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const source of sources) {
    for (const [k, v] of source) {
      if (Object.hasOwn(out, k)) throw new HttpError(400, `parameter ${k} is given twice`);
      out[k] = v;
    }
  }
  return out;
}

function parseBiz(text: string | undefined): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text ?? '');
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function text(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

function isAlipayCode(code: string): boolean {
  try {
    return classifyPaymentCode(code).wallet === 'alipay';
  } catch {
    return false;
  }
}

function byOrder(entries: readonly LedgerEntry[]): Map<string, LedgerEntry[]> {
  const out = new Map<string, LedgerEntry[]>();
  for (const e of entries) out.set(e.outTradeNo, [...(out.get(e.outTradeNo) ?? []), e]);
  return out;
}

/** A stable PID-like account per merchant for the bill's `#账号：[…]` (2088 + 12 digits + Alipay's 0156 suffix). */
function pidOf(merchant: string): string {
  let h = 0;
  for (const ch of merchant) h = (h * 31 + ch.codePointAt(0)!) % 1_000_000_000_000;
  return `2088${String(h).padStart(12, '0')}0156`;
}
