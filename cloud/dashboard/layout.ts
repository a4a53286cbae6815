import { CSRF_FIELD, CSRF_HEADER } from './csrf.js';
import { html, type SafeHtml } from './html.js';

/**
 * The page around every dashboard view: navigation, the operator and the log-out form, the CSRF
 * token for htmx (`hx-headers`) and, on the pages that have live parts, the one server-sent-event
 * stream of this dashboard (`sse-connect`). Scripts are the cloud's own copies of htmx and its SSE
 * extension (assets.ts); with JavaScript off every page still reads and every form still posts.
 */
export interface Viewer {
  operator: string;
  csrfToken: string;
}

const NAV = [
  ['/dashboard', 'Overview'],
  ['/dashboard/boxes', 'Boxes'],
  ['/dashboard/payments', 'Payments'],
  ['/dashboard/exceptions', 'Exception desk'],
  ['/dashboard/pairing', 'Pairing'],
] as const;

/** A hidden field carrying the session's CSRF token: every form that posts has one. */
export function csrfField(v: Viewer): SafeHtml {
  return html`<input type="hidden" name="${CSRF_FIELD}" value="${v.csrfToken}">`;
}

export interface PageOptions {
  /** Which nav entry is this page. */
  section?: (typeof NAV)[number][0];
  /** The live stream, with the boxes version the page was drawn at (live-feed.ts). */
  live?: { since: number };
}

export function page(viewer: Viewer | null, title: string, body: SafeHtml, opts: PageOptions = {}): string {
  const headers = viewer ? JSON.stringify({ [CSRF_HEADER]: viewer.csrfToken }) : undefined;
  const live = opts.live ? html` hx-ext="sse" sse-connect="/dashboard/events?since=${opts.live.since}"` : '';
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}'>
<title>${title} · scanbox</title>
<link rel="stylesheet" href="/dashboard/assets/dashboard.css">
<link rel="icon" href="data:,">
<script defer src="/dashboard/assets/htmx.min.js"></script>
<script defer src="/dashboard/assets/sse.min.js"></script>
</head>
<body${headers ? html` hx-headers="${headers}"` : ''}>
${viewer
  ? html`<header>
  <span class="brand">scanbox</span>
  <nav>${NAV.map(([href, label]) => html`<a href="${href}"${opts.section === href ? html` aria-current="page"` : ''}>${label}</a>`)}</nav>
  <span class="who">signed in as <strong data-operator>${viewer.operator}</strong>
    <form class="inline" method="post" action="/dashboard/logout">${csrfField(viewer)}<button type="submit">log out</button></form>
  </span>
</header>`
  : ''}
<main${live}>
<h1>${title}</h1>
${body}
</main>
</body>
</html>`.text;
}
