import { ensureMerchant } from '../cloud/merchants/merchant.js';
import { hashSecret, generateDeviceId, generateSecret } from '../cloud/pairing/credentials.js';
import { createPairingCode, ServerKey, SqliteStore, type Attempt, type CloudStore } from '../cloud/index.js';
import { secretKeyFileOf } from '../cloud/config.js';
import { systemClock } from '../protocol/clock.js';
import { CloudAttemptRecord, type DeviceAttemptRecord, type FinalState, type ResultMessage } from '../protocol/index.js';
import { ScriptedGateway } from '../simulator/gateway/scripted-gateway.js';
import { INSTANT } from '../simulator/gateway/scenario.js';

/**
 * What several benchmarks need around the cloud: the scripted gateway with only successful
 * customers and no latency (it keeps a ledger, so reconciliation is the real one), devices created
 * in bulk through the store's pairing API, and attempt records for `reconcile`.
 */
export function instantScriptedGateway(seed: number | string = 'bench'): ScriptedGateway {
  return new ScriptedGateway({ seed, mix: { scenarios: [{ weight: 1, scenario: { name: 'success' } }], latency: INSTANT }, latency: INSTANT });
}

export interface SeededDevices {
  ids: string[];
  /** One secret for every bench device (each still has its own id and is verified on its own). */
  secret: string;
}

/**
 * `count` paired devices through the store's own pairing calls (a code created and redeemed per
 * device, exactly what POST /v1/pair does minus HTTP and the per-address rate limit), the secret
 * hashed under `key`, the server key the cloud will load. `concurrency` pairings in flight at once:
 * a PostgreSQL store commits each over the network with an fsync, and overlapping them lets its
 * commits share the fsyncs (10,000 devices: ~36 s one at a time).
 */
export async function seedDevices(store: CloudStore, key: ServerKey, count: number, merchant = 'M-BENCH', concurrency = 1): Promise<SeededDevices> {
  const secret = generateSecret();
  const secretHash = hashSecret(key, secret);
  const ids: string[] = new Array<string>(count);
  const now = Date.now();
  await ensureMerchant(store, merchant, now);
  let next = 0;
  const pairNext = async () => {
    for (let i = next++; i < count; i = next++) {
      const { code } = await createPairingCode({ store, clock: systemClock, codeTtlS: 3600 }, merchant, `S-${i % 50}`);
      const deviceId = generateDeviceId();
      const res = await store.redeemPairingCode(code, `bench-hw-${i}-${deviceId}`, now, { deviceId, secretHash, firmware: 'bench' });
      if (!res.ok) throw new Error(`seeding device ${i}: ${res.why}`);
      ids[i] = deviceId;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, pairNext));
  return { ids, secret };
}

export async function seedDevicesAt(dbPath: string, count: number): Promise<SeededDevices> {
  const store = new SqliteStore(dbPath);
  try {
    return await seedDevices(store, ServerKey.load(secretKeyFileOf({ dbPath })), count);
  } finally {
    await store.close();
  }
}

export function cloudRecords(attempts: Attempt[]): CloudAttemptRecord[] {
  return attempts.map((a) => CloudAttemptRecord.parse({ ...a }));
}

/** What a benchmark client saw of one payment, in the shape a box journal exports. */
export function seenRecord(r: ResultMessage, saleRef: string, createdAt: number): DeviceAttemptRecord {
  return {
    outTradeNo: r.outTradeNo,
    saleId: r.saleId,
    saleRef,
    amount: r.amount,
    currency: r.currency,
    state: r.state as FinalState,
    reason: r.reason ?? null,
    createdAt,
    updatedAt: Date.now(),
  };
}
