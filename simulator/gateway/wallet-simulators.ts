import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { ChannelConfig } from '../../cloud/gateway/channel-config.js';
import { issueClientCert, makeTestCa } from '../tls/test-ca.js';
import { startAlipaySimulator, type AlipaySimulator } from './alipay-server.js';
import type { ScriptedGateway } from './scripted-gateway.js';
import { startWechatSimulator, type WechatSimulator } from './wechat-server.js';

/**
 * WeChat Pay and Alipay as the cloud meets them in production — HTTPS, signed wire formats, WeChat's
 * client certificate — in front of one scripted wallet (one ledger for both). Every key, certificate
 * and API key is made here, at start, into `dir` (0700, each file 0600 as the cloud demands), never
 * committed. What comes back is the cloud config's `channels` section pointing at them (channels named
 * after their wallet, so the default routes use them) and the merchant's wallet sub-ids.
 */
export interface WalletSimulators {
  channels: Record<string, ChannelConfig>;
  /** The test merchant's sub-accounts, as `scanbox-cloud merchant add` flags. */
  merchantFlags: Record<string, string>;
  wechat: WechatSimulator;
  alipay: AlipaySimulator;
  close(): Promise<void>;
}

/** Test ids in the wallets' own formats (WeChat's documentation uses these numbers in its examples). */
const WECHAT = { appId: 'wx2421b1c4370ec43b', mchId: '10000100', subMchId: '1900000109' } as const;
const ALIPAY = { appId: '2021000100000001', appAuthToken: '202512BBsimulatedmerchant0001' } as const;

export async function startWalletSimulators(gateway: ScriptedGateway, dir: string, logger?: Logger): Promise<WalletSimulators> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = makeTestCa();
  try {
    const client = issueClientCert(ca, 'wechat-client');
    const secret = (name: string, content: string | Buffer) => {
      const file = path.join(dir, name);
      writeFileSync(file, content, { mode: 0o600 });
      return file;
    };
    const copy = (from: string, name: string) => {
      const file = path.join(dir, name);
      copyFileSync(from, file);
      chmodSync(file, 0o600);
      return file;
    };
    const apiKey = randomBytes(16).toString('hex');
    const app = rsaPair();
    const alipayKeys = rsaPair();
    const tls = { cert: ca.serverCert, key: ca.serverKey };
    const wechat = await startWechatSimulator({ gateway, channel: 'wechat', credentials: { appId: WECHAT.appId, mchId: WECHAT.mchId, apiKey, signType: 'HMAC-SHA256' }, tls: { ...tls, ca: ca.caCert }, ...(logger ? { logger } : {}) });
    const alipay = await startAlipaySimulator({ gateway, channel: 'alipay', appId: ALIPAY.appId, appPublicKey: app.publicKey, alipayPrivateKey: alipayKeys.privateKey, tls, appAuthTokens: [ALIPAY.appAuthToken], ...(logger ? { logger } : {}) });
    const caFile = copy(ca.caCertFile, 'wallet-ca.pem');
    const channels: Record<string, ChannelConfig> = {
      wechat: {
        kind: 'wechat',
        endpoint: wechat.url,
        appId: WECHAT.appId,
        mchId: WECHAT.mchId,
        apiKeyFile: secret('wechat-api-key', apiKey),
        signType: 'HMAC-SHA256',
        clientCertFile: copy(client.certFile, 'wechat-apiclient_cert.pem'),
        clientKeyFile: copy(client.keyFile, 'wechat-apiclient_key.pem'),
        caFile,
        keepAlive: true,
      },
      alipay: {
        kind: 'alipay',
        endpoint: alipay.url,
        appId: ALIPAY.appId,
        privateKeyFile: secret('alipay-app-private-key.pem', app.privateKey),
        alipayPublicKeyFile: secret('alipay-public-key.pem', alipayKeys.publicKey),
        caFile,
        keepAlive: true,
      },
    };
    const merchantFlags = { '--wechat-sub-mch-id': WECHAT.subMchId, '--alipay-app-auth-token': ALIPAY.appAuthToken };
    return { channels, merchantFlags, wechat, alipay, close: async () => void (await Promise.all([wechat.close(), alipay.close()])) };
  } finally {
    // Everything the cloud and the simulators need was copied out or read; the CA key goes now.
    ca.remove();
  }
}

function rsaPair(): { privateKey: string; publicKey: string } {
  return generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
}
