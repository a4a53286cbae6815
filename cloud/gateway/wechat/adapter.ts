import { networkInterfaces } from 'node:os';
import { createSecureContext } from 'node:tls';
import { pino, type Logger } from 'pino';
import { Pool, type Dispatcher } from 'undici';
import { deviceIdOf, ErrorCode, ProtocolError } from '../../../protocol/index.js';
import type { MerchantLookup } from '../../merchants/merchant.js';
import type { WechatChannelConfig } from '../channel-config.js';
import { readCaFile, readCredentialFile, readCredentialText } from '../credential-file.js';
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
import { parseWechatBill, type WechatBill } from './bill.js';
import { WechatCodec } from './codec.js';
import type { Expect } from './outcomes.js';
import type { ProviderCredentials, SubMerchant, WechatRequest } from './requests.js';
import { decodeXml, encodeXml, MAX_XML_BYTES } from './xml.js';

/**
 * The WeChat Pay v2 adapter of one channel (a service-provider account): the codec (codec.ts) over
 * HTTPS. Each call names our merchant; its `sub_mch_id` is looked up per call, so a merchant added
 * or changed needs no restart.
 *
 * Transport: undici, one keep-alive pool for the plain calls and one for the secapi calls that
 * present the client certificate (reverse, refund: SOURCES.reverse, SOURCES.refund), so a payment
 * costs no TLS handshake once the pools are warm. Every answer is an outcome, never a throw:
 * a transport failure is `unknown` (TIMEOUT once the caller's signal aborted, OTHER otherwise), HTTP
 * 5xx `unknown` HTTP_5XX, any other status `unknown` OTHER, and an answer whose sign does not verify
 * `unknown` BAD_SIGNATURE (the codec's rule). A request that cannot be sent (no merchant, no
 * sub_mch_id, a field WeChat would refuse) is never sent: a pay is then `failed` (nothing can be
 * charged), a later call `unknown` (the cloud keeps retrying until the configuration is fixed).
 */
export interface WechatGatewayDeps {
  /** The channel this account is configured as; requests for another channel are refused unsent. */
  channel: string;
  /** https://api.mch.weixin.qq.com (the default of the config), or a simulator's address. */
  endpoint: string;
  credentials: ProviderCredentials;
  /** apiclient_cert.pem / apiclient_key.pem: presented on secapi calls only. */
  clientCert: { cert: string | Buffer; key: string | Buffer };
  /** Replaces the system's CAs for `endpoint` (a simulator's CA). */
  ca?: string | Buffer;
  /** false: a new connection per call (only to measure what keep-alive saves). */
  keepAlive: boolean;
  merchants: MerchantLookup;
  logger?: Logger;
  /** spbill_create_ip "调用微信支付API的机器IP" (SOURCES.micropay); default: this machine's first external IPv4. */
  spbillCreateIp?: string;
}

export type WechatBillResult = { kind: 'bill'; bill: WechatBill } | { kind: 'no_bill' } | { kind: 'unknown'; message: string };

export interface WechatGateway extends ChannelGateway {
  /**
   * The provider's ALL bill of one Beijing day, `billDate` yyyyMMdd (SOURCES.downloadbill); with
   * `merchant`, that merchant's only. Never throws: an error answer or an unreadable bill is `unknown`.
   */
  downloadBill(billDate: string, opts?: { signal?: AbortSignal; merchant?: string }): Promise<WechatBillResult>;
}

/** A provider's bill of a busy day for all its merchants is far larger than any XML answer. */
const MAX_BILL_BYTES = 64 * 1024 * 1024;
const MAX_MESSAGE = 200;

type Unknown = { kind: 'unknown'; code: UnknownCode; message: string };
/** Nothing went out: the request could not be built, or there is nobody to send it for. */
type NotSent = { kind: 'not_sent'; message: string };
type Routed = Pick<PayRequest, 'outTradeNo' | 'wallet' | 'merchant' | 'channel'>;

function unknown(code: UnknownCode, message: string): Unknown {
  return { kind: 'unknown', code, message: message.slice(0, MAX_MESSAGE) };
}

function notSent(message: string): NotSent {
  return { kind: 'not_sent', message: message.slice(0, MAX_MESSAGE) };
}

function isNotSent(x: object): x is NotSent {
  return 'kind' in x && x.kind === 'not_sent';
}

function describe(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? `${e.code}: ` : '';
  return `${code}${typeof e?.message === 'string' ? e.message : String(err)}`;
}

// ── transport ─────────────────────────────────────────────────────────────────────────────────

interface Transport {
  post(req: WechatRequest, signal: AbortSignal, maxBytes: number): Promise<{ kind: 'body'; body: Buffer } | Unknown>;
  close(): Promise<void>;
}

async function readCapped(body: Dispatcher.ResponseData['body'], maxBytes: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function statusUnknown(call: string, status: number): Unknown {
  // A secapi call WeChat's nginx refused (400 "No required SSL certificate was sent", SOURCES.secapiNoCert)
  // lands here too: nothing was done, but an HTTP error is never proof of that.
  return status >= 500 ? unknown('HTTP_5XX', `${call}: HTTP ${status}`) : unknown('OTHER', `${call}: HTTP ${status}`);
}

function createTransport(deps: Pick<WechatGatewayDeps, 'endpoint' | 'clientCert' | 'ca' | 'keepAlive'>): Transport {
  const url = new URL(deps.endpoint);
  const prefix = url.pathname.replace(/\/+$/, '');
  const trust = deps.ca === undefined ? {} : { ca: deps.ca };
  const plain = new Pool(url.origin, { connect: trust, ...POOL_IDLE });
  const secure = new Pool(url.origin, { connect: { ...trust, cert: deps.clientCert.cert, key: deps.clientCert.key }, ...POOL_IDLE });
  return {
    async post(req, signal, maxBytes) {
      await socketFreed(deps.keepAlive);
      try {
        const res = await (req.clientCert ? secure : plain).request({
          path: `${prefix}${req.path}`,
          method: 'POST',
          headers: { 'content-type': 'text/xml; charset=utf-8' },
          body: encodeXml(req.params),
          signal,
          // `reset` closes the connection after the answer: keepAlive off really costs a handshake per call.
          reset: !deps.keepAlive,
        });
        if (res.statusCode !== 200) {
          await res.body.dump().catch(() => undefined);
          return statusUnknown(req.call, res.statusCode);
        }
        const body = await readCapped(res.body, maxBytes);
        return body === undefined ? unknown('OTHER', `${req.call}: answer over ${maxBytes} bytes`) : { kind: 'body', body };
      } catch (err) {
        return signal.aborted ? unknown('TIMEOUT', `${req.call} timed out`) : unknown('OTHER', `${req.call}: ${describe(err)}`);
      }
    },
    async close() {
      await Promise.all([plain.close(), secure.close()]);
    },
  };
}

/** This machine's first external IPv4 address (what WeChat's spbill_create_ip asks for), else loopback. */
function machineIp(): string {
  for (const list of Object.values(networkInterfaces())) {
    const found = list?.find((a) => a.family === 'IPv4' && !a.internal);
    if (found) return found.address;
  }
  return '127.0.0.1';
}

// ── the gateway ─────────────────────────────────────────────────────────────────────────────────

export function createWechatGateway(deps: WechatGatewayDeps): WechatGateway {
  const log = deps.logger ?? pino({ level: 'silent' });
  const net = createTransport(deps);
  const creds = deps.credentials;
  const ip = deps.spbillCreateIp ?? machineIp();
  const { build, answer } = WechatCodec;

  async function subMerchant(req: Pick<Routed, 'wallet' | 'merchant' | 'channel'>): Promise<SubMerchant | NotSent> {
    if (req.channel !== deps.channel) return notSent(`a request for channel ${req.channel} reached WeChat channel ${deps.channel}`);
    if (req.wallet !== 'wechat') return notSent(`a ${req.wallet} request reached WeChat channel ${deps.channel}`);
    try {
      const m = await deps.merchants(req.merchant);
      if (!m) return notSent(`merchant ${req.merchant} is unknown: nothing was sent to WeChat`);
      if (!m.wechatSubMchId) return notSent(`merchant ${req.merchant} has no WeChat sub_mch_id: nothing was sent to WeChat`);
      return { subMchId: m.wechatSubMchId, defaultBody: m.name ?? m.merchantId };
    } catch (err) {
      return notSent(`merchant ${req.merchant}: lookup failed (${describe(err)}); nothing was sent to WeChat`);
    }
  }

  /** Build, send, read. A request that cannot be built is not sent at all. */
  async function exchange<T>(make: () => WechatRequest, read: (body: Buffer) => T, signal: AbortSignal, maxBytes = MAX_XML_BYTES): Promise<T | Unknown | NotSent> {
    let request: WechatRequest;
    try {
      request = make();
    } catch (err) {
      return notSent(describe(err));
    }
    const res = await net.post(request, signal, maxBytes);
    if (res.kind !== 'body') return res;
    try {
      return read(res.body);
    } catch (err) {
      // The codec maps every answer it can read; anything else is an answer nobody can trust.
      return unknown('BAD_SIGNATURE', `${request.call}: unreadable answer (${describe(err)})`);
    }
  }

  /** One gateway call: find the merchant, converse, settle what was not sent, log (never a secret, never the payment code). */
  async function run<T extends { kind: string }>(
    call: string,
    req: Routed,
    converse: (m: SubMerchant, x: Expect) => Promise<T | Unknown | NotSent>,
    unsent: (n: NotSent) => T | Unknown,
  ): Promise<T | Unknown> {
    const started = performance.now();
    const m = await subMerchant(req);
    const r = isNotSent(m) ? m : await converse(m, { outTradeNo: req.outTradeNo, subMchId: m.subMchId });
    const outcome = isNotSent(r) ? unsent(r) : (r as T | Unknown);
    const detail = outcome.kind === 'unknown' ? { code: (outcome as Unknown).code, message: (outcome as Unknown).message } : {};
    log[outcome.kind === 'unknown' ? 'warn' : 'debug']({ call, outTradeNo: req.outTradeNo, deviceId: deviceIdOf(req.outTradeNo), merchant: req.merchant, outcome: outcome.kind, ...detail, ms: Math.round(performance.now() - started) }, `wechat ${call}`);
    return outcome;
  }

  const declined = (n: NotSent): PayOutcome => ({ kind: 'failed', reason: 'DECLINED', message: n.message });
  const notKnown = (n: NotSent): Unknown => unknown('OTHER', n.message);

  return {
    pay(req: PayRequest, opts: CallOptions): Promise<PayOutcome> {
      return run('pay', req, (m, x) => exchange(() => build.micropay(req, creds, m, { spbillCreateIp: ip }), (b) => answer.pay(b, creds, x), opts.signal), declined);
    },

    query(req: QueryRequest, opts: CallOptions): Promise<QueryOutcome> {
      return run<QueryOutcome>(
        'query',
        req,
        async (m, x) => {
          const first = await exchange(() => build.orderquery(req, creds, m), (b) => answer.query(b, creds, x), opts.signal);
          if (first.kind !== 'refund_check') return first as QueryOutcome | NotSent;
          // trade_state REFUND says a refund was made, not that it was in full (SOURCES.refundPartialState).
          return exchange(() => build.refundQueryByOrder(req.outTradeNo, creds, m), (b) => answer.refundCheck(b, creds, x), opts.signal);
        },
        notKnown,
      );
    },

    reverse(req: ReverseRequest, opts: CallOptions): Promise<ReverseOutcome> {
      return run('reverse', req, (m, x) => exchange(() => build.reverse(req, creds, m), (b) => answer.reverse(b, creds, x), opts.signal), notKnown);
    },

    refund(req: RefundRequest, opts: CallOptions): Promise<RefundOutcome> {
      return run<RefundOutcome>(
        'refund',
        req,
        async (m, x) => {
          const rx = { ...x, refundNo: req.refundNo, amount: req.amount };
          const applied = await exchange(() => build.refund(req, creds, m), (b) => answer.refundApply(b, creds, rx), opts.signal);
          if (applied.kind !== 'accepted') return applied as RefundOutcome | NotSent;
          // An accepted application is not money back yet (SOURCES.refundAcceptedOnly): ask once; PROCESSING is retry_later.
          return exchange(() => build.refundQuery(req.refundNo, creds, m), (b) => answer.refundQuery(b, creds, rx), opts.signal);
        },
        notKnown,
      );
    },

    async downloadBill(billDate: string, opts: { signal?: AbortSignal; merchant?: string } = {}): Promise<WechatBillResult> {
      let sub: SubMerchant | undefined;
      if (opts.merchant !== undefined) {
        const m = await subMerchant({ wallet: 'wechat', merchant: opts.merchant, channel: deps.channel });
        if (isNotSent(m)) return { kind: 'unknown', message: m.message };
        sub = m;
      }
      const signal = opts.signal ?? new AbortController().signal;
      const r = await exchange(() => build.downloadBill({ date: billDate, type: 'ALL' }, creds, sub), readBill, signal, MAX_BILL_BYTES);
      return r.kind === 'unknown' || r.kind === 'not_sent' ? { kind: 'unknown', message: (r as Unknown | NotSent).message } : (r as WechatBillResult);
    },

    close: () => net.close(),
  };
}

/** The bill text; or the unsigned XML WeChat answers instead ("No Bill Exist" for a day without a record). */
function readBill(body: Buffer): WechatBillResult {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    return { kind: 'unknown', message: 'downloadbill: the bill is not UTF-8' };
  }
  if (text.trimStart().startsWith('<xml')) return billRefusal(body);
  try {
    return { kind: 'bill', bill: parseWechatBill(text) };
  } catch (err) {
    return { kind: 'unknown', message: describe(err).slice(0, MAX_MESSAGE) };
  }
}

function billRefusal(body: Buffer): WechatBillResult {
  try {
    const f = decodeXml(body);
    if (/^no bill exist$/i.test(f.return_msg ?? '')) return { kind: 'no_bill' };
    return { kind: 'unknown', message: `downloadbill: ${f.return_code ?? '(no return_code)'} ${f.return_msg ?? ''} (error_code ${f.error_code ?? 'none'})`.slice(0, MAX_MESSAGE) };
  } catch {
    return { kind: 'unknown', message: 'downloadbill: an unreadable XML answer' };
  }
}

// ── from the cloud's config ─────────────────────────────────────────────────────────────────────

/**
 * The channel's gateway from its config: the API key, client certificate and key read from their
 * 0600 files (credential-file.ts refuses anything else, naming the file, never its content). The
 * certificate and key are checked to be a pair now, so a wrong file stops the cloud at start instead
 * of turning every reverse into an unknown.
 */
export function wechatGatewayFromConfig(channel: string, cfg: WechatChannelConfig, deps: { merchants: MerchantLookup; logger?: Logger }): WechatGateway {
  const what = (thing: string) => `channel ${channel}: WeChat ${thing}`;
  const apiKey = readCredentialText(cfg.apiKeyFile, what('API key'));
  const clientCert = { cert: readCredentialFile(cfg.clientCertFile, what('client certificate')), key: readCredentialFile(cfg.clientKeyFile, what('client certificate key')) };
  try {
    createSecureContext(clientCert);
  } catch (err) {
    const reason = (err as { code?: string }).code ?? 'unreadable';
    throw new ProtocolError(ErrorCode.CONFIG_INVALID, `${what('client certificate')}: ${cfg.clientCertFile} and ${cfg.clientKeyFile} are not a certificate and its key (${reason})`, { file: cfg.clientCertFile });
  }
  return createWechatGateway({
    channel,
    endpoint: cfg.endpoint,
    credentials: { appid: cfg.appId, mchId: cfg.mchId, apiKey, signType: cfg.signType },
    clientCert,
    ca: cfg.caFile === undefined ? undefined : readCaFile(cfg.caFile, what('CA file')),
    keepAlive: cfg.keepAlive,
    merchants: deps.merchants,
    logger: deps.logger,
    ...(cfg.spbillCreateIp ? { spbillCreateIp: cfg.spbillCreateIp } : {}),
  });
}
