import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PairErrorBody, PAIRING_CODE_ALPHABET, PAIRING_CODE_LENGTH } from '../../protocol/index.js';
import { FakeClock } from '../support/fake-clock.js';
import { createPairingCode } from '../../cloud/pairing/pairing.js';
import { ensureMerchant } from '../../cloud/merchants/merchant.js';
import { postPair } from '../cloud/harness.js';
import { scrape, startProbeCloud, type ProbeCloud } from './support.js';

/**
 * Pairing codes cannot be guessed within the rate limit.
 *
 * The arithmetic, with the shipped defaults (asserted below, so a config change re-opens it):
 *   code space        32^10 = 2^50 ≈ 1.126e15 codes (10 Crockford base32 characters, crypto RNG)
 *   rate limit        pairRateLimit = 10 requests per 60 s per source address
 *                     → 10 × 1,440 = 14,400 guesses per address per day
 *   live codes        a code lives pairingCodeTtlS = 600 s and is single-use; assume a generous
 *                     L = 1,000 unused codes live at any moment (1,000 installs in progress at once)
 *   one guess         P ≤ L / 32^10 = 1,000 / 1.126e15 ≈ 8.9e-13
 *   one address/day   14,400 × 8.9e-13 ≈ 1.3e-8
 *   10,000 addresses  1.44e8 guesses/day × 8.9e-13 ≈ 1.3e-4 per day (one hit in ≈ 21 years)
 * and each hit would only pair a new box into a merchant's store (visible in `devices`), not move money.
 */
const CODE_SPACE = PAIRING_CODE_ALPHABET.length ** PAIRING_CODE_LENGTH;
const LIVE_CODES = 1_000;

let clock = new FakeClock(Date.now());
let cloud: ProbeCloud;

beforeEach(async () => {
  clock = new FakeClock(Date.now());
  // The shipped default rate limit and code life: no override here on purpose.
  cloud = await startProbeCloud({ clock });
});
afterEach(async () => {
  await cloud.close();
});

const issue = async () => (await ensureMerchant(cloud.store, 'M1'), createPairingCode({ store: cloud.store, clock, codeTtlS: cloud.config.pairingCodeTtlS }, 'M1', 'S1'));
const req = (code: string, hardwareId = 'hw-guess') => ({ v: 1, code, hardwareId, firmware: '0.1.0' });

/** Every valid-shape code that differs from `code` in exactly one position, one per position. */
function nearMisses(code: string): string[] {
  return [...code].map((ch, i) => {
    const other = PAIRING_CODE_ALPHABET[(PAIRING_CODE_ALPHABET.indexOf(ch) + 1) % PAIRING_CODE_ALPHABET.length]!;
    return code.slice(0, i) + other + code.slice(i + 1);
  });
}

describe('guessing pairing codes', () => {
  it('the arithmetic holds for the configured limit', () => {
    expect(cloud.config.pairRateLimit).toEqual({ max: 10, windowS: 60 });
    expect(cloud.config.pairingCodeTtlS).toBe(600);
    expect(CODE_SPACE).toBe(2 ** 50);
    const perAddressPerDay = cloud.config.pairRateLimit.max * (86_400 / cloud.config.pairRateLimit.windowS);
    const pGuess = LIVE_CODES / CODE_SPACE;
    expect(perAddressPerDay).toBe(14_400);
    expect(perAddressPerDay * pGuess).toBeLessThan(2e-8);
    expect(10_000 * perAddressPerDay * pGuess).toBeLessThan(2e-4);
  });

  it('after the limit the API answers 429 even for the correct code; the code still works in the next window', async () => {
    const live = await issue();
    const m0 = await scrape(cloud.metricsUrl);
    const wrong = fc.sample(fc.string({ unit: fc.constantFrom(...PAIRING_CODE_ALPHABET), minLength: 10, maxLength: 10 }).filter((c) => c !== live.code), { seed: 4242, numRuns: cloud.config.pairRateLimit.max });
    for (const code of wrong) {
      const res = await postPair(cloud.httpUrl, req(code));
      expect([res.status, PairErrorBody.parse(res.body).error.code]).toEqual([404, 'PAIRING_CODE_INVALID']);
    }
    for (const headers of [{}, { 'x-forwarded-for': '203.0.113.7' }, { 'x-real-ip': '203.0.113.8' }] as Record<string, string>[]) {
      const res = await fetch(`${cloud.httpUrl}/v1/pair`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(req(live.code)) });
      expect(res.status).toBe(429);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(PairErrorBody.parse(await res.json()).error.code).toBe('RATE_LIMITED');
    }
    const m1 = await scrape(cloud.metricsUrl);
    expect(m1('pairing_rate_limited_total')).toBe(m0('pairing_rate_limited_total') + 3);
    expect(m1('pairing_refused_total')).toBe(m0('pairing_refused_total') + wrong.length);
    expect(m1('devices_paired_total')).toBe(m0('devices_paired_total'));
    expect(await cloud.store.listDevices()).toEqual([]);

    clock.advanceSync(cloud.config.pairRateLimit.windowS * 1000);
    const ok = await postPair(cloud.httpUrl, req(live.code));
    expect(ok.status).toBe(200);
    expect((await cloud.store.listDevices()).map((d) => d.deviceId)).toEqual([ok.body.deviceId]);
  });

  it('a wrong code never pairs: every one-character near miss of a live code is 404, and the live code is not burnt', async () => {
    const live = await issue();
    const misses = nearMisses(live.code);
    expect(misses).toHaveLength(cloud.config.pairRateLimit.max); // exactly one window's worth
    for (const code of misses) {
      const res = await postPair(cloud.httpUrl, req(code));
      expect([res.status, PairErrorBody.parse(res.body).error.code]).toEqual([404, 'PAIRING_CODE_INVALID']);
    }
    expect(await cloud.store.listDevices()).toEqual([]);
    clock.advanceSync(cloud.config.pairRateLimit.windowS * 1000);
    // Lower case, spaces and dashes are refused by the API (the box normalises before sending), never matched loosely.
    const sloppy = live.code.toLowerCase();
    const res = await postPair(cloud.httpUrl, req(sloppy));
    expect([res.status, PairErrorBody.parse(res.body).error.code]).toEqual([400, 'SCHEMA_INVALID']);
    expect((await postPair(cloud.httpUrl, req(live.code))).status).toBe(200);
    // …and once used it is gone: the same code again is 410, not a second device.
    const again = await postPair(cloud.httpUrl, req(live.code, 'hw-other'));
    expect([again.status, PairErrorBody.parse(again.body).error.code]).toEqual([410, 'PAIRING_CODE_USED']);
    expect(await cloud.store.listDevices()).toHaveLength(1);
  });
});
