import type { CloudStore } from '../store/store.js';

/**
 * The broker's own record of which boxes may log in, for a broker that keeps one (Mosquitto's
 * dynamic security, dynsec.ts). Pairing adds a box while it still holds the box's secret in memory
 * (the store keeps only a hash, so this is the one moment the broker can be given it); a revocation
 * removes it, which also cuts the box off; at start the cloud brings the broker in line with the
 * store.
 *
 * The embedded broker and EMQX (which asks the cloud at each login, cloud/http/emqx-auth.ts) check
 * the store themselves: their accounts are `STORE_CHECKED_ACCOUNTS`, which does nothing.
 */
export interface BrokerAccounts {
  /** Before the pairing is committed: a failure here refuses the pairing and leaves the code unused. */
  add(deviceId: string, secret: string): Promise<void>;
  /** Removes the box's account and disconnects it; a box the broker does not know is not an error. */
  remove(deviceId: string): Promise<void>;
  /** Makes the broker's accounts match the store's devices: what it found and did. */
  resync(store: Pick<CloudStore, 'listDevices'>): Promise<ResyncReport>;
  close(): Promise<void>;
}

export interface ResyncReport {
  /** Accounts removed: revoked boxes, and accounts of boxes the store does not have. */
  removed: string[];
  /** Active boxes the broker has no account for: they cannot log in until paired again. */
  missing: string[];
  /** Active boxes whose account lacked its own-topics role, given it again. */
  repaired: string[];
}

export const STORE_CHECKED_ACCOUNTS: BrokerAccounts = {
  add: async () => undefined,
  remove: async () => undefined,
  resync: async () => ({ removed: [], missing: [], repaired: [] }),
  close: async () => undefined,
};
