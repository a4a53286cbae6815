import type { Clock } from '../../protocol/clock.js';
import type { Logger } from '../log.js';
import type { CloudStore } from '../store/store.js';
import type { DashboardConfig } from './dashboard-config.js';
import { LoginThrottle } from './login-throttle.js';
import { dummyPasswordHash, PASSWORD_MAX, verifyPassword } from './operator-password.js';
import type { Session, Sessions } from './sessions.js';

/**
 * One login attempt: throttled per operator name and per address first (login-throttle.ts), then
 * the password checked against the operator's scrypt hash — or against a dummy hash when there is
 * no such operator, so a wrong name and a wrong password take as long and read the same. Every
 * outcome is logged with the name tried and the address; the password never is.
 */
export type LoginResult =
  | { ok: true; id: string; session: Session }
  | { ok: false; why: 'refused' }
  | { ok: false; why: 'throttled'; retryAfterMs: number };

export interface OperatorLoginDeps {
  store: CloudStore;
  sessions: Sessions;
  clock: Clock;
  logger: Logger;
  limits: DashboardConfig['loginLimit'];
}

export class OperatorLogin {
  private readonly throttle: LoginThrottle;

  constructor(private readonly deps: OperatorLoginDeps) {
    this.throttle = new LoginThrottle(deps.limits);
  }

  async attempt(name: string, password: string, address: string): Promise<LoginResult> {
    const operator = name.trim().toLowerCase().slice(0, 64);
    const log = this.deps.logger.child({ operator, address });
    const wait = this.throttle.waitMs(operator, address, this.deps.clock.now());
    if (wait > 0) {
      log.warn({ why: 'throttled', retryAfterMs: wait }, 'dashboard login refused');
      return { ok: false, why: 'throttled', retryAfterMs: wait };
    }
    const row = operator ? await this.deps.store.getOperator(operator) : undefined;
    const good = (await verifyPassword(password.slice(0, PASSWORD_MAX + 1), row?.passwordHash ?? (await dummyPasswordHash()))) && row !== undefined;
    if (!good) {
      this.throttle.failed(operator, address, this.deps.clock.now());
      log.warn({ why: row ? 'wrong password' : 'no such operator' }, 'dashboard login refused');
      return { ok: false, why: 'refused' };
    }
    this.throttle.succeeded(operator);
    const { id, session } = await this.deps.sessions.create(operator);
    log.info('dashboard login');
    return { ok: true, id, session };
  }
}
