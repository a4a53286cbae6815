import { formatDecimal } from '../../protocol/index.js';

/** How the dashboard writes a moment, a duration and an amount: one way everywhere, in UTC like the logs. */
export function when(at: number | null | undefined): string {
  return at === null || at === undefined ? '—' : new Date(at).toISOString().replace('T', ' ').slice(0, 19);
}

export function ago(at: number, now: number): string {
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7_200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3_600)} h`;
  return `${Math.round(s / 86_400)} d`;
}

export function money(minor: number | null | undefined, currency = 'CNY'): string {
  return minor === null || minor === undefined ? '—' : `${formatDecimal(minor)} ${currency}`;
}
