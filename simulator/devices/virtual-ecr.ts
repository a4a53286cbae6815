import { pino, type Logger } from 'pino';
import {
  ECR_VERSION,
  EcrInbound,
  EcrOutbound,
  type Currency,
  type EcrError,
  type EcrHelloReply,
  type EcrProgress,
  type EcrRefund,
  type EcrRefundResult,
  type EcrResult,
  type EcrTotalsReply,
} from '../../protocol/index.js';
import { LineReader } from './line-reader.js';
import { openSerialEnd, type SerialEnd } from './serial-end.js';
import { TERMINATORS, type Terminator } from './terminator.js';

/**
 * The typed client of the ECR line protocol (protocol/ecr.ts, protocol/ECR.md): the cash register.
 * It rings up sales and cancels them, says hello and looks sales up (ECR v2), asks for refunds and
 * the day's totals, and collects what the box answers — a v2 box's numbered lines or a v1 box's
 * plain ones. Tests, the demo and a POS vendor's own scripts (`VirtualEcr.open('/dev/pts/7')`
 * against `scanbox-sim counter`) wait for answers with `waitFor`, never with sleeps.
 */
export interface VirtualEcrDeps {
  end: SerialEnd;
  terminator?: Terminator;
  logger?: Logger;
}

/** A refund as the register asks for it: the sale by `ref` (or by the receipt's `outTradeNo`), the register's own `refundRef`. */
export type RefundRequest = Omit<EcrRefund, 'type' | 'v' | 'currency'> & { currency?: Currency };

/** What a `totals` line is answered with: the day's figures, or an error. */
export type TotalsAnswer = EcrTotalsReply | EcrError;

/** What a `lookup` is answered with: the result again, the current stage (both `lookup: true`), or an error (SALE_UNKNOWN). */
export type LookupAnswer = EcrResult | EcrProgress | EcrError;

interface Waiter {
  predicate: (m: EcrOutbound) => boolean;
  resolve: (m: EcrOutbound) => void;
}

export class VirtualEcr {
  /** Every answer the box sent, in order. */
  readonly received: EcrOutbound[] = [];
  /** Lines from the box that are not valid EcrOutbound (a protocol bug on the box). */
  readonly unreadable: string[] = [];
  /**
   * Lines that repeat a numbered line already received (same `seq`), lookup answers aside: what a
   * register recognises and does not act on twice (a result re-sent after the box restarted).
   */
  readonly repeats: EcrOutbound[] = [];
  private readonly seenSeq = new Set<number>();
  private readonly waiters = new Set<Waiter>();
  private readonly unsubscribe: () => void;
  private readonly log: Logger;
  /** Set when this client opened the port itself (`open`): then `close` closes it too. */
  private ownedEnd: SerialEnd | undefined;

  constructor(private readonly deps: VirtualEcrDeps) {
    this.log = deps.logger ?? pino({ level: 'silent' });
    const reader = new LineReader({ onLine: (l) => this.onLine(l) });
    this.unsubscribe = deps.end.onData((chunk) => reader.push(chunk));
  }

  /** A register on a serial device: a real box's ECR port, or the one `scanbox-sim counter` prints. */
  static async open(path: string, opts: Omit<VirtualEcrDeps, 'end'> & { baudRate?: number } = {}): Promise<VirtualEcr> {
    const { baudRate, ...deps } = opts;
    const end = await openSerialEnd(path, baudRate);
    const ecr = new VirtualEcr({ ...deps, end });
    ecr.ownedEnd = end;
    return ecr;
  }

  sale(ref: string, amount: number, currency: Currency = 'CNY'): Promise<void> {
    return this.send({ type: 'sale', ref, amount, currency });
  }

  cancel(ref: string): Promise<void> {
    return this.send({ type: 'cancel', ref });
  }

  /** ECR v2: introduce this register (what it must do after every start of its own) and await the box's hello. */
  async hello(name?: string, timeoutMs = 5_000): Promise<EcrHelloReply> {
    const mark = this.mark();
    await this.send({ type: 'hello', v: ECR_VERSION, ...(name === undefined ? {} : { name }) });
    return (await this.waitFor((m) => m.type === 'hello', timeoutMs, mark)) as EcrHelloReply;
  }

  /** ECR v2: what became of a sale — its result again, its current stage (both `lookup: true`), or SALE_UNKNOWN. */
  async lookup(ref: string, timeoutMs = 5_000): Promise<LookupAnswer> {
    const mark = this.mark();
    await this.send({ type: 'lookup', v: ECR_VERSION, ref });
    return (await this.waitFor((m) => m.ref === ref && (m.type === 'error' || ((m.type === 'result' || m.type === 'progress') && m.lookup === true)), timeoutMs, mark)) as LookupAnswer;
  }

  /** ECR v2 `refund` (when the box's hello lists it): sends the line; `refundResultFor` awaits the outcome. */
  refund(request: RefundRequest): Promise<void> {
    return this.send({ type: 'refund', v: ECR_VERSION, currency: 'CNY', ...request });
  }

  /** The one `refund_result` line of a refund (not a repeat answering the same refund line again). */
  async refundResultFor(refundRef: string, timeoutMs = 5_000): Promise<EcrRefundResult> {
    return (await this.waitFor((m) => m.type === 'refund_result' && m.refundRef === refundRef && m.lookup !== true, timeoutMs)) as EcrRefundResult;
  }

  /** ECR v2 `totals` (when the box's hello lists it): the business day's figures (`date` yyyy-MM-dd, default today in Beijing). */
  async totals(date?: string, timeoutMs = 10_000): Promise<TotalsAnswer> {
    const mark = this.mark();
    await this.send({ type: 'totals', v: ECR_VERSION, ...(date === undefined ? {} : { date }) });
    return (await this.waitFor((m) => m.type === 'totals' || (m.type === 'error' && m.ref === undefined), timeoutMs, mark)) as TotalsAnswer;
  }

  send(message: EcrInbound): Promise<void> {
    return this.sendRaw(JSON.stringify(EcrInbound.parse(message)));
  }

  /** Any line, valid or not (fuzzing the box's ECR reader). */
  sendRaw(line: string): Promise<void> {
    return this.deps.end.write(`${line}${TERMINATORS[this.deps.terminator ?? 'LF']}`);
  }

  /** Index to pass as `since` so a wait only sees answers that arrive after this point. */
  mark(): number {
    return this.received.length;
  }

  /** The first answer (from index `since` on) matching `predicate`; rejects after `timeoutMs`. */
  waitFor(predicate: (m: EcrOutbound) => boolean, timeoutMs = 5_000, since = 0): Promise<EcrOutbound> {
    const seen = this.received.slice(since).find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        const got = this.received.map((m) => JSON.stringify(m)).join('\n  ');
        reject(new Error(`ECR: no matching answer within ${timeoutMs} ms; received:\n  ${got || '(nothing)'}`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** The one `result` line of a sale (not a lookup answer repeating it). */
  async resultFor(ref: string, timeoutMs = 5_000): Promise<EcrResult> {
    return (await this.waitFor((m) => m.type === 'result' && m.ref === ref && m.lookup !== true, timeoutMs)) as EcrResult;
  }

  /** Result lines received, lookup answers not counted. */
  results(ref?: string): EcrResult[] {
    return this.received.filter((m): m is EcrResult => m.type === 'result' && m.lookup !== true && (ref === undefined || m.ref === ref));
  }

  /** The highest `seq` received so far (0 before any numbered line, and from a v1 box). */
  lastSeq(): number {
    let max = 0;
    for (const s of this.seenSeq) max = Math.max(max, s);
    return max;
  }

  /** Stops reading; a port this client opened itself (`open`) is closed too. */
  async close(): Promise<void> {
    this.unsubscribe();
    await this.ownedEnd?.close();
  }

  private onLine(line: string): void {
    if (line === '') return;
    const message = parseOutbound(line);
    if (!message) {
      this.log.warn({ line: line.slice(0, 200) }, 'unreadable line from the box');
      this.unreadable.push(line);
      return;
    }
    this.received.push(message);
    if (message.seq !== undefined) {
      const lookup = 'lookup' in message && message.lookup === true;
      if (this.seenSeq.has(message.seq) && !lookup) this.repeats.push(message);
      this.seenSeq.add(message.seq);
    }
    for (const w of this.waiters) {
      if (!w.predicate(message)) continue;
      this.waiters.delete(w);
      w.resolve(message);
    }
  }
}

function parseOutbound(line: string): EcrOutbound | undefined {
  try {
    const r = EcrOutbound.safeParse(JSON.parse(line));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}
