import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, ProtocolError } from '../../protocol/index.js';
import type { BrokerAccounts } from '../../cloud/broker/broker-accounts.js';
import { verifyKeyed } from '../../cloud/pairing/credentials.js';
import { createLogger } from '../../cloud/log.js';
import { Metrics } from '../../cloud/metrics.js';
import { createPairingCode, redeemPairingCode, type PairingDeps } from '../../cloud/pairing/pairing.js';
import { ServerKey } from '../../cloud/pairing/server-key.js';
import { SqliteStore } from '../../cloud/store/sqlite-store.js';
import { FakeClock } from '../support/fake-clock.js';
import { ensureMerchant, tempDir } from './harness.js';

/**
 * Pairing with a broker that keeps its own accounts (Mosquitto's dynamic security): the broker is
 * given the box's account, with the very secret the box receives, before the pairing is committed;
 * a broker that refuses it refuses the pairing and leaves the code for another try; a pairing the
 * store refuses after that takes the account back.
 */
class RecordingAccounts implements BrokerAccounts {
  readonly calls: string[] = [];
  readonly secrets = new Map<string, string>();
  failAdd = false;
  /** Runs inside add, before it returns: what happens while the broker is being asked. */
  during: (deviceId: string) => Promise<void> = async () => undefined;

  async add(deviceId: string, secret: string): Promise<void> {
    this.calls.push(`add ${deviceId}`);
    if (this.failAdd) throw new ProtocolError(ErrorCode.INTERNAL, "Mosquitto's dynamic-security plugin refused the account");
    this.secrets.set(deviceId, secret);
    await this.during(deviceId);
  }
  async remove(deviceId: string): Promise<void> {
    this.calls.push(`remove ${deviceId}`);
    this.secrets.delete(deviceId);
  }
  resync = async () => ({ removed: [], missing: [], repaired: [] });
  close = async () => undefined;
}

const clock = new FakeClock(1_764_086_400_000);
let store: SqliteStore;
let remove: () => void;
let accounts: RecordingAccounts;
let deps: PairingDeps;

beforeEach(async () => {
  const t = tempDir();
  remove = t.remove;
  store = new SqliteStore(join(t.dir, 'cloud.db'));
  await store.whenReady();
  await ensureMerchant(store, 'M1', clock.now());
  accounts = new RecordingAccounts();
  deps = { store, key: ServerKey.random(), clock, logger: createLogger('silent'), metrics: new Metrics(), codeTtlS: 600, mqttUrl: () => 'mqtt://broker.example:1883', accounts };
});
afterEach(async () => {
  await store.close();
  remove();
});

const newCode = async () => (await createPairingCode({ store, clock, codeTtlS: 600 }, 'M1', 'S1')).code;
const req = (code: string, hardwareId = 'hw-1') => ({ v: 1 as const, code, hardwareId, firmware: '0.1.0' });

describe('pairing with broker accounts', () => {
  it("gives the broker the box's account, with the secret the box receives, before the device is in the store", async () => {
    const seen: (string | undefined)[] = [];
    accounts.during = async (id) => void seen.push((await store.getDeviceAuth(id))?.status);
    const res = await redeemPairingCode(deps, req(await newCode()));
    expect(accounts.calls).toEqual([`add ${res.deviceId}`]);
    expect(accounts.secrets.get(res.deviceId)).toBe(res.secret);
    expect(seen).toEqual([undefined]);
    const auth = await store.getDeviceAuth(res.deviceId);
    expect(auth?.status).toBe('active');
    expect(verifyKeyed(deps.key, res.secret, auth!.secretHash)).toBe(true);
  });

  it('a broker that refuses the account refuses the pairing, and the code still works afterwards', async () => {
    const code = await newCode();
    accounts.failAdd = true;
    await expect(redeemPairingCode(deps, req(code))).rejects.toMatchObject({ code: ErrorCode.INTERNAL });
    expect(await store.listDevices()).toEqual([]);
    accounts.failAdd = false;
    const res = await redeemPairingCode(deps, req(code));
    expect((await store.getDeviceAuth(res.deviceId))?.status).toBe('active');
  });

  it('a pairing the store refuses after the broker took the account (the code used meanwhile) takes the account back', async () => {
    const code = await newCode();
    let racer: string | undefined;
    accounts.during = async () => {
      accounts.during = async () => undefined;
      racer = (await redeemPairingCode(deps, req(code, 'hw-racer'))).deviceId;
    };
    await expect(redeemPairingCode(deps, req(code))).rejects.toMatchObject({ code: ErrorCode.PAIRING_CODE_USED });
    const loser = accounts.calls[0]!.slice('add '.length);
    expect(accounts.calls).toEqual([`add ${loser}`, `add ${racer}`, `remove ${loser}`]);
    expect([...accounts.secrets.keys()]).toEqual([racer]);
  });
});
