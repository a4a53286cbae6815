import { z } from 'zod';
import { amount, wallet } from '../../protocol/index.js';
import { channelName, merchantId } from './gateway.js';

/**
 * The provider accounts the cloud reaches the wallets through ("channels"), as the cloud config names
 * them. Credentials are never inline: each is a file (0600, read at start by credential-file.ts).
 * `endpoint` defaults to the wallet's production address; tests and the demo point it at a simulator
 * and add the simulator's CA with `caFile`.
 */
const file = z.string().min(1);

/**
 * What routing reads (routing.ts): hard rules first — which merchants a channel may serve, the
 * amounts it takes — then the score: the cheaper channel wins among the healthy ones.
 */
const routing = {
  /** Price per payment: basis points of the amount plus a fixed fee in fen (the provider's contract). */
  cost: z.strictObject({ bps: z.number().min(0).max(10_000).default(0), fixedFen: z.number().int().min(0).default(0) }).default({ bps: 0, fixedFen: 0 }),
  /** Smallest and largest payment (fen) this channel takes. */
  minAmount: amount.optional(),
  maxAmount: amount.optional(),
  /** The merchants this channel may serve; absent: every merchant. */
  merchants: z.array(merchantId).min(1).optional(),
};

export const WechatChannelConfig = z.strictObject({
  kind: z.literal('wechat'),
  ...routing,
  endpoint: z.string().url().default('https://api.mch.weixin.qq.com'),
  /** The provider's appid (服务商 APPID) and mch_id (服务商商户号). */
  appId: z.string().min(1).max(32),
  mchId: z.string().regex(/^[0-9]{1,32}$/, 'mch_id is digits'),
  /** The API key (API密钥, 32 characters): signs requests and verifies answers. */
  apiKeyFile: file,
  signType: z.enum(['MD5', 'HMAC-SHA256']).default('HMAC-SHA256'),
  /** The API client certificate and key (apiclient_cert.pem / apiclient_key.pem): secapi calls (reverse, refund) need them. */
  clientCertFile: file,
  clientKeyFile: file,
  /** Extra CA to trust for `endpoint` (a simulator's); the system's CAs otherwise. */
  caFile: file.optional(),
  /** One keep-alive connection pool per channel (off only to measure what it saves). */
  keepAlive: z.boolean().default(true),
  /** spbill_create_ip, "调用微信支付API的机器IP": default this machine's first external IPv4. */
  spbillCreateIp: z.ipv4().optional(),
});

export const AlipayChannelConfig = z.strictObject({
  kind: z.literal('alipay'),
  ...routing,
  endpoint: z.string().url().default('https://openapi.alipay.com/gateway.do'),
  /** The provider's (ISV's) application id. */
  appId: z.string().regex(/^[0-9]{1,32}$/, 'app_id is digits'),
  /** The app's RSA private key (PEM, or bare base64 as Alipay's key tool writes it): signs requests (RSA2). */
  privateKeyFile: file,
  /** Alipay's public key (支付宝公钥): verifies every answer. */
  alipayPublicKeyFile: file,
  caFile: file.optional(),
  keepAlive: z.boolean().default(true),
});

/** The generic JSON gateway (cloud/gateway/http-gateway.ts): UnionPay today, and the scripted simulator. */
export const HttpChannelConfig = z.strictObject({
  kind: z.literal('http'),
  url: z.string().url(),
  /** The wallets it serves (a WeChat or Alipay channel serves its own). */
  wallets: z.array(wallet).min(1).default(['unionpay']),
  ...routing,
});
/** Approves everything without moving money: benchmarks only. */
export const InstantChannelConfig = z.strictObject({ kind: z.literal('instant'), wallets: z.array(wallet).min(1).default(['wechat', 'alipay', 'unionpay']), ...routing });

export const ChannelConfig = z.discriminatedUnion('kind', [WechatChannelConfig, AlipayChannelConfig, HttpChannelConfig, InstantChannelConfig]);
export type WechatChannelConfig = z.infer<typeof WechatChannelConfig>;
export type AlipayChannelConfig = z.infer<typeof AlipayChannelConfig>;
export type ChannelConfig = z.infer<typeof ChannelConfig>;
export type ChannelConfigInput = z.input<typeof ChannelConfig>;

export const ChannelsConfig = z.record(channelName, ChannelConfig);
/** A channel configured as a wallet's only one for new attempts (a standing pin; `scanbox-cloud channel pin` is the runtime one). */
export const RoutesConfig = z.partialRecord(wallet, channelName);

/** The wallets a channel serves. */
export function walletsOf(c: ChannelConfig): readonly z.infer<typeof wallet>[] {
  return c.kind === 'wechat' || c.kind === 'alipay' ? [c.kind] : c.wallets;
}

/**
 * Each channel's health (channel-health.ts): over the last `windowMs`, once at least `minCalls` calls
 * were made, a share of failures (unknown outcomes: timeouts, 5xx, bad signatures, SYSTEMERROR; and
 * calls slower than `slowCallMs`) of `failureRatio` or more opens the breaker: no new payment is
 * routed to the channel. After `coolDownMs` it is half-open: `probeShare` of the new payments that
 * could use it probe it (at most `maxProbes` at once); `probesToClose` successes close it, one
 * failure opens it again.
 */
export const ChannelHealthConfig = z.strictObject({
  windowMs: z.number().int().positive().default(30_000),
  minCalls: z.number().int().positive().default(10),
  failureRatio: z.number().gt(0).max(1).default(0.25),
  slowCallMs: z.number().int().positive().default(5_000),
  coolDownMs: z.number().int().positive().default(15_000),
  probeShare: z.number().gt(0).max(1).default(0.2),
  maxProbes: z.number().int().positive().default(2),
  probesToClose: z.number().int().positive().default(3),
});
export type ChannelHealthConfig = z.infer<typeof ChannelHealthConfig>;
export const DEFAULT_CHANNEL_HEALTH: ChannelHealthConfig = ChannelHealthConfig.parse({});
