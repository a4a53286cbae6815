import { ago, money, when } from './format.js';
import { html, type SafeHtml } from './html.js';
import { csrfField, page, type Viewer } from './layout.js';
import { NOTE_MAX } from './desk-actions.js';
import type { DeskItem } from './exception-desk.js';

/**
 * The exception desk. Each item is a form-bearing card: with htmx its buttons post in place and the
 * card is redrawn from the answer; without JavaScript they are ordinary forms that come back here.
 */
export function deskItemId(item: Pick<DeskItem, 'kind' | 'id'>): string {
  return `desk-${item.kind}-${item.id}`;
}

const REASON_TEXT: Record<DeskItem['reasons'][number], string> = {
  REVERSE_PENDING: 'reverse still pending',
  REFUND_PENDING: 'refund of the charge still pending',
  AMOUNT_MISMATCH: 'the wallet charged another amount',
  REFUND_FAILED: 'register refund declined by the wallet',
  REFUND_FLAGGED: 'register refund pending too long',
};

export function deskCard(viewer: Viewer, item: DeskItem, now: number, flash?: string): SafeHtml {
  const base = `/dashboard/exceptions/${item.kind}/${encodeURIComponent(item.id)}`;
  const htmx = (action: string) => html` hx-post="${base}/${action}" hx-target="closest article" hx-swap="outerHTML"`;
  return html`<article class="desk-item" id="${deskItemId(item)}" data-kind="${item.kind}" data-state="${item.state}"${item.resolution ? html` data-resolved="true"` : ''}>
  ${flash ? html`<p class="flash" role="status">${flash}</p>` : ''}
  <div><strong>${item.reasons.map((r) => REASON_TEXT[r]).join(' · ')}</strong></div>
  <div>${item.kind === 'refund' ? html`register refund <span class="mono">${item.id}</span> of ` : ''}payment <a class="mono" href="/dashboard/payments/${encodeURIComponent(item.outTradeNo)}">${item.outTradeNo}</a>
    · ${money(item.amount, item.currency)} · state <strong>${item.state}</strong> · since ${when(item.since)} (${ago(item.since, now)} ago)
    · box <a class="mono" href="/dashboard/boxes/${encodeURIComponent(item.deviceId)}">${item.deviceId}</a></div>
  ${item.detail ? html`<div class="muted">${item.detail}</div>` : ''}
  ${item.resolution
    ? html`<p class="resolution">resolved by <strong>${item.resolution.operator}</strong> at ${when(item.resolution.at)}: ${item.resolution.note}</p>`
    : html`<div class="actions">
    ${item.now
      ? html`<form method="post" action="${base}/${item.now.action}"${htmx(item.now.action)}>${csrfField(viewer)}<button type="submit" class="secondary">${item.now.label}</button></form>`
      : html`<span class="muted">${item.nowBlocked}</span>`}
    <form class="resolve" method="post" action="${base}/resolve"${htmx('resolve')}>${csrfField(viewer)}
      <label>Resolution note <textarea name="note" maxlength="${NOTE_MAX}" required placeholder="what you did or found (who you called, what the wallet said)"></textarea></label>
      <button type="submit">Mark resolved</button>
    </form>
  </div>`}
</article>`;
}

export function exceptionsPage(viewer: Viewer, desk: { open: DeskItem[]; resolved: DeskItem[] }, now: number, thresholdMs: number): string {
  return page(
    viewer,
    'Exception desk',
    html`<p class="muted">Attempts still being undone after ${ago(0, thresholdMs)}, amounts the wallet charged wrong, and register refunds the wallet declined or left pending. “Now” asks the running service to make its next wallet call at once; every action is recorded with your name on the payment's timeline.</p>
<section id="desk-open"><h2>${desk.open.length} need${desk.open.length === 1 ? 's' : ''} a person</h2>
${desk.open.length ? desk.open.map((i) => deskCard(viewer, i, now)) : html`<p class="muted" data-empty>Nothing needs a person.</p>`}
</section>
${desk.resolved.length ? html`<section id="desk-resolved"><h2>Resolved, still in the state they were resolved in</h2>${desk.resolved.map((i) => deskCard(viewer, i, now))}</section>` : ''}`,
    { section: '/dashboard/exceptions' },
  );
}
