import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PairResponse } from '../../protocol/index.js';
import { pairBox, TestBox, until } from '../cloud/harness.js';
import { OPERATOR, startDashboardCloud, WebClient, type DashboardCloud } from './dashboard-kit.js';

/**
 * A box's page over HTTP: its doctor report slot (none yet, asking for one queues the `doctor`
 * command, a report shows check by check and on the boxes table) and revoking it (a confirmed POST
 * that disconnects the box at once, audited).
 */
let d: DashboardCloud;
let w: WebClient;
let token: string;
let creds: PairResponse;

beforeAll(async () => {
  d = await startDashboardCloud({ heartbeatIntervalS: 30 });
  creds = await pairBox(d.cloud, 'hw-page');
  w = new WebClient(d.origin);
  await w.login();
  token = await w.csrf();
}, 60_000);
afterAll(async () => {
  await d?.close();
});

const post = (path: string, form: Record<string, string> = {}) => w.post(path, { _csrf: token, ...form }, { origin: d.origin });

describe("a box's page", { timeout: 60_000 }, () => {
  it('has a doctor slot: "no report yet", then the command asked from it, then the report check by check', async () => {
    const id = creds.deviceId;
    expect((await w.get(`/dashboard/boxes/${id}`)).body).toContain('data-doctor="none">No report yet.');
    const asked = await post(`/dashboard/boxes/${id}/doctor`);
    expect(asked.status).toBe(303);
    expect(asked.headers.get('location')).toBe(`/dashboard/boxes/${id}?done=doctor-asked`);
    const [cmd] = await d.cloud.store.listDeviceCommands(id);
    expect(cmd).toMatchObject({ command: 'doctor', deviceId: id });
    expect(await d.cloud.store.listOperatorActions({ subjectIds: [id] })).toEqual([expect.objectContaining({ operator: OPERATOR, action: 'ask_doctor' })]);

    const checks = [
      { name: 'scanner-port', ok: true, detail: '/dev/ttyACM0 opens' },
      { name: 'clock', ok: false, detail: 'off by 612 s <from the cloud>', fix: 'enable NTP: timedatectl set-ntp true' },
    ];
    expect(await d.cloud.store.saveDoctorReport({ deviceId: id, commandId: cmd!.id, messageId: 'm1', firmware: '0.9.1', checks, sentAt: Date.now(), receivedAt: Date.now() })).toBe(true);
    const page = (await w.get(`/dashboard/boxes/${id}`)).body;
    expect(page).toContain('data-doctor="fail"');
    expect(page).toContain('1 check failed');
    expect(page).toContain('off by 612 s &lt;from the cloud&gt;');
    expect(page).toContain('enable NTP: timedatectl set-ntp true');
    expect((await w.get('/dashboard/boxes')).body).toContain(`href="/dashboard/boxes/${id}#doctor" class="bad">FAIL</a>`);
  });

  it('revokes only through the confirmation form, disconnects the box at once, and audits it', async () => {
    const id = creds.deviceId;
    const box = await TestBox.of(d.cloud, creds);
    const closed = new Promise<void>((r) => box.client.once('close', () => r()));
    expect((await w.get(`/dashboard/boxes/${id}/revoke`)).body).toContain(`name="confirm" value="${id}"`);
    expect((await post(`/dashboard/boxes/${id}/revoke`)).status).toBe(400);
    expect((await post(`/dashboard/boxes/${id}/revoke`, { confirm: 'sbSOMEONEELSE' })).status).toBe(400);
    expect((await d.cloud.store.getDevice(id))?.status).toBe('active');
    const done = await post(`/dashboard/boxes/${id}/revoke`, { confirm: id });
    expect(done.status).toBe(303);
    await closed;
    expect((await d.cloud.store.getDevice(id))?.status).toBe('revoked');
    expect((await w.get(done.headers.get('location')!)).body).toContain('Revoked: the box was disconnected');
    expect((await post(`/dashboard/boxes/${id}/revoke`, { confirm: id })).status).toBe(409);
    await until('both audited', async () => (await d.cloud.store.listOperatorActions({ subjectIds: [id], action: 'revoke' })).length === 2);
    expect((await d.cloud.store.listOperatorActions({ subjectIds: [id], action: 'revoke' })).map((a) => a.outcome)).toEqual(['revoked', 'refused: already revoked']);
    await box.close().catch(() => undefined);
  });
});
