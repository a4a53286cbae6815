import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PairResponse } from '../../protocol/index.js';
import { pairBox, payMsg, TestBox } from '../cloud/harness.js';
import { BROKER_KINDS } from './brokers-under-test.js';
import { closedWithin, cloudCli, money, startProbeCloud, upMsg, type ProbeCloud } from './support.js';

/**
 * A box revoked with `scanbox-cloud devices revoke ID --db PATH` (a separate process, as an operator
 * runs it against a live cloud) is cut off within one revocation poll, every reconnect is refused
 * and recorded, and a paired neighbour is not affected: on the embedded broker (which reads the
 * device's status at each login and closes its connection) and on Mosquitto (where the cloud deletes
 * the box's dynamic-security account, which disconnects it).
 *
 * The cloud polls the store every `revocationPollMs` (≤ 500 ms in production: "off within a
 * second"). Here it polls every 100 ms and the bound is one poll plus 1.4 s for a loaded machine:
 * scheduling noise cannot fail it; a watcher that never polls, or only every 1.5 s or more, still does.
 */
const REVOCATION_POLL_MS = 100;
const REVOCATION_BOUND_MS = REVOCATION_POLL_MS + 1_400;

describe.each(BROKER_KINDS)('revocation on the %s broker', (kind) => {
  let cloud: ProbeCloud;
  let a: PairResponse;
  let b: PairResponse;

  beforeAll(async () => {
    cloud = await startProbeCloud({ broker: kind, config: { revocationPollMs: REVOCATION_POLL_MS } });
    a = await pairBox(cloud, 'hw-rev-a');
    b = await pairBox(cloud, 'hw-rev-b');
  }, 30_000);
  afterAll(async () => {
    await cloud.close();
  });

  function refusal(deviceId: string, password: string): Promise<number> {
    return TestBox.connect(cloud.mqttUrl, deviceId, password).then(
      async (box) => {
        await box.close();
        throw new Error(`${deviceId} was let back in`);
      },
      (e: Error & { code?: number }) => e.code ?? -1,
    );
  }

  describe('revocation', () => {
    it('the revoked box is disconnected within one revocation poll (plus margin) of the CLI finishing, then refused (CONNACK 5) and recorded', async () => {
      const boxA = await TestBox.of(cloud, a);
      const boxB = await TestBox.of(cloud, b);
      await boxA.send('pay', payMsg(a.deviceId, 1));
      expect(await boxA.next('result')).toMatchObject({ state: 'SUCCESS' });
      const closed = closedWithin(boxA.client, 30_000); // armed before the CLI starts; the bound is checked below
      const out = await cloudCli(['devices', 'revoke', a.deviceId, '--db', cloud.dbPath]);
      const revokedAt = Date.now(); // the CLI has committed and exited
      expect(out).toContain(`revoked ${a.deviceId}`);
      expect((await closed) - revokedAt).toBeLessThanOrEqual(REVOCATION_BOUND_MS);

      const mark = await cloud.broker.mark();
      const before = await money(cloud);
      expect(await refusal(a.deviceId, a.secret)).toBe(cloud.broker.refusedWith.revoked);
      expect(await refusal(a.deviceId, a.secret)).toBe(cloud.broker.refusedWith.revoked);
      await cloud.broker.refusalsReach(mark, 'auth', 2);
      expect(await money(cloud)).toEqual(before);

      // The neighbour kept its session throughout and is still served.
      expect(boxB.client.connected).toBe(true);
      await boxB.send('query', upMsg('query', b.deviceId, 1));
      expect(await boxB.next('result')).toMatchObject({ outTradeNo: `${b.deviceId}-1` });
      await boxB.close();
      await boxA.client.endAsync(true);
    });

    it("the revoked box's secret does not open another id, and `devices --json` shows it revoked", async () => {
      // Its secret is bound to its id only: presenting it for the neighbour's id is a wrong secret.
      expect(await refusal(b.deviceId, a.secret)).toBe(cloud.broker.refusedWith.wrongSecret);
      const devices = JSON.parse(await cloudCli(['devices', '--db', cloud.dbPath, '--json'])) as { deviceId: string; status: string }[];
      expect(devices.find((d) => d.deviceId === a.deviceId)?.status).toBe('revoked');
      expect(devices.find((d) => d.deviceId === b.deviceId)?.status).toBe('active');
    });
  });
});
