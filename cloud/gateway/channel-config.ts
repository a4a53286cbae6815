import { z } from 'zod';
import { wallet } from '../../protocol/index.js';
import { channelName } from './gateway.js';

/**
 * The provider accounts the cloud reaches the wallets through ("channels"), as the cloud config names
 * them. Credentials are never inline: each is a file (0600, read at start by credential-file.ts).
 * `endpoint` defaults to the wallet's production address; tests and the demo point it at a simulator
 * and add the simulator's CA with `caFile`.
 */
const file = z.string().min(1);

export const WechatChannelConfig = z.strictObject({
  kind: z.literal('wechat'),
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
export const HttpChannelConfig = z.strictObject({ kind: z.literal('http'), url: z.string().url() });
/** Approves everything without moving money: benchmarks only. */
export const InstantChannelConfig = z.strictObject({ kind: z.literal('instant') });

export const ChannelConfig = z.discriminatedUnion('kind', [WechatChannelConfig, AlipayChannelConfig, HttpChannelConfig, InstantChannelConfig]);
export type WechatChannelConfig = z.infer<typeof WechatChannelConfig>;
export type AlipayChannelConfig = z.infer<typeof AlipayChannelConfig>;
export type ChannelConfig = z.infer<typeof ChannelConfig>;

export const ChannelsConfig = z.record(channelName, ChannelConfig);
/** Which channel a new attempt of each wallet starts on (a wallet left out: the channel named after it). */
export const RoutesConfig = z.partialRecord(wallet, channelName);
