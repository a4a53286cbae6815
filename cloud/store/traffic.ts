import { ErrorCode, ProtocolError } from '../../protocol/index.js';
import type { Row } from './rows.js';
import type { TrafficRow } from './store.js';

/**
 * What `addTraffic` writes, the same on every store: each flow with a count to add, zeros left out.
 * A count that is not a whole number ≥ 0 is refused before anything is written: a chart's minute
 * must never go down, nor take half a payment.
 */
export function trafficEntries(minute: number, counts: Readonly<Record<string, number>>): Array<[flow: string, count: number]> {
  if (!Number.isSafeInteger(minute)) throw new ProtocolError(ErrorCode.SCHEMA_INVALID, `traffic minute ${minute} is not a whole epoch ms`);
  const entries = Object.entries(counts);
  const bad = entries.find(([flow, n]) => !flow || !Number.isSafeInteger(n) || n < 0);
  if (bad) throw new ProtocolError(ErrorCode.SCHEMA_INVALID, `traffic count ${JSON.stringify(bad[0])}: ${bad[1]} is not a whole number ≥ 0`);
  return entries.filter(([, n]) => n > 0);
}

export function toTrafficRow(r: Row): TrafficRow {
  return { minute: Number(r.minute), flow: r.flow as string, count: Number(r.count) };
}
