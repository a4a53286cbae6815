import { COMMAND_SINCE, downTopic, encodeDown, PROTOCOL_VERSION } from '../../protocol/index.js';
import type { Clock } from '../../protocol/clock.js';
import type { Logger } from '../log.js';
import type { CloudStore, DeviceCommandRow } from '../store/store.js';

export interface CommandWatchDeps {
  store: CloudStore;
  logger: Logger;
  clock: Clock;
  pollMs: number;
  /** An unpaired box that has been disconnected this long has left: it is revoked. */
  goneMs: number;
  /** An unpair this old (since first sent) is finished by revoking the box, whatever it is doing. */
  graceMs: number;
  publish: (topic: string, payload: string, qos: 0 | 1) => Promise<void>;
  /** The protocol version the box reads (the fleet's view of its last heartbeat). */
  downVersionFor: (deviceId: string) => number;
}

/**
 * `scanbox-cloud devices reboot|unpair|doctor` runs in another process and only queues the command in the
 * store; the running cloud polls the queue (and looks again the moment a box connects) and sends each
 * command on the box's down/command, QoS 1, once the box can receive it: subscribed, or connected with
 * a persistent session (its subscription survives). A box that is away gets it when it is back.
 *
 * An unpair is finished by the cloud revoking the box. The box wipes its own credentials only after
 * what it had in flight is final (or after its own bounded wait), then disconnects and never comes
 * back with them: so the box is revoked once it has been disconnected for `goneMs`, or `graceMs`
 * after the command was first sent, whichever comes first. A box that reconnects before `goneMs`
 * (a dropped link, a crash mid-unpair) is sent the unpair again: it ignores a repeat of the command
 * it is carrying out, and one it never received is not lost.
 *
 * Connection state is this process's own (from the embedded broker's events); after a cloud restart
 * a box that does not come back is revoked at `graceMs`.
 */
export class CommandWatch {
  private readonly links = new Map<string, number>();
  private readonly reachable = new Set<string>();
  /** Ids sent on each box's current connection. */
  private readonly sentOnLink = new Map<string, Set<string>>();
  private readonly goneSince = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;

  constructor(private readonly deps: CommandWatchDeps) {}

  start(): () => void {
    this.timer = setInterval(() => void this.poll(), this.deps.pollMs);
    this.timer.unref();
    return () => {
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
    };
  }

  connected(deviceId: string, persistentSession: boolean): void {
    this.links.set(deviceId, (this.links.get(deviceId) ?? 0) + 1);
    this.goneSince.delete(deviceId);
    this.sentOnLink.delete(deviceId);
    if (persistentSession) this.becameReachable(deviceId);
  }

  subscribed(deviceId: string): void {
    if ((this.links.get(deviceId) ?? 0) > 0) this.becameReachable(deviceId);
  }

  disconnected(deviceId: string): void {
    // A takeover (the same id connecting again) closes the old connection after the new one is up.
    const left = Math.max(0, (this.links.get(deviceId) ?? 0) - 1);
    if (left > 0) return void this.links.set(deviceId, left);
    this.links.delete(deviceId);
    this.reachable.delete(deviceId);
    this.sentOnLink.delete(deviceId);
    this.goneSince.set(deviceId, this.deps.clock.now());
  }

  /**
   * One pass over the open commands. A call while a pass runs gets one more pass after it (shared by
   * every such call), and resolves when that one is done: what it asked about has been looked at.
   */
  poll(): Promise<void> {
    if (this.running) {
      this.next ??= this.running.then(() => {
        this.next = null;
        return this.poll();
      });
      return this.next;
    }
    this.running = this.pass()
      .catch((err: unknown) => this.deps.logger.error({ err: (err as Error).message }, 'device command poll failed'))
      .finally(() => (this.running = null));
    return this.running;
  }

  private becameReachable(deviceId: string): void {
    this.reachable.add(deviceId);
    void this.poll();
  }

  private async pass(): Promise<void> {
    const open = await this.deps.store.openDeviceCommands();
    for (const c of open) {
      try {
        await this.step(c);
      } catch (err) {
        this.deps.logger.error({ deviceId: c.deviceId, commandId: c.id, command: c.command, err: (err as Error).message }, 'device command step failed; tried again at the next poll');
      }
    }
    // Only a box with an unpair out needs its time away: the rest of the fleet is not remembered.
    const leaving = new Set(open.filter((c) => c.command === 'unpair' && c.sentAt !== null).map((c) => c.deviceId));
    for (const deviceId of this.goneSince.keys()) if (!leaving.has(deviceId)) this.goneSince.delete(deviceId);
  }

  private async step(c: DeviceCommandRow): Promise<void> {
    if (c.sentAt === null && (await this.dropIfRevoked(c))) return;
    const sentHere = this.sentOnLink.get(c.deviceId)?.has(c.id) ?? false;
    // A command newer than the box announced (`doctor` before its v3 heartbeat on this connection, or to an older box) waits for one that reads it.
    const readable = COMMAND_SINCE[c.command] <= this.deps.downVersionFor(c.deviceId);
    if (this.reachable.has(c.deviceId) && !sentHere && readable && (c.sentAt === null || c.command === 'unpair')) return this.send(c);
    if (c.sentAt === null || c.command !== 'unpair') return;
    const now = this.deps.clock.now();
    const gone = this.goneSince.get(c.deviceId);
    if (gone !== undefined && gone >= c.sentAt && now - gone >= this.deps.goneMs) return this.revoke(c, 'the box left after the unpair (disconnected and not back)');
    if (now - c.sentAt >= this.deps.graceMs) return this.revoke(c, 'the unpair grace passed');
  }

  private async send(c: DeviceCommandRow): Promise<void> {
    const { deviceId } = c;
    const now = this.deps.clock.now();
    const payload = encodeDown('command', { v: PROTOCOL_VERSION, id: c.id, ts: now, command: c.command }, this.deps.downVersionFor(deviceId));
    await this.deps.publish(downTopic(deviceId, 'command'), payload, 1);
    let sent = this.sentOnLink.get(deviceId);
    if (!sent) this.sentOnLink.set(deviceId, (sent = new Set()));
    sent.add(c.id);
    await this.deps.store.markDeviceCommandSent(c.id, now);
    this.deps.logger.info({ deviceId, command: c.command, commandId: c.id, again: c.sentAt !== null }, c.sentAt === null ? 'device command sent' : 'device command sent again: the box is back before it left');
  }

  private async revoke(c: DeviceCommandRow, why: string): Promise<void> {
    if (await this.deps.store.finishDeviceCommand(c.id, this.deps.clock.now(), 'revoked')) {
      this.deps.logger.warn({ deviceId: c.deviceId, commandId: c.id, why }, 'unpair finished: device revoked');
    }
    this.goneSince.delete(c.deviceId);
  }

  /** A box revoked by other means (re-paired, `devices revoke`) before its command went out: the command ends unsent. */
  private async dropIfRevoked(c: DeviceCommandRow): Promise<boolean> {
    const d = await this.deps.store.getDevice(c.deviceId);
    if (d && d.status === 'active') return false;
    if (await this.deps.store.finishDeviceCommand(c.id, this.deps.clock.now(), 'dropped')) {
      this.deps.logger.warn({ deviceId: c.deviceId, commandId: c.id, command: c.command }, 'device command dropped: the box was revoked before it could be sent');
    }
    return true;
  }
}
