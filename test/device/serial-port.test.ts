import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { PortState } from '../../protocol/index.js';
import { ReopeningPort, type SerialLike } from '../../device/serial-port.js';
import { FakeClock } from '../support/fake-clock.js';

/** A serial port whose presence the test controls: `plugged` decides whether open succeeds. */
class FakeDevice {
  plugged = true;
  opens = 0;
  current: (EventEmitter & SerialLike) | null = null;

  factory = (): SerialLike => {
    const dev = this;
    const setOpen = (v: boolean) => ((port as unknown as { isOpen: boolean }).isOpen = v);
    const port = Object.assign(new EventEmitter(), {
      isOpen: false,
      open(cb: (err: Error | null) => void) {
        dev.opens += 1;
        if (!dev.plugged) return cb(Object.assign(new Error('Error: No such file or directory, cannot open /dev/x'), { code: 'ENOENT' }));
        setOpen(true);
        dev.current = port;
        cb(null);
      },
      close(cb?: (err: Error | null) => void) {
        setOpen(false);
        cb?.(null);
      },
      write: () => true,
    }) as unknown as EventEmitter & SerialLike;
    return port;
  };

  unplug(): void {
    this.plugged = false;
    const p = this.current!;
    (p as unknown as { isOpen: boolean }).isOpen = false;
    p.emit('close', Object.assign(new Error('Disconnected'), { disconnected: true }));
  }
}

describe('serial port that stays wanted', () => {
  it('reopens with backoff after the device vanishes, reporting reopening → absent → open', () => {
    const clock = new FakeClock(1_700_000_000_000);
    const dev = new FakeDevice();
    const states: PortState[] = [];
    const warnings: object[] = [];
    const port = new ReopeningPort({
      name: 'scanner',
      path: '/dev/x',
      baudRate: 9600,
      factory: dev.factory,
      clock,
      random: () => 0.5,
      backoff: { baseMs: 100, maxMs: 1_000 },
      log: { info: () => undefined, warn: (o) => warnings.push(o) },
    });
    port.on('state', (s: PortState) => states.push(s));
    const data: string[] = [];
    port.on('data', (b: Buffer) => data.push(b.toString()));
    port.start();
    expect(states).toEqual(['open']);

    dev.unplug();
    expect(states).toEqual(['open', 'reopening']);
    clock.advanceSync(74); // first retry after backoffDelay(0) = 75 ms with random 0.5
    expect(dev.opens).toBe(1); // no busy retry loop
    clock.advanceSync(10_000 - 74); // several failed opens, with growing delays, while unplugged
    expect(states.at(-1)).toBe('absent');
    const failedOpens = dev.opens - 1;
    expect(failedOpens).toBeGreaterThan(3);
    expect(failedOpens).toBeLessThan(30);

    dev.plugged = true;
    clock.advanceSync(1_000);
    expect(states.at(-1)).toBe('open');
    dev.current!.emit('data', Buffer.from('after replug'));
    expect(data).toEqual(['after replug']);
  });

  it('stop closes the port and cancels a pending reopen', async () => {
    const clock = new FakeClock(1_700_000_000_000);
    const dev = new FakeDevice();
    dev.plugged = false;
    const port = new ReopeningPort({ name: 'ecr', path: '/dev/y', baudRate: 9600, factory: dev.factory, clock, random: () => 0, backoff: { baseMs: 100, maxMs: 100 }, log: { info: () => undefined, warn: () => undefined } });
    port.start();
    expect(clock.pendingTimers()).toBe(1);
    await port.stop();
    expect(port.state).toBe('closed');
    expect(clock.pendingTimers()).toBe(0);
    expect(port.write('x')).toBe(false);
  });
});
