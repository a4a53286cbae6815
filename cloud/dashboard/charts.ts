import { html, type SafeHtml } from './html.js';
import { FLOWS, type FlowKey, type MinuteBucket } from './traffic-series.js';

/**
 * The dashboard's two charts as inline SVG, drawn on the server: payments per minute as bars, the
 * abnormal flows per minute as lines. No chart library and no script: the page reads the same with
 * JavaScript off, and the live stream sends the same markup to every open dashboard.
 */
const W = 720;
const H = 180;
const PAD = { left: 36, right: 8, top: 10, bottom: 22 };
const plotW = W - PAD.left - PAD.right;
const plotH = H - PAD.top - PAD.bottom;

/** A round top for the y axis (1, 2, 5 × 10^n), never below 1. */
function niceMax(max: number): number {
  if (max <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  return ([1, 2, 5, 10].map((m) => m * p).find((v) => v >= max) ?? 10 * p);
}

const hhmm = (at: number) => new Date(at).toISOString().slice(11, 16);

function frame(top: number, buckets: MinuteBucket[]): SafeHtml {
  const ticks = [0, top / 2, top];
  const x = (i: number) => PAD.left + (i / buckets.length) * plotW;
  const labels = [
    { x: x(0), text: hhmm(buckets[0]!.at), anchor: 'start' },
    { x: x(Math.floor(buckets.length / 2)), text: hhmm(buckets[Math.floor(buckets.length / 2)]!.at), anchor: 'middle' },
    { x: W - PAD.right, text: hhmm(buckets.at(-1)!.at), anchor: 'end' },
  ];
  return html`<g font-size="10" fill="#555">
    ${ticks.map((t) => {
      const y = PAD.top + plotH - (t / top) * plotH;
      return html`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y}" y2="${y}" stroke="#ddd"/><text x="${PAD.left - 4}" y="${y + 3}" text-anchor="end">${Math.round(t * 10) / 10}</text>`;
    })}
    ${labels.map((l) => html`<text x="${l.x}" y="${H - 6}" text-anchor="${l.anchor}">${l.text} UTC</text>`)}
  </g>`;
}

/** Successful payments per minute. */
export function paymentsChart(buckets: MinuteBucket[]): SafeHtml {
  const counts = buckets.map((b) => b.counts.paid);
  const total = counts.reduce((a, b) => a + b, 0);
  const top = niceMax(Math.max(...counts));
  const slot = plotW / buckets.length;
  const label = `payments per minute over the last hour: ${total} in all, ${counts.at(-1) ?? 0} this minute`;
  return html`<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${label}" data-total="${total}" xmlns="http://www.w3.org/2000/svg">
  <title>${label}</title>
  ${frame(top, buckets)}
  ${counts.map((n, i) => {
    const h = (n / top) * plotH;
    return n === 0 ? '' : html`<rect x="${(PAD.left + i * slot + 1).toFixed(1)}" y="${(PAD.top + plotH - h).toFixed(1)}" width="${Math.max(1, slot - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="#2e7d32"><title>${hhmm(buckets[i]!.at)}: ${n}</title></rect>`;
  })}
</svg>`;
}

const ABNORMAL = FLOWS.filter((f) => f.key !== 'paid');

/** USERPAYING, reversed, refunded, duplicate, flagged and register refunds per minute, one line each. */
export function abnormalChart(buckets: MinuteBucket[]): SafeHtml {
  const totals = Object.fromEntries(ABNORMAL.map((f) => [f.key, buckets.reduce((n, b) => n + b.counts[f.key], 0)])) as Record<FlowKey, number>;
  const top = niceMax(Math.max(...buckets.flatMap((b) => ABNORMAL.map((f) => b.counts[f.key]))));
  const slot = plotW / buckets.length;
  const point = (i: number, n: number) => `${(PAD.left + (i + 0.5) * slot).toFixed(1)},${(PAD.top + plotH - (n / top) * plotH).toFixed(1)}`;
  const label = `abnormal flows per minute over the last hour: ${ABNORMAL.map((f) => `${f.label} ${totals[f.key]}`).join(', ')}`;
  return html`<svg class="chart" viewBox="0 0 ${W} ${H + 16}" role="img" aria-label="${label}" xmlns="http://www.w3.org/2000/svg">
  <title>${label}</title>
  ${frame(top, buckets)}
  ${ABNORMAL.map(
    (f) => html`<polyline fill="none" stroke="${f.colour}" stroke-width="1.5" points="${buckets.map((b, i) => point(i, b.counts[f.key])).join(' ')}" data-flow="${f.key}" data-total="${totals[f.key]}"><title>${f.label}</title></polyline>`,
  )}
  <g font-size="10">
    ${ABNORMAL.map((f, i) => html`<rect x="${PAD.left + i * 105}" y="${H + 4}" width="10" height="10" fill="${f.colour}"/><text x="${PAD.left + i * 105 + 14}" y="${H + 13}" fill="#333">${f.label} ${totals[f.key]}</text>`)}
  </g>
</svg>`;
}
