import mqttPacket from 'mqtt-packet';
import { connect as tcpConnect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PairResponse } from '../../protocol/index.js';
import { pairBox, payMsg, TestBox } from '../cloud/harness.js';
import { startProbeCloud, type ProbeCloud } from './support.js';

/**
 * A device id is public (every outTradeNo starts with one). An attacker looping wrong secrets for a
 * known id — from another address, hundreds of logins in flight — must not stall anyone else: a box
 * that has never connected since the cloud started pairs, connects within its own 10 s connect
 * timeout and pays, and the attacked box itself, holding the right secret, still gets in.
 * (Before keyed hashes, each wrong try was a 16 MiB scrypt run on the thread pool pairing shares:
 * a fresh box then took over 13 s to connect.)
 */
const ATTACKER_ADDRESS = '127.0.0.2';
const LOOPS = 400;
const BOX_CONNECT_TIMEOUT_MS = 10_000;

let cloud: ProbeCloud;
let victim: PairResponse;

beforeAll(async () => {
  cloud = await startProbeCloud();
  victim = await pairBox(cloud, 'hw-victim');
});
afterAll(async () => {
  await cloud.close();
});

/** `loops` raw CONNECTs with a wrong secret for `deviceId`, each re-tried as soon as it is answered or cut, until stopped. */
function wrongSecretStorm(deviceId: string, loops: number): { stop: () => Promise<number>; tries: () => number } {
  const port = Number(new URL(cloud.mqttUrl).port);
  const packet = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: deviceId, username: deviceId, password: Buffer.from('x'.repeat(43)), clean: true, keepalive: 30 });
  let stopped = false;
  let tries = 0;
  const open = new Set<Socket>();
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      tries++;
      const s = tcpConnect({ port, host: '127.0.0.1', localAddress: ATTACKER_ADDRESS });
      open.add(s);
      s.on('connect', () => s.write(packet));
      s.on('data', () => s.destroy());
      s.on('error', () => undefined);
      s.on('close', () => {
        open.delete(s);
        resolve();
      });
    });
  const loop = async () => {
    while (!stopped) {
      await one();
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const running = Promise.all(Array.from({ length: loops }, loop));
  return {
    tries: () => tries,
    stop: async () => {
      stopped = true;
      for (const s of open) s.destroy(); // refusals still held back by the backoff
      await running;
      return tries;
    },
  };
}

describe('a wrong-secret loop on a known device id', () => {
  it('does not keep a fresh box from pairing, connecting within its timeout and paying, nor the attacked box from connecting', async () => {
    const storm = wrongSecretStorm(victim.deviceId, LOOPS);
    try {
      await new Promise((r) => setTimeout(r, 1_000)); // the storm is in full swing
      const fresh = await pairBox(cloud, 'hw-fresh');
      const box = await TestBox.connect(cloud.mqttUrl, fresh.deviceId, fresh.secret, { connectTimeout: BOX_CONNECT_TIMEOUT_MS });
      await box.send('pay', payMsg(fresh.deviceId, 1));
      expect(await box.next('result')).toMatchObject({ outTradeNo: `${fresh.deviceId}-1`, state: 'SUCCESS' });
      await box.close();
      const real = await TestBox.connect(cloud.mqttUrl, victim.deviceId, victim.secret, { connectTimeout: BOX_CONNECT_TIMEOUT_MS });
      expect(real.client.connected).toBe(true);
      await real.close();
      expect(storm.tries()).toBeGreaterThan(LOOPS);
    } finally {
      const tries = await storm.stop();
      console.log(`login storm: ${tries} wrong-secret logins tried while a fresh box paired, connected and paid`);
    }
  }, 60_000);
});
