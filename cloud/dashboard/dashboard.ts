import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, isProtocolError, ProtocolError } from '../../protocol/index.js';
import type { Clock } from '../../protocol/clock.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { createPairingCode } from '../pairing/pairing.js';
import type { AttemptsService } from '../payments/attempts-service.js';
import type { RefundsService } from '../refunds/refunds-service.js';
import type { CloudStore } from '../store/store.js';
import { loadAssets, type Asset } from './assets.js';
import { boxPage, revokeConfirmPage, type DoctorView } from './box-page.js';
import { boxesPage, boxesTable, countsOf, type DoctorSummary } from './boxes-page.js';
import { checkOrigin, CSRF_FIELD, CSRF_HEADER, originOf, tokensMatch } from './csrf.js';
import type { DashboardConfig } from './dashboard-config.js';
import { DeskActions, type DeskActionName } from './desk-actions.js';
import { deskItem, deskItems, openDeskItems, type DeskKind } from './exception-desk.js';
import { deskCard, exceptionsPage } from './exceptions-page.js';
import { readForm } from './form-body.js';
import { html } from './html.js';
import { page, type Viewer } from './layout.js';
import { LiveFeed } from './live-feed.js';
import { loginPage } from './login-page.js';
import { OperatorLogin } from './operator-login.js';
import { overviewPage } from './overview-page.js';
import { pairingCodePage, pairingPage } from './pairing-page.js';
import { findPayments, paymentView } from './payment-timeline.js';
import { searchPage, timelinePage } from './payments-page.js';
import { cookieValue, SESSION_COOKIE, Sessions, type Session } from './sessions.js';
import { flowTotals, TrafficSeries } from './traffic-series.js';

/**
 * The operators' dashboard at /dashboard on the cloud's HTTP(S) listener: server-rendered HTML,
 * htmx for the live parts and in-place actions, inline SVG charts. This file is the door: assets
 * and the login form are public; every other path needs a live session, and every POST must also
 * come from the dashboard's own origin with the session's CSRF token (csrf.ts). A refusal is
 * logged (who, from where, why — never a password) and changes nothing.
 */
export interface DoctorAccess {
  latest(deviceId: string): Promise<DoctorView | undefined>;
  /** Every box's latest report, for the boxes table. */
  summaries(): Promise<ReadonlyMap<string, DoctorSummary>>;
  /** Queue a `doctor` command for the box (the running cloud sends it). */
  ask(deviceId: string): Promise<void>;
}

export interface DashboardDeps {
  store: CloudStore;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  config: DashboardConfig;
  /** The listener speaks HTTPS: cookies are Secure and the own origin is https://. */
  secure: boolean;
  /** The cloud's public address (config publicHttpUrl): its origin may post too. */
  publicHttpUrl?: string | undefined;
  /** The address a pairing code sends a box to. */
  pairingUrl: () => string;
  pairingCodeTtlS: number;
  attempts: Pick<AttemptsService, 'resumeNow'>;
  refunds: Pick<RefundsService, 'retryNow'>;
  /** Cut a revoked box's connection at once (the revocation watch would within revocationPollMs). */
  disconnect: (deviceId: string) => void;
  /** The boxes' doctor reports, when this cloud keeps them. */
  doctor?: DoctorAccess | undefined;
}

const LOGIN_COOKIE = 'scanbox_dashboard_login';
const LOGIN_FORM_TTL_S = 600;
const SESSION_SWEEP_MS = 5 * 60_000;
const DEVICE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const SUBJECT_ID = /^[A-Za-z0-9_-]{1,80}$/;

const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.SCHEMA_INVALID]: 400,
  [ErrorCode.MERCHANT_UNKNOWN]: 400,
  [ErrorCode.UNSUPPORTED_MEDIA_TYPE]: 415,
  [ErrorCode.PAYLOAD_TOO_LARGE]: 413,
  [ErrorCode.NOT_PAIRED]: 404,
  [ErrorCode.ATTEMPT_UNKNOWN]: 404,
  [ErrorCode.SALE_UNKNOWN]: 404,
  [ErrorCode.DEVICE_REVOKED]: 409,
  [ErrorCode.UNAUTHORIZED]: 401,
  [ErrorCode.FORBIDDEN]: 403,
};

/** What the flash line of a page may say after a redirect: fixed texts, never echoed input. */
const DONE: Record<string, string> = { revoked: 'Revoked: the box was disconnected and is refused from now on.', 'doctor-asked': 'Asked: the box sends its report when it next hears the cloud.' };

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  session: Session;
  viewer: Viewer;
  form: URLSearchParams;
  htmx: boolean;
}
type Handler = (ctx: Ctx, params: string[]) => Promise<void>;

export class Dashboard {
  private readonly sessions: Sessions;
  private readonly login: OperatorLogin;
  private readonly feed: LiveFeed;
  private readonly series: TrafficSeries;
  private readonly desk: DeskActions;
  private readonly assets: ReadonlyMap<string, Asset>;
  private readonly origins: ReadonlySet<string>;
  private readonly headers: Record<string, string>;
  private readonly routes: [string, RegExp, Handler][];
  private sweepTimer: unknown;

  constructor(private readonly deps: DashboardDeps) {
    const c = deps.config;
    this.sessions = new Sessions({ store: deps.store, clock: deps.clock, idleMs: c.sessionIdleMs, maxMs: c.sessionMaxMs, secure: deps.secure });
    this.login = new OperatorLogin({ store: deps.store, sessions: this.sessions, clock: deps.clock, logger: deps.logger, limits: c.loginLimit });
    this.series = new TrafficSeries(() => flowTotals(deps.metrics), deps.store);
    this.feed = new LiveFeed({
      store: deps.store,
      series: this.series,
      clock: deps.clock,
      logger: deps.logger,
      intervalMs: c.liveIntervalMs,
      maxStreams: c.maxLiveStreams,
      sessionLive: (h) => this.sessions.stillLive(h),
      ...(deps.doctor ? { doctors: () => deps.doctor!.summaries() } : {}),
    });
    this.desk = new DeskActions({ store: deps.store, attempts: deps.attempts, refunds: deps.refunds, clock: deps.clock, logger: deps.logger });
    this.assets = loadAssets();
    this.origins = new Set([deps.publicHttpUrl, ...c.allowedOrigins].flatMap((u) => (u ? [originOf(u)].filter((o): o is string => !!o) : [])));
    this.headers = {
      'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'same-origin',
      'cache-control': 'no-store',
      ...(deps.secure ? { 'strict-transport-security': 'max-age=31536000' } : {}),
    };
    this.routes = [
      ['GET', /^\/dashboard\/?$/, (x) => this.overview(x)],
      ['GET', /^\/dashboard\/events$/, (x) => this.events(x)],
      ['GET', /^\/dashboard\/boxes$/, (x) => this.boxes(x)],
      ['GET', /^\/dashboard\/boxes\/table$/, (x) => this.boxesTable(x)],
      ['GET', /^\/dashboard\/boxes\/([^/]+)$/, (x, [id]) => this.box(x, id!)],
      ['GET', /^\/dashboard\/boxes\/([^/]+)\/revoke$/, (x, [id]) => this.revokeConfirm(x, id!)],
      ['POST', /^\/dashboard\/boxes\/([^/]+)\/revoke$/, (x, [id]) => this.revoke(x, id!)],
      ['POST', /^\/dashboard\/boxes\/([^/]+)\/doctor$/, (x, [id]) => this.askDoctor(x, id!)],
      ['GET', /^\/dashboard\/payments$/, (x) => this.search(x)],
      ['GET', /^\/dashboard\/payments\/([^/]+)$/, (x, [id]) => this.payment(x, id!)],
      ['GET', /^\/dashboard\/exceptions$/, (x) => this.exceptions(x)],
      ['POST', /^\/dashboard\/exceptions\/(attempt|refund)\/([^/]+)\/(query_now|retry_now|resolve)$/, (x, [k, id, a]) => this.deskAction(x, k as DeskKind, id!, a as DeskActionName)],
      ['GET', /^\/dashboard\/pairing$/, (x) => this.pairingForm(x)],
      ['POST', /^\/dashboard\/pairing$/, (x) => this.pairing(x)],
      ['POST', /^\/dashboard\/logout$/, (x) => this.logout(x)],
    ];
  }

  /** The live stream's timer and the sweep of expired sessions. */
  start(): void {
    this.feed.start();
    const sweep = () => {
      this.sweepTimer = this.deps.clock.setTimeout(() => {
        void this.sessions.sweep().catch((err: unknown) => this.deps.logger.warn({ err: (err as Error).message }, 'dashboard session sweep failed'));
        sweep();
      }, SESSION_SWEEP_MS);
    };
    sweep();
  }

  async close(): Promise<void> {
    this.deps.clock.clearTimeout(this.sweepTimer);
    await this.feed.close();
  }

  /** The live stream, for tests and the benchmark: how many dashboards are watching, and one push now. */
  get live(): Pick<LiveFeed, 'size' | 'tick' | 'stats'> {
    return this.feed;
  }

  /** Every request under /dashboard. Never throws. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.route(req, res);
    } catch (err) {
      this.fail(req, res, err);
    }
  }

  // ── the door ────────────────────────────────────────────────────────────────────────────────

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path.startsWith('/dashboard/assets/') && method === 'GET') return this.asset(res, path.slice('/dashboard/assets/'.length));
    if (path === '/dashboard/login') {
      if (method === 'GET') return this.loginForm(req, res, url);
      if (method === 'POST') return this.loginPost(req, res);
      return this.send(res, 405, 'method not allowed', { allow: 'GET, POST', 'content-type': 'text/plain; charset=utf-8' });
    }
    const found = this.match(method, path);
    const session = await this.sessions.resolve(cookieValue(req.headers.cookie, SESSION_COOKIE), path !== '/dashboard/events');
    if (!session) return this.unauthenticated(req, res, url, method);
    if (!found) return this.send(res, 404, page({ operator: session.operator, csrfToken: session.csrfToken }, 'Not found', html`<p>No page at ${path}.</p>`));
    const viewer = { operator: session.operator, csrfToken: session.csrfToken };
    const htmx = req.headers['hx-request'] === 'true';
    let form = new URLSearchParams();
    if (method === 'POST') {
      const origin = checkOrigin(req, this.deps.secure ? 'https' : 'http', this.origins);
      if (!origin.ok) return this.refuse(req, res, session.operator, origin.why);
      form = await readForm(req);
      const token = (req.headers[CSRF_HEADER] as string | undefined) ?? form.get(CSRF_FIELD) ?? undefined;
      if (!tokensMatch(token, session.csrfToken)) return this.refuse(req, res, session.operator, token ? 'wrong CSRF token' : 'no CSRF token');
    }
    await found.handler({ req, res, url, session, viewer, form, htmx }, found.params);
  }

  private match(method: string, path: string): { handler: Handler; params: string[] } | undefined {
    for (const [m, re, handler] of this.routes) {
      const hit = m === method ? re.exec(path) : null;
      if (hit) return { handler, params: hit.slice(1).map((p) => decodeURIComponent(p)) };
    }
    return undefined;
  }

  private unauthenticated(req: IncomingMessage, res: ServerResponse, url: URL, method: string): void {
    const log = { address: req.socket.remoteAddress, method, path: url.pathname };
    if (method !== 'GET') {
      this.deps.logger.warn({ ...log, why: 'no live session' }, 'dashboard request refused');
      return this.send(res, 401, page(null, 'Logged out', html`<p>Your session is over. <a href="/dashboard/login">Log in again</a>; nothing was changed.</p>`));
    }
    this.deps.logger.debug(log, 'dashboard: no session, sent to the login');
    const next = `/dashboard/login?next=${encodeURIComponent(url.pathname + url.search)}`;
    if (req.headers['hx-request'] === 'true' || url.pathname === '/dashboard/events') return this.send(res, 401, '', { 'hx-redirect': next });
    this.redirect(res, next);
  }

  private refuse(req: IncomingMessage, res: ServerResponse, operator: string | undefined, why: string): void {
    this.deps.logger.warn({ operator, address: req.socket.remoteAddress, method: req.method, path: (req.url ?? '').split('?')[0], why }, 'dashboard request refused');
    this.send(res, 403, page(null, 'Refused', html`<p>This request was refused (${why}) and changed nothing. Reload the page you came from and try again.</p>`), { connection: 'close' });
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    if (!isProtocolError(err)) this.deps.logger.error({ path: (req.url ?? '').split('?')[0], err: (err as Error)?.stack ?? String(err) }, 'dashboard handler failed');
    if (res.headersSent) return void res.end();
    const pe = isProtocolError(err) ? err : new ProtocolError(ErrorCode.INTERNAL, 'internal error: see the cloud log');
    const status = STATUS[pe.code] ?? 500;
    if (status < 500) this.deps.logger.info({ path: (req.url ?? '').split('?')[0], code: pe.code, why: pe.message }, 'dashboard request refused');
    // A refused body may be unread: close rather than read it to keep the connection.
    this.send(res, status, page(null, 'Not done', html`<p class="flash bad" role="alert">${pe.message}</p><p><a href="/dashboard">overview</a></p>`), { connection: 'close' });
  }

  private send(res: ServerResponse, status: number, body: string, extra: Record<string, string | string[]> = {}): void {
    res.writeHead(status, { ...this.headers, 'content-type': 'text/html; charset=utf-8', ...extra }).end(body);
  }

  private redirect(res: ServerResponse, location: string, extra: Record<string, string | string[]> = {}): void {
    this.send(res, 303, '', { location, ...extra });
  }

  private asset(res: ServerResponse, name: string): void {
    const a = this.assets.get(name);
    if (!a) return this.send(res, 404, 'no such asset', { 'content-type': 'text/plain; charset=utf-8' });
    res.writeHead(200, { ...this.headers, 'content-type': a.type, 'cache-control': 'private, max-age=3600' }).end(a.body);
  }

  // ── logging in and out ──────────────────────────────────────────────────────────────────────

  private loginCookie(value: string, maxAge: number): string {
    return `${LOGIN_COOKIE}=${value}; Path=/dashboard/login; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${this.deps.secure ? '; Secure' : ''}`;
  }

  private async loginForm(req: IncomingMessage, res: ServerResponse, url: URL, status = 200, message?: string, name?: string): Promise<void> {
    if (status === 200 && (await this.sessions.resolve(cookieValue(req.headers.cookie, SESSION_COOKIE)))) return this.redirect(res, safeNext(url.searchParams.get('next')));
    const token = randomBytes(24).toString('base64url');
    this.send(res, status, loginPage({ token, next: safeNext(url.searchParams.get('next')), ...(message ? { message } : {}), ...(name ? { name } : {}) }), { 'set-cookie': this.loginCookie(token, LOGIN_FORM_TTL_S) });
  }

  private async loginPost(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const address = req.socket.remoteAddress ?? 'unknown';
    const origin = checkOrigin(req, this.deps.secure ? 'https' : 'http', this.origins);
    if (!origin.ok) return this.refuse(req, res, undefined, origin.why);
    const form = await readForm(req);
    const expected = cookieValue(req.headers.cookie, LOGIN_COOKIE);
    if (!expected || !tokensMatch(form.get(CSRF_FIELD) ?? undefined, expected)) return this.refuse(req, res, undefined, 'the login form was not loaded by this browser (or is older than 10 minutes)');
    const name = form.get('name') ?? '';
    const again = new URL(`/dashboard/login?next=${encodeURIComponent(safeNext(form.get('next')))}`, 'http://dashboard.invalid');
    const result = await this.login.attempt(name, form.get('password') ?? '', address);
    if (result.ok) {
      return this.redirect(res, safeNext(form.get('next')), { 'set-cookie': [this.sessions.cookie(result.id), this.loginCookie('', 0)] });
    }
    if (result.why === 'throttled') {
      res.setHeader('retry-after', String(Math.ceil(result.retryAfterMs / 1000)));
      return this.loginForm(req, res, again, 429, `Too many failed logins: try again in ${Math.ceil(result.retryAfterMs / 1000)} s.`, name);
    }
    return this.loginForm(req, res, again, 401, 'Wrong operator name or password.', name);
  }

  private async logout(x: Ctx): Promise<void> {
    await this.sessions.end(x.session.idHash);
    this.feed.endSession(x.session.idHash);
    this.deps.logger.info({ operator: x.session.operator, address: x.req.socket.remoteAddress }, 'dashboard logout');
    this.redirect(x.res, '/dashboard/login', { 'set-cookie': this.sessions.clearingCookie() });
  }

  // ── pages ───────────────────────────────────────────────────────────────────────────────────

  private async overview(x: Ctx): Promise<void> {
    const now = this.deps.clock.now();
    const [devices, desk, traffic] = await Promise.all([this.deps.store.listDevices(), openDeskItems(this.deps.store, now, this.deps.config.pendingThresholdMs), this.series.window(now)]);
    this.send(x.res, 200, overviewPage(x.viewer, countsOf(devices), traffic, desk.length, this.feed.version));
  }

  private events(x: Ctx): Promise<void> {
    const since = Number(x.url.searchParams.get('since') ?? '-1');
    if (!this.feed.attach(x.req, x.res, x.session, since, this.headers)) this.send(x.res, 503, 'too many live dashboards', { 'retry-after': '30', 'content-type': 'text/plain; charset=utf-8' });
    return Promise.resolve();
  }

  private async doctorSummaries(): Promise<ReadonlyMap<string, DoctorSummary>> {
    return (await this.deps.doctor?.summaries()) ?? new Map();
  }

  private async boxes(x: Ctx): Promise<void> {
    const version = this.feed.version;
    const [devices, doctors] = await Promise.all([this.deps.store.listDevices(), this.doctorSummaries()]);
    this.send(x.res, 200, boxesPage(x.viewer, devices, doctors, version));
  }

  private async boxesTable(x: Ctx): Promise<void> {
    const [devices, doctors] = await Promise.all([this.deps.store.listDevices(), this.doctorSummaries()]);
    this.send(x.res, 200, boxesTable(devices, doctors).text);
  }

  private async device(id: string) {
    const d = DEVICE_ID.test(id) ? await this.deps.store.getDevice(id) : undefined;
    if (!d) throw new ProtocolError(ErrorCode.NOT_PAIRED, `no box ${id.slice(0, 64)}`);
    return d;
  }

  private async box(x: Ctx, id: string): Promise<void> {
    const device = await this.device(id);
    const [active, commands, actions, doctor] = await Promise.all([
      this.deps.store.listActiveAttempts(),
      this.deps.store.listDeviceCommands(id),
      this.deps.store.listOperatorActions({ subjectKind: 'device', subjectIds: [id] }),
      this.deps.doctor ? this.deps.doctor.latest(id) : Promise.resolve(null),
    ]);
    const flash = DONE[x.url.searchParams.get('done') ?? ''];
    this.send(x.res, 200, boxPage(x.viewer, { device, openAttempts: active.filter((a) => a.deviceId === id), commands, actions, doctor, canAskDoctor: this.deps.doctor !== undefined }, flash));
  }

  private async revokeConfirm(x: Ctx, id: string): Promise<void> {
    this.send(x.res, 200, revokeConfirmPage(x.viewer, await this.device(id)));
  }

  private async revoke(x: Ctx, id: string): Promise<void> {
    const device = await this.device(id);
    if (x.form.get('confirm') !== device.deviceId) throw new ProtocolError(ErrorCode.SCHEMA_INVALID, `revoking needs the confirmation form: it names the box (${device.deviceId})`);
    const done = await this.deps.store.revokeDevice(id, this.deps.clock.now());
    if (done) this.deps.disconnect(id);
    await this.audit(x, { action: 'revoke', subjectKind: 'device', subjectId: id, subjectState: device.status, note: '', outcome: done ? 'revoked' : 'refused: already revoked' });
    if (!done) throw new ProtocolError(ErrorCode.DEVICE_REVOKED, `${id} is already revoked`);
    this.redirect(x.res, `/dashboard/boxes/${encodeURIComponent(id)}?done=revoked`);
  }

  private async askDoctor(x: Ctx, id: string): Promise<void> {
    const device = await this.device(id);
    if (!this.deps.doctor) throw new ProtocolError(ErrorCode.SCHEMA_INVALID, 'this cloud does not ask boxes for doctor reports');
    await this.deps.doctor.ask(id);
    await this.audit(x, { action: 'ask_doctor', subjectKind: 'device', subjectId: id, subjectState: device.status, note: '', outcome: 'doctor command queued' });
    this.redirect(x.res, `/dashboard/boxes/${encodeURIComponent(id)}?done=doctor-asked`);
  }

  private async search(x: Ctx): Promise<void> {
    const q = (x.url.searchParams.get('q') ?? '').slice(0, 128);
    if (!q.trim()) return this.send(x.res, 200, searchPage(x.viewer, ''));
    const found = await findPayments(this.deps.store, q);
    if (found.attempts.length === 1) return this.redirect(x.res, `/dashboard/payments/${encodeURIComponent(found.attempts[0]!.outTradeNo)}`);
    this.send(x.res, 200, searchPage(x.viewer, q, found));
  }

  private async payment(x: Ctx, id: string): Promise<void> {
    const v = SUBJECT_ID.test(id) ? await paymentView(this.deps.store, id) : undefined;
    if (!v) throw new ProtocolError(ErrorCode.ATTEMPT_UNKNOWN, `no payment ${id.slice(0, 80)}`);
    this.send(x.res, 200, timelinePage(x.viewer, v));
  }

  private async exceptions(x: Ctx): Promise<void> {
    const now = this.deps.clock.now();
    this.send(x.res, 200, exceptionsPage(x.viewer, await deskItems(this.deps.store, now, this.deps.config.pendingThresholdMs), now, this.deps.config.pendingThresholdMs));
  }

  /** With htmx the answer is the item's card as it now stands (a refused note shows on it); without, back to the desk. */
  private async deskAction(x: Ctx, kind: DeskKind, id: string, action: DeskActionName): Promise<void> {
    if (!SUBJECT_ID.test(id)) throw new ProtocolError(kind === 'attempt' ? ErrorCode.ATTEMPT_UNKNOWN : ErrorCode.SALE_UNKNOWN, `no ${kind} ${id.slice(0, 80)}`);
    let flash: string;
    try {
      const row = await this.desk.act(x.session.operator, kind, id, action, x.form.get('note') ?? '');
      flash = `${action.replace('_', ' ')}: ${row.outcome}`;
    } catch (err) {
      if (!x.htmx || !isProtocolError(err, ErrorCode.SCHEMA_INVALID)) throw err;
      flash = `not done: ${err.message}`;
    }
    if (!x.htmx) return this.redirect(x.res, '/dashboard/exceptions');
    const item = await deskItem(this.deps.store, kind, id);
    this.send(x.res, 200, item ? deskCard(x.viewer, item, this.deps.clock.now(), flash).text : html`<p>${flash}</p>`.text);
  }

  private async pairingForm(x: Ctx): Promise<void> {
    this.send(x.res, 200, pairingPage(x.viewer, await this.deps.store.listMerchants()));
  }

  private async pairing(x: Ctx): Promise<void> {
    const merchantId = (x.form.get('merchant') ?? '').trim();
    const storeId = (x.form.get('store') ?? '').trim();
    const merchants = await this.deps.store.listMerchants();
    let issued;
    try {
      issued = await createPairingCode({ store: this.deps.store, clock: this.deps.clock, codeTtlS: this.deps.pairingCodeTtlS }, merchantId, storeId);
    } catch (err) {
      if (!isProtocolError(err, ErrorCode.SCHEMA_INVALID) && !isProtocolError(err, ErrorCode.MERCHANT_UNKNOWN)) throw err;
      return this.send(x.res, 400, pairingPage(x.viewer, merchants, err.message));
    }
    // The code itself is a one-time secret: neither the audit nor the log keeps it.
    await this.audit(x, { action: 'pairing_code', subjectKind: 'store', subjectId: `${merchantId}/${storeId}`, subjectState: null, note: '', outcome: `code created, expires ${new Date(issued.expiresAt).toISOString()}` });
    this.send(x.res, 200, await pairingCodePage(x.viewer, merchants, issued, this.pairingUrl(x.req)));
  }

  /**
   * The address a box is sent to: the cloud's public one, else its listener's — unless that listens
   * on every address (0.0.0.0, ::), which no box can call: then the address this operator reached
   * the dashboard at, the best guess there is (set publicHttpUrl to make it right).
   */
  private pairingUrl(req: IncomingMessage): string {
    const url = this.deps.pairingUrl();
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    const wildcard = host === '0.0.0.0' || /^[0:]+$/.test(host);
    return wildcard && req.headers.host ? `${this.deps.secure ? 'https' : 'http'}://${req.headers.host}` : url;
  }

  private async audit(x: Ctx, a: Omit<Parameters<CloudStore['addOperatorAction']>[0], 'at' | 'operator'>): Promise<void> {
    await this.deps.store.addOperatorAction({ ...a, at: this.deps.clock.now(), operator: x.session.operator });
    this.deps.logger.info({ operator: x.session.operator, action: a.action, subject: `${a.subjectKind}:${a.subjectId}`, outcome: a.outcome }, 'operator action');
  }
}

/** Where a login may send the browser: a dashboard page of this origin, never elsewhere. */
export function safeNext(raw: string | null | undefined): string {
  if (!raw || !raw.startsWith('/dashboard') || raw.startsWith('//') || /[\\\s]/.test(raw)) return '/dashboard';
  const u = new URL(raw, 'http://dashboard.invalid');
  const inside = u.pathname === '/dashboard' || u.pathname.startsWith('/dashboard/');
  if (u.origin !== 'http://dashboard.invalid' || !inside || u.pathname.startsWith('/dashboard/login') || u.pathname === '/dashboard/events' || u.pathname.startsWith('/dashboard/assets')) return '/dashboard';
  return u.pathname + u.search;
}
