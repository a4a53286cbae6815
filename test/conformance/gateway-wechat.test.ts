import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { createWechatGateway } from '../../cloud/gateway/wechat/adapter.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { startWechatSimulator } from '../../simulator/gateway/wechat-server.js';
import { issueClientCert, makeTestCa, type TestCa, type TestClientCert } from '../support/test-ca.js';
import { describeGatewayConformance } from './gateway.js';

/**
 * The WeChat Pay v2 adapter through the one Gateway contract, over HTTPS with mutual TLS to the
 * WeChat simulator (every answer signed, every secapi call with the client certificate). The ledger
 * read is the scripted wallet's own, behind the simulator.
 */
const CHARGES = '134567890123456789';
const HANGS = '114567890123456789';
const ACCOUNT = { appId: 'wx8888888888888888', mchId: '1900000109', apiKey: randomBytes(16).toString('hex'), signType: 'HMAC-SHA256' } as const;
const ROUTE = { wallet: 'wechat', merchant: 'M1', channel: 'wx1' } as const;

let ca: TestCa;
let client: TestClientCert;
beforeAll(() => {
  ca = makeTestCa();
  client = issueClientCert(ca);
});
afterAll(() => ca.remove());

describeGatewayConformance(
  'WeChat adapter ↔ WeChat simulator',
  async () => {
    const scripted = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
    scripted.bind(HANGS, { name: 'hang', charged: false });
    const sim = await startWechatSimulator({ gateway: scripted, channel: ROUTE.channel, credentials: ACCOUNT, tls: { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert } });
    const gateway = createWechatGateway({
      channel: ROUTE.channel,
      endpoint: sim.url,
      credentials: { appid: ACCOUNT.appId, mchId: ACCOUNT.mchId, apiKey: ACCOUNT.apiKey, signType: ACCOUNT.signType },
      clientCert: { cert: client.cert, key: client.key },
      ca: ca.caCert,
      keepAlive: true,
      merchants: async (id) => (id === ROUTE.merchant ? { merchantId: id, name: '测试店', wechatSubMchId: '1900000110', alipayAppAuthToken: null, createdAt: 0, updatedAt: 0 } : undefined),
      spbillCreateIp: '10.0.0.5',
    });
    return {
      gateway,
      codes: { charges: CHARGES, hang: HANGS },
      route: ROUTE,
      netCharged: async (t) => scripted.net(t),
      close: async () => {
        await gateway.close();
        scripted.stop();
        await sim.close();
      },
    };
  },
  { capabilities: ['ledger', 'hang'] },
);
