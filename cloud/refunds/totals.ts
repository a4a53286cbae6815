import { businessDayRange, WALLETS, type UpMessage, type WalletTotals } from '../../protocol/index.js';
import type { Clock } from '../../protocol/clock.js';
import type { Logger } from '../log.js';
import type { CloudStore, DayFigures } from '../store/store.js';
import type { DownLink } from './down-link.js';

/**
 * The day's figures as the cash register's `totals` line gets them (up/totals → down/totals) and as
 * the back office's report adds them up (day-report.ts): per wallet, the paid sales — SUCCESS
 * attempts whose payment time (the wallet's, else the attempt's creation) falls in the Beijing day —
 * and the refunds REFUNDED within it, counted and summed in fen. The cloud's figures are the
 * authoritative ones: the box's own journal is only its offline fallback.
 */
export type Figures = Omit<WalletTotals, 'wallet'>;

export const ZERO_FIGURES: Figures = { paidCount: 0, paidAmount: 0, refundCount: 0, refundAmount: 0 };

export function addFigures(a: Figures, b: Figures): Figures {
  return { paidCount: a.paidCount + b.paidCount, paidAmount: a.paidAmount + b.paidAmount, refundCount: a.refundCount + b.refundCount, refundAmount: a.refundAmount + b.refundAmount };
}

/** The wallets in the order a person reads them: the protocol's, then any other by name. */
export function walletOrder(a: string, b: string): number {
  const rank = (w: string) => {
    const i = (WALLETS as readonly string[]).indexOf(w);
    return i === -1 ? WALLETS.length : i;
  };
  return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0);
}

/** Rows (of one box or many) summed per wallet; a wallet with nothing is left out. */
export function walletTotals(rows: readonly DayFigures[]): WalletTotals[] {
  const by = new Map<string, Figures>();
  for (const r of rows) by.set(r.wallet, addFigures(by.get(r.wallet) ?? ZERO_FIGURES, r));
  return [...by.keys()].sort(walletOrder).map((wallet) => {
    const f = by.get(wallet)!;
    return { wallet, paidCount: f.paidCount, paidAmount: f.paidAmount, refundCount: f.refundCount, refundAmount: f.refundAmount };
  });
}

export interface TotalsServiceDeps {
  store: Pick<CloudStore, 'dayFigures'>;
  link: DownLink;
  clock: Clock;
  logger: Logger;
}

/** Answers a box's up/totals with its own figures of the day it names (down/totals, refId = the request's id). */
export class TotalsService {
  constructor(private readonly deps: TotalsServiceDeps) {}

  async handle(deviceId: string, _merchantId: string, msg: UpMessage<'totals'>): Promise<void> {
    const { from, to } = businessDayRange(msg.date);
    const wallets = walletTotals(await this.deps.store.dayFigures({ deviceId }, from, to));
    this.deps.logger.info({ deviceId, date: msg.date, wallets: wallets.length }, 'totals answered');
    const answer = { ...this.deps.link.envelope(), refId: msg.id, date: msg.date, currency: 'CNY' as const, wallets, asOf: this.deps.clock.now() };
    await this.deps.link.send(deviceId, 'totals', answer, { qos: 1, answering: msg.v });
  }
}
