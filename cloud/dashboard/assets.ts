import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { DASHBOARD_CSS } from './styles.js';

/**
 * The dashboard's static files, read once at start and served by the cloud itself: htmx and its
 * SSE extension from the installed npm packages (`htmx.org`, `htmx-ext-sse`, pinned in
 * package.json), and the stylesheet. Nothing comes from a CDN and nothing is fetched at run time:
 * a console for money must work on a network that reaches only the cloud.
 */
export interface Asset {
  type: string;
  body: Buffer;
}

const require = createRequire(import.meta.url);

export function loadAssets(): ReadonlyMap<string, Asset> {
  const js = (specifier: string): Asset => ({ type: 'text/javascript; charset=utf-8', body: readFileSync(require.resolve(specifier)) });
  return new Map([
    ['htmx.min.js', js('htmx.org/dist/htmx.min.js')],
    ['sse.min.js', js('htmx-ext-sse/dist/sse.min.js')],
    ['dashboard.css', { type: 'text/css; charset=utf-8', body: Buffer.from(DASHBOARD_CSS) }],
  ]);
}
