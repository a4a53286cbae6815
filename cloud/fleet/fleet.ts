import { DOWN_SHAPES, downShapeVersion, MIN_PROTOCOL_VERSION, OFFLINE_WILL_ID, type DownShapes, type UpMessage } from '../../protocol/index.js';
import type { Clock } from '../../protocol/clock.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { CloudStore, FleetUpdate } from '../store/store.js';

/**
 * The fleet registry: who is online. A connect or disconnect (including the broker noticing a dead
 * connection, which is when the last will fires) is written at the end of its event-loop turn, with
 * every other connect and disconnect of that turn in one transaction: a fleet reconnecting after a
 * cloud restart costs a commit per turn, not an fsync per box (10,000 of those took the cloud ~15 s).
 * Heartbeats are merged and written once a second, so 10,000 boxes cost one transaction per second,
 * not 333. A box silent for more than three heartbeat intervals is marked stale.
 *
 * It also remembers the protocol version each connected box announced (the `v` of its heartbeat, or
 * of any message: with several workers a box's heartbeats may go to another),
 * in memory and per connection: a box may come back with new firmware, and until its first
 * heartbeat it is sent v1 shapes, which every box reads.
 */
export interface FleetDeps {
  store: CloudStore;
  clock: Clock;
  logger: Logger;
  heartbeatIntervalS: number;
  flushMs?: number;
  /** Where each heartbeat's outbox depth is observed (box_outbox_depth). */
  metrics?: Metrics;
}

export class Fleet {
  private readonly pending = new Map<string, FleetUpdate>();
  private readonly intervals: NodeJS.Timeout[] = [];
  /** The commit of this turn's connects and disconnects. */
  private soon: Promise<void> | null = null;
  private flushing: Promise<void> = Promise.resolve();
  private readonly announced = new Map<string, number>();

  constructor(private readonly deps: FleetDeps) {}

  start(): void {
    const hbMs = this.deps.heartbeatIntervalS * 1000;
    this.intervals.push(setInterval(() => void this.flush(), this.deps.flushMs ?? Math.min(1000, hbMs / 4)).unref());
    this.intervals.push(setInterval(() => void this.markStale(), Math.max(250, hbMs / 2)).unref());
  }

  connected(deviceId: string): Promise<void> {
    this.announced.delete(deviceId);
    return this.soonWritten({ ...this.pending.get(deviceId), deviceId, at: this.deps.clock.now(), connectivity: 'online' });
  }

  disconnected(deviceId: string): Promise<void> {
    this.deps.logger.info({ deviceId }, 'device offline');
    this.announced.delete(deviceId);
    return this.soonWritten({ deviceId, at: this.deps.clock.now(), connectivity: 'offline' });
  }

  /** The box's last will is a heartbeat too (protocol OFFLINE_WILL_ID): it means the box is gone. */
  heartbeat(deviceId: string, msg: UpMessage<'heartbeat'>): Promise<void> | void {
    if (msg.id === OFFLINE_WILL_ID) return this.disconnected(deviceId);
    this.announce(deviceId, msg.v);
    const s = msg.status;
    this.deps.metrics?.observe('box_outbox_depth', {}, s.outboxDepth);
    this.pending.set(deviceId, { deviceId, at: this.deps.clock.now(), connectivity: 'online', firmware: s.firmware, outboxDepth: s.outboxDepth, pendingAttempts: s.pendingAttempts });
  }

  /** The shape version this cloud sends the box: the newest it has, never newer than the box announced. */
  downVersionFor(deviceId: string, shapes: Readonly<Record<number, DownShapes>> = DOWN_SHAPES): number {
    return downShapeVersion(this.announced.get(deviceId) ?? MIN_PROTOCOL_VERSION, shapes);
  }

  /** Any message of the box: the version it speaks is the one it reads. */
  announce(deviceId: string, v: number): void {
    if (this.announced.get(deviceId) === v) return;
    this.announced.set(deviceId, v);
    this.deps.logger.debug({ deviceId, protocol: v, sent: this.downVersionFor(deviceId) }, 'device announced its protocol version');
  }

  /** One transaction for everything pending; flushes never overlap, so a later state is never overwritten by an earlier one. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => {
      if (this.pending.size === 0) return;
      const batch = [...this.pending.values()];
      this.pending.clear();
      return this.deps.store.updateFleet(batch).catch((err: unknown) => this.deps.logger.error({ err: (err as Error).message, updates: batch.length }, 'fleet update failed'));
    });
    return this.flushing;
  }

  async markStale(): Promise<string[]> {
    const before = this.deps.clock.now() - 3 * this.deps.heartbeatIntervalS * 1000;
    const stale = await this.deps.store.markStale(before).catch(() => [] as string[]);
    for (const deviceId of stale) this.deps.logger.warn({ deviceId }, 'device stale: no heartbeat for 3 intervals');
    return stale;
  }

  async stop(): Promise<void> {
    for (const i of this.intervals) clearInterval(i);
    await this.flush();
  }

  /** Resolves once `u` is committed, with whatever else changed in this turn. */
  private soonWritten(u: FleetUpdate): Promise<void> {
    this.pending.set(u.deviceId, u);
    this.soon ??= new Promise<void>((resolve) =>
      setImmediate(() => {
        this.soon = null;
        void this.flush().then(resolve);
      }),
    );
    return this.soon;
  }
}
