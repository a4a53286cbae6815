import { randomBytes } from 'node:crypto';
import { downTopic, encodeDown, ErrorCode, isProtocolError, MIN_PROTOCOL_VERSION, type DownKind, type DownToSend } from '../../protocol/index.js';
import type { Clock } from '../../protocol/clock.js';
import type { Logger } from '../log.js';

export interface DownLinkDeps {
  /** Publish on a box's down/ topic. */
  publish: (topic: string, payload: string, qos: 0 | 1) => Promise<void>;
  /** The protocol version the box announced (its heartbeat); a box that announced nothing reads v1. */
  downVersionFor?: (deviceId: string) => number;
  clock: Clock;
  logger: Logger;
}

/**
 * The refund and totals answers on their way to a box (down/refund, down/totals: protocol v3).
 * Both exist only for a box that speaks v3: an answer to a v3 message goes out in v3 even before
 * the box's first heartbeat announced it (the message it answers is the announcement), and a push
 * to a box not known to read v3 is held back — the box asks again (up/refund) and is answered then.
 */
export class DownLink {
  private readonly idPrefix = `r${randomBytes(3).toString('hex')}`;
  private seq = 0;

  constructor(private readonly deps: DownLinkDeps) {}

  envelope(): { v: 1; id: string; ts: number } {
    return { v: 1, id: `${this.idPrefix}-${(this.seq++).toString(36)}`, ts: this.deps.clock.now() };
  }

  /** False when nothing left: refused for the box's version, or the publish failed (the state is in the store). */
  async send<K extends DownKind>(deviceId: string, kind: K, msg: DownToSend<K>, o: { qos: 0 | 1; answering?: number }): Promise<boolean> {
    const version = Math.max(this.deps.downVersionFor?.(deviceId) ?? MIN_PROTOCOL_VERSION, o.answering ?? MIN_PROTOCOL_VERSION);
    let payload: string;
    try {
      payload = encodeDown(kind, msg, version);
    } catch (err) {
      const tooOld = isProtocolError(err, ErrorCode.UNSUPPORTED_VERSION);
      const why = tooOld ? 'the box has not announced a version that reads it; it asks again' : 'off-contract: a defect of this cloud';
      this.deps.logger[tooOld ? 'warn' : 'error']({ deviceId, kind, version, err: (err as Error).message }, `down/${kind} not sent: ${why}`);
      return false;
    }
    try {
      await this.deps.publish(downTopic(deviceId, kind), payload, o.qos);
      return true;
    } catch (err) {
      this.deps.logger.warn({ deviceId, kind, err: (err as Error).message }, 'publish to device failed');
      return false;
    }
  }
}
