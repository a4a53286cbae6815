import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PairResponse } from '../../protocol/index.js';
import { attemptNow } from '../../cloud/dashboard/exception-desk.js';
import { attempt as attemptRow } from '../conformance/store.js';
import { pairBox, payMsg, TestBox, until } from '../cloud/harness.js';
import { announceV3, pay, refundAnswer, refundMsg } from '../cloud/refund-kit.js';
import { OPERATOR, startDashboardCloud, WebClient, type DashboardCloud } from './dashboard-kit.js';

/**
 * The exception desk over HTTP: what lands on it, that "now" goes through the running services (the
 * gateway sees the call, the attempt or refund moves) and is refused when it cannot start, that a
 * resolution needs a note, and that every action is audited with the operator's name and shows on
 * the payment's timeline.
 */
let d: DashboardCloud;
let w: WebClient;
let creds: PairResponse;
let box: TestBox;
let token: string;

beforeAll(async () => {
  d = await startDashboardCloud({
    // A reverse the wallet asks to retry goes REVERSE_PENDING at once and waits ≥ 30 s before its next try;
    // a register refund answered retry_later waits as long, and is flagged at once.
    reverseFastRetries: 1,
    reverseRetryMs: 60_000,
    reverseRetryMaxMs: 120_000,
    refundRetryMs: 60_000,
    refundRetryMaxMs: 120_000,
    refundFlagAfterMs: 1,
    dashboard: { pendingThresholdMs: 1 },
  });
  creds = await pairBox(d.cloud, 'hw-desk');
  box = await TestBox.of(d.cloud, creds);
  await announceV3(box);
  w = new WebClient(d.origin);
  await w.login();
  token = await w.csrf();
}, 60_000);
afterAll(async () => {
  await box?.close();
  await d?.close();
});

const post = (path: string, form: Record<string, string> = {}, headers: Record<string, string> = {}) => w.post(path, { _csrf: token, ...form }, { origin: d.origin, ...headers });
const desk = async () => (await w.get('/dashboard/exceptions')).body;
const openPart = (html: string) => html.slice(html.indexOf('id="desk-open"'), html.indexOf('id="desk-resolved"') === -1 ? undefined : html.indexOf('id="desk-resolved"'));

describe('the exception desk', { timeout: 60_000 }, () => {
  it('a reverse still pending is on the desk; "retry the reverse now" makes the attempt machine call the wallet at once, audited', async () => {
    d.gateway.pays.push('userpaying');
    d.gateway.reverses.push('retry_later');
    await box.send('pay', payMsg(box.deviceId, 1));
    const id = `${box.deviceId}-1`;
    await until('REVERSE_PENDING', async () => (await d.cloud.store.getAttempt(id))?.state === 'REVERSE_PENDING', 10_000);
    const page = openPart(await desk());
    expect(page).toContain(`id="desk-attempt-${id}"`);
    expect(page).toContain('Retry the reverse now');
    const reverses = d.gateway.count('reverse', id);
    const res = await post(`/dashboard/exceptions/attempt/${id}/retry_now`);
    expect(res.status).toBe(303);
    // Not the ≥ 30 s backoff: the wallet is asked again now, and (its script exhausted) reverses.
    await until('the reverse was sent again', () => d.gateway.count('reverse', id) > reverses, 5_000);
    await until('REVERSED', async () => (await d.cloud.store.getAttempt(id))?.state === 'REVERSED', 5_000);
    const [audit] = await d.cloud.store.listOperatorActions({ subjectIds: [id] });
    expect(audit).toMatchObject({ operator: OPERATOR, action: 'retry_now', subjectKind: 'attempt', subjectState: 'REVERSE_PENDING' });
    expect(audit!.outcome).toMatch(/^started/);
    const timeline = (await w.get(`/dashboard/payments/${id}`)).body;
    expect(timeline).toContain('alice: retry now');
    expect(timeline).toContain('→ REVERSED');
    expect(openPart(await desk())).not.toContain(`desk-attempt-${id}"`);
  });

  it('a "now" the attempt no longer offers starts nothing and is audited as refused', async () => {
    const id = `${box.deviceId}-1`; // REVERSED by now: nothing left to start
    await until('late checks done', async () => {
      const a = await d.cloud.store.getAttempt(id);
      return a?.nextAt === null && a.inFlight === null;
    }, 5_000);
    const calls = d.gateway.calls.length;
    expect((await post(`/dashboard/exceptions/attempt/${id}/query_now`)).status).toBe(303);
    const actions = await d.cloud.store.listOperatorActions({ subjectIds: [id] });
    expect(actions.at(-1)).toMatchObject({ action: 'query_now', outcome: 'refused: nothing can start now' });
    expect(d.gateway.calls.length).toBe(calls);
    // And while a call is out, nothing offers a second one.
    expect(attemptNow(attemptRow('sbX-1', { state: 'REVERSE_PENDING', inFlight: 'reverse' }))).toEqual({ now: null, blocked: 'a reverse call is out' });
    expect(attemptNow(attemptRow('sbX-1', { state: 'REFUND_PENDING', step: 'refund', inFlight: null, nextAt: 5 })).now?.action).toBe('retry_now');
    expect(attemptNow(attemptRow('sbX-1', { state: 'REFUND_PENDING', step: 'verify', inFlight: null, nextAt: 5 })).now?.action).toBe('query_now');
  });

  it('an amount mismatch stays on the desk until resolved with a note; a resolution without one is refused and writes nothing', async () => {
    const code = '134567890123450002';
    d.gateway.bind(code, { name: 'success', chargeDelta: 100 });
    await box.send('pay', payMsg(box.deviceId, 2, { code }));
    const id = `${box.deviceId}-2`;
    await until('undone', async () => (await d.cloud.store.getAttempt(id))?.state === 'REVERSED', 10_000);
    expect(openPart(await desk())).toContain(`desk-attempt-${id}"`);
    expect(await desk()).toContain('the wallet charged another amount');

    const before = (await d.cloud.store.listOperatorActions({})).length;
    expect((await post(`/dashboard/exceptions/attempt/${id}/resolve`, { note: '   ' })).status).toBe(400);
    const htmx = await post(`/dashboard/exceptions/attempt/${id}/resolve`, { note: '' }, { 'hx-request': 'true' });
    expect(htmx.status).toBe(200);
    expect(htmx.body).toContain('not done: say in the note');
    expect((await d.cloud.store.listOperatorActions({})).length).toBe(before);

    const note = 'Called the shop: customer saw 12.34 <charged> twice, wallet says reversed';
    const done = await post(`/dashboard/exceptions/attempt/${id}/resolve`, { note }, { 'hx-request': 'true' });
    expect(done.body).toContain('data-resolved="true"');
    expect(done.body).toContain('resolved by <strong>alice</strong>');
    expect(done.body).toContain('12.34 &lt;charged&gt; twice');
    const page = await desk();
    expect(openPart(page)).not.toContain(`desk-attempt-${id}"`);
    expect(page.slice(page.indexOf('id="desk-resolved"'))).toContain(`desk-attempt-${id}"`);
    expect(await d.cloud.store.listOperatorActions({ subjectIds: [id], action: 'resolve' })).toEqual([expect.objectContaining({ operator: OPERATOR, note, subjectState: 'REVERSED', outcome: 'resolved' })]);
    expect((await w.get(`/dashboard/payments/${id}`)).body).toContain('alice: resolve');
  });

  it('register refunds: a declined one is on the desk with no retry (the register must ask again); a flagged one is asked again now through the refunds service', async () => {
    const paid = await pay(box, 3);
    expect(paid.state).toBe('SUCCESS');
    d.gateway.refunds.push('declined');
    await box.send('refund', refundMsg(box, 1, paid.outTradeNo, 500));
    await refundAnswer(box, `${box.deviceId}-r1`, 'FAILED');
    let page = openPart(await desk());
    expect(page).toContain(`desk-refund-${box.deviceId}-r1"`);
    expect(page).toContain('FAILED: final; the register must ask for a new refund');
    expect((await post(`/dashboard/exceptions/refund/${box.deviceId}-r1/retry_now`)).status).toBe(303);
    expect((await d.cloud.store.listOperatorActions({ subjectIds: [`${box.deviceId}-r1`] })).at(-1)).toMatchObject({ outcome: 'refused: nothing can start now' });

    d.gateway.refunds.push('retry_later');
    await box.send('refund', refundMsg(box, 2, paid.outTradeNo, 300));
    const rid = `${box.deviceId}-r2`;
    await until('flagged, waiting for its retry', async () => {
      const r = await d.cloud.store.getRefund(rid);
      return r?.flagged && !r.inFlight && r.nextAt !== null;
    }, 5_000);
    page = openPart(await desk());
    expect(page).toContain(`desk-refund-${rid}"`);
    expect(page).toContain('Ask the wallet again now');
    const refunds = d.gateway.count('refund');
    expect((await post(`/dashboard/exceptions/refund/${rid}/retry_now`, { note: 'merchant on the phone' })).status).toBe(303);
    await refundAnswer(box, rid, 'REFUNDED');
    expect(d.gateway.count('refund')).toBe(refunds + 1);
    expect((await d.cloud.store.listOperatorActions({ subjectIds: [rid] }))[0]).toMatchObject({ operator: OPERATOR, action: 'retry_now', note: 'merchant on the phone', subjectState: 'PENDING' });
    expect(openPart(await desk())).not.toContain(`desk-refund-${rid}"`);
    // The refund's history has each wallet answer and the operator's "now", in order.
    const history = (await d.cloud.store.refundEvents(paid.outTradeNo)).filter((e) => e.refundId === rid);
    expect(history[0]).toMatchObject({ event: 'request', fromState: null, toState: 'PENDING' });
    expect(history.at(-1)).toMatchObject({ event: 'outcome', fromState: 'PENDING', toState: 'REFUNDED', note: 'refunded' });
    const retryLater = history.findIndex((e) => e.event === 'outcome' && e.note.includes('retry_later'));
    const operator = history.findIndex((e) => e.event === 'operator');
    expect(retryLater).toBeGreaterThan(0);
    expect(operator).toBeGreaterThan(retryLater);
    // Both refunds, their transitions and what was done about them are on the payment's timeline.
    const timeline = (await w.get(`/dashboard/payments/${paid.outTradeNo}`)).body;
    expect(timeline).toContain(`register refund ${box.deviceId}-r1: PENDING → FAILED`);
    expect(timeline).toContain('the wallet declined');
    expect(timeline).toContain(`register refund ${rid} asked (3.00 CNY): — → PENDING`);
    expect(timeline).toContain(`register refund ${rid}: PENDING → REFUNDED`);
    expect(timeline).toContain('outcome: refund retry_later');
    expect(timeline).toContain(`alice: retry now ${rid}`);
  });
});
