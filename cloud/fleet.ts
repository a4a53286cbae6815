import { OFFLINE_WILL_ID, type UpMessage } from '../protocol/index.js';
import type { Clock } from './clock.js';
import type { Logger } from './log.js';
import type { CloudStore, FleetUpdate } from './store.js';

/**
 * The fleet registry: who is online. A connect or disconnect (including the broker noticing a dead
 * connection, which is when the last will fires) is written at once; heartbeats are merged and
 * written once a second, so 10,000 boxes cost one transaction per second, not 333. A box silent for
 * more than three heartbeat intervals is marked stale.
 */
export interface FleetDeps {
  store: CloudStore;
  clock: Clock;
  logger: Logger;
  heartbeatIntervalS: number;
  flushMs?: number;
}

export class Fleet {
  private readonly pending = new Map<string, FleetUpdate>();
  private readonly intervals: NodeJS.Timeout[] = [];

  constructor(private readonly deps: FleetDeps) {}

  start(): void {
    const hbMs = this.deps.heartbeatIntervalS * 1000;
    this.intervals.push(setInterval(() => void this.flush(), this.deps.flushMs ?? Math.min(1000, hbMs / 4)).unref());
    this.intervals.push(setInterval(() => void this.markStale(), Math.max(250, hbMs / 2)).unref());
  }

  async connected(deviceId: string): Promise<void> {
    await this.write({ deviceId, at: this.deps.clock.now(), connectivity: 'online' });
  }

  async disconnected(deviceId: string): Promise<void> {
    this.pending.delete(deviceId);
    await this.write({ deviceId, at: this.deps.clock.now(), connectivity: 'offline' });
    this.deps.logger.info({ deviceId }, 'device offline');
  }

  /** The box's last will is a heartbeat too (protocol OFFLINE_WILL_ID): it means the box is gone. */
  heartbeat(deviceId: string, msg: UpMessage<'heartbeat'>): Promise<void> | void {
    if (msg.id === OFFLINE_WILL_ID) return this.disconnected(deviceId);
    const s = msg.status;
    this.pending.set(deviceId, { deviceId, at: this.deps.clock.now(), connectivity: 'online', firmware: s.firmware, outboxDepth: s.outboxDepth, pendingAttempts: s.pendingAttempts });
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending.clear();
    await this.deps.store.updateFleet(batch).catch((err: unknown) => this.deps.logger.error({ err: (err as Error).message }, 'fleet update failed'));
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

  private async write(u: FleetUpdate): Promise<void> {
    await this.deps.store.updateFleet([u]).catch((err: unknown) => this.deps.logger.error({ err: (err as Error).message, deviceId: u.deviceId }, 'fleet update failed'));
  }
}
