import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from '../../protocol/clock.js';
import type { CloudStore, OperatorSessionRow } from '../store/store.js';

/**
 * Dashboard sessions. The browser holds 32 random bytes (base64url) in an HttpOnly, SameSite=Strict
 * cookie scoped to /dashboard (Secure when the cloud serves HTTPS); the store holds only their
 * SHA-256, so a copy of the store opens no session. A session ends `idleMs` after it was last used
 * or `maxMs` after its login, whichever is first; use is written at most once a minute (a page view
 * is not a write each time). Every session carries a random CSRF token its forms must echo.
 */
export const SESSION_COOKIE = 'scanbox_dashboard';
const ID_BYTES = 32;
const ID_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export interface Session extends OperatorSessionRow {
  /** When it ends unless used again (epoch ms). */
  expiresAt: number;
}

export interface SessionsDeps {
  store: CloudStore;
  clock: Clock;
  idleMs: number;
  maxMs: number;
  /** Sets the cookie's Secure flag: the cloud serves HTTPS. */
  secure: boolean;
  randomBytes?: (n: number) => Buffer;
}

export function sessionIdHash(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

export class Sessions {
  private readonly random: (n: number) => Buffer;
  /** Writes of lastSeenAt closer together than this are skipped: idle expiry is minute-grained. */
  private readonly touchEveryMs: number;

  constructor(private readonly deps: SessionsDeps) {
    this.random = deps.randomBytes ?? randomBytes;
    this.touchEveryMs = Math.min(60_000, Math.floor(deps.idleMs / 10));
  }

  /** A new session for `operator`: the cookie value to hand to the browser, and the session. */
  async create(operator: string): Promise<{ id: string; session: Session }> {
    const id = this.random(ID_BYTES).toString('base64url');
    const now = this.deps.clock.now();
    const row: OperatorSessionRow = { idHash: sessionIdHash(id), operator, csrfToken: this.random(ID_BYTES).toString('base64url'), createdAt: now, lastSeenAt: now };
    await this.deps.store.createOperatorSession(row);
    return { id, session: this.withExpiry(row) };
  }

  /** The live session a cookie value names (its use recorded), or undefined: unknown, malformed or over (then ended). */
  async resolve(id: string | undefined, use = true): Promise<Session | undefined> {
    if (!id || !ID_PATTERN.test(id)) return undefined;
    const row = await this.deps.store.getOperatorSession(sessionIdHash(id));
    if (!row) return undefined;
    const now = this.deps.clock.now();
    const s = this.withExpiry(row);
    if (now >= s.expiresAt) {
      await this.deps.store.endOperatorSession(row.idHash);
      return undefined;
    }
    if (!use || now - row.lastSeenAt < this.touchEveryMs) return s;
    await this.deps.store.touchOperatorSession(row.idHash, now);
    return this.withExpiry({ ...row, lastSeenAt: now });
  }

  /** Whether the session with this hash is still live, without counting as use (the live stream asks this). */
  async stillLive(idHash: string): Promise<Session | undefined> {
    const row = await this.deps.store.getOperatorSession(idHash);
    const s = row && this.withExpiry(row);
    return s && this.deps.clock.now() < s.expiresAt ? s : undefined;
  }

  async end(idHash: string): Promise<void> {
    await this.deps.store.endOperatorSession(idHash);
  }

  /** Removes every session past its idle or absolute end (the cloud does this every few minutes). */
  sweep(): Promise<number> {
    const now = this.deps.clock.now();
    return this.deps.store.endExpiredOperatorSessions(now - this.deps.idleMs, now - this.deps.maxMs);
  }

  cookie(id: string): string {
    return `${SESSION_COOKIE}=${id}; ${this.attributes()}`;
  }

  clearingCookie(): string {
    return `${SESSION_COOKIE}=; ${this.attributes()}; Max-Age=0`;
  }

  private attributes(): string {
    return `Path=/dashboard; HttpOnly; SameSite=Strict${this.deps.secure ? '; Secure' : ''}`;
  }

  private withExpiry(row: OperatorSessionRow): Session {
    return { ...row, expiresAt: Math.min(row.lastSeenAt + this.deps.idleMs, row.createdAt + this.deps.maxMs) };
  }
}

/** One cookie's value from a Cookie header; undefined when absent. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
