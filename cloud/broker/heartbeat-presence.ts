import { OFFLINE_WILL_ID, parseTopic } from '../../protocol/index.js';
import type { Clock } from '../../protocol/clock.js';
import type { BrokerEvents } from './broker.js';

/**
 * Box connections as seen from an external broker, which tells a subscriber nothing about its
 * clients' connections. A box subscribes to its down/ before it publishes anything (device/link.ts:
 * the first heartbeat follows the SUBACK), so a message from a box this worker has not heard from
 * for `gapMs` means it is connected and subscribed: what the embedded broker's connect and
 * subscribe events mean. Its last will (a heartbeat with the protocol's OFFLINE_WILL_ID) means it is
 * gone.
 *
 * What this cannot see: a box that leaves cleanly (a DISCONNECT, so no will) is only marked stale by
 * the fleet; one that comes back within `gapMs` is not announced again. With N workers sharing the
 * boxes' messages each worker hears a box 1/N of the time, so `gapMs` must be several heartbeat
 * intervals for a box to look connected only once. The events are harmless to repeat: the results
 * and commands they send again are deduplicated by the box.
 */
export interface HeartbeatPresenceDeps {
  clock: Clock;
  gapMs: number;
}

export class HeartbeatPresence {
  private events: BrokerEvents = {};
  private readonly lastHeard = new Map<string, number>();
  private lastSweep: number;

  constructor(private readonly deps: HeartbeatPresenceDeps) {
    this.lastSweep = deps.clock.now();
  }

  setEvents(events: BrokerEvents): void {
    this.events = events;
  }

  /** Every up/ message, before the service handles it. */
  observe(topic: string, payload: Buffer): void {
    let t;
    try {
      t = parseTopic(topic);
    } catch {
      return;
    }
    if (t.direction !== 'up') return;
    const id = t.deviceId;
    if (t.kind === 'heartbeat' && isWill(payload)) {
      this.lastHeard.delete(id);
      this.events.onDeviceDisconnected?.(id);
      return;
    }
    const now = this.deps.clock.now();
    const last = this.lastHeard.get(id);
    this.lastHeard.set(id, now);
    if (last === undefined || now - last > this.deps.gapMs) {
      this.events.onDeviceConnected?.(id, false);
      this.events.onDeviceSubscribed?.(id);
    }
    if (now - this.lastSweep > this.deps.gapMs) this.sweep(now);
  }

  /** Boxes not heard from for `gapMs` would be announced again anyway: forgetting them bounds the map. */
  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [id, at] of this.lastHeard) if (now - at > this.deps.gapMs) this.lastHeard.delete(id);
  }
}

function isWill(payload: Buffer): boolean {
  try {
    return (JSON.parse(payload.toString()) as { id?: unknown }).id === OFFLINE_WILL_ID;
  } catch {
    return false;
  }
}
