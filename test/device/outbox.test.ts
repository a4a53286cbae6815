import { describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '../../protocol/index.js';
import { Journal } from '../../device/journal.js';
import { Outbox, OutboxPump, type OutboxRow, type Publisher } from '../../device/outbox.js';
import { FakeClock } from '../support/fake-clock.js';
import { useTempDirs } from './temp-dir.js';

const tempDir = useTempDirs();
const q = (n: number) => ({ v: PROTOCOL_VERSION, id: `q${n}`, ts: 1_700_000_000_000 + n, outTradeNo: `box1-${n}`, saleId: 'box1-s1', amount: 100, currency: 'CNY' });

/** A publisher whose PUBACKs the test releases by hand. */
class ManualPublisher implements Publisher {
  connected = true;
  sent: { topic: string; payload: string; done: (err?: Error) => void }[] = [];
  publish(topic: string, payload: string, done: (err?: Error) => void): void {
    this.sent.push({ topic, payload, done });
  }
  ackNext(err?: Error): void {
    this.sent.shift()!.done(err);
  }
}

function setup() {
  const journal = Journal.open(tempDir());
  const outbox = new Outbox(journal);
  const pub = new ManualPublisher();
  const delivered: OutboxRow[] = [];
  const stalls: OutboxRow[] = [];
  const clock = new FakeClock(1_700_000_000_000);
  const pump = new OutboxPump({
    clock,
    stallMs: 15_000,
    onStall: (row) => stalls.push(row),
    outbox,
    publisher: pub,
    deviceId: 'box1',
    onDelivered: (row) => {
      delivered.push(row);
      outbox.remove(row.id);
    },
    onError: () => undefined,
  });
  return { journal, outbox, pub, pump, delivered, stalls, clock };
}

describe('outbox', () => {
  it('publishes in order, one at a time, removing each row only after its PUBACK', () => {
    const { journal, outbox, pub, pump, delivered } = setup();
    journal.transaction(() => [1, 2, 3].forEach((n) => outbox.add('query', `box1-${n}`, q(n), n)));
    pump.kick();
    pump.kick();
    expect(pub.sent.map((s) => JSON.parse(s.payload).id)).toEqual(['q1']);
    expect(pub.sent[0]!.topic).toBe('scanbox/v1/d/box1/up/query');
    expect(outbox.depth()).toBe(3);
    pub.ackNext();
    expect(outbox.depth()).toBe(2);
    pub.ackNext();
    pub.ackNext();
    expect(delivered.map((r) => r.outTradeNo)).toEqual(['box1-1', 'box1-2', 'box1-3']);
    expect(outbox.depth()).toBe(0);
    journal.close();
  });

  it('waits while disconnected and keeps a row whose publish failed for the next connect', () => {
    const { journal, outbox, pub, pump } = setup();
    pub.connected = false;
    journal.transaction(() => outbox.add('query', 'box1-1', q(1), 1));
    pump.kick();
    expect(pub.sent).toEqual([]);
    pub.connected = true;
    pump.kick();
    pub.ackNext(new Error('client disconnecting'));
    expect(outbox.depth()).toBe(1);
    pump.kick();
    expect(pub.sent).toHaveLength(1);
    journal.close();
  });

  it('a new connection re-sends the row whose PUBACK died with the old one, and ignores the old callback', () => {
    const { journal, outbox, pub, pump, delivered } = setup();
    journal.transaction(() => [1, 2].forEach((n) => outbox.add('query', `box1-${n}`, q(n), n)));
    pump.kick();
    const lost = pub.sent.shift()!;
    pump.restart();
    expect(pub.sent.map((s) => JSON.parse(s.payload).id)).toEqual(['q1']);
    lost.done();
    expect(delivered).toEqual([]);
    pub.ackNext();
    pub.ackNext();
    expect(delivered.map((r) => r.outTradeNo)).toEqual(['box1-1', 'box1-2']);
    journal.close();
  });

  it('a PUBACK that never comes is reported as a stall (so the link reconnects), not waited on forever', () => {
    const { journal, outbox, pub, pump, stalls, clock } = setup();
    journal.transaction(() => outbox.add('query', 'box1-1', q(1), 1));
    pump.kick();
    clock.advanceSync(14_999);
    expect(stalls).toEqual([]);
    clock.advanceSync(1);
    expect(stalls.map((r) => r.outTradeNo)).toEqual(['box1-1']);
    pub.ackNext();
    clock.advanceSync(60_000);
    expect(stalls).toHaveLength(1);
    journal.close();
  });

  it('survives a restart: rows are still there, in order; a withdrawn pay is gone', () => {
    const dir = tempDir();
    const j1 = Journal.open(dir);
    const o1 = new Outbox(j1);
    const pay = { v: PROTOCOL_VERSION, id: 'pay-box1-1', ts: 1_700_000_000_000, outTradeNo: 'box1-1', saleId: 's1', amount: 100, currency: 'CNY', saleRef: 'R', code: '134567890123456789', wallet: 'wechat' };
    j1.transaction(() => {
      o1.add('pay', 'box1-1', pay, 1);
      o1.add('query', 'box1-2', q(2), 2);
      o1.add('ack', 'box1-3', { v: PROTOCOL_VERSION, id: 'a3', ts: 1_700_000_000_000, outTradeNo: 'box1-3', state: 'SUCCESS' }, 3);
    });
    j1.close();
    const j2 = Journal.open(dir);
    const o2 = new Outbox(j2);
    expect(o2.head()).toMatchObject({ kind: 'pay', outTradeNo: 'box1-1' });
    j2.transaction(() => o2.withdrawPay('box1-1'));
    o2.dropStaleQueries();
    expect(o2.head()).toMatchObject({ kind: 'ack', outTradeNo: 'box1-3' });
    expect(o2.depth()).toBe(1);
    j2.close();
  });

  it('refuses to store a message that does not match its schema', () => {
    const { journal, outbox } = setup();
    expect(() => outbox.add('ack', 'box1-1', { v: PROTOCOL_VERSION, id: 'a', ts: 1, outTradeNo: 'box1-1', state: 'PAYING' }, 1)).toThrow();
    expect(outbox.depth()).toBe(0);
    journal.close();
  });
});
