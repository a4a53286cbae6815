import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal } from '../../device/journal.js';
import { CONTACT_FRESH_MS, LINK_SETTING, readStatus, recordLink, type StatusDeps } from '../../device/status.js';
import { AgentHarness, SECRET, writeCredentials } from './agent-harness.js';
import { TestBroker } from './broker.js';
import { BoxProcess, runCli, socatPair } from './child-box.js';
import { useTempDirs } from './temp-dir.js';

/**
 * `scanbox-device status` says whether the box is online and since when: the running agent records
 * every change of its cloud link in the journal, and status believes that record only while an
 * agent holds the journal and the cloud was heard lately.
 */
const tempDir = useTempDirs();
const running: StatusDeps['journalHolders'] = () => ({ pids: [4242], complete: true });
const gone: StatusDeps['journalHolders'] = () => ({ pids: [], complete: true });
const hidden: StatusDeps['journalHolders'] = () => ({ pids: [], complete: false });

describe('recordLink and readStatus (journal only)', () => {
  let data: string;
  beforeEach(() => {
    data = tempDir();
    writeCredentials(data, 'box1', 'mqtt://127.0.0.1:9');
  });
  const withJournal = (fn: (j: Journal) => void) => {
    const j = Journal.open(data);
    try {
      fn(j);
    } finally {
      j.close();
    }
  };
  const status = (now: number, holders = running) => readStatus(data, { now: () => now, journalHolders: holders });

  it('no record yet: offline, since unknown', () => {
    expect(status(1_000)).toMatchObject({ online: false, since: null, agentRunning: true });
  });

  it('start → up → up again → down: online since the first up, then offline since the down', () => {
    withJournal((j) => {
      recordLink(j, 'start', 1_000);
      j.setSetting('last_contact', '5000');
      recordLink(j, 'up', 5_000);
      recordLink(j, 'up', 9_000); // a reconnect report while up changes nothing
    });
    expect(status(6_000)).toMatchObject({ online: true, since: 5_000 });
    withJournal((j) => recordLink(j, 'down', 20_000));
    expect(status(21_000)).toMatchObject({ online: false, since: 20_000 });
    // Offline stays offline across a restart: the since is when it went, not when the agent restarted.
    withJournal((j) => recordLink(j, 'start', 30_000));
    expect(status(31_000)).toMatchObject({ online: false, since: 20_000 });
  });

  it('a record left "online" by an agent that died: offline since its last contact, as status and as the next start say', () => {
    withJournal((j) => {
      recordLink(j, 'up', 5_000);
      j.setSetting('last_contact', '7000');
    });
    // Still within the contact window, but no agent holds the journal: it died.
    expect(status(8_000, gone)).toMatchObject({ online: false, since: 7_000, agentRunning: false });
    // Agent hidden from us (another user): the record and a fresh contact decide.
    expect(status(8_000, hidden)).toMatchObject({ online: true, since: 5_000, agentRunning: null });
    // Running, but nothing heard for longer than the window: the link died unnoticed.
    expect(status(7_000 + CONTACT_FRESH_MS + 1, running)).toMatchObject({ online: false, since: 7_000 });
    withJournal((j) => recordLink(j, 'start', 60_000));
    expect(status(61_000)).toMatchObject({ online: false, since: 7_000 });
  });

  it('a damaged record is read as none, and the next change replaces it', () => {
    withJournal((j) => j.setSetting(LINK_SETTING, '{"online":"yes"'));
    expect(status(1_000)).toMatchObject({ online: false, since: null });
    withJournal((j) => {
      recordLink(j, 'up', 2_000);
      j.setSetting('last_contact', '2000');
    });
    expect(status(3_000)).toMatchObject({ online: true, since: 2_000 });
  });
});

describe('the running agent records its link (in-process agent, real broker)', () => {
  let broker: TestBroker;
  let harness: AgentHarness | null = null;
  beforeEach(async () => {
    broker = await TestBroker.start();
  });
  afterEach(async () => {
    await harness?.stop();
    harness = null;
    await broker.close();
  });

  it('online since the link came up; offline since the network went; online again since it came back; offline since stop', async () => {
    const data = tempDir();
    writeCredentials(data, 'box1', broker.url);
    harness = new AgentHarness(data, { reconnect: { baseMs: 50, maxMs: 200 } });
    const beforeStart = Date.now();
    await harness.start();
    await harness.logs.find((l) => l.msg === 'cloud link up; querying every attempt in flight', 'link up');
    // The first heartbeat's PUBACK is the first contact.
    await waitFor(() => readStatus(data, { now: Date.now, journalHolders: running }).online, 'online');
    const up = readStatus(data, { now: Date.now, journalHolders: running });
    expect(up.since).toBeGreaterThanOrEqual(beforeStart);
    expect(up.since).toBeLessThanOrEqual(Date.now());

    const mark = harness.logs.mark();
    const beforeCut = Date.now();
    await broker.cut();
    await harness.logs.find((l) => l.msg === 'cloud link closed; reconnecting', 'link closed', 10_000, mark);
    const down = readStatus(data, { now: Date.now, journalHolders: running });
    expect(down.online).toBe(false);
    expect(down.since).toBeGreaterThanOrEqual(beforeCut);

    const beforeRestore = Date.now();
    await broker.restore();
    await harness.logs.find((l) => l.msg === 'cloud link up; querying every attempt in flight', 'link up again', 10_000, mark);
    await waitFor(() => readStatus(data, { now: Date.now, journalHolders: running }).online, 'online again');
    expect(readStatus(data, { now: Date.now, journalHolders: running }).since).toBeGreaterThanOrEqual(beforeRestore);

    const beforeStop = Date.now();
    await harness.stop();
    harness = null;
    const stopped = readStatus(data, { now: Date.now, journalHolders: gone });
    expect(stopped).toMatchObject({ online: false, agentRunning: false });
    expect(stopped.since).toBeGreaterThanOrEqual(beforeStop);
  }, 60_000);
});

describe('scanbox-device status --json (the agent as its own process)', () => {
  let broker: TestBroker;
  const cleanups: Array<() => unknown> = [];
  beforeEach(async () => {
    broker = await TestBroker.start();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await broker.close();
  });

  it('finds the running agent by its open journal: online and since when; after kill -9, offline since the last contact', async () => {
    const data = tempDir();
    writeCredentials(data, 'box1', broker.url);
    const [s, e] = await Promise.all([socatPair(data, 'scanner'), socatPair(data, 'ecr')]);
    cleanups.push(s.stop, e.stop);
    const started = Date.now();
    const box = await BoxProcess.start({ scanner: s.boxEnd, ecr: e.boxEnd, data });
    cleanups.push(() => (box.proc.exitCode === null && box.proc.signalCode === null ? box.kill('SIGKILL') : undefined));
    await box.logs.find((l) => l.msg === 'cloud link up; querying every attempt in flight', 'link up', 20_000);

    const online = await waitForCli(data, (st) => st.online === true, 'online');
    expect(online).toMatchObject({ paired: true, deviceId: 'box1', online: true, agentRunning: true });
    expect(online.since).toBeGreaterThanOrEqual(started);
    const text = await runCli(['status', '--data', data]);
    expect(text.stdout).toMatch(/^ONLINE since \d{4}-\d\d-\d\dT[\d:.]+Z \(agent running\)$/m);
    expect(text.stdout + JSON.stringify(online)).not.toContain(SECRET);

    await box.kill('SIGKILL');
    const dead = JSON.parse((await runCli(['status', '--data', data, '--json'])).stdout);
    expect(dead).toMatchObject({ online: false, agentRunning: false });
    expect(dead.since).toBe(dead.lastContact);
    expect((await runCli(['status', '--data', data])).stdout).toMatch(/^OFFLINE since .* \(agent NOT running\)$/m);
  }, 120_000);
});

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

type CliStatus = { online: boolean; since: number | null; lastContact: number | null; agentRunning: boolean | null } & Record<string, unknown>;
async function waitForCli(data: string, check: (s: CliStatus) => boolean, what: string, timeoutMs = 30_000): Promise<CliStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await runCli(['status', '--data', data, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as CliStatus;
    if (check(s)) return s;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms (last: ${r.stdout})`);
  }
}
