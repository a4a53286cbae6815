import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock, type Clock } from '../../protocol/clock.js';
import type { PairResponse } from '../../protocol/index.js';
import { hashPassword, verifyPassword } from '../../cloud/dashboard/operator-password.js';
import { safeNext } from '../../cloud/dashboard/dashboard.js';
import { sessionIdHash } from '../../cloud/dashboard/sessions.js';
import { pairBox, payMsg, tempDir, TestBox, until } from '../cloud/harness.js';
import { hiddenValue, OPERATOR, PASSWORD, startDashboardCloud, WebClient, type DashboardCloud } from './dashboard-kit.js';

/**
 * The dashboard's door over plain HTTP, no browser: what the cookie says, when a session ends, how
 * logins are throttled, that a state-changing request without the token or from a foreign origin
 * changes nothing, and that what boxes and wallets send is shown as text.
 */
const IDLE_MS = 60_000;
const skew = { ms: 0 };
/** The system clock, moved forward on demand: sessions age without waiting. */
const movable: Clock = { ...systemClock, now: () => Date.now() + skew.ms };

let d: DashboardCloud;
/** Paired before the clock moves: pairBox makes its code by the real clock. */
let boxes: { csrf: PairResponse; xss: PairResponse };
beforeAll(async () => {
  d = await startDashboardCloud({ dashboard: { sessionIdleMs: IDLE_MS, sessionMaxMs: 10 * IDLE_MS, loginLimit: { operatorFree: 3, addressFree: 6, baseMs: 60_000 } } }, { clock: movable });
  boxes = { csrf: await pairBox(d.cloud, 'hw-csrf'), xss: await pairBox(d.cloud, 'hw-xss') };
}, 60_000);
afterAll(async () => {
  await d?.close();
});

describe('dashboard security over HTTP', { timeout: 60_000 }, () => {
  it('a page without a session redirects to the login (htmx and the live stream get 401 with HX-Redirect)', async () => {
    const w = new WebClient(d.origin);
    const page = await w.get('/dashboard/exceptions?x=1');
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/dashboard/login?next=%2Fdashboard%2Fexceptions%3Fx%3D1');
    const fragment = await w.get('/dashboard/boxes/table', { 'hx-request': 'true' });
    expect(fragment.status).toBe(401);
    expect(fragment.headers.get('hx-redirect')).toMatch(/^\/dashboard\/login/);
    expect((await w.get('/dashboard/events')).status).toBe(401);
    // The public parts: the login form and the assets.
    expect((await w.get('/dashboard/login')).status).toBe(200);
    expect((await w.get('/dashboard/assets/htmx.min.js')).body).toContain('htmx');
  });

  it('logs in with the right password; the session cookie is HttpOnly, SameSite=Strict, scoped to /dashboard, not Secure over plain HTTP', async () => {
    const w = new WebClient(d.origin);
    const form = await w.get('/dashboard/login');
    const res = await w.post('/dashboard/login', { _csrf: hiddenValue(form.body, '_csrf'), name: OPERATOR, password: PASSWORD, next: '/dashboard/boxes' }, { origin: d.origin });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/dashboard/boxes');
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('scanbox_dashboard='))!;
    expect(cookie).toMatch(/^scanbox_dashboard=[A-Za-z0-9_-]{43}; /);
    expect(cookie).toContain('Path=/dashboard');
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).not.toContain('Secure');
    // Only the hash of the id is stored.
    const id = w.cookies.get('scanbox_dashboard')!;
    expect(await d.cloud.store.getOperatorSession(id)).toBeUndefined();
    expect(await d.cloud.store.getOperatorSession(sessionIdHash(id))).toMatchObject({ operator: OPERATOR });
    const page = await w.get('/dashboard/boxes');
    expect(page.status).toBe(200);
    expect(page.body).toContain('data-operator>alice<');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
  });

  it('refuses a wrong password and an unknown operator alike (401, same words), and a login form this browser did not load (403)', async () => {
    const wrong = await new WebClient(d.origin).login('bob-nobody', PASSWORD);
    const bad = await new WebClient(d.origin).login(OPERATOR, 'not the password at all');
    for (const r of [wrong, bad]) {
      expect(r.status).toBe(401);
      expect(r.body).toContain('Wrong operator name or password.');
      expect(r.headers.getSetCookie().some((c) => c.startsWith('scanbox_dashboard='))).toBe(false);
    }
    const w = new WebClient(d.origin);
    const forged = await w.post('/dashboard/login', { _csrf: 'made-up', name: OPERATOR, password: PASSWORD }, { origin: d.origin });
    expect(forged.status).toBe(403);
    expect(w.cookies.has('scanbox_dashboard')).toBe(false);
  });

  it('a session ends after its idle time; use keeps it; a later request is sent to the login and the session is gone', async () => {
    const w = new WebClient(d.origin);
    await w.login();
    const id = sessionIdHash(w.cookies.get('scanbox_dashboard')!);
    skew.ms += IDLE_MS * 0.8;
    expect((await w.get('/dashboard/payments')).status).toBe(200); // used: its idle time starts again
    skew.ms += IDLE_MS * 0.8;
    expect((await w.get('/dashboard/payments')).status).toBe(200);
    skew.ms += IDLE_MS + 1;
    const late = await w.get('/dashboard/payments');
    expect(late.status).toBe(303);
    expect(late.headers.get('location')).toMatch(/^\/dashboard\/login/);
    expect(await d.cloud.store.getOperatorSession(id)).toBeUndefined();
  });

  it('log out ends the session: its cookie opens nothing after', async () => {
    const w = new WebClient(d.origin);
    await w.login();
    const id = w.cookies.get('scanbox_dashboard')!;
    const out = await w.post('/dashboard/logout', { _csrf: await w.csrf() }, { origin: d.origin });
    expect(out.status).toBe(303);
    w.cookies.set('scanbox_dashboard', id);
    expect((await w.get('/dashboard')).status).toBe(303);
  });

  it('throttles failed logins per operator (even the right password waits, with Retry-After) and per address', async () => {
    await d.cloud.store.addOperator('carol', await hashPassword('carol has a long password'), Date.now());
    for (let i = 0; i < 3; i++) expect((await new WebClient(d.origin).login('carol', 'wrong wrong wrong')).status).toBe(401);
    const held = await new WebClient(d.origin).login('carol', 'carol has a long password');
    expect(held.status).toBe(429);
    expect(Number(held.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(held.body).toContain('Too many failed logins');
    // The address has 3 failures (plus the 2 of the test before); more, under any name, close it too.
    await new WebClient(d.origin).login('dave', 'x'.repeat(12));
    const byAddress = await new WebClient(d.origin).login(OPERATOR, PASSWORD);
    expect(byAddress.status).toBe(429);
    // Once the wait is over, the right password works again.
    skew.ms += 61_000;
    expect((await new WebClient(d.origin).login('carol', 'carol has a long password')).status).toBe(303);
  });

  it('refuses a POST without the CSRF token, with a wrong one, from a foreign Origin or a cross-site fetch — and changes nothing', async () => {
    skew.ms += 16 * 60_000; // past the previous test's failures
    const w = new WebClient(d.origin);
    expect((await w.login()).status).toBe(303);
    const box = boxes.csrf;
    const token = await w.csrf();
    const revoke = `/dashboard/boxes/${box.deviceId}/revoke`;
    const attempts: [Record<string, string>, Record<string, string>][] = [
      [{ confirm: box.deviceId }, { origin: d.origin }],
      [{ confirm: box.deviceId, _csrf: 'wrong' }, { origin: d.origin }],
      [{ confirm: box.deviceId, _csrf: token }, { origin: 'http://evil.example' }],
      [{ confirm: box.deviceId, _csrf: token }, { 'sec-fetch-site': 'cross-site' }],
    ];
    for (const [form, headers] of attempts) {
      const r = await w.post(revoke, form, headers);
      expect(r.status, JSON.stringify(headers)).toBe(403);
    }
    expect((await d.cloud.store.getDevice(box.deviceId))?.status).toBe('active');
    expect(await d.cloud.store.listOperatorActions({ subjectIds: [box.deviceId] })).toEqual([]);
    // The same request with the token from the dashboard's own origin goes through (the header htmx sends works too).
    const ok = await w.post(revoke, { confirm: box.deviceId }, { origin: d.origin, 'x-csrf-token': token });
    expect(ok.status).toBe(303);
    expect((await d.cloud.store.getDevice(box.deviceId))?.status).toBe('revoked');
    expect(await d.cloud.store.listOperatorActions({ subjectIds: [box.deviceId] })).toEqual([expect.objectContaining({ operator: OPERATOR, action: 'revoke', outcome: 'revoked' })]);
  });

  it('shows what a box sent as text: a sale reference with a <script> is escaped on the search and the timeline', async () => {
    const w = new WebClient(d.origin);
    await w.login();
    const box = await TestBox.of(d.cloud, boxes.xss);
    const evil = '<script>alert(1)</script>"\'&';
    await box.send('pay', payMsg(box.deviceId, 7, { saleRef: evil }));
    await box.next('result');
    await box.close();
    const found = await w.get(`/dashboard/payments?q=${encodeURIComponent(evil)}`);
    expect(found.status).toBe(303);
    const timeline = await w.get(found.headers.get('location')!);
    expect(timeline.body).not.toContain('<script>alert(1)</script>');
    expect(timeline.body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;');
    const search = await w.get(`/dashboard/payments?q=${encodeURIComponent(`${evil} not found`)}`);
    expect(search.body).not.toContain('<script>alert');
    expect(search.body).toContain('No payment found for “&lt;script&gt;');
  });

  it('a login sends the browser only to a dashboard page of this origin', () => {
    expect(safeNext('/dashboard/boxes?x=1')).toBe('/dashboard/boxes?x=1');
    for (const evil of ['//evil.example/dashboard', 'https://evil.example/dashboard', '/dashboardx/../../x', '/dashboard/login', '/dashboard\\@evil', '/dashboard/events', null]) {
      expect(safeNext(evil), String(evil)).toBe('/dashboard');
    }
  });

  it('keeps passwords as scrypt hashes with N ≥ 2^15 and a salt of their own', async () => {
    const [a, b] = [await hashPassword(PASSWORD), await hashPassword(PASSWORD)];
    expect(a).toMatch(/^scrypt\$1[5-9]\$8\$1\$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword(PASSWORD, a)).toBe(true);
    expect(await verifyPassword(`${PASSWORD}!`, a)).toBe(false);
    expect(await verifyPassword(PASSWORD, 'plain text')).toBe(false);
    const row = await d.cloud.store.getOperator(OPERATOR);
    expect(row?.passwordHash).not.toContain(PASSWORD);
  });

  it('a live stream ends with its session (log out)', async () => {
    const w = new WebClient(d.origin);
    await w.login();
    const cookie = `scanbox_dashboard=${w.cookies.get('scanbox_dashboard')}`;
    const ac = new AbortController();
    const res = await fetch(`${d.origin}/dashboard/events?since=0`, { headers: { cookie }, signal: ac.signal });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    await until('the stream is counted', () => d.cloud.dashboard!.live.size === 1);
    await w.post('/dashboard/logout', { _csrf: await w.csrf() }, { origin: d.origin });
    await until('logging out ended the stream', () => d.cloud.dashboard!.live.size === 0);
    ac.abort();
  });
});

/** One HTTPS request trusting `ca`; Node's fetch takes no CA of its own. */
function httpsCall(url: string, ca: Buffer, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers ?? {}, ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('dashboard over HTTPS', { timeout: 60_000 }, () => {
  it('marks the session cookie Secure (and sends HSTS) when the cloud serves HTTPS; an http:// Origin is foreign there', async () => {
    const { dir, remove } = tempDir();
    const certFile = join(dir, 'cert.pem');
    const keyFile = join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const tls = await startDashboardCloud({ tls: { certFile, keyFile } });
    try {
      const ca = readFileSync(certFile);
      expect(tls.origin).toMatch(/^https:/);
      const form = await httpsCall(`${tls.origin}/dashboard/login`, ca);
      const loginCookie = (form.headers['set-cookie'] as string[])[0]!.split(';')[0]!;
      expect(form.headers['set-cookie']![0]).toContain('Secure');
      const body = new URLSearchParams({ _csrf: hiddenValue(form.body, '_csrf'), name: OPERATOR, password: PASSWORD }).toString();
      const post = (origin: string) => httpsCall(`${tls.origin}/dashboard/login`, ca, { method: 'POST', body, headers: { cookie: loginCookie, origin, 'content-type': 'application/x-www-form-urlencoded' } });
      expect((await post(tls.origin.replace('https:', 'http:'))).status).toBe(403);
      const ok = await post(tls.origin);
      expect(ok.status).toBe(303);
      const session = (ok.headers['set-cookie'] as string[]).find((c) => c.startsWith('scanbox_dashboard='))!;
      expect(session).toMatch(/; Path=\/dashboard; HttpOnly; SameSite=Strict; Secure$/);
      expect(ok.headers['strict-transport-security']).toBe('max-age=31536000');
    } finally {
      await tls.close();
      remove();
    }
  });
});
