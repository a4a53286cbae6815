import { execFile, execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Journal } from '../../device/journal.js';
import { pairBox } from '../../device/pairing.js';
import { payMsg, TestBox } from '../cloud/harness.js';
import { freeLoopbackPort } from '../support/free-port.js';
import { parsePrometheusText, sampleValue } from '../support/prometheus-text.js';

/**
 * deploy/scale-out/run.sh brings the example up in a temp dir — PostgreSQL, Mosquitto with dynamic
 * security and TLS, three cloud workers — exactly as the README tells an operator to; a box then
 * pairs with the pairing command the script printed and pays over mqtts through the workers, and
 * `run.sh stop` must leave no process of it behind.
 */
const RUN_SH = fileURLToPath(new URL('../../deploy/scale-out/run.sh', import.meta.url));
const run = promisify(execFile);
/** run.sh refuses root (PostgreSQL does): as root, the tests run it as an operator would, through runuser. */
const AS_ROOT = process.getuid?.() === 0;
const RUN_AS = 'nobody';
const UP_TIMEOUT_MS = 150_000;

function asExampleUser(argv: string[]): [string, string[]] {
  return AS_ROOT ? ['runuser', ['-u', RUN_AS, '--', ...argv]] : [argv[0]!, argv.slice(1)];
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freeLoopbackPort());
  return [...ports];
}

/** Command lines of live processes that name `dir` (a zombie's is empty), but for `except`. */
function processesNaming(dir: string, except: number[]): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    if (except.includes(Number(pid))) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue;
    }
    if (cmdline.includes(`${dir}/`)) found.push(`${pid}: ${cmdline}`);
  }
  return found;
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(true));
  });
}

function getHttps(url: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { ca, timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

let dir: string;
let boxDir: string;
let ports: { mqtts: number; broker: number; pg: number; https: number[]; metrics: number[] };
let summary: string;
let ca: Buffer;
let watchdog: ReturnType<typeof spawn> | undefined;
let stopped = false;

async function runSh(...args: string[]) {
  const [cmd, argv] = asExampleUser([RUN_SH, ...args]);
  return run(cmd, argv, {
    timeout: UP_TIMEOUT_MS,
    env: {
      ...process.env,
      MQTTS_PORT: String(ports.mqtts),
      BROKER_PORT: String(ports.broker),
      PG_PORT: String(ports.pg),
      HTTPS_PORTS: ports.https.join(' '),
      METRICS_PORTS: ports.metrics.join(' '),
    },
  });
}

beforeAll(async () => {
  const p = await distinctFreePorts(9);
  ports = { mqtts: p[0]!, broker: p[1]!, pg: p[2]!, https: p.slice(3, 6), metrics: p.slice(6, 9) };
  dir = mkdtempSync(join(tmpdir(), 'scanbox-scale-out-'));
  boxDir = mkdtempSync(join(tmpdir(), 'scanbox-scale-out-box-'));
  if (AS_ROOT) chownSync(dir, Number(execFileSync('id', ['-u', RUN_AS], { encoding: 'utf8' })), Number(execFileSync('id', ['-g', RUN_AS], { encoding: 'utf8' })));
  // Should this process die mid-run, the example is stopped and removed all the same.
  const [stopCmd, stopArgv] = asExampleUser([RUN_SH, 'stop', dir]);
  watchdog = spawn('sh', ['-c', `tail --pid=${process.pid} -f /dev/null; "$0" "$@" >/dev/null 2>&1; rm -rf '${dir}'`, stopCmd, ...stopArgv], { detached: true, stdio: 'ignore' });
  watchdog.unref();
  try {
    summary = (await runSh('up', dir)).stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`run.sh up failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
  ca = readFileSync(join(dir, 'tls/ca.pem'));
}, UP_TIMEOUT_MS + 10_000);

afterAll(async () => {
  if (!stopped && dir) await runSh('stop', dir).catch(() => undefined);
  if (watchdog?.pid !== undefined) {
    try {
      process.kill(-watchdog.pid);
    } catch {
      // already gone
    }
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (boxDir) rmSync(boxDir, { recursive: true, force: true });
}, 60_000);

describe('deploy/scale-out/run.sh', () => {
  it('starts three workers on one store and broker, each ready and answering HTTPS under the example CA', async () => {
    const readyLines = ['w1', 'w2', 'w3'].map((id) =>
      readFileSync(join(dir, `log/worker-${id}.log`), 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg: string; worker?: string; db?: string; mqttPort?: number })
        .find((l) => l.msg === 'ready'),
    );
    expect(readyLines.map((l) => l?.worker)).toEqual(['w1', 'w2', 'w3']);
    for (const l of readyLines) {
      expect(l?.db).toBe(`postgres://scanbox@127.0.0.1:${ports.pg}/scanbox`);
      expect(l?.mqttPort).toBe(ports.broker);
    }
    for (const port of ports.https) expect(await getHttps(`https://127.0.0.1:${port}/healthz`, ca)).toEqual({ status: 200, body: '{"ok":true}' });
    // The secrets stay the user's own.
    for (const file of ['cloud.json', 'secrets/server.key', 'secrets/pgpass', 'secrets/broker.password', 'tls/ca.key']) {
      expect(execFileSync('stat', ['-c', '%a', join(dir, file)], { encoding: 'utf8' }).trim(), file).toBe('600');
    }
  });

  it('pairs a box with the printed pairing command; the box pays over mqtts and the three workers share its messages', async () => {
    const line = summary.split('\n').find((l) => l.includes(' pair create '));
    expect(line, `a pair create line in:\n${summary}`).toBeDefined();
    const [cmd, argv] = asExampleUser(['bash', '-c', `${line!.trim()} --json`]);
    const made = JSON.parse((await run(cmd, argv, { timeout: 60_000 })).stdout) as { code: string; cloudUrl: string; cloudCheck: { ok: boolean } };
    expect(made.cloudUrl).toBe(`https://127.0.0.1:${ports.https[0]}`);
    expect(made.cloudCheck.ok).toBe(true);

    const paired = await pairBox({ code: made.code, cloudUrl: made.cloudUrl, dataDir: boxDir, ca });
    expect(paired.mqttUrl).toBe(`mqtts://127.0.0.1:${ports.mqtts}`);
    const journal = Journal.open(boxDir);
    const secret = journal.credentials()!.secret;
    journal.close();

    const box = await TestBox.connect(paired.mqttUrl, paired.deviceId, secret, { ca });
    try {
      for (let seq = 1; seq <= 6; seq++) {
        await box.send('pay', payMsg(paired.deviceId, seq));
        expect(await box.next('result', (m) => 'outTradeNo' in m && m.outTradeNo === `${paired.deviceId}-${seq}`, 15_000)).toMatchObject({ state: 'SUCCESS' });
      }
    } finally {
      await box.close();
    }
    // Mosquitto hands a shared subscription's messages to its subscribers in turn.
    const pays = await Promise.all(
      ports.metrics.map(async (port) => sampleValue(parsePrometheusText(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()), 'scanbox_cloud_messages_total', { kind: 'pay' })),
    );
    expect(pays.reduce((a, b) => a + b, 0)).toBe(6);
    for (const n of pays) expect(n).toBeGreaterThan(0);

    const wrong = await mqtt.connectAsync(paired.mqttUrl, { clientId: paired.deviceId, username: paired.deviceId, password: 'not-the-secret', ca, reconnectPeriod: 0, connectTimeout: 5_000 }).then(
      async (c) => (await c.endAsync(true), 'accepted'),
      (e: Error & { code?: number }) => e.code,
    );
    expect(wrong).toBe(5);
  });

  it('stop leaves no process of the example running and every port closed', async () => {
    const except = watchdog?.pid === undefined ? [] : [watchdog.pid];
    // Five processes name the directory while it runs (PostgreSQL, Mosquitto, three workers): the check below can see them.
    expect(processesNaming(dir, except).length).toBeGreaterThanOrEqual(5);
    await runSh('stop', dir);
    stopped = true;
    expect(processesNaming(dir, except)).toEqual([]);
    for (const port of [ports.mqtts, ports.broker, ports.pg, ...ports.https, ...ports.metrics]) expect(await refused(port), `port ${port}`).toBe(true);
  });
});
