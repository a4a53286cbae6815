import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { pairBox, startTestCloud } from '../cloud/harness.js';
import { TestBroker } from '../device/broker.js';
import { FakeCloud } from '../device/fake-cloud.js';
import { describeCloudAsBoxSeesIt, STORY_CODES } from './cloud-as-box-sees-it.js';

/** The real cloud and the box tests' stand-in for it, through the same suite. */

describeCloudAsBoxSeesIt('the real cloud (in process, simulator ScriptedGateway)', async () => {
  const gw = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
  gw.bind(STORY_CODES.pays, { name: 'success' });
  gw.bind(STORY_CODES.declines, { name: 'failure', reason: 'INSUFFICIENT_FUNDS' });
  gw.bind(STORY_CODES.waits, { name: 'user_paying', confirmAfterMs: 600_000 });
  gw.bind(STORY_CODES['charges-silently'], { name: 'hang', charged: true, hangMs: 600_000 });
  // Polling outlasts any test: the customer of a `waits` payment confirms when the test says so.
  const cloud = await startTestCloud(gw, { pollDeadlineMs: { wechat: 30_000, alipay: 30_000, unionpay: 30_000 } });
  return {
    newBox: async () => {
      const creds = await pairBox(cloud);
      return { url: cloud.mqttUrl, deviceId: creds.deviceId, password: creds.secret };
    },
    confirm: (_deviceId, outTradeNo) => gw.confirm(outTradeNo),
    movements: (outTradeNo) => gw.ledger.entries().filter((e) => e.outTradeNo === outTradeNo).map((e) => e.kind),
    close: async () => {
      gw.stop();
      await cloud.close();
    },
  };
});

describeCloudAsBoxSeesIt("test/device/fake-cloud.ts (the box tests' stand-in)", async () => {
  const broker = await TestBroker.start();
  const fake = await FakeCloud.start(broker.url, {
    [STORY_CODES.pays]: 'success',
    [STORY_CODES.declines]: 'failed',
    [STORY_CODES.waits]: 'userpaying',
    [STORY_CODES['charges-silently']]: 'charge-and-hold',
  });
  return {
    newBox: async () => ({ url: broker.url, deviceId: `cbox${process.pid % 1000}`, password: 'any' }),
    confirm: (deviceId, outTradeNo) => fake.settle(deviceId, outTradeNo, 'SUCCESS'),
    movements: (outTradeNo) => fake.ledger.filter((e) => e.outTradeNo === outTradeNo).map((e) => e.kind),
    close: async () => {
      await fake.close();
      await broker.close();
    },
  };
});
