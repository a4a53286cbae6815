import { pino, type Logger } from 'pino';
import { EcrInbound, EcrOutbound, type Currency, type EcrResult } from '../../protocol/index.js';
import { LineReader } from './line-reader.js';
import type { SerialEnd } from './serial-end.js';
import { TERMINATORS, type Terminator } from './terminator.js';

/**
 * The cash register: rings up sales and cancels them as JSON lines (protocol/ecr.ts), and collects
 * what the box answers. Tests and the demo wait for answers with `waitFor`, never with sleeps.
 */
export interface VirtualEcrDeps {
  end: SerialEnd;
  terminator?: Terminator;
  logger?: Logger;
}

interface Waiter {
  predicate: (m: EcrOutbound) => boolean;
  resolve: (m: EcrOutbound) => void;
}

export class VirtualEcr {
  /** Every answer the box sent, in order. */
  readonly received: EcrOutbound[] = [];
  /** Lines from the box that are not valid EcrOutbound (a protocol bug on the box). */
  readonly unreadable: string[] = [];
  private readonly waiters = new Set<Waiter>();
  private readonly unsubscribe: () => void;
  private readonly log: Logger;

  constructor(private readonly deps: VirtualEcrDeps) {
    this.log = deps.logger ?? pino({ level: 'silent' });
    const reader = new LineReader({ onLine: (l) => this.onLine(l) });
    this.unsubscribe = deps.end.onData((chunk) => reader.push(chunk));
  }

  sale(ref: string, amount: number, currency: Currency = 'CNY'): Promise<void> {
    return this.send({ type: 'sale', ref, amount, currency });
  }

  cancel(ref: string): Promise<void> {
    return this.send({ type: 'cancel', ref });
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

  /** The one `result` line of a sale. */
  async resultFor(ref: string, timeoutMs = 5_000): Promise<EcrResult> {
    return (await this.waitFor((m) => m.type === 'result' && m.ref === ref, timeoutMs)) as EcrResult;
  }

  results(ref?: string): EcrResult[] {
    return this.received.filter((m): m is EcrResult => m.type === 'result' && (ref === undefined || m.ref === ref));
  }

  close(): void {
    this.unsubscribe();
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
