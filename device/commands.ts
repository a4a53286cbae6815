import type { Logger } from 'pino';
import { ErrorCode, UNKNOWN, isFinal, type DownMessage } from '../protocol/index.js';
import type { Clock } from '../protocol/clock.js';
import type { Journal } from './journal.js';
import { isOpenAttempt, type Book, type PaymentEvent } from './payment.js';
import { isFinalBoxRefund } from './refund.js';

/**
 * Commands from the cloud (`down/command`): `resync`, `reboot`, `unpair`, `doctor`. The decisions are
 * pure functions of the book and the outbox; `CloudCommands` is the small shell the agent calls.
 * `doctor` changes nothing: the agent runs its checks and answers on up/doctor (doctor-report.ts).
 *
 * The box leaves by exiting with a status of its own and lets its supervisor start it again (the
 * shipped unit restarts on every status but 2): after `reboot` the same box resumes its journal;
 * after `unpair` it has no credentials, so `start --wait-for-pairing` waits for a pairing QR. That is
 * the cold-boot path every box already takes, with nothing of the old identity left in memory (MQTT
 * session and its in-memory store, timers, open ports) — simpler and sturdier than re-wiring a
 * running process.
 */

/** Exit status after `reboot` (EX_TEMPFAIL): not 0, so `Restart=on-failure` restarts it too. */
export const EXIT_REBOOT = 75;
/** Exit status after `unpair`: credentials wiped; the restart comes up in pairing mode. */
export const EXIT_UNPAIRED = 76;

/** Journal `config` keys: an unpair in progress (survives a crash), and the last command carried out. */
export const UNPAIR_SETTING = 'unpair';
export const LAST_COMMAND_SETTING = 'last_command';

// ── the pure part ────────────────────────────────────────────────────────────────────────────────

export type CommandAction =
  | { kind: 'resync' | 'reboot' | 'unpair' | 'doctor' }
  | { kind: 'ignore'; level: 'info' | 'warn'; why: string };

export interface CommandState {
  /** An unpair is under way (or the box is already leaving). */
  unpairing: boolean;
  /** Id of the last command carried out, as journaled (a broker may deliver it again after a restart). */
  lastHandled: string | null;
}

/** A command as read: one this box knows, or UNKNOWN (a newer cloud's). */
export type CommandName = DownMessage<'command'>['command'];

export function decideCommand(command: CommandName, id: string, state: CommandState): CommandAction {
  if (command === UNKNOWN) return { kind: 'ignore', level: 'warn', why: 'cloud command not supported by this agent; ignored' };
  if (id === state.lastHandled) return { kind: 'ignore', level: 'info', why: 'cloud command already carried out (delivered again); ignored' };
  // Neither a resync nor a doctor changes what the unpair waits for: both are still served.
  if (state.unpairing && command !== 'resync' && command !== 'doctor') return { kind: 'ignore', level: 'info', why: 'cloud command ignored: the box is unpairing' };
  return { kind: command };
}

/** What an unpair still waits for. Empty lists and an empty outbox: the box may go. */
export interface UnpairProgress {
  /** Attempts without a final result (the cloud drives each to one: the box waits, or hands it over). */
  openAttempts: string[];
  /** Refunds the register asked for without a final result: money in flight too, waited for or handed over alike. */
  openRefunds: string[];
  /** Refs of sales still OPEN or CANCELLING. */
  openSales: string[];
  /** Refs of OPEN sales with no payment in flight: closed at once, since no new code is taken. */
  toClose: string[];
  /** Refs of final sales (and refund refs of final refunds) whose result line the cash register has not been given. */
  unreported: string[];
  outboxDepth: number;
  done: boolean;
}

export function unpairProgress(book: Book, outboxDepth: number): UnpairProgress {
  const attempts = Object.values(book.attempts);
  const paying = new Set(attempts.filter(isOpenAttempt).map((a) => a.saleId));
  const sales = Object.values(book.sales);
  const openAttempts = attempts.filter((a) => !isFinal(a.state)).map((a) => a.outTradeNo);
  const openSales = sales.filter((s) => s.state === 'OPEN' || s.state === 'CANCELLING').map((s) => s.ref);
  const toClose = sales.filter((s) => s.state === 'OPEN' && !paying.has(s.saleId)).map((s) => s.ref);
  const refunds = Object.values(book.refunds);
  const openRefunds = refunds.filter((r) => !isFinalBoxRefund(r)).map((r) => r.refundId);
  const unreported = [
    ...sales.filter((s) => (s.state === 'PAID' || s.state === 'NOT_PAID') && !s.reported).map((s) => s.ref),
    ...refunds.filter((r) => isFinalBoxRefund(r) && !r.reported).map((r) => r.refundRef),
  ];
  const done = openAttempts.length === 0 && openRefunds.length === 0 && openSales.length === 0 && unreported.length === 0 && outboxDepth === 0;
  return { openAttempts, openRefunds, openSales, toClose, unreported, outboxDepth, done };
}

/** While unpairing, a `sale` line is refused only when it would open a new sale; one the box has is answered as always. */
export function refusesSale(book: Book, ref: string): boolean {
  return !Object.values(book.sales).some((s) => s.ref === ref);
}

/** While unpairing, a refund line is answered only when its refundRef is known (a repeat); a new refund is refused. */
export function refusesRefund(book: Book, refundRef: string): boolean {
  return !Object.values(book.refunds).some((r) => r.refundRef === refundRef);
}

interface UnpairMark {
  id: string;
  deviceId: string;
  deadline: number;
}

/** The journaled mark of an unpair in progress; anything unreadable, or another identity's, is no unpair. */
export function readUnpairMark(raw: string | null, deviceId: string): UnpairMark | null {
  if (raw === null) return null;
  try {
    const m = JSON.parse(raw) as Partial<UnpairMark>;
    if (typeof m.id !== 'string' || typeof m.deadline !== 'number' || m.deviceId !== deviceId) return null;
    return { id: m.id, deviceId, deadline: m.deadline };
  } catch {
    return null;
  }
}

// ── the shell ────────────────────────────────────────────────────────────────────────────────────

export interface CloudCommandsDeps {
  clock: Clock;
  log: Logger;
  journal: Journal;
  deviceId: string;
  unpairWaitMs: number;
  book: () => Book;
  outboxDepth: () => number;
  dispatch: (event: PaymentEvent) => void;
  /** The agent's graceful stop: the current journal write done, ports and link closed, journal closed. */
  stop: () => Promise<void>;
  /** Run the checks and answer the command `commandId` on up/doctor (doctor-report.ts RemoteDoctor). */
  doctor: (commandId: string) => void;
  /** Ends the process with this status (the CLI); an in-process agent is only stopped. */
  exit?: (status: number) => void;
}

export class CloudCommands {
  private unpair: UnpairMark | null = null;
  private leaving = false;
  private timer: unknown = null;
  /** Sales already closed for the unpair: asked once each. */
  private readonly closed = new Set<string>();

  constructor(private readonly deps: CloudCommandsDeps) {}

  get unpairing(): boolean {
    return this.unpair !== null || this.leaving;
  }

  handle(msg: DownMessage<'command'>): void {
    const d = this.deps;
    const action = decideCommand(msg.command, msg.id, { unpairing: this.unpairing, lastHandled: d.journal.getSetting(LAST_COMMAND_SETTING) });
    if (action.kind === 'ignore') return d.log[action.level]({ command: msg.command, commandId: msg.id }, action.why);
    d.log.info({ command: msg.command, commandId: msg.id }, 'cloud command');
    if (action.kind === 'resync') return d.dispatch({ type: 'resync' });
    if (action.kind === 'doctor') return d.doctor(msg.id);
    if (action.kind === 'reboot') {
      // Journaled first: if the broker delivers it again after the restart, it is not a second reboot.
      d.journal.setSetting(LAST_COMMAND_SETTING, msg.id);
      return this.leave(EXIT_REBOOT, { commandId: msg.id }, 'reboot: leaving for the supervisor to start the box again');
    }
    const mark: UnpairMark = { id: msg.id, deviceId: d.deviceId, deadline: d.clock.now() + d.unpairWaitMs };
    // Journaled so that a box that crashes while draining carries on with the same deadline when it is back.
    d.journal.setSetting(UNPAIR_SETTING, JSON.stringify(mark));
    this.begin(mark);
  }

  /** At start: an unpair interrupted by a crash or power cut goes on, with its first deadline. */
  resume(): void {
    const mark = readUnpairMark(this.deps.journal.getSetting(UNPAIR_SETTING), this.deps.deviceId);
    if (!mark) return;
    this.deps.log.info({ commandId: mark.id, deadline: mark.deadline }, 'unpair interrupted by a restart: carrying on');
    this.begin(mark);
  }

  /** True when the line is refused (an error line goes to the register); false: the agent handles it. */
  refuseSale(ref: string): boolean {
    if (!this.unpairing || !refusesSale(this.deps.book(), ref)) return false;
    this.deps.dispatch({ type: 'ecrBadLine', code: ErrorCode.UNPAIRING, message: 'box is being unpaired: no new sale; take another payment method', ref });
    return true;
  }

  refuseRefund(refundRef: string, ref: string | undefined): boolean {
    if (!this.unpairing || !refusesRefund(this.deps.book(), refundRef)) return false;
    this.deps.dispatch({ type: 'ecrBadLine', code: ErrorCode.UNPAIRING, message: 'box is being unpaired: no new refund; refund at another box', ...(ref === undefined ? {} : { ref }) });
    return true;
  }

  /** Called after every state change: while unpairing, closes what waits for a code and leaves once nothing is in flight. */
  changed(): void {
    if (!this.unpair || this.leaving) return;
    const p = unpairProgress(this.deps.book(), this.deps.outboxDepth());
    const ref = p.toClose.find((r) => !this.closed.has(r));
    if (ref !== undefined) {
      this.closed.add(ref);
      this.deps.log.info({ saleRef: ref, commandId: this.unpair.id }, 'unpair: closing a sale that waits for a code');
      // Its own change comes back here, and the next sale (if any) is closed then.
      return this.deps.dispatch({ type: 'ecrCancel', ref });
    }
    if (p.done) this.finishUnpair(p);
  }

  private begin(mark: UnpairMark): void {
    const d = this.deps;
    this.unpair = mark;
    const p = unpairProgress(d.book(), d.outboxDepth());
    const waitMs = Math.max(0, mark.deadline - d.clock.now());
    d.log.info({ commandId: mark.id, waitMs, openAttempts: p.openAttempts, openRefunds: p.openRefunds, openSales: p.openSales, outboxDepth: p.outboxDepth }, 'unpairing: no new sale; waiting for what is in flight');
    d.clock.clearTimeout(this.timer);
    this.timer = d.clock.setTimeout(() => this.finishUnpair(unpairProgress(d.book(), d.outboxDepth())), waitMs);
    this.changed();
  }

  private finishUnpair(p: UnpairProgress): void {
    const d = this.deps;
    const mark = this.unpair;
    if (!mark || this.leaving) return;
    const commandId = mark.id;
    // The cloud owns every attempt it received and drives it to a final state; the journal keeps the box's copy.
    for (const outTradeNo of p.openAttempts) d.log.warn({ outTradeNo, commandId }, 'unpair: attempt not final in time; handed over to the cloud (the journal keeps it)');
    for (const refundId of p.openRefunds) d.log.warn({ refundId, commandId }, 'unpair: refund not final in time; handed over to the cloud (the journal keeps it)');
    if (p.outboxDepth > 0) d.log.warn({ outboxDepth: p.outboxDepth, commandId }, 'unpair: messages not delivered in time; kept in the journal');
    if (p.unreported.length > 0) d.log.warn({ saleRefs: p.unreported, commandId }, 'unpair: result lines the cash register did not take; `lookup` still answers them from the journal');
    try {
      d.journal.transaction(() => {
        d.journal.wipeCredentials();
        d.journal.sql('DELETE FROM config WHERE key = ?').run(UNPAIR_SETTING);
      });
    } catch (err) {
      // The mark stays with the credentials: the restarted agent resumes this unpair and tries again.
      d.log.error({ commandId, err: (err as Error).message }, 'unpair: the credentials could not be wiped; restarting to try again');
      return this.leave(EXIT_REBOOT, { commandId }, 'unpair: leaving for the supervisor to start the box again');
    }
    d.log.info({ commandId, handedOver: p.openAttempts.length + p.openRefunds.length }, 'unpaired: credentials wiped, journal kept');
    this.leave(EXIT_UNPAIRED, { commandId }, 'unpair: leaving for the supervisor to start the box in pairing mode');
  }

  /**
   * Graceful stop, then the exit status; never twice. Deferred past the current call: the step being
   * dispatched finishes, and mqtt.js writes the command's PUBACK as soon as its handler returns.
   */
  private leave(status: number, fields: Record<string, unknown>, msg: string): void {
    if (this.leaving) return;
    this.leaving = true;
    this.deps.clock.clearTimeout(this.timer);
    this.deps.log.info({ ...fields, exitStatus: status }, msg);
    void Promise.resolve()
      .then(() => this.deps.stop())
      .catch((err: unknown) => this.deps.log.error({ err: (err as Error).message }, 'stop before exit failed'))
      .then(() => this.deps.exit?.(status));
  }
}
