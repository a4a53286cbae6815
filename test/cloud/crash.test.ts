import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { isFinal, type PairResponse } from '../../protocol/index.js';
import { systemClock } from '../../protocol/clock.js';
import { createPairingCode } from '../../cloud/pairing/pairing.js';
import { ensureMerchant, envelope, FAST, payMsg, postPair, STACKS, TestBox, useStack, type TestStack } from './harness.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway, type PayScript } from '../../simulator/gateway/scripted-gateway.js';

/**
 * SIGKILL the cloud process between "attempt recorded" and "gateway answered" (the scripted
 * gateway holds the pay open), restart it on the same store, and check the money: the attempt
 * ends final, the gateway saw one pay at most, and what is charged matches the final state. On each
 * stack: the same SQLite file, or the same PostgreSQL schema behind the same Mosquitto (which, unlike
 * the embedded broker, stays up through the kill).
 */
const CLI = join(import.meta.dirname, '../../cloud/cli.ts');
const children: ChildProcess[] = [];
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const f of cleanups.splice(0)) await f();
});

interface Started {
  child: ChildProcess;
  mqttUrl: string;
  httpUrl: string;
  exited: Promise<number | null>;
}

async function startProcess(args: string[]): Promise<Started> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'start', '--metrics-port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stderr: string[] = [];
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<{ mqttUrl: string; httpUrl: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cloud not ready in 15 s: ${stderr.join('')}`)), 15_000);
    lines.on('line', (line) => {
      const j = JSON.parse(line) as { msg?: string; mqttUrl?: string; httpUrl?: string };
      if (j.msg === 'ready') {
        clearTimeout(timer);
        resolve({ mqttUrl: j.mqttUrl!, httpUrl: j.httpUrl! });
      }
    });
    void exited.then((code) => reject(new Error(`cloud exited with ${code}: ${stderr.join('')}`)));
  });
  lines.on('line', () => undefined); // keep draining stdout
  return { child, ...ready, exited };
}

async function finalResult(box: TestBox, outTradeNo: string, saleId: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // What a restarted box does: query every attempt that is not final.
    await box.send('query', { ...envelope(), outTradeNo, saleId, amount: 1234, currency: 'CNY' });
    const r = await box.next('result', (m) => m.outTradeNo === outTradeNo, 1_000).catch(() => undefined);
    if (r && isFinal(r.state)) return r;
    if (Date.now() > deadline) throw new Error(`no final result for ${outTradeNo}`);
  }
}

async function crashDuringPay(stack: TestStack, script: PayScript) {
  const gw = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
  gw.pays.push(script);
  const server = await gw.serve();
  const place = await stack.place();
  cleanups.push(() => server.close(), place.remove);
  const config = join(place.dir, 'cloud.json');
  // No --worker-id: a worker restarted on its host is the same worker (the host's name), and resumes its own work at once.
  writeFileSync(config, JSON.stringify({ ...FAST, gatewayCallTimeoutMs: 30_000, logLevel: 'info', ...place.config }));
  const args = ['--config', config, '--mqtt-port', '0', '--http-port', '0', '--gateway-url', server.url];

  const first = await startProcess(args);
  const store = await place.openStore();
  cleanups.push(() => store.close());
  await ensureMerchant(store, 'M1');
  const { code } = await createPairingCode({ store, clock: systemClock, codeTtlS: 600 }, 'M1', 'S1');
  const creds = (await postPair(first.httpUrl, { v: 1, code, hardwareId: 'hw-crash' })).body as PairResponse;
  let box = await TestBox.connect(first.mqttUrl, creds.deviceId, creds.secret);
  const pay = payMsg(creds.deviceId, 1);
  await box.send('pay', pay);
  await gw.waitFor('pay', 1);
  // The attempt was written before the pay left: it is there, with the pay in flight.
  expect(await store.getAttempt(pay.outTradeNo)).toMatchObject({ state: 'PAYING', inFlight: 'pay' });

  first.child.kill('SIGKILL');
  await first.exited;
  await box.close();

  const second = await startProcess(args);
  box = await TestBox.connect(second.mqttUrl, creds.deviceId, creds.secret);
  const result = await finalResult(box, pay.outTradeNo, pay.saleId);
  const recorded = await store.getAttempt(pay.outTradeNo);
  await box.close();

  second.child.kill('SIGTERM');
  expect(await second.exited).toBe(0);
  return { gw, result, recorded };
}

describe.each(STACKS)('on %s', (stackKind) => {
  const stack = useStack(stackKind);

  describe('crash between "attempt recorded" and "gateway answered"', () => {
    it('the pay had charged the customer: after restart the query finds it → SUCCESS, charged once, never reversed', async () => {
      const { gw, result, recorded } = await crashDuringPay(stack, 'charge-and-hold');
      expect(result.state).toBe('SUCCESS');
      expect(recorded?.state).toBe('SUCCESS');
      expect(gw.count('pay')).toBe(1);
      expect(gw.ledger.entries().filter((e) => e.kind === 'charge')).toHaveLength(1);
      expect(gw.net(result.outTradeNo)).toBe(1234);
      expect(gw.count('reverse')).toBe(0);
    }, 60_000);

    it('the pay never completed: after restart it is queried, then reversed → REVERSED, nothing charged', async () => {
      const { gw, result } = await crashDuringPay(stack, 'hold');
      expect(result.state).toBe('REVERSED');
      expect(gw.count('pay')).toBe(1);
      expect(gw.ledger.entries().filter((e) => e.kind === 'charge')).toHaveLength(0);
      expect(gw.net(result.outTradeNo)).toBe(0);
      expect(gw.count('query')).toBeGreaterThan(0);
    }, 60_000);
  });
});
