import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chooseSerialMode } from '../../simulator/devices/serial-line.js';
import { runPart } from '../../simulator/processes.js';

/**
 * The quick start on a machine with only Node.js: no socat, so the demo's box runs on serialport's
 * mock binding (its far ends on Unix sockets) and says so, and the story is the same. The demo runs
 * as its own process with a PATH holding nothing but node, so a socat call anywhere would fail it.
 */
const onlyNode = mkdtempSync(join(tmpdir(), 'scanbox-only-node-'));
symlinkSync(process.execPath, join(onlyNode, 'node'));
afterAll(() => rmSync(onlyNode, { recursive: true, force: true }));

describe('npm run demo on a machine without socat', () => {
  it('picks the mock binding by itself, says so, and its first sales end as on pseudo-terminals, reconciled', async () => {
    const r = await runPart('sim', ['demo', '--seed', 'ci', '--chapters', '2'], 120_000, { ...process.env, PATH: onlyNode });
    expect(r.stderr).toBe('');
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toContain("box serial lines: serialport's mock binding inside the box's process, its scanner and cash-register ends on Unix sockets: socat is not installed (sudo apt-get install -y socat for real pseudo-terminals)");
    expect(r.stdout).toMatch(/box paired through POST \/v1\/pair as sb\w+, connected/);
    const results = [...r.stdout.matchAll(/ECR ← RESULT (PAID|NOT_PAID) (¥[\d.]+)/g)].map((m) => `${m[1]} ${m[2]}`);
    expect(results).toEqual(['PAID ¥12.34', 'PAID ¥56.00']);
    expect(r.stdout).toContain('screen: 等待用户输入密码');
    expect(r.stdout).toContain('progress WAITING_PASSWORD');
    expect(r.stdout).toContain('RECONCILED');
  }, 150_000);
});

describe('chooseSerialMode', () => {
  it('auto: pseudo-terminals with socat, the mock binding without, and the reason names the apt-get line', () => {
    expect(chooseSerialMode('auto', true).mode).toBe('pty');
    const without = chooseSerialMode('auto', false);
    expect(without.mode).toBe('mock');
    expect(without.why).toContain('socat is not installed (sudo apt-get install -y socat');
  });

  it('an explicit choice is kept whatever is installed', () => {
    expect(chooseSerialMode('mock', true)).toMatchObject({ mode: 'mock', why: expect.stringContaining('(--serial mock)') });
    expect(chooseSerialMode('pty', false).mode).toBe('pty');
  });
});
