import { afterAll } from 'vitest';
import { createAlipayGateway } from '../../cloud/gateway/alipay/adapter.js';
import type { Merchant } from '../../cloud/merchants/merchant.js';
import { startAlipaySimulator } from '../../simulator/gateway/alipay-server.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { keys } from '../cloud/alipay/support.js';
import { makeTestCa, type TestCa } from '../support/test-ca.js';
import { describeGatewayConformance } from './gateway.js';

/**
 * The Alipay adapter through the one Gateway contract, against the Alipay simulator over HTTPS: the whole wire
 * protocol (RSA2 both ways, app_auth_token, Alipay's codes) sits between the suite and the scripted wallet.
 */
const CHARGES = '281234567890123456';
const HANGS = '282234567890123456';
const APP_ID = '2021000000000001';
const TOKEN = '202403BBconformance0000000000000000000X01';
const CHANNEL = 'alipay';
const M1: Merchant = { merchantId: 'M1', name: null, wechatSubMchId: null, alipayAppAuthToken: TOKEN, createdAt: 0, updatedAt: 0 };

let ca: TestCa | undefined;
afterAll(() => ca?.remove());

describeGatewayConformance(
  'Alipay adapter ↔ Alipay simulator',
  async () => {
    ca ??= makeTestCa();
    const wallet = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
    wallet.bind(HANGS, { name: 'hang', charged: false });
    const sim = await startAlipaySimulator({
      gateway: wallet,
      channel: CHANNEL,
      appId: APP_ID,
      appPublicKey: keys().app.publicPem,
      alipayPrivateKey: keys().alipay.privatePem,
      tls: { cert: ca.serverCert, key: ca.serverKey },
      appAuthTokens: [TOKEN],
    });
    const gateway = createAlipayGateway({
      channel: CHANNEL,
      endpoint: sim.url,
      app: { appId: APP_ID, privateKey: keys().app.privatePem },
      alipayPublicKey: keys().alipay.publicPem,
      ca: ca.caCert,
      keepAlive: true,
      merchants: async (id) => (id === 'M1' ? M1 : undefined),
      clock: { now: () => Date.now() },
    });
    return {
      gateway,
      codes: { charges: CHARGES, hang: HANGS },
      route: { wallet: 'alipay', merchant: 'M1', channel: CHANNEL },
      netCharged: async (t) => wallet.net(t),
      close: async () => {
        await gateway.close();
        wallet.stop();
        await sim.close();
      },
    };
  },
  { capabilities: ['ledger', 'hang'] },
);
