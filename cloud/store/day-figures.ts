import type { DayFigures } from './store.js';

/** One box's paid attempts or REFUNDED refunds of one wallet, as a store's GROUP BY answers them. */
export interface FigureRow {
  deviceId: string;
  storeId: string;
  wallet: string;
  count: number;
  amount: number;
}

/** The paid and refunded groups side by side, one row per box and wallet, by store, box, wallet: the same on every store. */
export function mergeDayFigures(paid: readonly FigureRow[], refunded: readonly FigureRow[]): DayFigures[] {
  const rows = new Map<string, DayFigures>();
  const rowOf = (r: FigureRow) => {
    const key = `${r.deviceId}\u0000${r.wallet}`;
    const found = rows.get(key) ?? { storeId: r.storeId, deviceId: r.deviceId, wallet: r.wallet, paidCount: 0, paidAmount: 0, refundCount: 0, refundAmount: 0 };
    rows.set(key, found);
    return found;
  };
  for (const r of paid) Object.assign(rowOf(r), { paidCount: r.count, paidAmount: r.amount });
  for (const r of refunded) Object.assign(rowOf(r), { refundCount: r.count, refundAmount: r.amount });
  const order = (x: DayFigures) => [x.storeId, x.deviceId, x.wallet];
  return [...rows.values()].sort((x, y) => compareTuples(order(x), order(y)));
}

function compareTuples(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return 0;
}
