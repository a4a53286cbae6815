import { isProtocolError, ErrorCode } from '../protocol/index.js';
import { Journal } from './journal.js';
import { Outbox } from './outbox.js';

/** What `scanbox-device status` reports, read from the journal without disturbing a running agent. Never the secret. */
export interface BoxStatus {
  paired: boolean;
  deviceId: string | null;
  merchantId: string | null;
  storeId: string | null;
  mqttUrl: string | null;
  pendingAttempts: number;
  outboxDepth: number;
  lastContact: number | null;
  schemaVersion: number;
}

export function readStatus(dataDir: string): BoxStatus {
  let journal: Journal;
  try {
    journal = Journal.open(dataDir, { readonly: true });
  } catch (err) {
    if (isProtocolError(err, ErrorCode.NOT_PAIRED)) return unpaired();
    throw err;
  }
  try {
    const c = journal.credentials();
    const last = journal.getSetting('last_contact');
    return {
      paired: c !== null,
      deviceId: c?.deviceId ?? null,
      merchantId: c?.merchantId ?? null,
      storeId: c?.storeId ?? null,
      mqttUrl: c?.mqttUrl ?? null,
      pendingAttempts: journal.pendingAttempts(),
      outboxDepth: new Outbox(journal).depth(),
      lastContact: last === null ? null : Number(last),
      schemaVersion: journal.schemaVersion(),
    };
  } finally {
    journal.close();
  }
}

function unpaired(): BoxStatus {
  return { paired: false, deviceId: null, merchantId: null, storeId: null, mqttUrl: null, pendingAttempts: 0, outboxDepth: 0, lastContact: null, schemaVersion: 0 };
}
