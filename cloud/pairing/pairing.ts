import { ErrorCode, ProtocolError, PAIRING_VERSION, type PairRequest, type PairResponse } from '../../protocol/index.js';
import type { Clock } from '../../protocol/clock.js';
import { generateDeviceId, generatePairingCode, generateSecret, hashSecret, isLegacyHash, verifyKeyed } from './credentials.js';
import type { Logger } from '../log.js';
import { STORE_CHECKED_ACCOUNTS, type BrokerAccounts } from '../broker/broker-accounts.js';
import type { Metrics } from '../metrics.js';
import type { ServerKey } from './server-key.js';
import type { CloudStore, RedeemRefusal } from '../store/store.js';

/**
 * Pairing by a trusted field engineer: a one-time code for a merchant's store is exchanged by a
 * box for its own device id and secret. The code is single-use (atomically, in the store),
 * expires, and re-pairing a hardware id revokes the credentials it had before — within the code's
 * merchant, or in any merchant when the box proves it holds those credentials. Otherwise a code of
 * one merchant could switch off another merchant's box by naming its hardware id.
 */
export interface PairingDeps {
  store: CloudStore;
  key: ServerKey;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  codeTtlS: number;
  /** Handed to the box in the response. */
  mqttUrl: () => string;
  /** Called with device ids whose credentials a re-pairing revoked, to disconnect them now. */
  onRevoked?: (deviceIds: string[]) => void;
  /** The broker's record of the boxes, for a broker that keeps one (default: none, the store is asked at each login). */
  accounts?: BrokerAccounts;
}

export interface IssuedCode {
  code: string;
  merchantId: string;
  storeId: string;
  expiresAt: number;
}

const ID = /^[A-Za-z0-9_.:-]{1,64}$/;

export async function createPairingCode(deps: Pick<PairingDeps, 'store' | 'clock' | 'codeTtlS'>, merchantId: string, storeId: string): Promise<IssuedCode> {
  if (!ID.test(merchantId) || !ID.test(storeId)) {
    throw new ProtocolError(ErrorCode.SCHEMA_INVALID, 'merchant and store ids must be 1–64 of A-Z a-z 0-9 _ . : -');
  }
  const now = deps.clock.now();
  const issued = { code: generatePairingCode(), merchantId, storeId, expiresAt: now + deps.codeTtlS * 1000 };
  await deps.store.createPairingCode({ ...issued, createdAt: now });
  return issued;
}

const REFUSALS = {
  unknown: [ErrorCode.PAIRING_CODE_INVALID, 'pairing code not found; check it or create a new one'],
  expired: [ErrorCode.PAIRING_CODE_EXPIRED, 'pairing code has expired; create a new one'],
  used: [ErrorCode.PAIRING_CODE_USED, 'pairing code was already used; create a new one'],
} as const;

export async function redeemPairingCode(deps: PairingDeps, req: PairRequest): Promise<PairResponse> {
  const now = deps.clock.now();
  const early = await deps.store.checkPairingCode(req.code, now);
  if (early) refuse(deps, early);
  const proven = req.previous ? await provenDevice(deps, req.previous, req.hardwareId) : undefined;
  const secret = generateSecret();
  const deviceId = generateDeviceId();
  // The broker gets the box's account first: this is the only moment the secret exists in the
  // cloud, and a broker that does not take it leaves the code unused for another try.
  const accounts = deps.accounts ?? STORE_CHECKED_ACCOUNTS;
  await accounts.add(deviceId, secret);
  // An account whose pairing did not happen goes again; one that cannot be removed now is removed at the next start (resync).
  const undo = () => accounts.remove(deviceId).catch(() => undefined);
  let res;
  try {
    res = await deps.store.redeemPairingCode(req.code, req.hardwareId, now, { deviceId, secretHash: hashSecret(deps.key, secret), firmware: req.firmware ?? null }, proven);
  } catch (err) {
    await undo();
    throw err;
  }
  if (!res.ok) await undo();
  if (!res.ok && res.why === 'hardware_in_use') {
    deps.metrics.inc('pairing_refused_total', res.why);
    throw new ProtocolError(
      ErrorCode.HARDWARE_ID_IN_USE,
      `this hardware is paired as ${res.deviceId} under another merchant; revoke that box first (scanbox-cloud devices revoke ${res.deviceId}) or re-pair from the box itself`,
    );
  }
  if (!res.ok) refuse(deps, res.why);
  deps.metrics.inc('devices_paired_total');
  deps.logger.info({ deviceId, hardwareId: req.hardwareId, merchantId: res.merchantId, storeId: res.storeId, revoked: res.revoked }, 'device paired');
  if (res.revoked.length) deps.onRevoked?.(res.revoked);
  return { v: PAIRING_VERSION, deviceId, secret, mqttUrl: deps.mqttUrl(), merchantId: res.merchantId, storeId: res.storeId };
}

/**
 * The device id whose credentials the request proved: the secret matches and the device is this
 * hardware's. A legacy (scrypt) hash is not checked here: pairing never runs scrypt.
 */
async function provenDevice(deps: PairingDeps, previous: { deviceId: string; secret: string }, hardwareId: string): Promise<string | undefined> {
  const auth = await deps.store.getDeviceAuth(previous.deviceId);
  const proven = auth !== undefined && auth.hardwareId === hardwareId && !isLegacyHash(auth.secretHash) && verifyKeyed(deps.key, previous.secret, auth.secretHash);
  if (!proven) deps.logger.warn({ deviceId: previous.deviceId, hardwareId }, 'pairing: proof of the previous credentials did not verify; treated as none');
  return proven ? previous.deviceId : undefined;
}

function refuse(deps: PairingDeps, why: RedeemRefusal): never {
  deps.metrics.inc('pairing_refused_total', why);
  const [code, message] = REFUSALS[why];
  throw new ProtocolError(code, message);
}
