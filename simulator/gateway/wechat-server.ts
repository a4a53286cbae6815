import { Outage, OUTAGE_PAGE } from './outage.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { pino, type Logger } from 'pino';
import type { PayOutcome, QueryOutcome, RefundOutcome, ReverseOutcome } from '../../cloud/gateway/gateway.js';
import { billDateOf, formatBillTime, formatTimeEnd, formatWechatBill, type WechatBillRow } from '../../cloud/gateway/wechat/bill.js';
import { parseFen } from '../../cloud/gateway/wechat/outcomes.js';
import { randomNonce, WECHAT_CALLS, type WechatCall } from '../../cloud/gateway/wechat/requests.js';
import { signParams, SIGN_TYPES, verifySigned, withSign, type SignType } from '../../cloud/gateway/wechat/sign.js';
import { decodeXml, encodeXml, MAX_XML_BYTES } from '../../cloud/gateway/wechat/xml.js';
import type { OrderDetail, ScriptedGateway } from './scripted-gateway.js';

/**
 * WeChat Pay v2 (service-provider mode) over HTTPS, in front of the scripted wallet: the real adapter
 * talks to it exactly as it talks to api.mch.weixin.qq.com. It checks what WeChat checks (the
 * request's sign under the API key and the request's sign_type, appid/mch_id, the client certificate
 * on /secapi/), turns the request into the ScriptedGateway call (merchant = sub_mch_id, channel =
 * this simulator's), and turns the outcome back into the signed XML answer WeChat gives, field for
 * field (SOURCES.micropay, orderquery, reverse, refund, refundquery, downloadbill).
 *
 * A `TIMEOUT` outcome is the scripted `hang`: the request stays unanswered until the client gives up,
 * which aborts the scripted call in turn. `faults.next` spoils the next answer of one call on the
 * wire (tampered or missing sign, HTTP 500) after the wallet acted on it, as a broken proxy would.
 */
export interface WechatSimulatorDeps {
  gateway: ScriptedGateway;
  /** The channel name the scripted orders are recorded under (the cloud's channel for this account). */
  channel?: string;
  /**
   * The provider account. `signType` is what the account's adapter is set to; WeChat itself follows
   * each request's sign_type ("默认为MD5" when absent, SOURCES.micropay), and so does this simulator.
   */
  credentials: { appId: string; mchId: string; apiKey: string; signType: SignType };
  /** The server's certificate and key, and the CA whose client certificates /secapi/ accepts. */
  tls: { cert: string | Buffer; key: string | Buffer; ca: string | Buffer };
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  logger?: Logger;
}

export type WechatFault = 'bad_signature' | 'no_signature' | 'http_500';

export interface WechatSimulator {
  url: string;
  port: number;
  /** Spoils the next answer of `call` (a signature fault leaves a bill text as it is). */
  faults: {
    next(call: WechatCall, fault: WechatFault): void;
    /** A share of every call, from now on, is refused with HTTP 503 before WeChat acts (0 heals it). */
    outage(share: number): void;
  };
  /** TLS connections accepted so far: a keep-alive client makes one per pool. */
  connections(): number;
  close(): Promise<void>;
}

type Fields = Record<string, string | undefined>;
type Reply =
  /** return_code SUCCESS: signed with the request's sign type. */
  | { kind: 'signed'; fields: Fields }
  /** return_code FAIL: WeChat cannot or does not sign these ("此字段是通信标识"). */
  | { kind: 'refused'; fields: Fields }
  | { kind: 'text'; text: string }
  | { kind: 'hang' };

interface Ctx {
  gateway: ScriptedGateway;
  channel: string;
  credentials: WechatSimulatorDeps['credentials'];
  log: Logger;
}

type Handler = (ctx: Ctx, f: Fields, signal: AbortSignal) => Promise<Reply> | Reply;

const HANG: Reply = { kind: 'hang' };
/** The one customer of the simulator (an openid is per appid; WeChat masks nothing here). */
const SIM_OPENID = 'oSimulatorWechatPayer000000';
/** The rate the published sample bills show (SOURCES.downloadbillCopy): 0.60% of each amount, in 1/1000 fen. */
const FEE_MILLI_PER_FEN = 6;

const CALL_BY_PATH = new Map(Object.entries(WECHAT_CALLS).map(([call, c]) => [c.path, call as WechatCall]));

export async function startWechatSimulator(deps: WechatSimulatorDeps): Promise<WechatSimulator> {
  const ctx: Ctx = { gateway: deps.gateway, channel: deps.channel ?? 'wechat', credentials: deps.credentials, log: deps.logger ?? pino({ level: 'silent' }) };
  const faults = new Map<WechatCall, WechatFault[]>();
  const outage = new Outage();
  let connections = 0;
  const server = createServer({ cert: deps.tls.cert, key: deps.tls.key, ca: deps.tls.ca, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    if (outage.hit()) return void send(res, 503, 'text/html', OUTAGE_PAGE);
    handle(ctx, faults, req, res).catch((err: unknown) => {
      ctx.log.error({ err, path: req.url }, 'wechat simulator request failed');
      if (!res.headersSent && !res.destroyed) res.writeHead(500).end();
    });
  });
  server.on('secureConnection', () => {
    connections += 1;
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.port ?? 0, deps.host ?? '127.0.0.1', resolve);
  });
  const { port, address } = server.address() as AddressInfo;
  return {
    url: `https://${address.includes(':') ? `[${address}]` : address}:${port}`,
    port,
    faults: { next: (call, fault) => faults.set(call, [...(faults.get(call) ?? []), fault]), outage: (share) => outage.set(share) },
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        // Hanging calls hold connections open on purpose; they must not keep the server alive.
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function handle(ctx: Ctx, faults: Map<WechatCall, WechatFault[]>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const call = CALL_BY_PATH.get((req.url ?? '').split('?')[0] ?? '');
  if (!call) return send(res, 404, 'text/plain', 'not found');
  if (WECHAT_CALLS[call].clientCert) {
    const problem = certificateProblem(req.socket as TLSSocket);
    if (problem) return send(res, 400, 'text/html', nginx400(problem));
  }
  const read = await readRequest(req);
  if (!read.ok) return deliver(res, read.reply, {}, undefined, ctx);
  const f = read.fields;
  const refusal = authenticate(ctx, f);
  if (refusal) return deliver(res, refusal, f, undefined, ctx);
  const signal = abortWhenClientLeaves(res);
  const reply = await HANDLERS[call](ctx, f, signal);
  ctx.log.debug({ call, outTradeNo: f.out_trade_no, reply: reply.kind }, 'wechat simulator answer');
  if (signal.aborted) return;
  deliver(res, reply, f, takeFault(faults, call), ctx);
}

/**
 * secapi without an acceptable client certificate: WeChat's nginx refuses before any XML is read —
 * HTTP 400 "No required SSL certificate was sent" without one (SOURCES.secapiNoCert), "The SSL
 * certificate error" with one it does not trust (SOURCES.secapiBadCert).
 */
function certificateProblem(socket: TLSSocket): string | undefined {
  const peer = socket.getPeerCertificate();
  if (!peer || Object.keys(peer).length === 0) return 'No required SSL certificate was sent';
  return socket.authorized ? undefined : 'The SSL certificate error';
}

function nginx400(reason: string): string {
  return `<html>\r\n<head><title>400 ${reason}</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>${reason}</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
}

async function readRequest(req: IncomingMessage): Promise<{ ok: true; fields: Fields } | { ok: false; reply: Reply }> {
  const refuse = (message: string) => ({ ok: false, reply: refused(message) }) as const;
  // The micropay error table's own words (SOURCES.micropayLegacy: REQUIRE_POST_METHOD, XML_FORMAT_ERROR).
  if (req.method !== 'POST') return refuse('请使用post方法');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_XML_BYTES) chunks.push(chunk);
  }
  if (size > MAX_XML_BYTES) return refuse('XML格式错误');
  try {
    return { ok: true, fields: decodeXml(Buffer.concat(chunks)) };
  } catch {
    return refuse('XML格式错误');
  }
}

/** The request's sign type: sign_type, "默认为MD5" (SOURCES.micropay); anything else is none. */
function signTypeOf(f: Fields): SignType | undefined {
  const t = f.sign_type ?? 'MD5';
  return (SIGN_TYPES as readonly string[]).includes(t) ? (t as SignType) : undefined;
}

/** What WeChat refuses before reading the business fields: an unknown account, a bad sign (SOURCES.sign). */
function authenticate(ctx: Ctx, f: Fields): Reply | undefined {
  if (f.mch_id !== ctx.credentials.mchId) return refused('MCHID不存在');
  const type = signTypeOf(f);
  if (type === undefined) return refused('sign_type参数错误');
  if (!verifySigned(f, ctx.credentials.apiKey, type)) return refused('签名错误');
  if (f.appid !== ctx.credentials.appId) return refused('appid和mch_id不匹配');
  return undefined;
}

function abortWhenClientLeaves(res: ServerResponse): AbortSignal {
  const abort = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  return abort.signal;
}

function takeFault(faults: Map<WechatCall, WechatFault[]>, call: WechatCall): WechatFault | undefined {
  return faults.get(call)?.shift();
}

function deliver(res: ServerResponse, reply: Reply, req: Fields, fault: WechatFault | undefined, ctx: Ctx): void {
  if (reply.kind === 'hang') return; // answered by nobody: the client's abort closes it
  if (fault === 'http_500') return send(res, 500, 'text/html', '<html><body><h1>500 Internal Server Error</h1></body></html>');
  if (reply.kind === 'text') return send(res, 200, 'text/plain; charset=utf-8', reply.text);
  if (reply.kind === 'refused') return send(res, 200, 'text/xml', encodeXml(defined(reply.fields)));
  send(res, 200, 'text/xml', encodeXml(signAnswer(ctx, req, reply.fields, fault)));
}

/** An answer as WeChat writes it: the ids of the request echoed, a fresh nonce, signed like the request. */
function signAnswer(ctx: Ctx, req: Fields, fields: Fields, fault: WechatFault | undefined): Record<string, string> {
  const type = signTypeOf(req) ?? 'MD5';
  const echoed = { appid: req.appid, mch_id: req.mch_id, sub_appid: req.sub_appid, sub_mch_id: req.sub_mch_id };
  const answer = withSign({ return_code: 'SUCCESS', return_msg: 'OK', ...echoed, nonce_str: randomNonce(), ...fields }, ctx.credentials.apiKey, type);
  if (fault === 'no_signature') delete answer.sign;
  // A sign of the right form under another key: only the check, not the parser, can catch it.
  if (fault === 'bad_signature') answer.sign = signParams(answer, `${ctx.credentials.apiKey}-tampered`, type);
  return answer;
}

function defined(fields: Fields): Record<string, string> {
  return Object.fromEntries(Object.entries(fields).filter((e): e is [string, string] => e[1] !== undefined));
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': type }).end(body);
}

// ── answers ───────────────────────────────────────────────────────────────────────────────────

function refused(message: string, extra: Fields = {}): Reply {
  return { kind: 'refused', fields: { return_code: 'FAIL', return_msg: message, ...extra } };
}

function ok(fields: Fields): Reply {
  return { kind: 'signed', fields: { result_code: 'SUCCESS', ...fields } };
}

/** result_code FAIL with an err_code of the call's published table. */
function businessError(code: string, description: string, extra: Fields = {}): Reply {
  return { kind: 'signed', fields: { result_code: 'FAIL', err_code: code, err_code_des: description, ...extra } };
}

function missing(f: Fields, names: readonly string[]): Reply | undefined {
  const absent = names.find((n) => f[n] === undefined || f[n] === '');
  return absent === undefined ? undefined : refused(`缺少参数${absent}`);
}

function route(ctx: Ctx, f: Fields) {
  return { wallet: 'wechat', merchant: f.sub_mch_id!, channel: ctx.channel } as const;
}

/** The fields of a paid order in micropay and orderquery answers (SOURCES.micropay 返回结果). */
function paidFields(outTradeNo: string, o: Extract<PayOutcome, { kind: 'success' }>): Fields {
  const discount = o.discount ?? 0;
  return {
    openid: SIM_OPENID,
    is_subscribe: 'N',
    trade_type: 'MICROPAY',
    bank_type: 'OTHERS',
    fee_type: 'CNY',
    total_fee: String(o.amount),
    cash_fee_type: 'CNY',
    cash_fee: String(o.buyerPaid ?? o.amount - discount),
    // "代金券金额": only sent when a coupon paid part of the order.
    coupon_fee: discount > 0 ? String(discount) : undefined,
    transaction_id: o.gatewayTradeNo,
    out_trade_no: outTradeNo,
    time_end: formatTimeEnd(o.paidAt ?? Date.now()),
  };
}

function detailOf(ctx: Ctx, subMchId: string | undefined, outTradeNo: string): OrderDetail | undefined {
  return ordersOf(ctx, subMchId).find((d) => d.outTradeNo === outTradeNo);
}

/** This account's orders (one sub-merchant's, or all of them). */
function ordersOf(ctx: Ctx, subMchId: string | undefined): OrderDetail[] {
  return ctx.gateway.orderDetails().filter((d) => d.wallet === 'wechat' && d.channel === ctx.channel && (subMchId === undefined || d.merchant === subMchId));
}

// ── pay/micropay ──

async function micropay(ctx: Ctx, f: Fields, signal: AbortSignal): Promise<Reply> {
  const lack = missing(f, ['sub_mch_id', 'body', 'out_trade_no', 'total_fee', 'spbill_create_ip', 'auth_code']);
  if (lack) return lack;
  const amount = parseFen(f.total_fee);
  if (amount === undefined) return businessError('PARAM_ERROR', 'total_fee参数错误');
  const outTradeNo = f.out_trade_no!;
  const o = await ctx.gateway.pay({ outTradeNo, amount, currency: 'CNY', code: f.auth_code!, description: f.body, ...route(ctx, f) }, { signal });
  switch (o.kind) {
    case 'success':
      return ok(paidFields(outTradeNo, o));
    case 'in_progress':
      return businessError('USERPAYING', '需要用户输入支付密码');
    case 'failed':
      return businessError(...payFailure(ctx, f, o, amount));
    case 'unknown':
      return o.code === 'TIMEOUT' ? HANG : businessError(o.code === 'BANKERROR' ? 'BANKERROR' : 'SYSTEMERROR', '系统超时');
  }
}

/** A refused pay as the micropay error table names it (SOURCES.micropayLegacy). */
function payFailure(ctx: Ctx, f: Fields, o: Extract<PayOutcome, { kind: 'failed' }>, amount: number): [string, string] {
  if (o.reason === 'INSUFFICIENT_FUNDS') return ['NOTENOUGH', '余额不足'];
  if (o.reason === 'CODE_EXPIRED') return ['AUTHCODEEXPIRE', '二维码已过期，请用户在微信上刷新后再试'];
  if (o.reason === 'CODE_INVALID') return ['AUTH_CODE_INVALID', '请扫描微信支付授权码'];
  const order = ctx.gateway.order(f.out_trade_no!);
  if (order?.status === 'closed') return ['ORDERREVERSED', '订单已撤销'];
  if (order !== undefined && order.amount !== amount) return ['OUT_TRADE_NO_USED', '商户订单号重复'];
  return ['TRADE_ERROR', o.message];
}

// ── pay/orderquery ──

async function orderquery(ctx: Ctx, f: Fields, signal: AbortSignal): Promise<Reply> {
  const lack = missing(f, ['sub_mch_id', 'out_trade_no']);
  if (lack) return lack;
  const outTradeNo = f.out_trade_no!;
  const o: QueryOutcome = await ctx.gateway.query({ outTradeNo, ...route(ctx, f) }, { signal });
  const state = (trade_state: string, trade_state_desc: string) => ok({ out_trade_no: outTradeNo, trade_state, trade_state_desc });
  switch (o.kind) {
    case 'success':
      // "部分退款后…交易状态将显示为REFUND" (SOURCES.refundPartialState).
      if ((detailOf(ctx, f.sub_mch_id, outTradeNo)?.refunds.length ?? 0) > 0) return state('REFUND', '转入退款');
      return ok({ ...paidFields(outTradeNo, o), trade_state: 'SUCCESS', trade_state_desc: '支付成功' });
    case 'refunded':
      return state('REFUND', '转入退款');
    case 'in_progress':
      return state('USERPAYING', '需要用户输入支付密码');
    case 'failed':
      return state('PAYERROR', '支付失败，请撤销订单');
    case 'closed':
      return state('REVOKED', '已撤销');
    case 'not_found':
      return businessError('ORDERNOTEXIST', '订单不存在');
    case 'unknown':
      return o.code === 'TIMEOUT' ? HANG : businessError('SYSTEMERROR', '系统错误');
  }
}

// ── secapi/pay/reverse ──

async function reverse(ctx: Ctx, f: Fields, signal: AbortSignal): Promise<Reply> {
  const lack = missing(f, ['sub_mch_id', 'out_trade_no']);
  if (lack) return lack;
  const o: ReverseOutcome = await ctx.gateway.reverse({ outTradeNo: f.out_trade_no!, ...route(ctx, f) }, { signal });
  // recall: "是否需要继续调用撤销，Y-需要，N-不需要" (SOURCES.reverse).
  switch (o.kind) {
    case 'reversed':
      return ok({ recall: 'N' });
    case 'retry_later':
      return ok({ recall: 'Y' });
    case 'window_passed':
    case 'already_paid':
      return businessError('REVERSE_EXPIRE', '订单无法撤销', { recall: 'N' });
    case 'unknown':
      return o.code === 'TIMEOUT' ? HANG : businessError('SYSTEMERROR', '接口返回错误', { recall: 'Y' });
  }
}

// ── secapi/pay/refund and pay/refundquery ──

function refundIdOf(d: OrderDetail, index: number): string {
  return `${d.gatewayTradeNo}r${index + 1}`;
}

async function refund(ctx: Ctx, f: Fields, signal: AbortSignal): Promise<Reply> {
  const lack = missing(f, ['sub_mch_id', 'out_trade_no', 'out_refund_no', 'total_fee', 'refund_fee']);
  if (lack) return lack;
  const [total, amount] = [parseFen(f.total_fee), parseFen(f.refund_fee)];
  if (total === undefined || amount === undefined) return businessError('PARAM_ERROR', 'total_fee或refund_fee参数错误');
  const before = detailOf(ctx, f.sub_mch_id, f.out_trade_no!);
  // total_fee "订单总金额" must be the order's (SOURCES.refund): a refund never names another total.
  if (before?.paidAt != null && before.charged !== total) return businessError('PARAM_ERROR', '订单金额或退款金额与之前请求不一致，请核实后再试');
  const req = { outTradeNo: f.out_trade_no!, refundNo: f.out_refund_no!, amount, total, currency: 'CNY', ...route(ctx, f) } as const;
  const o: RefundOutcome = await ctx.gateway.refund(req, { signal });
  switch (o.kind) {
    case 'refunded':
      return refundAccepted(ctx, f, req.refundNo);
    case 'failed':
      return o.reason === 'INSUFFICIENT_FUNDS' ? businessError('NOTENOUGH', '余额不足') : businessError('ERROR', o.message);
    case 'retry_later':
      return businessError('BIZERR_NEED_RETRY', '退款业务流程错误，需要商户触发重试来解决');
    case 'unknown':
      return o.code === 'TIMEOUT' ? HANG : businessError('SYSTEMERROR', '接口返回错误');
  }
}

function refundAccepted(ctx: Ctx, f: Fields, refundNo: string): Reply {
  const d = detailOf(ctx, f.sub_mch_id, f.out_trade_no!);
  const index = d?.refunds.findIndex((r) => r.refundNo === refundNo) ?? -1;
  if (d === undefined || index < 0) return businessError('SYSTEMERROR', '接口返回错误');
  const r = d.refunds[index]!;
  return ok({ transaction_id: d.gatewayTradeNo, out_trade_no: d.outTradeNo, out_refund_no: refundNo, refund_id: refundIdOf(d, index), refund_fee: String(r.amount), total_fee: String(d.charged), cash_fee: String(d.charged - d.discount) });
}

/** By out_refund_no: that refund; by out_trade_no: every refund of the order (SOURCES.refundquery). */
function refundquery(ctx: Ctx, f: Fields): Reply {
  const lack = missing(f, ['sub_mch_id']);
  if (lack) return lack;
  const byRefund = f.out_refund_no !== undefined;
  if (!byRefund && f.out_trade_no === undefined) return businessError('PARAM_ERROR', '缺少out_refund_no或out_trade_no');
  const d = ordersOf(ctx, f.sub_mch_id).find((o) => (byRefund ? o.refunds.some((r) => r.refundNo === f.out_refund_no) : o.outTradeNo === f.out_trade_no));
  const indexes = (d?.refunds ?? []).flatMap((r, i) => (!byRefund || r.refundNo === f.out_refund_no ? [i] : []));
  if (d === undefined || indexes.length === 0) return businessError('REFUNDNOTEXIST', '退款订单查询失败');
  return ok(refundList(d, indexes));
}

function refundList(d: OrderDetail, indexes: number[]): Fields {
  const out: Fields = { transaction_id: d.gatewayTradeNo, out_trade_no: d.outTradeNo, total_fee: String(d.charged), cash_fee: String(d.charged - d.discount), refund_count: String(indexes.length) };
  let sum = 0;
  indexes.forEach((i, n) => {
    const r = d.refunds[i]!;
    sum += r.amount;
    Object.assign(out, {
      [`out_refund_no_${n}`]: r.refundNo,
      [`refund_id_${n}`]: refundIdOf(d, i),
      [`refund_fee_${n}`]: String(r.amount),
      [`refund_status_${n}`]: 'SUCCESS',
      [`refund_channel_${n}`]: 'ORIGINAL',
      [`refund_success_time_${n}`]: formatBillTime(r.at),
    });
  });
  return { ...out, refund_fee: String(sum) };
}

// ── pay/downloadbill ──

/**
 * The bill of one Beijing day (SOURCES.downloadbill), bill_type ALL only: unsigned text, or an
 * unsigned XML error — "No Bill Exist" (error_code 20002) for a day without a record.
 */
function downloadbill(ctx: Ctx, f: Fields): Reply {
  const date = f.bill_date ?? '';
  if (!/^\d{8}$/.test(date)) return refused('invalid bill_date', { error_code: '20001' });
  if ((f.bill_type ?? 'ALL') !== 'ALL') return refused('invalid bill_type', { error_code: '20001' });
  const rows = ordersOf(ctx, f.sub_mch_id)
    .flatMap((d) => billRows(ctx, d))
    .filter((r) => billDateOf(r.tradeTime) === date)
    .sort((a, b) => a.tradeTime - b.tradeTime);
  return rows.length === 0 ? refused('No Bill Exist', { error_code: '20002' }) : { kind: 'text', text: formatWechatBill(rows) };
}

/** A paid order's SUCCESS row, a row per refund, and a REVOKED row when it was reversed after it was paid. */
function billRows(ctx: Ctx, d: OrderDetail): WechatBillRow[] {
  if (d.paidAt === null) return [];
  const rows = [paymentRow(ctx, d, d.paidAt), ...d.refunds.map((r, i) => refundRow(ctx, d, r.at, r.amount, refundIdOf(d, i), r.refundNo))];
  const reversal = ctx.gateway.ledger.entries().find((e) => e.outTradeNo === d.outTradeNo && e.kind === 'reverse' && e.amount > 0);
  if (d.status === 'closed' && reversal) rows.push({ ...refundRow(ctx, d, reversal.at, reversal.amount, `${d.gatewayTradeNo}rv`, null), tradeState: 'REVOKED' });
  return rows;
}

function feeMilliFen(fen: number): number {
  // WeChat rounds the fee to whole fen and prints it to 5 decimals of yuan ("0.04000" on 6.00).
  return Math.round((fen * FEE_MILLI_PER_FEN) / 1000) * 1000;
}

function blankRow(ctx: Ctx, d: OrderDetail, at: number): WechatBillRow {
  return {
    tradeTime: at,
    appId: ctx.credentials.appId,
    mchId: ctx.credentials.mchId,
    subMchId: d.merchant,
    deviceInfo: '',
    transactionId: d.gatewayTradeNo,
    outTradeNo: d.outTradeNo,
    openId: SIM_OPENID,
    tradeType: 'MICROPAY',
    tradeState: 'SUCCESS',
    bankType: 'OTHERS',
    currency: 'CNY',
    settlementFee: 0,
    couponFee: 0,
    refundId: null,
    outRefundNo: null,
    refundFee: 0,
    rechargeCouponRefundFee: 0,
    refundType: '',
    refundStatus: '',
    body: '',
    attach: '',
    feeMilliFen: 0,
    rate: '0.60%',
    orderFee: 0,
    refundRequestFee: 0,
    rateNote: '',
  };
}

function paymentRow(ctx: Ctx, d: OrderDetail, at: number): WechatBillRow {
  // The scripted coupons are the wallet's (充值券): they settle to the merchant with the rest.
  return { ...blankRow(ctx, d, at), settlementFee: d.charged, couponFee: d.discount, orderFee: d.charged, feeMilliFen: feeMilliFen(d.charged) };
}

function refundRow(ctx: Ctx, d: OrderDetail, at: number, amount: number, refundId: string, outRefundNo: string | null): WechatBillRow {
  const refundFields = { refundId, outRefundNo, refundFee: amount, refundRequestFee: amount, refundType: 'ORIGINAL', refundStatus: 'SUCCESS' };
  return { ...blankRow(ctx, d, at), tradeState: 'REFUND', ...refundFields, feeMilliFen: -feeMilliFen(amount) };
}

const HANDLERS: Readonly<Record<WechatCall, Handler>> = { micropay, orderquery, reverse, refund, refundquery, downloadbill };
