import type { KeyObject } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { Agent, request } from 'undici';
import { deviceIdOf, ErrorCode, ProtocolError } from '../../../protocol/index.js';
import type { MerchantLookup } from '../../merchants/merchant.js';
import type { AlipayChannelConfig } from '../channel-config.js';
import { readCaFile, readCredentialText } from '../credential-file.js';
import { POOL_IDLE, socketFreed } from '../keep-alive.js';
import type {
  CallOptions,
  ChannelGateway,
  PayOutcome,
  PayRequest,
  QueryOutcome,
  QueryRequest,
  RefundOutcome,
  RefundRequest,
  ReverseOutcome,
  ReverseRequest,
  UnknownCode,
} from '../gateway.js';
import { AlipayAmountError } from './amount.js';
import { AlipayBillError, parseAlipayBill, type AlipayBill } from './bill.js';
import { AlipayCodec, type AlipayApp, type AlipayFacts, type BillUrlOutcome, type Mapped, type RequestContext, type SignedRequest } from './codec.js';
import { AlipayRequestError } from './requests.js';
import { loadPrivateKey, loadPublicKey, type KeyInput } from './sign.js';

/**
 * The Alipay face-to-face (当面付, scene bar_code) channel in ISV mode: the provider's app signs every call and names
 * the merchant by its app_auth_token. The wire format and what each answer means are the codec's (codec.ts and the
 * sources cited in outcomes.ts); this file adds the merchant lookup, HTTP and the follow-up calls the answers ask for.
 *
 * HTTP: one undici Agent per channel, so its keep-alive connections carry every call of the channel (a TLS handshake
 * per payment would add a round trip or two to every scan). `keepAlive: false` sends `connection: close` and keeps no
 * connection, to measure what keep-alive saves. Every call is aborted by the caller's signal; an aborted or failed
 * exchange is `unknown` (TIMEOUT / OTHER), an HTTP 5xx `unknown` HTTP_5XX: the money state is not known, so the cloud
 * queries, and in the end cancels.
 */
export interface AlipayGatewayDeps {
  channel: string;
  /** The gateway.do URL (https://openapi.alipay.com/gateway.do, or a simulator's). */
  endpoint: string;
  app: AlipayApp;
  alipayPublicKey: KeyInput;
  /** Extra CA to trust for the endpoint (a simulator's); the system's otherwise. */
  ca?: string | Buffer;
  keepAlive: boolean;
  merchants: MerchantLookup;
  clock: { now(): number };
  logger?: Logger;
}

export interface BillOptions {
  /** The merchant whose bill (its app_auth_token is sent); left out: the provider app's own account. */
  merchant?: string;
  signal?: AbortSignal;
}

export type BillDownloadOutcome =
  | { kind: 'bill'; bill: AlipayBill }
  | { kind: 'no_bill' }
  | { kind: 'unknown'; code: UnknownCode; message: string };

export interface AlipayGateway extends ChannelGateway {
  /** alipay.data.dataservice.bill.downloadurl.query for the trade bill of `billDate` (yyyy-MM-dd). */
  billUrl(billDate: string, opts?: BillOptions): Promise<BillUrlOutcome>;
  /** The trade bill of `billDate`, fetched from the URL Alipay answers and parsed (bill.ts). */
  downloadBill(billDate: string, opts?: BillOptions): Promise<BillDownloadOutcome>;
}

/** An API answer is a few kilobytes; anything near this is not one. */
const MAX_ANSWER_BYTES = 256 * 1024;
/** A day's trade bill of one merchant, zipped. */
const MAX_BILL_BYTES = 32 * 1024 * 1024;
/** [URL] the bill link lives 30 s; a download that takes longer than that is not going to work. */
const BILL_TIMEOUT_MS = 30_000;
/** subject is required (alipay.trade.pay); the box's description when it sends one, this otherwise. */
const DEFAULT_SUBJECT = '当面付收款';

type Unknown = { kind: 'unknown'; code: UnknownCode; message: string };
/** An exchange's result: the codec's reading of a verified answer, or a transport failure (no facts). */
type Exchanged<O> = Mapped<O> | { outcome: Unknown; facts?: undefined; next?: undefined };

export function createAlipayGateway(deps: AlipayGatewayDeps): AlipayGateway {
  return new AlipayChannel(deps);
}

/** The channel from the cloud config: key files are read (0600 only) and checked here, at start. */
export function alipayGatewayFromConfig(channel: string, cfg: AlipayChannelConfig, deps: { merchants: MerchantLookup; clock: { now(): number }; logger?: Logger }): AlipayGateway {
  const privateKey = keyFrom(cfg.privateKeyFile, `channel ${channel}: Alipay app private key`, loadPrivateKey);
  const alipayPublicKey = keyFrom(cfg.alipayPublicKeyFile, `channel ${channel}: Alipay public key`, loadPublicKey);
  const ca = cfg.caFile === undefined ? undefined : readCaFile(cfg.caFile, `channel ${channel}: CA file`);
  return createAlipayGateway({ channel, endpoint: cfg.endpoint, app: { appId: cfg.appId, privateKey }, alipayPublicKey, keepAlive: cfg.keepAlive, ...(ca ? { ca } : {}), ...deps });
}

function keyFrom(path: string, what: string, load: (k: KeyInput) => KeyObject): KeyObject {
  const text = readCredentialText(path, what);
  try {
    return load(text);
  } catch {
    // The parser's message could quote the file; only its name goes into the error.
    throw new ProtocolError(ErrorCode.CONFIG_INVALID, `${what}: ${path} is not a usable RSA key`, { file: path });
  }
}


class AlipayChannel implements AlipayGateway {
  private readonly dispatcher: Agent;
  private readonly app: AlipayApp;
  private readonly publicKey: KeyObject;
  private readonly log: Logger;

  constructor(private readonly deps: AlipayGatewayDeps) {
    // Parsed once: a PEM parse per signature would cost more than the signature.
    this.app = { appId: deps.app.appId, privateKey: loadPrivateKey(deps.app.privateKey) };
    this.publicKey = loadPublicKey(deps.alipayPublicKey);
    this.log = (deps.logger ?? pino({ level: 'silent' })).child({ channel: deps.channel, wallet: 'alipay' });
    this.dispatcher = new Agent({ connect: deps.ca === undefined ? {} : { ca: deps.ca }, pipelining: deps.keepAlive ? 1 : 0, ...POOL_IDLE });
  }

  async pay(req: PayRequest, opts: CallOptions): Promise<PayOutcome> {
    const ctx = await this.context(req.merchant);
    if (typeof ctx === 'string') return { kind: 'failed', reason: 'DECLINED', message: clip(ctx) };
    const input = { outTradeNo: req.outTradeNo, authCode: req.code, amountFen: req.amount, subject: subjectOf(req.description), productCode: 'FACE_TO_FACE_PAYMENT' } as const;
    const signed = buildOrMessage(() => AlipayCodec.request.pay(input, ctx));
    // Nothing was sent: a payment we cannot even ask for is not charged.
    if (typeof signed === 'string') return { kind: 'failed', reason: 'DECLINED', message: clip(`pay not sent: ${signed}`) };
    const paid = await this.exchange(aboutOf(req), signed, opts.signal, (raw) => AlipayCodec.decode.pay(raw, this.publicKey, { outTradeNo: req.outTradeNo }));
    if (paid.next !== 'query') return paid.outcome;
    // [REPEAT] a repeated pay of a paid trade: the trade itself says what was paid.
    const found = await this.query(req, opts);
    return found.kind === 'success' ? found : paid.outcome;
  }

  async query(req: QueryRequest, opts: CallOptions): Promise<QueryOutcome> {
    return this.routed(req, opts.signal, (ctx) => AlipayCodec.request.query({ outTradeNo: req.outTradeNo }, ctx), (raw) =>
      AlipayCodec.decode.query(raw, this.publicKey, { outTradeNo: req.outTradeNo }),
    );
  }

  async reverse(req: ReverseRequest, opts: CallOptions): Promise<ReverseOutcome> {
    return this.routed(req, opts.signal, (ctx) => AlipayCodec.request.cancel({ outTradeNo: req.outTradeNo }, ctx), (raw) =>
      AlipayCodec.decode.cancel(raw, this.publicKey, { outTradeNo: req.outTradeNo }),
    );
  }

  async refund(req: RefundRequest, opts: CallOptions): Promise<RefundOutcome> {
    const expect = { outTradeNo: req.outTradeNo, refundNo: req.refundNo };
    const ctx = await this.context(req.merchant);
    if (typeof ctx === 'string') return unknown('OTHER', ctx);
    const signed = buildOrMessage(() => AlipayCodec.request.refund({ outTradeNo: req.outTradeNo, refundNo: req.refundNo, amountFen: req.amount }, ctx));
    if (typeof signed === 'string') return unknown('OTHER', `refund not sent: ${signed}`);
    const refunded = await this.exchange(aboutOf(req), signed, opts.signal, (raw) => AlipayCodec.decode.refund(raw, this.publicKey, expect));
    if (refunded.next !== 'refund_query') return refunded.outcome;
    // [REFUND] fund_change N: this call moved no money; the refund query says whether an earlier one did.
    const asked = buildOrMessage(() => AlipayCodec.request.refundQuery(expect, ctx));
    if (typeof asked === 'string') return refunded.outcome;
    return (await this.exchange(aboutOf(req), asked, opts.signal, (raw) => AlipayCodec.decode.refundQuery(raw, this.publicKey, expect))).outcome;
  }

  async billUrl(billDate: string, opts: BillOptions = {}): Promise<BillUrlOutcome> {
    const signal = opts.signal ?? AbortSignal.timeout(BILL_TIMEOUT_MS);
    const ctx = opts.merchant === undefined ? { app: this.app, clock: this.deps.clock } : await this.context(opts.merchant);
    if (typeof ctx === 'string') return unknown('OTHER', ctx);
    const signed = buildOrMessage(() => AlipayCodec.request.billUrl({ billType: 'trade', billDate }, ctx));
    if (typeof signed === 'string') return unknown('OTHER', `bill url query not sent: ${signed}`);
    const about = { billDate, merchant: opts.merchant ?? '(the app itself)' };
    return (await this.exchange(about, signed, signal, (raw) => AlipayCodec.decode.billUrl(raw, this.publicKey))).outcome;
  }

  async downloadBill(billDate: string, opts: BillOptions = {}): Promise<BillDownloadOutcome> {
    const signal = opts.signal ?? AbortSignal.timeout(BILL_TIMEOUT_MS);
    const link = await this.billUrl(billDate, { ...opts, signal });
    if (link.kind !== 'url') return link;
    const got = await this.http(link.url, { method: 'GET' }, signal, MAX_BILL_BYTES);
    if (!got.ok) return got.outcome;
    try {
      return { kind: 'bill', bill: parseAlipayBill(got.body) };
    } catch (err) {
      if (!(err instanceof AlipayBillError)) throw err;
      return unknown('OTHER', `bill of ${billDate}: ${err.message}`);
    }
  }

  async close(): Promise<void> {
    // destroy, not close: a call left hanging by the wallet must not keep the cloud from stopping.
    await this.dispatcher.destroy();
  }

  // ── plumbing ──────────────────────────────────────────────────────────────────────────────────

  /** A call that needs the merchant's token: none usable means the answer is unknown, never a guess. */
  private async routed<O>(req: QueryRequest, signal: AbortSignal, build: (ctx: RequestContext) => SignedRequest, decode: (raw: Uint8Array) => Mapped<O>): Promise<O | Unknown> {
    const ctx = await this.context(req.merchant);
    if (typeof ctx === 'string') return unknown('OTHER', ctx);
    const signed = buildOrMessage(() => build(ctx));
    if (typeof signed === 'string') return unknown('OTHER', `not sent: ${signed}`);
    return (await this.exchange(aboutOf(req), signed, signal, decode)).outcome;
  }

  /** The merchant's request context, or why there is none (the message never carries the token). */
  private async context(merchantId: string): Promise<RequestContext | string> {
    let merchant;
    try {
      merchant = await this.deps.merchants(merchantId);
    } catch (err) {
      return `merchant ${merchantId}: lookup failed (${(err as Error).message})`;
    }
    if (merchant === undefined) return `merchant ${merchantId} is not known`;
    if (!merchant.alipayAppAuthToken) return `merchant ${merchantId} has no Alipay app_auth_token: it has not authorised this provider's app`;
    return { app: this.app, appAuthToken: merchant.alipayAppAuthToken, clock: this.deps.clock };
  }

  /** POSTs a signed request and decodes the raw answer bytes (verification is over the raw node). `about`: for the log. */
  private async exchange<O>(about: Readonly<Record<string, string>>, signed: SignedRequest, signal: AbortSignal, decode: (raw: Uint8Array) => Mapped<O>): Promise<Exchanged<O>> {
    const init = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded;charset=utf-8' }, body: signed.form } as const;
    const got = await this.http(this.deps.endpoint, init, signal, MAX_ANSWER_BYTES);
    const result: Exchanged<O> = got.ok ? decode(got.body) : { outcome: got.outcome };
    this.record(signed.method, about, result);
    return result;
  }

  private async http(url: string, init: { method: 'GET' | 'POST'; headers?: Record<string, string>; body?: string }, signal: AbortSignal, cap: number): Promise<{ ok: true; body: Buffer } | { ok: false; outcome: Unknown }> {
    try {
      const res = await request(url, { ...init, signal, dispatcher: this.dispatcher, reset: !this.deps.keepAlive });
      if (res.statusCode !== 200) {
        await res.body.dump();
        return { ok: false, outcome: unknown(res.statusCode >= 500 ? 'HTTP_5XX' : 'OTHER', `HTTP ${res.statusCode} from ${new URL(url).host}`) };
      }
      const body = await readCapped(res.body, cap);
      // So that the call right after (the query after a pay, the refund query after a refund) reuses this socket.
      await socketFreed(this.deps.keepAlive);
      return body === undefined ? { ok: false, outcome: unknown('OTHER', `answer over ${cap} bytes from ${new URL(url).host}`) } : { ok: true, body };
    } catch (err) {
      if (signal.aborted) return { ok: false, outcome: unknown('TIMEOUT', `no answer from ${new URL(url).host} before the call's deadline`) };
      return { ok: false, outcome: unknown('OTHER', `${new URL(url).host}: ${(err as Error).message}`) };
    }
  }

  /** One line per answer with the facts Alipay gave (never a key, a token or a signature). */
  private record<O>(method: string, about: Readonly<Record<string, string>>, r: Exchanged<O>): void {
    const f: AlipayFacts | undefined = r.facts;
    const outcome = r.outcome as { kind: string; code?: string; message?: string };
    this.log.info(
      {
        method,
        ...about,
        outcome: outcome.kind,
        ...(outcome.kind === 'unknown' ? { unknownCode: outcome.code, message: outcome.message } : {}),
        ...(f === undefined ? { transport: 'failed' } : factsForLog(f)),
      },
      'alipay answer',
    );
  }
}

/** What a log line says about the call: which trade of which merchant (never the payment code, a bearer credential). */
function aboutOf(req: QueryRequest): Record<string, string> {
  return { outTradeNo: req.outTradeNo, deviceId: deviceIdOf(req.outTradeNo), merchant: req.merchant };
}

function factsForLog(f: AlipayFacts): Record<string, unknown> {
  const picked = {
    verified: f.verified,
    failure: f.failure,
    claim: f.unverifiedHint,
    code: f.code,
    sub_code: f.subCode,
    trade_no: f.tradeNo,
    trade_status: f.tradeStatus,
    action: f.action,
    retry_flag: f.retryFlag,
    fund_change: f.fundChange,
    refund_status: f.refundStatus,
  };
  return Object.fromEntries(Object.entries(picked).filter(([, v]) => v !== undefined));
}

async function readCapped(body: AsyncIterable<Buffer> & { destroy(): unknown }, cap: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > cap) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The codec refuses what Alipay would (a bad out_trade_no, an amount out of range): its message, not a throw. */
function buildOrMessage(build: () => SignedRequest): SignedRequest | string {
  try {
    return build();
  } catch (err) {
    if (err instanceof AlipayRequestError || err instanceof AlipayAmountError) return err.message;
    throw err;
  }
}

/** subject: required, ≤256, no / = & (alipay.trade.pay, requests.ts): the box's text made to fit. */
function subjectOf(description: string | undefined): string {
  const cleaned = (description ?? '').replace(/[/=&\u0000-\u001f\u007f]/g, ' ').trim().slice(0, 256);
  return cleaned === '' ? DEFAULT_SUBJECT : cleaned;
}

function unknown(code: UnknownCode, message: string): Unknown {
  return { kind: 'unknown', code, message: clip(message) };
}

function clip(s: string): string {
  return s.length > 200 ? `${s.slice(0, 199)}…` : s;
}
