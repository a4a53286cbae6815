import type { Logger } from 'pino';
import {
  ErrorCode,
  ProtocolError,
  businessDateOf,
  isFinal,
  type DeviceStatus,
  type DownKind,
  type DownMessage,
  type EcrInbound,
  type PortState,
} from '../protocol/index.js';
import type { Clock } from '../protocol/clock.js';
import { CloudCommands } from './commands.js';
import { readCaFile, type DeviceConfig } from './config.js';
import { RemoteDoctor, type RemoteDoctorDeps } from './doctor-report.js';
import { ConsoleDisplay, type Display } from './display.js';
import { EcrLink } from './ecr.js';
import { Journal, type SyncMode } from './journal.js';
import { CloudLink, type MqttConnect } from './link.js';
import { Outbox, OutboxPump, type OutboxRow } from './outbox.js';
import { DAY_MS, JournalHousekeeping, heldIn } from './retention.js';
import { nextWakeAt, step, type Book, type Effect, type PaymentEvent, type PaymentRules } from './payment.js';
import type { Refund } from './refund.js';
import { ScannerReader } from './scanner.js';
import { recordLink } from './status.js';
import type { SerialFactory } from './serial-port.js';
import { FIRMWARE_VERSION } from './version.js';

/** Everything the agent touches in the outside world, passed in once so tests can replace any of it. */
export interface AgentDeps {
  clock: Clock;
  random: () => number;
  openSerial: SerialFactory;
  connectMqtt: MqttConnect;
  logger: Logger;
  /** Defaults to a ConsoleDisplay on the agent's logger (which carries the device id). */
  display?: Display;
  /** After a cloud `reboot` or `unpair` the agent stops, then calls this with its exit status (commands.ts). */
  exit?: (status: number) => void;
  /** The doctor's disk and cloud-time probes, for a cloud `doctor` (the real ones by default). */
  doctor?: Pick<RemoteDoctorDeps, 'statfs' | 'httpDate'>;
}

export interface Agent {
  readonly deviceId: string;
  readonly display: Display;
  status(): DeviceStatus & { deviceId: string; online: boolean };
  /** The payment state machine's current book (read-only view for tests and diagnostics). */
  book(): Book;
  stop(): Promise<void>;
}

const CONTACT_SAVE_EVERY_MS = 5_000;
/** Far above a healthy PUBACK (well under a millisecond on a LAN, seconds on a bad mobile link). */
const PUBACK_STALL_MS = 15_000;

/**
 * The thin I/O shell around the pure payment state machine: it turns serial lines, MQTT messages
 * and timers into events, commits each step's journal effects in one transaction, and only then
 * performs the outward effects (outbox publish, cash-register line, screen, log).
 */
class AgentShell implements Agent {
  readonly deviceId: string;
  readonly display: Display;
  private bookState: Book;
  private readonly log: Logger;
  private readonly outbox: Outbox;
  private readonly pump: OutboxPump;
  private readonly link: CloudLink;
  private readonly scanner: ScannerReader;
  private readonly ecr: EcrLink;
  private readonly commands: CloudCommands;
  private readonly housekeeping: JournalHousekeeping;
  private readonly startedAt: number;
  /** Start on the monotonic clock: uptime must not go negative when the wall clock is stepped back. */
  private readonly startedMono: number;
  private wakeTimer: unknown = null;
  private lastContactSaved = 0;
  private stopped = false;

  constructor(
    private readonly config: DeviceConfig,
    private readonly deps: AgentDeps,
    private readonly journal: Journal,
  ) {
    const creds = journal.credentials();
    if (!creds) {
      throw new ProtocolError(
        ErrorCode.NOT_PAIRED,
        `box is not paired: run \`scanbox-device pair --code CODE --cloud URL --data ${config.dataDir}\` first, or start with --wait-for-pairing and scan the pairing QR`,
      );
    }
    this.deviceId = creds.deviceId;
    this.log = deps.logger.child({ deviceId: creds.deviceId });
    this.display = deps.display ?? new ConsoleDisplay(this.log);
    this.startedAt = deps.clock.now();
    this.startedMono = this.monotonicNow();
    const rules: PaymentRules = { paymentDeadlineMs: config.paymentDeadlineMs, saleDeadlineMs: config.saleDeadlineMs, recheckMs: config.recheckMs };
    this.bookState = journal.loadBook(creds.deviceId, rules, this.startedAt);
    this.outbox = new Outbox(journal);
    this.outbox.dropStaleQueries();
    const view = () => ({ config, journal, ports: { scanner: this.scanner.port.state, ecr: this.ecr.port.state }, online: this.link.connected });
    const doctor = new RemoteDoctor({ clock: deps.clock, log: this.log, deviceId: this.deviceId, view, publish: (t, p, done) => this.link.publish(t, p, done), ...deps.doctor });
    this.commands = new CloudCommands({
      ...{ clock: deps.clock, log: this.log, journal, deviceId: this.deviceId, unpairWaitMs: config.unpairWaitMs, exit: deps.exit },
      ...{ book: () => this.bookState, outboxDepth: () => this.outbox.depth(), dispatch: (e) => this.dispatch(e), stop: () => this.stop(), doctor: (id) => doctor.ask(id) },
    });
    this.housekeeping = new JournalHousekeeping({ journal, clock: deps.clock, log: this.log, retentionMs: config.retentionDays * DAY_MS, held: () => heldIn(this.bookState) });
    this.link = this.makeLink(config.mqttUrl ?? creds.mqttUrl, creds.secret);
    this.pump = new OutboxPump({
      outbox: this.outbox,
      publisher: this.link,
      deviceId: this.deviceId,
      onDelivered: (row) => this.delivered(row),
      onError: (row, err) => this.log.warn({ outTradeNo: row.outTradeNo, kind: row.kind, err: err.message }, 'outbox publish failed; kept for the next connect'),
      onStall: (row) => this.link.reconnectNow(`no PUBACK for ${row.kind} ${row.outTradeNo}`),
      clock: deps.clock,
      stallMs: PUBACK_STALL_MS,
    });
    const serial = { clock: deps.clock, random: deps.random, factory: deps.openSerial, backoff: config.serialReopen, log: this.log };
    this.scanner = new ScannerReader({
      ...serial,
      path: config.scannerPath,
      baudRate: config.baudRate,
      debounceMs: config.scanDebounceMs,
      handlers: {
        onScan: (code) => this.dispatch({ type: 'scan', code }),
        onReject: (err) => this.dispatch({ type: 'scanRejected', code: err.code, message: err.message }),
        onPairing: () => this.log.warn('pairing QR scanned but the box is already paired; use `scanbox-device pair --reset`'),
        onState: (s) => this.portState('scanner', s),
      },
    });
    this.ecr = new EcrLink({
      ...serial,
      path: config.ecrPath,
      baudRate: config.ecrBaudRate,
      peerVersion: journal.registerVersion(),
      handlers: {
        onPeerVersion: (v) => journal.setRegisterVersion(v),
        onMessage: (m) => this.fromEcr(m),
        onBadLine: (err, ref) => this.dispatch({ type: 'ecrBadLine', code: err.code, message: err.message, ...(ref === undefined ? {} : { ref }) }),
        onState: (s) => this.portState('ecr', s),
      },
    });
  }

  start(): void {
    this.dispatch({ type: 'restart' });
    this.scanner.start();
    this.ecr.start();
    recordLink(this.journal, 'start', this.deps.clock.now());
    this.link.start();
    this.housekeeping.start();
    const s = this.status();
    // Supervisors and the simulator wait for this line: printed at any log level but silent.
    const announce = this.log.level === 'silent' ? this.log : this.log.child({}, { level: 'info' });
    announce.info({ pendingAttempts: s.pendingAttempts, outboxDepth: s.outboxDepth, startupMs: Math.round(this.monotonicNow() - this.startedMono) }, 'ready');
    this.commands.resume();
  }

  book(): Book {
    return this.bookState;
  }

  private monotonicNow(): number {
    const c = this.deps.clock;
    return c.monotonic ? c.monotonic() : c.now();
  }

  status(): DeviceStatus & { deviceId: string; online: boolean } {
    return { ...this.deviceStatus(), deviceId: this.deviceId, online: this.link.connected };
  }

  /** Exactly the protocol's DeviceStatus: what heartbeats carry. */
  private deviceStatus(): DeviceStatus {
    const pending = Object.values(this.bookState.attempts).filter((a) => !isFinal(a.state)).length;
    return {
      firmware: FIRMWARE_VERSION,
      uptimeS: Math.max(0, Math.floor((this.monotonicNow() - this.startedMono) / 1000)),
      outboxDepth: this.outbox.depth(),
      pendingAttempts: pending,
      scanner: this.scanner.port.state,
      ecr: this.ecr.port.state,
    };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.pump.stop();
    this.deps.clock.clearTimeout(this.wakeTimer);
    await Promise.all([this.housekeeping.stop(), this.link.stop(), this.scanner.stop(), this.ecr.stop()]);
    recordLink(this.journal, 'stop', this.deps.clock.now());
    this.journal.close();
    this.log.info('stopped');
  }

  // ── the one way state changes ──────────────────────────────────────────────────────────────────

  /** `relaxed` marks bookkeeping events (PUBACK of a pay, result line written): no fsync needed. */
  private dispatch(event: PaymentEvent, mode: SyncMode = 'full', alsoInTx?: () => void): void {
    if (this.stopped) return;
    const now = this.deps.clock.now();
    let result: ReturnType<typeof step>;
    try {
      result = step(this.bookState, event, now);
      const effects = result.effects;
      const journaled = effects.filter(isJournalEffect);
      if (journaled.length > 0 || alsoInTx) {
        this.journal.transaction(() => {
          alsoInTx?.();
          for (const e of effects) this.persist(e, now);
        }, commitMode(journaled, mode));
      }
    } catch (err) {
      // Nothing was committed, so memory is left as it was too; the event is lost, money state is not.
      this.log.error({ event: event.type, err: (err as Error).message }, 'payment step failed; state unchanged');
      return;
    }
    this.bookState = result.book;
    // Publish first: a pay on the wire matters more to latency than a screen or log line.
    this.pump.kick();
    this.perform(result.effects);
    this.armWake();
    this.commands.changed();
  }

  private persist(e: Effect, now: number): void {
    if (e.kind === 'send') this.outbox.add(e.up, e.outTradeNo, e.message, now);
    else if (e.kind === 'withdrawPay') this.outbox.withdrawPay(e.outTradeNo);
    else this.journal.persist(e);
  }

  private perform(effects: Effect[]): void {
    const delivered: PaymentEvent[] = [];
    for (const e of effects) {
      try {
        if (!this.performOne(e) || e.kind !== 'ecr') continue;
        if (e.finalFor) delivered.push({ type: 'ecrDelivered', saleId: e.finalFor });
        if (e.refundFinalFor) delivered.push({ type: 'ecrRefundDelivered', refundId: e.refundFinalFor });
      } catch (err) {
        this.log.error({ effect: e.kind, err: (err as Error).message }, 'effect failed after commit');
      }
    }
    for (const event of delivered) this.dispatch(event, 'relaxed');
  }

  /** Returns false when a cash-register line could not be written (port down). */
  private performOne(e: Effect): boolean {
    if (e.kind === 'display') this.display.show(e.screen);
    else if (e.kind === 'log') this.log[e.level](e.fields, e.msg);
    else if (e.kind === 'ecr') {
      if (this.ecr.send(e.line)) return true;
      if (e.finalFor || e.refundFinalFor) this.log.warn({ saleRef: e.line.ref, type: e.line.type }, 'cash register port is down; its result line is sent when it is back');
      return false;
    }
    return true;
  }

  private armWake(): void {
    this.deps.clock.clearTimeout(this.wakeTimer);
    this.wakeTimer = null;
    const at = nextWakeAt(this.bookState);
    if (at === null || this.stopped) return;
    this.wakeTimer = this.deps.clock.setTimeout(() => this.dispatch({ type: 'tick' }), Math.max(0, at - this.deps.clock.now()));
  }

  // ── inputs ─────────────────────────────────────────────────────────────────────────────────────

  private fromEcr(m: EcrInbound): void {
    if (m.type === 'hello') {
      return this.dispatch({ type: 'ecrHello', firmware: FIRMWARE_VERSION, ...(m.v === undefined ? {} : { registerVersion: m.v }), ...(m.name === undefined ? {} : { name: m.name }) });
    }
    if (m.type === 'totals') {
      const date = m.date ?? businessDateOf(this.deps.clock.now());
      return this.dispatch({ type: 'ecrTotals', date, local: this.journal.localTotals(date) });
    }
    if (m.type === 'refund') {
      const { type: _type, v: _v, ...asked } = m;
      this.hydrateForRefund(asked);
      if (this.commands.refuseRefund(asked.refundRef, asked.ref)) return;
      return this.dispatch({ type: 'ecrRefund', ...asked });
    }
    this.hydrateRef(m.ref);
    if (m.type === 'sale' && this.commands.refuseSale(m.ref)) return;
    if (m.type === 'sale') this.dispatch({ type: 'ecrSale', ref: m.ref, amount: m.amount, currency: m.currency });
    else if (m.type === 'cancel') this.dispatch({ type: 'ecrCancel', ref: m.ref });
    else this.dispatch({ type: 'ecrLookup', ref: m.ref });
  }

  /** A ref used long ago may be known only to the journal: bring its newest sale back so it is answered, never reopened. */
  private hydrateRef(ref: string): void {
    if (Object.values(this.bookState.sales).some((s) => s.ref === ref)) return;
    const found = this.journal.loadSaleByRef(ref, this.deps.clock.now());
    if (!found) return;
    const attempts = { ...this.bookState.attempts };
    for (const a of found.attempts) attempts[a.outTradeNo] ??= a;
    this.bookState = { ...this.bookState, sales: { ...this.bookState.sales, [found.sale.saleId]: found.sale }, attempts };
    this.hydrateRefunds(found.refunds);
  }

  /** A refund line may name a sale, a payment or a refund ref known only to the journal: all of them are needed to answer it. */
  private hydrateForRefund(asked: { ref?: string; outTradeNo?: string; refundRef: string }): void {
    if (asked.ref !== undefined) this.hydrateRef(asked.ref);
    if (asked.outTradeNo !== undefined) this.hydrate(asked.outTradeNo);
    if (Object.values(this.bookState.refunds).some((r) => r.refundRef === asked.refundRef)) return;
    const known = this.journal.loadRefund({ refundRef: asked.refundRef }, this.deps.clock.now());
    if (known) this.hydrateRefunds([known]);
  }

  private hydrateRefunds(found: Refund[]): void {
    const refunds = { ...this.bookState.refunds };
    for (const r of found) refunds[r.refundId] ??= r;
    this.bookState = { ...this.bookState, refunds };
  }

  private portState(port: 'scanner' | 'ecr', state: PortState): void {
    this.log.info({ port, state }, 'port state');
    if (port === 'ecr' && state === 'open') this.dispatch({ type: 'ecrReady' });
  }

  private fromCloud<K extends DownKind>(kind: K, msg: DownMessage<K>): void {
    const m = msg as DownMessage;
    if ('outTradeNo' in m && m.outTradeNo) this.hydrate(m.outTradeNo);
    if (kind === 'result') this.dispatch({ type: 'result', message: msg as DownMessage<'result'> });
    else if (kind === 'progress') this.dispatch({ type: 'progress', message: msg as DownMessage<'progress'> });
    else if (kind === 'error') this.dispatch({ type: 'cloudError', message: msg as DownMessage<'error'> });
    else if (kind === 'refund') this.fromCloudRefund(msg as DownMessage<'refund'>);
    else if (kind === 'totals') this.dispatch({ type: 'totals', message: msg as DownMessage<'totals'> });
    else this.command(msg as DownMessage<'command'>);
  }

  private fromCloudRefund(m: DownMessage<'refund'>): void {
    if (!this.bookState.refunds[m.refundId]) {
      const known = this.journal.loadRefund({ refundId: m.refundId }, this.deps.clock.now());
      if (known) this.hydrateRefunds([known]);
    }
    this.dispatch({ type: 'refundResult', message: m });
  }

  private command(msg: DownMessage<'command'>): void {
    this.commands.handle(msg);
  }

  /** A late result may be for an attempt finished long ago and no longer held in memory. */
  private hydrate(outTradeNo: string): void {
    if (this.bookState.attempts[outTradeNo]) return;
    const found = this.journal.loadAttempt(outTradeNo, this.deps.clock.now());
    if (!found) return;
    const attempts = { ...this.bookState.attempts };
    for (const a of found.attempts) attempts[a.outTradeNo] ??= a;
    const sales = { ...this.bookState.sales, [found.sale.saleId]: this.bookState.sales[found.sale.saleId] ?? found.sale };
    this.bookState = { ...this.bookState, sales, attempts };
    this.hydrateRefunds(this.journal.refundsOfSale(found.sale.saleId, this.deps.clock.now()));
  }

  private delivered(row: OutboxRow): void {
    const remove = () => this.outbox.remove(row.id);
    if (row.kind === 'pay') this.dispatch({ type: 'paySent', outTradeNo: row.outTradeNo }, 'relaxed', remove);
    else this.journal.transaction(remove, 'relaxed');
    this.commands.changed();
  }

  private contact(): void {
    const now = this.deps.clock.now();
    // (a wall clock stepped back since the last save must not hold the next one off for the step)
    if (now >= this.lastContactSaved && now - this.lastContactSaved < CONTACT_SAVE_EVERY_MS) return;
    this.lastContactSaved = now;
    this.journal.setSetting('last_contact', String(now), 'relaxed');
  }

  private makeLink(url: string, secret: string): CloudLink {
    const c = this.config;
    return new CloudLink({
      url,
      deviceId: this.deviceId,
      secret,
      heartbeatIntervalS: c.heartbeatIntervalS,
      backoff: c.reconnect,
      connectTimeoutMs: c.connectTimeoutMs,
      keepaliveS: c.keepaliveS,
      ...(c.caFile ? { ca: readCaFile(c.caFile) } : {}),
      clock: this.deps.clock,
      random: this.deps.random,
      connect: this.deps.connectMqtt,
      logger: this.log,
      status: () => this.deviceStatus(),
      handlers: {
        onConnect: () => {
          this.pump.restart();
          this.dispatch({ type: 'linkUp' });
          recordLink(this.journal, 'up', this.deps.clock.now());
        },
        onClose: () => {
          this.dispatch({ type: 'linkDown' });
          recordLink(this.journal, 'down', this.deps.clock.now());
        },
        onDown: (kind, msg) => this.fromCloud(kind, msg),
        onContact: () => this.contact(),
      },
    });
  }
}

/** Everything but what only leaves the box (screen, log, cash-register line) is written in the step's transaction. */
function isJournalEffect(e: Effect): boolean {
  return e.kind !== 'display' && e.kind !== 'log' && e.kind !== 'ecr';
}

/**
 * Money state and money messages (pay, cancel, an ack with its result) are fsynced. A step that only
 * queues a query or a repeated ack is re-done after a power cut anyway (restart queries every open
 * attempt; the cloud re-sends unacked results), so it skips the fsync.
 */
export function commitMode(journaled: Effect[], requested: SyncMode): SyncMode {
  if (requested === 'relaxed') return 'relaxed';
  return journaled.some((e) => e.kind !== 'send' || e.up === 'pay' || e.up === 'cancel') ? 'full' : 'relaxed';
}

/** Open the journal, resume what was in flight, open the ports and the cloud link. */
export async function startAgent(config: DeviceConfig, deps: AgentDeps): Promise<Agent> {
  const journal = Journal.open(config.dataDir);
  let shell: AgentShell;
  try {
    shell = new AgentShell(config, deps, journal);
  } catch (err) {
    journal.close();
    throw err;
  }
  shell.start();
  return shell;
}
