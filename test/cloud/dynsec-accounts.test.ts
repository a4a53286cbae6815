import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downTopic, upTopic } from '../../protocol/index.js';
import { boxRoleName, DynsecControl, type DynsecAccounts } from '../../cloud/broker/dynsec.js';
import { connectExternal } from '../../cloud/broker/external-connection.js';
import { createLogger } from '../../cloud/log.js';
import { Metrics } from '../../cloud/metrics.js';
import { memoryLogger } from '../security/support.js';
import { useMosquitto } from '../support/mosquitto.js';
import { connectBox, openAccounts } from './external-kit.js';

/**
 * Box accounts on a real Mosquitto's dynamic-security plugin (cloud/broker/dynsec.ts): an added box
 * logs in with its secret and its own client id only, a removed one is disconnected and refused, and
 * at start the accounts are brought in line with the store: revoked boxes and accounts of unknown
 * boxes go, a box whose role went missing gets it back, the broker's other users are left alone, and
 * an active box without an account (the cloud cannot make it again: it has no secret) is reported.
 */
const mosquitto = useMosquitto();
let accounts: DynsecAccounts;
const metrics = new Metrics();
const log = memoryLogger();

beforeAll(async () => {
  accounts = await openAccounts(mosquitto(), { logger: log.logger, metrics });
}, 30_000);
afterAll(async () => {
  await accounts.close();
});

/** The CONNACK code of a refused login (fails the test if accepted). */
function refused(clientId: string, username: string, password: string): Promise<number> {
  return mqtt.connectAsync(mosquitto().url, { clientId, username, password, reconnectPeriod: 0 }).then(
    async (c) => {
      await c.endAsync(true);
      throw new Error(`${username} (client id ${clientId}) was let in`);
    },
    (e: Error & { code?: number }) => e.code ?? -1,
  );
}

/** Raw control commands as the admin, for arranging broker state behind the cloud's back. */
async function asAdmin<T>(fn: (control: DynsecControl) => Promise<T>): Promise<T> {
  const client = await connectExternal({ url: mosquitto().adminUrl, keepaliveS: 10 }, 'test-admin', createLogger('silent'));
  const control = new DynsecControl(client, 5_000);
  try {
    await control.start();
    return await fn(control);
  } finally {
    control.stop();
    await client.endAsync(true);
  }
}

describe('dynamic-security box accounts', () => {
  it('an added box logs in with its secret under its own client id only, and reaches its own up/ and down/', async () => {
    const secret = 'added-secret-000000000000000000000000000';
    await accounts.add('sbADD0000001', secret);
    expect(metrics.get('broker_accounts_total', 'created')).toBeGreaterThanOrEqual(1);
    const box = await connectBox(mosquitto(), 'sbADD0000001', secret);
    expect((await box.subscribeAsync(downTopic('sbADD0000001', 'result'), { qos: 1 })).map((g) => g.qos)).toEqual([1]);
    await box.publishAsync(upTopic('sbADD0000001', 'heartbeat'), '{}', { qos: 1 });
    await box.endAsync();
    expect(await refused('sbADD0000001', 'sbADD0000001', 'wrong-secret')).toBe(5);
    expect(await refused('sbSOMEONE001', 'sbADD0000001', secret)).toBe(5);
  });

  it('a removed box is disconnected at once and refused after; removing an unknown box is no error', async () => {
    const secret = 'removed-secret-0000000000000000000000000';
    await accounts.add('sbREMOVE0001', secret);
    const box = await connectBox(mosquitto(), 'sbREMOVE0001', secret);
    const closed = new Promise<void>((resolve) => box.once('close', () => resolve()));
    await accounts.remove('sbREMOVE0001');
    await closed;
    expect(await refused('sbREMOVE0001', 'sbREMOVE0001', secret)).toBe(5);
    await accounts.remove('sbNEVER00001');
    await box.endAsync(true);
  });

  it('adding a box twice is refused and leaves the first account working', async () => {
    await accounts.add('sbTWICE00001', 'first-secret-000000000000000000000000000');
    await expect(accounts.add('sbTWICE00001', 'second-secret-00000000000000000000000000')).rejects.toMatchObject({ code: 'INTERNAL' });
    const box = await connectBox(mosquitto(), 'sbTWICE00001', 'first-secret-000000000000000000000000000');
    await box.endAsync();
  });

  it('resync: removes revoked and unknown boxes, gives a lost role back, leaves other users alone, reports active boxes it has no account for', async () => {
    const s = (id: string) => `resync-secret-of-${id}-0000000000000000`;
    for (const id of ['sbKEEP000001', 'sbREVOKED001', 'sbORPHAN0001', 'sbNOROLE0001']) await accounts.add(id, s(id));
    await asAdmin(async (control) => {
      // A user the cloud did not make (a monitoring account), and a box account that lost its role.
      await control.run([{ command: 'createClient', username: 'monitor', password: 'monitor-password' }]);
      await control.run([{ command: 'removeClientRole', username: 'sbNOROLE0001', rolename: boxRoleName('sbNOROLE0001') }]);
    });
    const revokedBox = await connectBox(mosquitto(), 'sbREVOKED001', s('sbREVOKED001'));
    const revokedGone = new Promise<void>((resolve) => revokedBox.once('close', () => resolve()));
    const missing0 = metrics.get('broker_accounts_total', 'missing');
    const store = {
      listDevices: async () => [
        { deviceId: 'sbKEEP000001', status: 'active' },
        { deviceId: 'sbREVOKED001', status: 'revoked' },
        { deviceId: 'sbNOROLE0001', status: 'active' },
        { deviceId: 'sbLOST000001', status: 'active' },
        { deviceId: 'sbLOST000002', status: 'active' },
      ],
    };
    const report = await accounts.resync(store);
    // Also the boxes of the tests above, which this store does not have.
    expect(report.removed).toEqual(expect.arrayContaining(['sbORPHAN0001', 'sbREVOKED001', 'sbADD0000001']));
    for (const kept of ['sbKEEP000001', 'sbNOROLE0001', 'monitor', mosquitto().admin.username]) expect(report.removed).not.toContain(kept);
    expect(report.repaired).toEqual(['sbNOROLE0001']);
    expect(report.missing).toEqual(['sbLOST000001', 'sbLOST000002']);
    expect(metrics.get('broker_accounts_total', 'missing')).toBe(missing0 + 2);
    expect(log.text()).toMatch(/"level":50.*"count":2.*"deviceIds":\["sbLOST000001","sbLOST000002"\].*pair each again/);
    await revokedGone;

    expect(await refused('sbREVOKED001', 'sbREVOKED001', s('sbREVOKED001'))).toBe(5);
    expect(await refused('sbORPHAN0001', 'sbORPHAN0001', s('sbORPHAN0001'))).toBe(5);
    for (const id of ['sbKEEP000001', 'sbNOROLE0001']) {
      const box = await connectBox(mosquitto(), id, s(id));
      expect((await box.subscribeAsync(downTopic(id, 'result'), { qos: 1 })).map((g) => g.qos)).toEqual([1]);
      await box.endAsync();
    }
    const monitor = await mqtt.connectAsync(mosquitto().url, { clientId: 'monitor-1', username: 'monitor', password: 'monitor-password', reconnectPeriod: 0 });
    await monitor.endAsync();
    // A second resync finds nothing more to do.
    expect(await accounts.resync(store)).toEqual({ removed: [], repaired: [], missing: ['sbLOST000001', 'sbLOST000002'] });
  });

  it("a second worker starting on the same broker finds the service role granted and does not drop the first's connections", async () => {
    const mark = mosquitto().lines().length;
    const second = await openAccounts(mosquitto());
    await second.add('sbSECOND0001', 'second-worker-secret-0000000000000000000');
    expect(mosquitto().lines().slice(mark).filter((l) => /addClientRole/.test(l))).toEqual([]);
    await second.close();
  });
});

describe('workers starting at once on a broker that has not seen them', () => {
  it("the first grant of the shared user's role drops every worker's connection: each one's commands are sent again, and all start", async () => {
    // A group no worker has used: its service role is granted now, by whichever worker gets there first.
    const group = `race-${Date.now().toString(36)}`;
    const started = await Promise.all([1, 2, 3, 4, 5].map(() => openAccounts(mosquitto(), { group })));
    try {
      for (const [i, a] of started.entries()) await a.add(`sbRACE${group.slice(-4)}${i}`, 'a-long-enough-secret-0001');
    } finally {
      for (const a of started) await a.close();
    }
  }, 60_000);
});
