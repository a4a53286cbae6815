import type { Attempt } from '../payments/transaction.js';
import type { DeviceCommandRow, DeviceRow, OperatorActionRow } from '../store/store.js';
import { shownState } from './boxes-page.js';
import { money, when } from './format.js';
import { html, type SafeHtml } from './html.js';
import { csrfField, page, type Viewer } from './layout.js';

/**
 * One box: what the fleet registry knows, the attempts the cloud still has open for it, the
 * commands sent to it, what operators did to it, and its doctor report (the box's own checks, sent
 * when the cloud asks: `scanbox-cloud devices doctor`). Revoking is a separate, confirmed step.
 */
export interface DoctorView {
  firmware: string;
  checks: readonly { name: string; ok: boolean; detail: string; fix?: string | undefined }[];
  /** By the box's clock. */
  sentAt: number;
  /** By the cloud's clock. */
  receivedAt: number;
}

export interface BoxView {
  device: DeviceRow;
  openAttempts: readonly Attempt[];
  commands: readonly DeviceCommandRow[];
  actions: readonly OperatorActionRow[];
  /** undefined: the box has sent none; null: this cloud does not keep doctor reports. */
  doctor: DoctorView | undefined | null;
  /** Whether the "ask for a doctor report" form is offered. */
  canAskDoctor: boolean;
}

function doctorSection(v: Viewer, box: BoxView): SafeHtml {
  const d = box.doctor;
  const id = encodeURIComponent(box.device.deviceId);
  const ask =
    box.canAskDoctor && box.device.status === 'active'
      ? html`<form method="post" action="/dashboard/boxes/${id}/doctor">${csrfField(v)}<button type="submit" class="secondary">Ask the box for a report</button></form>`
      : '';
  if (!d) return html`<section class="card" id="doctor"><h2>Doctor report</h2><p class="muted" data-doctor="none">No report yet.</p>${ask}</section>`;
  const failed = d.checks.filter((c) => !c.ok).length;
  return html`<section class="card" id="doctor"><h2>Doctor report</h2>
  <p data-doctor="${failed ? 'fail' : 'pass'}">${failed ? html`<strong class="bad">${failed} check${failed === 1 ? '' : 's'} failed</strong>` : html`<strong class="online">all checks pass</strong>`}
    · received ${when(d.receivedAt)} · firmware ${d.firmware}</p>
  <table><thead><tr><th></th><th>check</th><th>found</th><th>fix</th></tr></thead><tbody>
  ${d.checks.map((c) => html`<tr><td class="${c.ok ? 'online' : 'bad'}">${c.ok ? 'PASS' : 'FAIL'}</td><td class="mono">${c.name}</td><td>${c.detail}</td><td>${c.ok ? '' : (c.fix ?? '')}</td></tr>`)}
  </tbody></table>${ask}</section>`;
}

export function boxPage(viewer: Viewer, box: BoxView, flash?: string): string {
  const d = box.device;
  const state = shownState(d);
  const id = encodeURIComponent(d.deviceId);
  return page(
    viewer,
    `Box ${d.deviceId}`,
    html`${flash ? html`<p class="flash" role="status">${flash}</p>` : ''}
<section class="card"><dl class="facts">
  <dt>state</dt><dd><span class="pill ${state}" data-state="${state}">${state}</span></dd>
  <dt>merchant · store</dt><dd><span class="mono">${d.merchantId}</span> · <span class="mono">${d.storeId}</span></dd>
  <dt>hardware</dt><dd class="mono">${d.hardwareId}</dd>
  <dt>last seen</dt><dd>${when(d.lastSeenAt)}</dd>
  <dt>firmware</dt><dd>${d.firmware ?? '—'}</dd>
  <dt>open attempts (its heartbeat)</dt><dd>${d.pendingAttempts ?? '—'}</dd>
  <dt>outbox depth</dt><dd>${d.outboxDepth ?? '—'}</dd>
  <dt>paired</dt><dd>${when(d.pairedAt)}</dd>
  ${d.revokedAt !== null ? html`<dt>revoked</dt><dd class="bad">${when(d.revokedAt)}</dd>` : ''}
</dl>
${d.status === 'active' ? html`<p><a href="/dashboard/boxes/${id}/revoke">Revoke this box…</a></p>` : ''}
</section>
${doctorSection(viewer, box)}
<section class="card"><h2>Attempts the cloud still has open</h2>
${box.openAttempts.length
  ? html`<table><thead><tr><th>outTradeNo</th><th>state</th><th>amount</th><th>created</th></tr></thead><tbody>
    ${box.openAttempts.map((a) => html`<tr><td><a class="mono" href="/dashboard/payments/${encodeURIComponent(a.outTradeNo)}">${a.outTradeNo}</a></td><td>${a.state}</td><td>${money(a.amount, a.currency)}</td><td>${when(a.createdAt)}</td></tr>`)}
    </tbody></table>`
  : html`<p class="muted">None.</p>`}
</section>
<section class="card"><h2>Commands</h2>
${box.commands.length
  ? html`<table><thead><tr><th>command</th><th>queued</th><th>sent</th><th>done</th><th>outcome</th></tr></thead><tbody>
    ${box.commands.map((c) => html`<tr><td>${c.command}</td><td>${when(c.createdAt)}</td><td>${when(c.sentAt)}</td><td>${when(c.doneAt)}</td><td>${c.outcome ?? '—'}</td></tr>`)}
    </tbody></table>`
  : html`<p class="muted">None.</p>`}
</section>
<section class="card"><h2>What operators did</h2>
${box.actions.length
  ? html`<ul>${box.actions.map((a) => html`<li>${when(a.at)} · <strong>${a.operator}</strong> · ${a.action} · ${a.outcome}${a.note ? html` — ${a.note}` : ''}</li>`)}</ul>`
  : html`<p class="muted">Nothing.</p>`}
</section>`,
    { section: '/dashboard/boxes' },
  );
}

export function revokeConfirmPage(viewer: Viewer, d: DeviceRow): string {
  const id = encodeURIComponent(d.deviceId);
  return page(
    viewer,
    `Revoke box ${d.deviceId}?`,
    html`<section class="card">
  <p>Box <strong class="mono">${d.deviceId}</strong> (merchant <span class="mono">${d.merchantId}</span>, store <span class="mono">${d.storeId}</span>) is disconnected at once and refused from then on: it takes no more payments until it is paired again with a new code. The attempts the cloud has for it carry on.</p>
  <form method="post" action="/dashboard/boxes/${id}/revoke">
    ${csrfField(viewer)}
    <input type="hidden" name="confirm" value="${d.deviceId}">
    <button type="submit" class="danger">Revoke ${d.deviceId}</button>
    <a href="/dashboard/boxes/${id}">cancel</a>
  </form>
</section>`,
    { section: '/dashboard/boxes' },
  );
}
