import { ErrorCode, ProtocolError } from '../../protocol/index.js';
import type { Clock } from '../../protocol/clock.js';
import type { Logger } from '../log.js';
import type { AttemptsService } from '../payments/attempts-service.js';
import type { RefundsService } from '../refunds/refunds-service.js';
import type { CloudStore, OperatorActionRow } from '../store/store.js';
import { attemptNow, refundNow, type DeskKind, type NowAction } from './exception-desk.js';

/**
 * The exception desk's buttons. "Now" never calls a wallet from here: it asks the running service
 * that owns the attempt (its machine's resume, in the attempt's lane) or the refund (a retry made
 * due now), exactly as their own timers would; the wallet call, its timeout and its answer are
 * theirs. Every action — done or refused — is written to the audit trail with the operator's name
 * and shows on the payment's timeline.
 */
export type DeskActionName = NowAction | 'resolve';
export const NOTE_MAX = 500;

export interface DeskActionsDeps {
  store: CloudStore;
  attempts: Pick<AttemptsService, 'resumeNow'>;
  refunds: Pick<RefundsService, 'retryNow'>;
  clock: Clock;
  logger: Logger;
}

export class DeskActions {
  constructor(private readonly deps: DeskActionsDeps) {}

  /**
   * Refuses before anything is written: an unknown subject (ATTEMPT_UNKNOWN / SALE_UNKNOWN), a
   * resolution without a note or a note over NOTE_MAX (SCHEMA_INVALID). A "now" the subject no
   * longer offers is audited as refused.
   */
  async act(operator: string, kind: DeskKind, id: string, action: DeskActionName, rawNote: string): Promise<OperatorActionRow> {
    const note = rawNote.trim();
    if (note.length > NOTE_MAX) throw new ProtocolError(ErrorCode.SCHEMA_INVALID, `a note is at most ${NOTE_MAX} characters`);
    if (action === 'resolve' && !note) throw new ProtocolError(ErrorCode.SCHEMA_INVALID, 'say in the note what was done or found: a resolution without one tells the next person nothing');
    const subject = await this.subject(kind, id);
    const outcome = action === 'resolve' ? 'resolved' : await this.now(kind, id, action, subject.offered);
    const row = await this.deps.store.addOperatorAction({ at: this.deps.clock.now(), operator, action, subjectKind: kind, subjectId: id, subjectState: subject.state, note, outcome });
    this.deps.logger.info({ operator, action, subject: `${kind}:${id}`, state: subject.state, outcome }, 'operator action');
    return row;
  }

  private async subject(kind: DeskKind, id: string): Promise<{ state: string; offered: NowAction | null }> {
    if (kind === 'attempt') {
      const a = await this.deps.store.getAttempt(id);
      if (!a) throw new ProtocolError(ErrorCode.ATTEMPT_UNKNOWN, `no attempt ${id}`);
      return { state: a.state, offered: attemptNow(a).now?.action ?? null };
    }
    const r = await this.deps.store.getRefund(id);
    if (!r) throw new ProtocolError(ErrorCode.SALE_UNKNOWN, `no register refund ${id}`);
    return { state: r.state, offered: refundNow(r).now?.action ?? null };
  }

  /** The page showed a button for what the subject offered then; if it moved on since, nothing is started. */
  private async now(kind: DeskKind, id: string, action: NowAction, offered: NowAction | null): Promise<string> {
    if (offered !== action) return `refused: ${offered ? `it now offers ${offered.replace('_', ' ')}` : 'nothing can start now'}`;
    const res = kind === 'attempt' ? await this.deps.attempts.resumeNow(id) : await this.deps.refunds.retryNow(id);
    if (!res.ok) return `refused: ${res.why}`;
    return `started (now ${'attempt' in res ? res.attempt.state : res.refund.state})`;
  }
}
