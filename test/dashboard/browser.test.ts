import { existsSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import QRCode from 'qrcode';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pairingQrText, type PairResponse } from '../../protocol/index.js';
import { ensureMerchant, pairBox, payMsg, TestBox, until } from '../cloud/harness.js';
import { OPERATOR, PASSWORD, startDashboardCloud, type DashboardCloud } from './dashboard-kit.js';

/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core (never a downloaded
 * browser; .ci/run installs it), against an in-process cloud whose boxes are MQTT clients. Each
 * test leaves a screenshot in test/dashboard/__screenshots__/ (not committed).
 */
const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(import.meta.dirname, '__screenshots__');
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

let d: DashboardCloud;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let creds: PairResponse;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install --no-install-recommends chromium; .ci/run does)`);
  mkdirSync(SHOTS, { recursive: true });
  // Heartbeats every 30 s: a test box that sends none stays online until it leaves.
  d = await startDashboardCloud({ heartbeatIntervalS: 30, dashboard: { pendingThresholdMs: 1 } });
  await ensureMerchant(d.cloud.store, 'M1');
  await d.cloud.store.updateMerchant('M1', { name: 'Tea House' }, Date.now());
  creds = await pairBox(d.cloud, 'hw-browser');
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await d?.close();
});
beforeEach(async () => {
  context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  page = await context.newPage();
});
afterEach(async (ctx) => {
  await page.screenshot({ path: join(SHOTS, `${ctx.task.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 80)}.png`), fullPage: true }).catch(() => undefined);
  await context.close();
});

async function logIn(p: Page, password = PASSWORD): Promise<void> {
  await p.fill('#name', OPERATOR);
  await p.fill('#password', password);
  await p.click('form.login button[type=submit]');
}

async function loggedIn(path: string): Promise<void> {
  await page.goto(`${d.origin}${path}`);
  await logIn(page);
  await page.waitForURL(`${d.origin}${path}`);
}

describe('the dashboard in a browser', () => {
  it('a page without a session goes to the login; a wrong password is refused; the right one opens the page asked for', { timeout: 90_000 }, async () => {
    await page.goto(`${d.origin}/dashboard/payments`);
    expect(new URL(page.url()).pathname).toBe('/dashboard/login');
    await logIn(page, 'not the password, no');
    await expect.poll(() => page.textContent('[role=alert]')).toContain('Wrong operator name or password.');
    expect(await page.locator('[data-operator]').count()).toBe(0);
    await logIn(page);
    await page.waitForURL(`${d.origin}/dashboard/payments`);
    expect(await page.textContent('[data-operator]')).toBe(OPERATOR);
    const cookies = await context.cookies();
    expect(cookies.find((c) => c.name === 'scanbox_dashboard')).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/dashboard' });
  });

  it("a foreign site's form posting to the dashboard is refused and changes nothing", { timeout: 90_000 }, async () => {
    await loggedIn('/dashboard/boxes');
    // Another origin (localhost is another site than 127.0.0.1) serving a page that posts a revoke on load.
    const target = `${d.origin}/dashboard/boxes/${creds.deviceId}/revoke`;
    const evil: Server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' }).end(`<form method="post" action="${target}"><input name="confirm" value="${creds.deviceId}"></form><script>document.forms[0].submit()</script>`);
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', () => r()));
    try {
      const response = page.waitForResponse((r) => r.url() === target);
      await page.goto(`http://localhost:${(evil.address() as AddressInfo).port}/`);
      expect((await response).status()).toBeGreaterThanOrEqual(400);
    } finally {
      evil.close();
    }
    expect((await d.cloud.store.getDevice(creds.deviceId))?.status).toBe('active');
    expect(await d.cloud.store.listOperatorActions({ subjectIds: [creds.deviceId] })).toEqual([]);
  });

  it('a box going online and offline shows on the boxes page live, without a reload', { timeout: 90_000 }, async () => {
    await loggedIn('/dashboard/boxes');
    const row = page.locator(`#box-${creds.deviceId}`);
    expect(await row.getAttribute('data-state')).toBe('never');
    await page.evaluate(() => ((globalThis as unknown as { sameDocument: boolean }).sameDocument = true));
    const box = await TestBox.of(d.cloud, creds);
    await expect.poll(() => row.getAttribute('data-state'), { timeout: 15_000 }).toBe('online');
    // The row and the fleet counts are two events of one push: the browser handles them one after the other.
    await expect.poll(() => page.locator('[data-count="online"]').first().textContent(), { timeout: 15_000 }).toMatch(/^1/);
    await page.screenshot({ path: join(SHOTS, 'boxes-online.png'), fullPage: true });
    await box.close();
    await expect.poll(() => row.getAttribute('data-state'), { timeout: 15_000 }).toBe('offline');
    expect(await page.evaluate(() => (globalThis as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true);
  });

  it("finds a payment by its sale reference and shows its timeline", { timeout: 90_000 }, async () => {
    const box = await TestBox.of(d.cloud, creds);
    await box.send('pay', payMsg(box.deviceId, 41, { saleRef: 'TABLE-7' }));
    expect(await box.next('result')).toMatchObject({ state: 'SUCCESS' });
    await box.close();
    await loggedIn('/dashboard/payments');
    await page.fill('#q', 'TABLE-7');
    await page.click('form[role=search] button');
    await page.waitForURL(`${d.origin}/dashboard/payments/${box.deviceId}-41`);
    expect(await page.textContent('[data-sale-ref]')).toBe('TABLE-7');
    const entries = await page.locator('#timeline li').allTextContents();
    expect(entries.some((e) => e.includes('— → PAYING'))).toBe(true);
    expect(entries.some((e) => e.includes('PAYING → SUCCESS'))).toBe(true);
  });

  it('resolves an exception from the desk: the note and the operator are in the audit and on the timeline', { timeout: 120_000 }, async () => {
    const code = '134567890123450077';
    d.gateway.bind(code, { name: 'success', chargeDelta: 50 });
    const box = await TestBox.of(d.cloud, creds);
    await box.send('pay', payMsg(box.deviceId, 42, { code }));
    await box.close();
    const id = `${box.deviceId}-42`;
    await until('flagged and undone', async () => (await d.cloud.store.getAttempt(id))?.state === 'REVERSED', 10_000);
    await loggedIn('/dashboard/exceptions');
    const card = page.locator(`#desk-attempt-${id}`);
    await expect.poll(() => card.count()).toBe(1);
    expect(await card.textContent()).toContain('the wallet charged another amount');
    const note = 'Wallet confirms the 0.50 over-charge was reversed; told the merchant';
    await card.locator('textarea[name=note]').fill(note);
    await card.locator('form.resolve button').click();
    // htmx redraws the card in place from the answer.
    await expect.poll(() => page.locator(`#desk-attempt-${id} .resolution`).textContent()).toContain(note);
    expect(await page.locator(`#desk-attempt-${id} .resolution strong`).textContent()).toBe(OPERATOR);
    expect(await d.cloud.store.listOperatorActions({ subjectIds: [id] })).toEqual([expect.objectContaining({ operator: OPERATOR, action: 'resolve', note })]);
    await page.click(`#desk-attempt-${id} a[href="/dashboard/payments/${id}"]`);
    await page.waitForURL(`${d.origin}/dashboard/payments/${id}`);
    const operatorEntry = await page.locator('#timeline li[data-kind="operator"]').textContent();
    expect(operatorEntry).toContain('alice: resolve');
    expect(operatorEntry).toContain(note);
  });

  it('creates a pairing code and shows its QR as SVG, carrying the code and the cloud address', { timeout: 90_000 }, async () => {
    await loggedIn('/dashboard/pairing');
    await page.selectOption('#merchant', 'M1');
    await page.fill('#store', 'S-42');
    await page.click('form[action="/dashboard/pairing"] button');
    const code = (await page.textContent('[data-pairing-code]'))!;
    expect(code).toMatch(/^[0-9A-Z]{10}$/);
    const svg = page.locator('.qr svg');
    expect(await svg.getAttribute('aria-label')).toBe(`pairing code ${code}`);
    // The drawing is exactly the QR of `scanbox:pair?code=…&cloud=…`: the same library, from the text the page names.
    const expected = await QRCode.toString(pairingQrText({ code, cloudUrl: d.origin }), { type: 'svg', margin: 2, errorCorrectionLevel: 'M' });
    const pathOf = (markup: string) => /<path[^>]* d="([^"]+)"[^>]*stroke/.exec(markup)?.[1];
    expect(pathOf(await svg.evaluate((el) => el.outerHTML))).toBe(pathOf(expected));
    expect(await d.cloud.store.checkPairingCode(code, Date.now())).toBeUndefined(); // a live code
    expect(await d.cloud.store.listOperatorActions({ subjectIds: ['M1/S-42'] })).toEqual([expect.objectContaining({ action: 'pairing_code', operator: OPERATOR })]);
  });

  it('the overview charts the last hour live: payments and abnormal flows move without a reload', { timeout: 120_000 }, async () => {
    await loggedIn('/dashboard');
    const paid = async () => Number(await page.locator('#chart-payments svg').getAttribute('data-total'));
    const before = await paid();
    const box = await TestBox.of(d.cloud, creds);
    for (let i = 0; i < 12; i++) {
      await box.send('pay', payMsg(box.deviceId, 100 + i));
      await box.next('result');
    }
    d.gateway.pays.push('userpaying');
    await box.send('pay', payMsg(box.deviceId, 200));
    await box.close();
    await expect.poll(paid, { timeout: 15_000 }).toBeGreaterThanOrEqual(before + 12);
    await expect.poll(() => page.locator('#chart-abnormal polyline[data-flow="userpaying"]').getAttribute('data-total'), { timeout: 15_000 }).not.toBe('0');
    await page.screenshot({ path: join(SHOTS, 'overview.png'), fullPage: true });
  });
});
