import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { addBoxAccounts, dynsecPasswordHash } from '../../bench/dynsec-file.js';
import { parseWorkers, scaleOutChoice } from '../../bench/scale-out-choice.js';
import { boxAcls, boxRoleName } from '../../cloud/broker/dynsec.js';

describe('benchmarks: which cloud they measure (--broker, --store, --workers)', () => {
  it('the default single process unless both the external broker and store are asked for', () => {
    expect(scaleOutChoice({ broker: 'embedded', store: 'sqlite' }, '1,2,3')).toEqual({ scaleOut: false });
    expect(scaleOutChoice({ broker: 'mosquitto', store: 'postgres' }, '1,2,3')).toEqual({ scaleOut: true, workers: [1, 2, 3] });
    expect(scaleOutChoice({ broker: 'mosquitto', store: 'postgres', workers: 3 }, '1,2,3')).toEqual({ scaleOut: true, workers: [3] });
  });

  it('refuses half a scale-out, an unknown broker or store, and workers without a scale-out, saying what to give', () => {
    expect(() => scaleOutChoice({ broker: 'mosquitto', store: 'sqlite' }, '3')).toThrow('--broker mosquitto --store postgres together');
    expect(() => scaleOutChoice({ broker: 'embedded', store: 'postgres' }, '3')).toThrow('--broker mosquitto --store postgres together');
    expect(() => scaleOutChoice({ broker: 'emqx', store: 'postgres' }, '3')).toThrow('--broker emqx: embedded (default) or mosquitto');
    expect(() => scaleOutChoice({ broker: 'mosquitto', store: 'mysql' }, '3')).toThrow('--store mysql: sqlite (default) or postgres');
    expect(() => scaleOutChoice({ broker: 'embedded', store: 'sqlite', workers: 2 }, '3')).toThrow('--workers 2: several workers need --broker mosquitto --store postgres');
  });

  it('reads worker counts separated by commas or bars, each once, 1 to 8', () => {
    expect(parseWorkers('1,2,3')).toEqual([1, 2, 3]);
    expect(parseWorkers('1|2|3')).toEqual([1, 2, 3]);
    expect(parseWorkers('3, 1')).toEqual([3, 1]);
    for (const bad of ['', '0', '9', '1.5', 'two', '1,,x']) expect(() => parseWorkers(bad), bad).toThrow('worker counts 1–8');
    expect(() => parseWorkers('2,2')).toThrow('each count once');
  });
});

describe('benchmarks: box accounts written into the dynamic-security file', () => {
  it('hashes a password as Mosquitto does (a hash mosquitto_ctrl dynsec init wrote for "pw123")', () => {
    expect(dynsecPasswordHash('pw123', Buffer.from('s4L5IJi+lnmjgr9G', 'base64'))).toBe('YHYFA731fwmVppcRAPF+rCsW3BMKFizlBOaQk5koH5lE2QZklgYe2Ug1Glg0P2psrWytQBQQ7k50A9ouurLAgw==');
  });

  it("adds each box's client and own-topics role as the cloud's pairing makes them, keeping what was there", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dynsec-file-'));
    try {
      const file = path.join(dir, 'dynamic-security.json');
      writeFileSync(file, JSON.stringify({ clients: [{ username: 'admin' }], roles: [{ rolename: 'admin' }], defaultACLAccess: { publishClientSend: false } }));
      addBoxAccounts(file, ['dev-a', 'dev-b'], 'the-secret');
      const doc = JSON.parse(readFileSync(file, 'utf8'));
      expect(doc.defaultACLAccess).toEqual({ publishClientSend: false });
      expect(doc.clients.map((c: { username: string }) => c.username)).toEqual(['admin', 'dev-a', 'dev-b']);
      const a = doc.clients[1];
      expect(a).toMatchObject({ username: 'dev-a', clientid: 'dev-a', roles: [{ rolename: boxRoleName('dev-a') }], iterations: 101 });
      expect(a.password).toBe(dynsecPasswordHash('the-secret', Buffer.from(a.salt, 'base64')));
      expect(doc.clients[2].salt).not.toBe(a.salt);
      expect(doc.roles[1]).toEqual({ rolename: boxRoleName('dev-a'), acls: boxAcls('dev-a').map((x) => ({ ...x, priority: 0 })) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
