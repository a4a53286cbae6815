import { join } from 'node:path';
import { isProtocolError, ErrorCode } from '../protocol/index.js';
import type { FileHolders } from './doctor.js';
import { Journal, JOURNAL_FILE } from './journal.js';
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
  /** The ECR version the box writes to its cash register: 2 once a register showed it reads v2 (kept across restarts). */
  registerVersion: number;
  /** Connected to the cloud right now: the running agent's link is up and it heard from the cloud lately. */
  online: boolean;
  /** Since when it has been online, or offline (ms since the epoch); null when the journal has no record yet. */
  since: number | null;
  /** Whether an agent holds the journal open; null when other users' processes could not be looked into. */
  agentRunning: boolean | null;
}

/**
 * The cloud link as the running agent records it in the journal (setting `link`), on every change:
 * a box's status then says "online since 09:14" or "offline since 11:02" without asking the agent.
 */
export interface LinkRecord {
  online: boolean;
  since: number;
}
export const LINK_SETTING = 'link';
/** The agent hears from the cloud at least every heartbeat (30 s by default); silence beyond this is not "online". */
export const CONTACT_FRESH_MS = 120_000;

/**
 * `start`: the agent (re)starts with its link down. A record still saying online is left from an
 * agent that died without saying so (power cut, kill -9): it went offline at its last contact.
 * `up` / `down` / `stop`: the link changed now. Bookkeeping: a lost record costs a wrong "since",
 * never money, so it is written without an fsync (it is durable with the next money commit).
 */
export function recordLink(journal: Journal, event: 'start' | 'up' | 'down' | 'stop', now: number): void {
  try {
    const was = readLink(journal);
    const online = event === 'up';
    if (was && was.online === online) return;
    let since = now;
    const lastContact = Number(journal.getSetting('last_contact'));
    if (event === 'start' && was?.online && Number.isFinite(lastContact) && lastContact > 0) since = Math.min(now, lastContact);
    journal.setSetting(LINK_SETTING, JSON.stringify({ online, since } satisfies LinkRecord), 'relaxed');
  } catch {
    // Called from link events and from stop(): this record must never be what takes the agent down.
    // A journal that cannot take the write fails the next money commit, which is logged and handled.
  }
}

function readLink(journal: Journal): LinkRecord | null {
  const raw = journal.getSetting(LINK_SETTING);
  if (raw === null) return null;
  try {
    const r = JSON.parse(raw) as Partial<LinkRecord>;
    return typeof r.online === 'boolean' && typeof r.since === 'number' ? { online: r.online, since: r.since } : null;
  } catch {
    return null;
  }
}

export interface StatusDeps {
  now: () => number;
  /**
   * Who holds `<data>/journal.db` open: the running agent (the CLI passes doctor.ts's
   * procJournalHolders; not imported here, so the agent, which records its link here, does not load the doctor).
   */
  journalHolders: (journalPath: string) => FileHolders;
}
/** Without a way to look: whether an agent runs is unknown, and the record and last contact decide. */
const UNSEEN: StatusDeps = { now: Date.now, journalHolders: () => ({ pids: [], complete: false }) };

export function readStatus(dataDir: string, deps: StatusDeps = UNSEEN): BoxStatus {
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
    const lastContact = last === null ? null : Number(last);
    const holders = deps.journalHolders(join(dataDir, JOURNAL_FILE));
    const agentRunning = holders.pids.length > 0 ? true : holders.complete ? false : null;
    return {
      paired: c !== null,
      deviceId: c?.deviceId ?? null,
      merchantId: c?.merchantId ?? null,
      storeId: c?.storeId ?? null,
      mqttUrl: c?.mqttUrl ?? null,
      pendingAttempts: journal.pendingAttempts(),
      outboxDepth: new Outbox(journal).depth(),
      lastContact,
      schemaVersion: journal.schemaVersion(),
      registerVersion: journal.registerVersion(),
      ...linkNow(readLink(journal), lastContact, agentRunning, deps.now()),
      agentRunning,
    };
  } finally {
    journal.close();
  }
}

/**
 * The record says what the agent last saw; it is believed only while an agent runs (or may run:
 * another user's processes are hidden) and the cloud was heard lately. Otherwise the box has been
 * offline since its last contact: a dead agent, or a link that died without the agent noticing yet.
 */
function linkNow(record: LinkRecord | null, lastContact: number | null, agentRunning: boolean | null, now: number): Pick<BoxStatus, 'online' | 'since'> {
  if (!record) return { online: false, since: null };
  if (!record.online) return { online: false, since: record.since };
  const heard = lastContact !== null && now - lastContact <= CONTACT_FRESH_MS;
  if (agentRunning !== false && heard) return { online: true, since: record.since };
  return { online: false, since: lastContact ?? record.since };
}

function unpaired(): BoxStatus {
  return { paired: false, deviceId: null, merchantId: null, storeId: null, mqttUrl: null, pendingAttempts: 0, outboxDepth: 0, lastContact: null, schemaVersion: 0, registerVersion: 1, online: false, since: null, agentRunning: null };
}
