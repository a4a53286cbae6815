import { afterEach, describe, expect, it } from 'vitest';
import { startProbeCloud, type ProbeCloud } from './support.js';

/**
 * What the cloud refused and why is for its operators: `/metrics` is not on the public pairing port
 * (it answers there only with the configured bearer token), and its own listener is on loopback.
 */
let cloud: ProbeCloud | undefined;
afterEach(async () => {
  await cloud?.close();
  cloud = undefined;
});

describe('GET /metrics', () => {
  it('is not served on the public port; it is on its own loopback listener', async () => {
    cloud = await startProbeCloud();
    expect((await fetch(`${cloud.httpUrl}/metrics`)).status).toBe(404);
    const refused = await fetch(`${cloud.httpUrl}/v1/pair`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ v: 1, code: '0000000000', hardwareId: 'hw' }) });
    expect(refused.status).toBe(404);
    expect(new URL(cloud.metricsUrl).hostname).toBe('127.0.0.1');
    const res = await fetch(cloud.metricsUrl);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/^scanbox_cloud_pairing_refused_total\{kind="unknown"\} 1$/m);
  });

  it('with a token it is also on the public port, for that bearer token only', async () => {
    const token = 'metrics-token-0123456789';
    cloud = await startProbeCloud({ config: { metrics: { token } } });
    expect((await fetch(`${cloud.httpUrl}/metrics`)).status).toBe(404);
    expect((await fetch(`${cloud.httpUrl}/metrics`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(404);
    expect((await fetch(`${cloud.httpUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
  });
});
