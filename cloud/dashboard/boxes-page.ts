import type { Connectivity, DeviceRow } from '../store/store.js';
import { when } from './format.js';
import { html, type SafeHtml } from './html.js';
import { page, type Viewer } from './layout.js';

/**
 * Every box by merchant and store: online / stale / offline, last seen, firmware, what its last
 * heartbeat said (open attempts, outbox depth) and its doctor report. The rows change live: the
 * live stream sends a changed row in place (`hx-swap-oob`, matched by the row's id) and, when boxes
 * come or go, tells the table to fetch itself again.
 */
export type FleetCounts = Record<Connectivity | 'revoked', number>;

/** What the boxes table shows of a doctor report: whether every check passed, and when it came. */
export interface DoctorSummary {
  ok: boolean;
  receivedAt: number;
}

export function rowId(deviceId: string): string {
  return `box-${deviceId}`;
}

/** The state a row shows: revoked wins over how it was last connected. */
export function shownState(d: DeviceRow): Connectivity | 'revoked' {
  return d.status === 'revoked' ? 'revoked' : d.connectivity;
}

/**
 * What a row shows, as one string: the live stream resends a row only when this changes. An online
 * box's last-seen time moves with every heartbeat and is not shown (it is "connected"), so it is not
 * part of it.
 */
export function rowSignature(d: DeviceRow, doctor?: DoctorSummary): string {
  const state = shownState(d);
  return [state, state === 'online' ? '' : d.lastSeenAt, d.firmware, d.pendingAttempts, d.outboxDepth, doctor?.ok, doctor?.receivedAt].join('|');
}

export function boxRow(d: DeviceRow, doctor?: DoctorSummary, oob = false): SafeHtml {
  const state = shownState(d);
  const seen = state === 'online' ? html`<span class="muted">connected</span>` : when(d.lastSeenAt);
  const href = `/dashboard/boxes/${encodeURIComponent(d.deviceId)}`;
  const doc = doctor ? html`<a href="${href}#doctor" class="${doctor.ok ? 'online' : 'bad'}">${doctor.ok ? 'all pass' : 'FAIL'}</a>` : html`<span class="muted">no report</span>`;
  return html`<tr id="${rowId(d.deviceId)}" data-state="${state}"${oob ? html` hx-swap-oob="true"` : ''}>
  <td><a class="mono" href="${href}">${d.deviceId}</a></td>
  <td><span class="pill ${state}">${state}</span></td>
  <td>${seen}</td>
  <td>${d.firmware ?? '—'}</td>
  <td class="num">${d.pendingAttempts ?? '—'}</td>
  <td class="num">${d.outboxDepth ?? '—'}</td>
  <td>${doc}</td>
</tr>`;
}

export function countsOf(devices: readonly DeviceRow[]): FleetCounts {
  const counts: FleetCounts = { online: 0, stale: 0, offline: 0, never: 0, revoked: 0 };
  for (const d of devices) counts[shownState(d)]++;
  return counts;
}

export function fleetCounts(c: FleetCounts): SafeHtml {
  const cell = (k: keyof FleetCounts) => html`<div class="${k}" data-count="${k}">${c[k]}<span>${k}</span></div>`;
  return html`<div class="counts">${cell('online')}${cell('stale')}${cell('offline')}${cell('never')}${cell('revoked')}</div>`;
}

/** The table, grouped by merchant and store (listDevices orders by them); it fetches itself again on `sse:boxes-reload`. */
export function boxesTable(devices: readonly DeviceRow[], doctors: ReadonlyMap<string, DoctorSummary>): SafeHtml {
  const groups: SafeHtml[] = [];
  let group = '';
  for (const d of devices) {
    const key = `${d.merchantId} · ${d.storeId}`;
    if (key !== group) {
      group = key;
      groups.push(html`<tr class="group"><th colspan="7">merchant <span class="mono">${d.merchantId}</span> · store <span class="mono">${d.storeId}</span></th></tr>`);
    }
    groups.push(boxRow(d, doctors.get(d.deviceId)));
  }
  return html`<table id="boxes" hx-get="/dashboard/boxes/table" hx-trigger="sse:boxes-reload" hx-swap="outerHTML">
  <thead><tr><th>box</th><th>state</th><th>last seen (UTC)</th><th>firmware</th><th>open attempts</th><th>outbox</th><th>doctor</th></tr></thead>
  <tbody>${groups.length ? groups : html`<tr><td colspan="7" class="muted">No box is paired yet: create a pairing code.</td></tr>`}</tbody>
</table>`;
}

export function boxesPage(viewer: Viewer, devices: readonly DeviceRow[], doctors: ReadonlyMap<string, DoctorSummary>, since: number): string {
  return page(
    viewer,
    'Boxes',
    html`<section class="card" id="fleet-counts" sse-swap="fleet">${fleetCounts(countsOf(devices))}</section>
<div sse-swap="boxes" hx-swap="none" hidden></div>
${boxesTable(devices, doctors)}
<p class="muted">Open attempts and outbox depth are what each box said in its last heartbeat. A box is stale after three missed heartbeats, offline once its connection is gone.</p>`,
    { section: '/dashboard/boxes', live: { since } },
  );
}
