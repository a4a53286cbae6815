import { fleetCounts, type FleetCounts } from './boxes-page.js';
import { abnormalChart, paymentsChart } from './charts.js';
import { html } from './html.js';
import { page, type Viewer } from './layout.js';
import type { MinuteBucket } from './traffic-series.js';

/**
 * The first page after login: the fleet in numbers and the last hour's payments and abnormal flows,
 * all three redrawn by the live stream (events `fleet`, `chart-payments`, `chart-abnormal`), and how
 * much waits on the exception desk.
 */
export function overviewPage(viewer: Viewer, counts: FleetCounts, buckets: MinuteBucket[], deskOpen: number, since: number): string {
  return page(
    viewer,
    'Overview',
    html`<section class="card"><h2>Boxes</h2><div id="fleet-counts" sse-swap="fleet">${fleetCounts(counts)}</div><p><a href="/dashboard/boxes">every box…</a></p></section>
<section class="card"><h2>Payments per minute (last hour)</h2><div id="chart-payments" sse-swap="chart-payments">${paymentsChart(buckets)}</div></section>
<section class="card"><h2>Abnormal flows per minute (last hour)</h2><div id="chart-abnormal" sse-swap="chart-abnormal">${abnormalChart(buckets)}</div></section>
<section class="card"><p><a href="/dashboard/exceptions"><strong data-desk-open>${deskOpen}</strong> item${deskOpen === 1 ? '' : 's'} on the exception desk</a></p></section>`,
    { section: '/dashboard', live: { since } },
  );
}
