import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAIR_EXAMPLES } from '../../protocol/examples.js';
import { decodeJson, ERROR_CODES, isProtocolError, PairErrorBody, PairRequest, PAIRING_CODE_ALPHABET } from '../../protocol/index.js';
import { systemClock } from '../../protocol/clock.js';
import { createPairingCode } from '../../cloud/pairing/pairing.js';
import { ensureMerchant, payMsg, postPair, TestBox } from '../cloud/harness.js';
import { money, scrape, startProbeCloud, type ProbeCloud } from '../security/support.js';
import { mutants, type Json } from './mutations.js';

/**
 * Fuzzing POST /v1/pair: random bodies, wrong content types, huge bodies, invalid JSON, mutated
 * valid requests, and valid-shape requests with random codes. Every one must get a 4xx with a
 * PairErrorBody whose ErrorCode matches what the protocol decoder says, pair nothing and burn no
 * code; afterwards a live code still pairs and the new box can pay. The rate limit is lifted here
 * (it has its own probe in test/security/pairing-guess.test.ts) so every case reaches the parser.
 */
export const PAIRING_API_CASES = 600;
const SEED = 6_0005;

let cloud: ProbeCloud;
let liveCode: string;

beforeAll(async () => {
  cloud = await startProbeCloud({ config: { pairRateLimit: { max: 1_000_000, windowS: 60 } } });
  await ensureMerchant(cloud.store, 'M1');
  liveCode = (await createPairingCode({ store: cloud.store, clock: systemClock, codeTtlS: 600 }, 'M1', 'S1')).code;
});
afterAll(async () => {
  await cloud.close();
});

interface Case {
  kind: string;
  body: Buffer;
  contentType: string | null;
}

// Mostly JSON, so most cases reach the decoder; the rest must all be 415 before it.
const contentTypes = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom<string | null>('application/json', 'application/json; charset=latin1', 'Application/JSON') },
  { weight: 2, arbitrary: fc.constantFrom<string | null>('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', '', null) },
);
const randomCode = fc.string({ unit: fc.constantFrom(...PAIRING_CODE_ALPHABET), minLength: 10, maxLength: 10 });

function cases(): fc.Arbitrary<Case> {
  const req = PAIR_EXAMPLES.request as unknown as Record<string, Json>;
  const body = fc.oneof(
    { weight: 4, arbitrary: mutants(req).map((m) => ({ kind: `mutated:${m.mutation}`, body: m.payload })) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => ({ kind: 'random-json', body: Buffer.from(JSON.stringify(v) ?? 'null') })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 500 }).map((b) => ({ kind: 'binary', body: Buffer.from(b) })) },
    { weight: 1, arbitrary: fc.nat().map((n) => ({ kind: 'invalid-json', body: Buffer.from(JSON.stringify(req).slice(0, n % JSON.stringify(req).length)) })) },
    { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 4_097, max: 300_000 }), fc.constantFrom('x', ' ', '{')).map(([n, c]) => ({ kind: 'huge', body: Buffer.from(JSON.stringify({ ...req, hardwareId: c.repeat(n) })) })) },
    { weight: 3, arbitrary: fc.tuple(randomCode, fc.stringMatching(/^[!-~]{1,128}$/)).map(([code, hw]) => ({ kind: 'random-code', body: Buffer.from(JSON.stringify({ v: 1, code, hardwareId: hw })) })) },
  );
  return fc.tuple(body, contentTypes).map(([b, contentType]) => ({ ...b, contentType }));
}

/** What the answer must be, from the protocol decoder (the cloud adds only the code lookup). */
/** The oracle: only a JSON media type is read at all (parameters such as charset aside). */
function expected(body: Buffer, contentType: string | null): { status: number; code: string } {
  if (contentType?.split(';')[0]!.trim().toLowerCase() !== 'application/json') return { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' };
  try {
    decodeJson(PairRequest, body, 'pairing request');
  } catch (err) {
    if (!isProtocolError(err)) throw err;
    return { status: 400, code: err.code };
  }
  return { status: 404, code: 'PAIRING_CODE_INVALID' };
}

describe('POST /v1/pair under fuzzing', () => {
  it(`${PAIRING_API_CASES} requests: each a 4xx PairErrorBody with the decoder's code; nothing paired`, async () => {
    const list = fc.sample(cases(), { seed: SEED, numRuns: PAIRING_API_CASES * 2 }).filter((c) => !c.body.toString().includes(liveCode)).slice(0, PAIRING_API_CASES);
    expect(list).toHaveLength(PAIRING_API_CASES);
    const m0 = await scrape(cloud.metricsUrl);
    const before = await money(cloud);
    const byStatus = new Map<number, number>();
    const byKind = new Map<string, number>();
    for (const [n, c] of list.entries()) {
      const want = expected(c.body, c.contentType);
      const res = await fetch(`${cloud.httpUrl}/v1/pair`, { method: 'POST', headers: c.contentType === null ? {} : { 'content-type': c.contentType }, body: c.body });
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new Error(`case ${n} (${c.kind}): answer ${res.status} is not JSON: ${text.slice(0, 200)}`);
      }
      const err = PairErrorBody.safeParse(parsed);
      expect({ n, kind: c.kind, status: res.status, body: err.success ? err.data.error.code : parsed }).toEqual({ n, kind: c.kind, status: want.status, body: want.code });
      expect(ERROR_CODES).toContain(want.code);
      byStatus.set(res.status, (byStatus.get(res.status) ?? 0) + 1);
      const k = c.kind.split(':')[0]!;
      byKind.set(k, (byKind.get(k) ?? 0) + 1);
    }
    console.log(`fuzz pairing-api: ${list.length} cases, ${list.length} refused, 0 accepted (status ${[...byStatus].map(([s, k]) => `${s}×${k}`).join(' ')}; ${[...byKind].map(([s, k]) => `${s} ${k}`).join(', ')})`);
    const m1 = await scrape(cloud.metricsUrl);
    expect(m1('devices_paired_total')).toBe(m0('devices_paired_total'));
    expect(m1('pairing_refused_total') - m0('pairing_refused_total')).toBe(byStatus.get(404) ?? 0);
    expect(await cloud.store.listDevices()).toEqual([]);
    expect(await money(cloud)).toEqual(before);
  });

  it('multi-megabyte bodies (1, 5, 20 MB) are cut off at 4 KB: 400 PAYLOAD_TOO_LARGE, and the API stays up', async () => {
    for (const mb of [1, 5, 20]) {
      const res = await fetch(`${cloud.httpUrl}/v1/pair`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.alloc(mb * 1024 * 1024, 0x7b) });
      expect([mb, res.status, PairErrorBody.parse(await res.json()).error.code]).toEqual([mb, 400, 'PAYLOAD_TOO_LARGE']);
    }
    expect((await fetch(`${cloud.httpUrl}/healthz`)).status).toBe(200);
  });

  it('other methods and paths are a 404 PairErrorBody too', async () => {
    for (const [method, path] of [['GET', '/v1/pair'], ['PUT', '/v1/pair'], ['DELETE', '/v1/pair'], ['POST', '/v1/pair/'], ['POST', '/v1/PAIR'], ['POST', '/v2/pair'], ['POST', '/../v1/pair%00']] as const) {
      const res = await fetch(`${cloud.httpUrl}${path}`, { method, ...(method === 'GET' ? {} : { body: JSON.stringify({ v: 1, code: liveCode, hardwareId: 'hw-x' }) }) });
      expect([method, path, res.status]).toEqual([method, path, 404]);
      PairErrorBody.parse(await res.json());
    }
    expect(await cloud.store.listDevices()).toEqual([]);
  });

  it('afterwards the live code (untouched by all that) still pairs, and the new box can pay', async () => {
    const res = await postPair(cloud.httpUrl, { v: 1, code: liveCode, hardwareId: 'hw-fuzz-pair', firmware: '0.1.0' });
    expect(res.status).toBe(200);
    const box = await TestBox.of(cloud, res.body);
    await box.send('pay', payMsg(box.deviceId, 1));
    expect(await box.next('result')).toMatchObject({ state: 'SUCCESS' });
    expect(cloud.gw.count('pay')).toBe(1);
    await box.close();
  });
});
