import type { Clock } from '../../protocol/clock.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Refund } from '../refunds/refund-machine.js';
import type { CloudStore, Lease } from '../store/store.js';
import type { Attempt } from './transaction.js';

/** Who this worker is among several on one store, and how long a lease it takes with each write. */
export interface WorkerLease {
  owner: string;
  ttlMs: number;
}

export interface LeaseKeeperDeps {
  store: CloudStore;
  clock: Clock;
  timers: Clock;
  logger: Logger;
  metrics: Metrics;
  worker: WorkerLease;
  attempts: { resume(list: Attempt[]): Promise<number> };
  refunds: { resume(list: Refund[]): Promise<number> };
  /** Claimed per store call; a round claims until a call answers fewer. */
  batch?: number;
}

/** A round claims at most this many batches of each kind; the next round (a third of a lease later) goes on. */
const MAX_BATCHES_PER_ROUND = 20;

/**
 * A worker's part in sharing one store's background work with the others (store.ts Lease). The
 * services take an attempt's or a refund's lease with each write; this keeps them: every third of a
 * lease it renews the leases this worker holds on work left, then claims — in batches, `FOR UPDATE
 * SKIP LOCKED` on PostgreSQL — what nobody holds any more (a dead worker's, once its leases ran
 * out) and hands it to the services to resume, as a restart would. At start it first gives up what
 * its previous life held (same worker id), then claims like any round: a restarted worker resumes
 * its own work and the others'. Stopping cleanly, it releases everything it holds, so the others
 * take over at once instead of at the leases' end.
 *
 * A worker stalled longer than a lease (a paused VM) can find its attempt resumed by another with
 * the same call; the store then refuses the stalled worker's writes (`leased`), the wallets make
 * the repeated call idempotent (same outTradeNo, same refund number), and the answer of the worker
 * that drives the attempt decides.
 */
export class LeaseKeeper {
  private timer: unknown = null;
  private round: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly deps: LeaseKeeperDeps) {}

  /** Release this worker id's old leases, claim what is free, and keep doing it. Resolves after the first round. */
  async start(): Promise<void> {
    await this.deps.store.releaseLeases(this.deps.worker.owner);
    await this.runRound('resumed');
    this.arm();
  }

  /** Stop the rounds (before the services close). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) this.deps.timers.clearTimeout(this.timer);
    this.timer = null;
    await this.round;
  }

  /** Give every lease up (after the services closed: nothing of this worker's writes any more). */
  release(): Promise<void> {
    return this.deps.store.releaseLeases(this.deps.worker.owner);
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = this.deps.timers.setTimeout(() => {
      void this.runRound('took over').finally(() => this.arm());
    }, this.deps.worker.ttlMs / 3);
  }

  private runRound(verb: string): Promise<void> {
    this.round = this.round.then(() => this.once(verb)).catch((err: unknown) => this.deps.logger.warn({ err: (err as Error).message }, 'lease round failed; the next round tries again'));
    return this.round;
  }

  private async once(verb: string): Promise<void> {
    if (this.stopped) return;
    await this.deps.store.renewLeases(this.lease());
    const attempts = await this.claim((l, n) => this.deps.store.claimAttempts(l, n), (list) => this.deps.attempts.resume(list));
    const refunds = await this.claim((l, n) => this.deps.store.claimRefunds(l, n), (list) => this.deps.refunds.resume(list));
    if (attempts + refunds === 0) return;
    this.deps.metrics.inc('leases_claimed_total', 'attempt', attempts);
    this.deps.metrics.inc('leases_claimed_total', 'refund', refunds);
    this.deps.logger.info({ worker: this.deps.worker.owner, attempts, refunds }, `${verb} attempts and refunds nobody held`);
  }

  private async claim<T>(take: (lease: Lease, limit: number) => Promise<T[]>, resume: (list: T[]) => Promise<number>): Promise<number> {
    const batch = this.deps.batch ?? 100;
    let total = 0;
    for (let i = 0; i < MAX_BATCHES_PER_ROUND && !this.stopped; i++) {
      const list = await take(this.lease(), batch);
      total += list.length;
      // Each resume is written before the next batch is claimed; its first wallet call sleeps its share of the spread unawaited.
      await resume(list);
      if (list.length < batch) break;
    }
    return total;
  }

  private lease(): Lease {
    const now = this.deps.clock.now();
    return { owner: this.deps.worker.owner, now, until: now + this.deps.worker.ttlMs };
  }
}
