import type { Attempt } from '../payments/transaction.js';
import { money, when } from './format.js';
import { html, type SafeHtml } from './html.js';
import { page, type Viewer } from './layout.js';
import { timeline, type PaymentView } from './payment-timeline.js';

/** "The customer says they paid": find the payment by what the merchant has, then read its whole story. */
function searchForm(q: string): SafeHtml {
  return html`<form method="get" action="/dashboard/payments" class="card" role="search">
  <label for="q">outTradeNo, sale reference, wallet transaction id or register refund id</label><br>
  <input id="q" name="q" type="search" size="40" value="${q}" required>
  <button type="submit">Find</button>
</form>`;
}

function attemptLink(a: Attempt): SafeHtml {
  return html`<a class="mono" href="/dashboard/payments/${encodeURIComponent(a.outTradeNo)}">${a.outTradeNo}</a>`;
}

export function searchPage(viewer: Viewer, q: string, found?: { attempts: Attempt[]; by: string }): string {
  const results = !found
    ? ''
    : found.attempts.length === 0
      ? html`<p class="flash bad" role="status">No payment found for “${q}”.</p>`
      : html`<section class="card"><h2>${found.attempts.length} found by ${found.by}</h2>
  <table><thead><tr><th>outTradeNo</th><th>state</th><th>sale ref</th><th>amount</th><th>wallet</th><th>created</th></tr></thead><tbody>
  ${found.attempts.map((a) => html`<tr><td>${attemptLink(a)}</td><td>${a.state}</td><td>${a.saleRef ?? '—'}</td><td>${money(a.amount, a.currency)}</td><td>${a.wallet ?? '—'}</td><td>${when(a.createdAt)}</td></tr>`)}
  </tbody></table></section>`;
  return page(viewer, 'Find a payment', html`${searchForm(q)}${results}`, { section: '/dashboard/payments' });
}

export function timelinePage(viewer: Viewer, v: PaymentView): string {
  const a = v.attempt;
  return page(
    viewer,
    `Payment ${a.outTradeNo}`,
    html`${searchForm('')}
<section class="card"><dl class="facts">
  <dt>state</dt><dd><strong data-state>${a.state}</strong>${a.reason ? html` · ${a.reason}` : ''}${a.flag ? html` · <span class="bad">flagged ${a.flag}</span>` : ''}</dd>
  <dt>sale</dt><dd>ref <span class="mono" data-sale-ref>${a.saleRef ?? '—'}</span> · id <span class="mono">${a.saleId}</span></dd>
  <dt>amount</dt><dd>${money(a.amount, a.currency)}${a.charged !== null && a.charged !== a.amount ? html` · <span class="bad">the wallet charged ${money(a.charged, a.currency)}</span>` : ''}</dd>
  <dt>box</dt><dd><a class="mono" href="/dashboard/boxes/${encodeURIComponent(a.deviceId)}">${a.deviceId}</a> · merchant <span class="mono">${a.merchantId ?? '—'}</span></dd>
  <dt>wallet · channel</dt><dd>${a.wallet ?? '—'} · ${a.channel ?? '—'}</dd>
  <dt>wallet transaction</dt><dd class="mono">${a.gatewayTradeNo ?? '—'}</dd>
  <dt>created · updated</dt><dd>${when(a.createdAt)} · ${when(a.updatedAt)}</dd>
  ${a.nextAt !== null ? html`<dt>next step</dt><dd>${a.step ?? '—'} at ${when(a.nextAt)}</dd>` : ''}
  ${a.inFlight ? html`<dt>in flight</dt><dd>${a.inFlight}</dd>` : ''}
</dl></section>
${v.refunds.length
  ? html`<section class="card"><h2>Register refunds</h2><table><thead><tr><th>refund</th><th>ref</th><th>amount</th><th>state</th><th>asked</th><th>final</th></tr></thead><tbody>
  ${v.refunds.map((r) => html`<tr><td class="mono">${r.refundId}</td><td>${r.refundRef}</td><td>${money(r.amount, r.currency)}</td><td>${r.state}${r.flagged ? html` <span class="bad">flagged</span>` : ''}</td><td>${when(r.createdAt)}</td><td>${when(r.finalAt)}</td></tr>`)}
  </tbody></table></section>`
  : ''}
<section class="card"><h2>Timeline</h2>
<ol class="timeline" id="timeline">
${timeline(v).map((e) => html`<li class="${e.kind}" data-kind="${e.kind}"><span class="at">${when(e.at)}</span><strong>${e.what}</strong> <span class="muted">${e.detail}</span></li>`)}
</ol></section>`,
    { section: '/dashboard/payments' },
  );
}
