import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/**
 * What every state-changing dashboard request must prove, besides its session (SameSite=Strict
 * already keeps the cookie off other sites' requests; these hold even where it does not):
 * 1. it is a POST carrying the session's CSRF token — a hidden `_csrf` field, or the
 *    `x-csrf-token` header htmx sends (`hx-headers` on the page) — compared in constant time;
 * 2. it does not come from a foreign page: an `Origin` header, when the browser sends one, must be
 *    the dashboard's own origin (or one the config allows); without one, `Sec-Fetch-Site` must not
 *    say cross-site. A request with neither (curl, a script) still needs the token.
 */
export const CSRF_FIELD = '_csrf';
export const CSRF_HEADER = 'x-csrf-token';

/** Constant time whatever the lengths: both sides are hashed to 32 bytes first. */
export function tokensMatch(given: string | undefined, expected: string): boolean {
  if (given === undefined || given.length === 0) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** `scheme://host[:port]` of a URL, lower-cased, or undefined when it is not one. */
export function originOf(url: string): string | undefined {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin.toLowerCase() : undefined;
  } catch {
    return undefined;
  }
}

export type OriginVerdict = { ok: true } | { ok: false; why: string };

/** `scheme`: what this listener speaks; `allowed`: other origins (publicHttpUrl's, a proxy's). */
export function checkOrigin(req: IncomingMessage, scheme: 'http' | 'https', allowed: ReadonlySet<string>): OriginVerdict {
  const origin = req.headers.origin;
  if (origin !== undefined) {
    const own = req.headers.host ? `${scheme}://${req.headers.host}`.toLowerCase() : undefined;
    const given = origin.toLowerCase();
    if (given === own || allowed.has(given)) return { ok: true };
    return { ok: false, why: `foreign origin ${origin.slice(0, 100)}` };
  }
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return { ok: false, why: `sec-fetch-site ${site}` };
  return { ok: true };
}
