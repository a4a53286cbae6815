import { OUT_TRADE_NO_PATTERN } from '../protocol/index.js';

export { deviceIdOf } from '../protocol/index.js';

/** By box, then by sequence number, so a box's attempts read in the order they happened. */
export function compareOutTradeNo(a: string, b: string): number {
  const [, da = a, sa = '0'] = OUT_TRADE_NO_PATTERN.exec(a) ?? [];
  const [, db = b, sb = '0'] = OUT_TRADE_NO_PATTERN.exec(b) ?? [];
  return da === db ? Number(sa) - Number(sb) : da < db ? -1 : 1;
}
