import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { ChannelConfigInput } from '../../cloud/gateway/channel-config.js';
import { issueClientCert, makeTestCa, type TestCa } from '../tls/test-ca.js';
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
  channels: Record<string, ChannelConfigInput>;
  /** The test merchant's sub-accounts, as `scanbox-cloud merchant add` flags. */
  merchantFlags: Record<string, string>;
  /** Each channel's simulator, by channel name (for faults and outages). */
  sims: ReadonlyMap<string, WechatSimulator | AlipaySimulator>;
  close(): Promise<void>;
}

/** A provider account to simulate: one simulator each, all in front of the same scripted wallet. */
export interface SimulatedAccount {
  channel: string;
  wallet: 'wechat' | 'alipay';
  /** What the cloud config says it costs (routing prefers the cheaper healthy channel). */
  cost?: { bps?: number; fixedFen?: number };
}

/** One account per wallet, named after it. */
export const ONE_ACCOUNT_EACH: readonly SimulatedAccount[] = [
  { channel: 'wechat', wallet: 'wechat' },
  { channel: 'alipay', wallet: 'alipay' },
];

/** A cheap primary and a dearer backup per wallet: routing prefers the primary while it is healthy. */
export const TWO_ACCOUNTS_EACH: readonly SimulatedAccount[] = [
  { channel: 'wechat', wallet: 'wechat', cost: { bps: 20 } },
  { channel: 'wechat-backup', wallet: 'wechat', cost: { bps: 38 } },
  { channel: 'alipay', wallet: 'alipay', cost: { bps: 20 } },
  { channel: 'alipay-backup', wallet: 'alipay', cost: { bps: 38 } },
];

/** Test ids in the wallets' own formats (WeChat's documentation uses these numbers in its examples). */
const WECHAT = { appId: 'wx2421b1c4370ec43b', mchId: '10000100', subMchId: '1900000109' } as const;
const ALIPAY = { appId: '2021000100000001', appAuthToken: '202512BBsimulatedmerchant0001' } as const;

export async function startWalletSimulators(gateway: ScriptedGateway, dir: string, opts: { accounts?: readonly SimulatedAccount[]; logger?: Logger } = {}): Promise<WalletSimulators> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = makeTestCa();
  const sims = new Map<string, WechatSimulator | AlipaySimulator>();
  const channels: Record<string, ChannelConfigInput> = {};
  try {
    const files = new CredentialFiles(dir);
    const caFile = files.copy(ca.caCertFile, 'wallet-ca.pem');
    const serverTls = { cert: ca.serverCert, key: ca.serverKey };
    for (const [i, account] of (opts.accounts ?? ONE_ACCOUNT_EACH).entries()) {
      const started =
        account.wallet === 'wechat'
          ? await startWechatAccount(gateway, account, i, { ca, files, serverTls, logger: opts.logger })
          : await startAlipayAccount(gateway, account, { files, serverTls, logger: opts.logger });
      sims.set(account.channel, started.sim);
      channels[account.channel] = { ...started.config, caFile, keepAlive: true, ...(account.cost ? { cost: account.cost } : {}) } as ChannelConfigInput;
    }
    const merchantFlags = { '--wechat-sub-mch-id': WECHAT.subMchId, '--alipay-app-auth-token': ALIPAY.appAuthToken };
    return { channels, merchantFlags, sims, close: async () => void (await Promise.all([...sims.values()].map((x) => x.close()))) };
  } catch (err) {
    await Promise.all([...sims.values()].map((x) => x.close()));
    throw err;
  } finally {
    // Everything the cloud and the simulators need was copied out or read; the CA key goes now.
    ca.remove();
  }
}

/** Credential files as the cloud demands them: 0600 in a 0700 directory. */
class CredentialFiles {
  constructor(private readonly dir: string) {}

  secret(name: string, content: string | Buffer): string {
    const file = path.join(this.dir, name);
    writeFileSync(file, content, { mode: 0o600 });
    return file;
  }

  copy(from: string, name: string): string {
    const file = path.join(this.dir, name);
    copyFileSync(from, file);
    chmodSync(file, 0o600);
    return file;
  }
}

interface AccountDeps {
  files: CredentialFiles;
  serverTls: { cert: string; key: string };
  logger: Logger | undefined;
}

/** A WeChat service-provider account: its own mch_id, API key and client certificate. */
async function startWechatAccount(gateway: ScriptedGateway, account: SimulatedAccount, i: number, deps: AccountDeps & { ca: TestCa }) {
  const name = account.channel;
  const client = issueClientCert(deps.ca, `wx-${i}`);
  const apiKey = randomBytes(16).toString('hex');
  const mchId = String(Number(WECHAT.mchId) + i);
  const sim = await startWechatSimulator({ gateway, channel: name, credentials: { appId: WECHAT.appId, mchId, apiKey, signType: 'HMAC-SHA256' }, tls: { ...deps.serverTls, ca: deps.ca.caCert }, ...(deps.logger ? { logger: deps.logger } : {}) });
  const config = {
    kind: 'wechat' as const,
    endpoint: sim.url,
    appId: WECHAT.appId,
    mchId,
    apiKeyFile: deps.files.secret(`${name}-api-key`, apiKey),
    signType: 'HMAC-SHA256' as const,
    clientCertFile: deps.files.copy(client.certFile, `${name}-apiclient_cert.pem`),
    clientKeyFile: deps.files.copy(client.keyFile, `${name}-apiclient_key.pem`),
  };
  return { sim, config };
}

/** An Alipay ISV app: its own key pair, and Alipay's key pair to sign answers. */
async function startAlipayAccount(gateway: ScriptedGateway, account: SimulatedAccount, deps: AccountDeps) {
  const name = account.channel;
  const app = rsaPair();
  const alipayKeys = rsaPair();
  const sim = await startAlipaySimulator({ gateway, channel: name, appId: ALIPAY.appId, appPublicKey: app.publicKey, alipayPrivateKey: alipayKeys.privateKey, tls: deps.serverTls, appAuthTokens: [ALIPAY.appAuthToken], ...(deps.logger ? { logger: deps.logger } : {}) });
  const config = {
    kind: 'alipay' as const,
    endpoint: sim.url,
    appId: ALIPAY.appId,
    privateKeyFile: deps.files.secret(`${name}-app-private-key.pem`, app.privateKey),
    alipayPublicKeyFile: deps.files.secret(`${name}-alipay-public-key.pem`, alipayKeys.publicKey),
  };
  return { sim, config };
}

function rsaPair(): { privateKey: string; publicKey: string } {
  return generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
}
