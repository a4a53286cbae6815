import { describe, expect, it } from 'vitest';
import { OFFLINE_WILL_ID, downTopic, upTopic } from '../../protocol/index.js';
import { HeartbeatPresence } from '../../cloud/broker/heartbeat-presence.js';
import { FakeClock } from '../support/fake-clock.js';

/**
 * Box connections inferred from an external broker's messages (cloud/broker/heartbeat-presence.ts):
 * what the embedded broker reports as connect + subscribe and disconnect events.
 */
const GAP = 10_000;

function setup() {
  const clock = new FakeClock(1_000_000);
  const presence = new HeartbeatPresence({ clock, gapMs: GAP });
  const events: string[] = [];
  presence.setEvents({
    onDeviceConnected: (id, persistent) => events.push(`connected ${id}${persistent ? ' persistent' : ''}`),
    onDeviceSubscribed: (id) => events.push(`subscribed ${id}`),
    onDeviceDisconnected: (id) => events.push(`disconnected ${id}`),
  });
  const hb = (id: string, msgId = 'hb-1') => presence.observe(upTopic(id, 'heartbeat'), Buffer.from(JSON.stringify({ v: 1, id: msgId, ts: clock.now(), status: {} })));
  return { clock, presence, events, hb };
}

describe('heartbeat presence', () => {
  it("a box's first message is its connect and subscribe; more within the gap are not", () => {
    const t = setup();
    t.hb('sbA');
    t.presence.observe(upTopic('sbA', 'pay'), Buffer.from('{}'));
    t.clock.advanceSync(GAP - 1);
    t.hb('sbA');
    t.presence.observe(upTopic('sbB', 'query'), Buffer.from('not even JSON'));
    expect(t.events).toEqual(['connected sbA', 'subscribed sbA', 'connected sbB', 'subscribed sbB']);
  });

  it('a box silent for longer than the gap is connected again by its next message', () => {
    const t = setup();
    t.hb('sbA');
    t.clock.advanceSync(GAP + 1);
    t.hb('sbA');
    expect(t.events).toEqual(['connected sbA', 'subscribed sbA', 'connected sbA', 'subscribed sbA']);
  });

  it('its last will is its disconnect, and its next message connects it again at once', () => {
    const t = setup();
    t.hb('sbA');
    t.hb('sbA', OFFLINE_WILL_ID);
    t.hb('sbA');
    expect(t.events).toEqual(['connected sbA', 'subscribed sbA', 'disconnected sbA', 'connected sbA', 'subscribed sbA']);
  });

  it('ignores what is not a box message on an up/ topic', () => {
    const t = setup();
    t.presence.observe(downTopic('sbA', 'result'), Buffer.from('{}'));
    t.presence.observe('$SYS/broker/uptime', Buffer.from('1'));
    t.presence.observe('scanbox/v1/d/sbA/up/nonsense', Buffer.from('{}'));
    expect(t.events).toEqual([]);
  });
});
