import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPtyPair, type PtyPair } from '../../simulator/devices/pty.js';
import { openSerialEnd, type SerialEnd } from '../../simulator/devices/serial-end.js';
import { TERMINATOR_NAMES, TERMINATORS } from '../../simulator/devices/terminator.js';
import { VirtualScanner } from '../../simulator/devices/virtual-scanner.js';
import { VirtualEcr } from '../../simulator/devices/virtual-ecr.js';
import { ByteSink } from './serial-fixtures.js';

/** Real pseudo-terminals from socat: what the simulator writes on one end arrives at the box's end. */
const CODE = '284567890123456789';
let dir: string;
let pair: PtyPair;
let ends: SerialEnd[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'scanbox-pty-'));
  pair = await createPtyPair({ dir });
});
afterEach(async () => {
  await Promise.all(ends.splice(0).map((e) => e.close()));
  await pair.close();
  rmSync(dir, { recursive: true, force: true });
});

async function openBoth(): Promise<{ box: SerialEnd; sim: SerialEnd }> {
  const [box, sim] = await Promise.all([openSerialEnd(pair.a), openSerialEnd(pair.b)]);
  ends.push(box, sim);
  return { box, sim };
}

describe('socat pty pair', () => {
  it.each(TERMINATOR_NAMES)('a scan with %s crosses the pair, split across chunks', async (terminator) => {
    const { box, sim } = await openBoth();
    const sink = ByteSink.on(box);
    const scanner = new VirtualScanner({ end: sim, terminator, charsPerMs: 2, chunkBytes: 4 });
    await scanner.scan(CODE);
    await scanner.splitLine(CODE, 2, 30);
    const want = `${CODE}${TERMINATORS[terminator]}`.repeat(2);
    expect(await sink.until((t) => t.length >= want.length)).toBe(want);
    expect(sink.chunks.length).toBeGreaterThan(2);
  });

  it('ECR lines travel both ways', async () => {
    const { box, sim } = await openBoth();
    const sink = ByteSink.on(box);
    const ecr = new VirtualEcr({ end: sim });
    await ecr.sale('S-9', 990);
    expect(JSON.parse((await sink.until((t) => t.endsWith('\n'))).trim())).toEqual({ type: 'sale', ref: 'S-9', amount: 990, currency: 'CNY' });
    await box.write('{"type":"result","ref":"S-9","outcome":"NOT_PAID","amount":990,"currency":"CNY","reason":"CASHIER_CANCEL"}\r\n');
    expect(await ecr.resultFor('S-9', 3_000)).toMatchObject({ outcome: 'NOT_PAID', reason: 'CASHIER_CANCEL' });
    ecr.close();
  });

  it('unplug closes the open port as disconnected; replug brings the same path back', async () => {
    const port = new SerialPort({ path: pair.a, baudRate: 9600, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    // The agent is always reading: prove the read loop runs (a byte arrives) before pulling the cable.
    const sink = new ByteSink();
    port.on('data', sink.push);
    const sim = await pair.openEnd();
    await sim.write('x');
    await sink.until((t) => t === 'x');
    const closed = new Promise<{ disconnected?: boolean } | null>((resolve) => port.once('close', (err: { disconnected?: boolean } | null) => resolve(err)));
    const socatPid = pair.pid;
    await pair.unplug();
    await expect(sim.write('y')).rejects.toThrow();
    expect(pair.plugged).toBe(false);
    // An event, not a sleep: the bound only keeps a missing close from hanging the suite (a loaded CI core is slow to notice).
    expect((await withTimeout(closed, 15_000))?.disconnected).toBe(true);
    await expect(openSerialEnd(pair.a)).rejects.toThrow();
    await pair.replug();
    expect(pair.pid).not.toBe(socatPid);
    const { box, sim: again } = await openBoth();
    const after = ByteSink.on(box);
    await again.write(`${CODE}\r`);
    expect(await after.until((t) => t.endsWith('\r'))).toBe(`${CODE}\r`);
  });
});

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms))]);
}
