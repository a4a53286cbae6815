import { join } from 'node:path';
import type { CloudConfigInput } from '../../cloud/config.js';
import type { Clock } from '../../protocol/clock.js';
import { hashPassword } from '../../cloud/dashboard/operator-password.js';
import { startCloud, type RunningCloud } from '../../cloud/index.js';
import { createLogger } from '../../cloud/log.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { FAST, tempDir } from '../cloud/harness.js';

/**
 * An in-process cloud for the dashboard's tests: the scripted gateway (every code succeeds at once
 * unless a test scripts otherwise), the harness's fast timings, one operator, and an HTTP client
 * that keeps its cookies as a browser would (and, unlike one, sends only the headers it is told).
 */
export const OPERATOR = 'alice';
export const PASSWORD = 'correct horse battery staple';

export interface DashboardCloud {
  cloud: RunningCloud;
  gateway: ScriptedGateway;
  /** http://127.0.0.1:PORT */
  origin: string;
  close(): Promise<void>;
}

export async function startDashboardCloud(config: CloudConfigInput = {}, opts: { random?: () => number; clock?: Clock } = {}): Promise<DashboardCloud> {
  const { dir, remove } = tempDir();
  const gateway = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
  const cloud = await startCloud({
    gateway,
    dbPath: join(dir, 'cloud.db'),
    mqttPort: 0,
    httpPort: 0,
    metricsPort: 0,
    config: { ...FAST, ...config },
    logger: createLogger(config.logLevel ?? 'silent'),
    ...(opts.random ? { random: opts.random } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  await cloud.store.addOperator(OPERATOR, await hashPassword(PASSWORD), Date.now());
  return {
    cloud,
    gateway,
    origin: cloud.httpUrl,
    close: async () => {
      gateway.stop();
      await cloud.close();
      remove();
    },
  };
}

export interface Answer {
  status: number;
  headers: Headers;
  body: string;
}

/** A cookie jar and fetch without redirects: what each answer said is what the test sees. */
export class WebClient {
  readonly cookies = new Map<string, string>();

  constructor(readonly origin: string) {}

  async request(method: 'GET' | 'POST', path: string, opts: { form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...opts.headers };
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (opts.form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(`${this.origin}${path}`, { method, headers, redirect: 'manual', ...(opts.form ? { body: new URLSearchParams(opts.form).toString() } : {}) });
    for (const c of res.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      if (attrs.some((a) => a.trim().toLowerCase() === 'max-age=0')) this.cookies.delete(name);
      else this.cookies.set(name, pair!.slice(eq + 1).trim());
    }
    return { status: res.status, headers: res.headers, body: await res.text() };
  }

  get(path: string, headers: Record<string, string> = {}): Promise<Answer> {
    return this.request('GET', path, { headers });
  }

  post(path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Answer> {
    return this.request('POST', path, { form, headers });
  }

  /** The login form's token (it also sets the form's cookie), then the login; resolves with the login's answer. */
  async login(name = OPERATOR, password = PASSWORD, headers: Record<string, string> = { origin: this.origin }): Promise<Answer> {
    const form = await this.get('/dashboard/login');
    return this.post('/dashboard/login', { _csrf: hiddenValue(form.body, '_csrf'), name, password, next: '/dashboard' }, headers);
  }

  /** The session's CSRF token, as a page's forms carry it. */
  async csrf(): Promise<string> {
    return hiddenValue((await this.get('/dashboard/pairing')).body, '_csrf');
  }
}

export function hiddenValue(html: string, name: string): string {
  const m = new RegExp(`<input type="hidden" name="${name}" value="([^"]*)"`).exec(html);
  if (!m) throw new Error(`no hidden ${name} in the page`);
  return m[1]!;
}
