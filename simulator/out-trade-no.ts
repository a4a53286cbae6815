import { OUT_TRADE_NO_PATTERN } from '../protocol/index.js';

/** The box an attempt belongs to: outTradeNo is `<deviceId>-<seq>` (protocol/fields.ts). */
export function deviceIdOf(outTradeNo: string): string {
  return OUT_TRADE_NO_PATTERN.exec(outTradeNo)?.[1] ?? outTradeNo;
}

/** By box, then by sequence number, so a box's attempts read in the order they happened. */
export function compareOutTradeNo(a: string, b: string): number {
  const [, da = a, sa = '0'] = OUT_TRADE_NO_PATTERN.exec(a) ?? [];
  const [, db = b, sb = '0'] = OUT_TRADE_NO_PATTERN.exec(b) ?? [];
  return da === db ? Number(sa) - Number(sb) : da < db ? -1 : 1;
}
