import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pairingCloudUrl, probeCloud } from '../../cloud/pairing/pairing-url.js';
import { parseConfig } from '../../cloud/config.js';
import { tempDir } from './harness.js';

/**
 * `scanbox-cloud pair create` tells the box the address the running cloud really answers on: the
 * config's publicHttpUrl, else its listener (scheme from tls, host, httpPort), and says which it
 * used and whether anything answers there. An address no box can call is refused before a code
 * exists.
 */
const run = promisify(execFile);
let dir: string;
let remove: () => void;
let db: string;
beforeEach(() => {
  ({ dir, remove } = tempDir());
  db = join(dir, 'cloud.db');
});
afterEach(() => remove());

const cli = (...args: string[]) => run(process.execPath, ['bin/scanbox-cloud.js', ...args, '--db', db]);
async function cliFails(...args: string[]): Promise<string> {
  const err = (await cli(...args).then(
    () => undefined,
    (e: unknown) => e,
  )) as { code?: number; stderr?: string } | undefined;
  expect(err?.code).toBe(1);
  return err!.stderr ?? '';
}
function config(values: Record<string, unknown>): string {
  const file = join(dir, 'cloud.json');
  writeFileSync(file, JSON.stringify(values));
  return file;
}
function codesInStore(): number {
  const sqlite = new Database(db, { readonly: true });
  try {
    return (sqlite.prepare('SELECT count(*) AS n FROM pairing_codes').get() as { n: number }).n;
  } finally {
    sqlite.close();
  }
}

/** Stands in for the running cloud's /healthz on the port its config names. */
async function fakeCloud(): Promise<{ port: number; server: Server }> {
  const server = createServer((req, res) => {
    res.writeHead(req.url === '/healthz' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ok: req.url === '/healthz' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, server };
}

describe('scanbox-cloud pair create: the cloud address in the code', () => {
  it("takes the running cloud's HTTP listener from --config (not port 8080) and says where it came from and that it answers", async () => {
    const { port, server } = await fakeCloud();
    try {
      await cli('merchant', 'add', 'M1');
      const file = config({ host: '127.0.0.1', httpPort: port });
      const { stdout } = await cli('pair', 'create', '--merchant', 'M1', '--store', 'S1', '--config', file, '--json');
      const issued = JSON.parse(stdout);
      expect(issued.cloudUrl).toBe(`http://127.0.0.1:${port}`);
      expect(issued.qrText).toContain(encodeURIComponent(`http://127.0.0.1:${port}`));
      expect(issued.cloudUrlFrom).toBe(`the HTTP listener in --config ${file} (host, httpPort)`);
      expect(issued.cloudCheck).toEqual({ ok: true, detail: `GET http://127.0.0.1:${port}/healthz answered` });

      const text = await cli('pair', 'create', '--merchant', 'M1', '--store', 'S1', '--config', file);
      expect(text.stdout).toContain(`cloud:        http://127.0.0.1:${port}  (from the HTTP listener in --config ${file} (host, httpPort); it answers)`);
      // Loopback works for a box on this machine only, and the engineer is told so.
      expect(text.stderr).toMatch(/warning: http:\/\/127\.0\.0\.1:\d+ is a loopback address: only a box on this machine can pair with it; set publicHttpUrl/);
    } finally {
      server.close();
    }
  }, 120_000);

  it('prefers publicHttpUrl; --cloud-url beats both; a cloud that does not answer is a warning naming the address', async () => {
    await cli('merchant', 'add', 'M1');
    const { port, server } = await fakeCloud();
    await new Promise((resolve) => server.close(resolve)); // nothing listens there any more
    const file = config({ host: '0.0.0.0', httpPort: 8443, tls: { certFile: '/nonexistent/cert.pem', keyFile: '/nonexistent/key.pem' }, publicHttpUrl: `https://127.0.0.1:${port}/` });
    const r = await cli('pair', 'create', '--merchant', 'M1', '--store', 'S1', '--config', file, '--json');
    const issued = JSON.parse(r.stdout);
    expect(issued.cloudUrl).toBe(`https://127.0.0.1:${port}`);
    expect(issued.cloudUrlFrom).toBe(`publicHttpUrl in --config ${file}`);
    expect(issued.cloudCheck.ok).toBe(false);
    expect(r.stderr).toContain(`warning: GET https://127.0.0.1:${port}/healthz failed: ECONNREFUSED: is the cloud running there? A box given this code will try https://127.0.0.1:${port}`);

    const flag = JSON.parse((await cli('pair', 'create', '--merchant', 'M1', '--store', 'S1', '--config', file, '--cloud-url', 'https://cloud.example.com', '--json')).stdout);
    expect(flag).toMatchObject({ cloudUrl: 'https://cloud.example.com', cloudUrlFrom: '--cloud-url' });
  }, 120_000);

  it('refuses a listener on every address or on port 0 without publicHttpUrl, and creates no code', async () => {
    await cli('merchant', 'add', 'M1');
    const everywhere = await cliFails('pair', 'create', '--merchant', 'M1', '--store', 'S1', '--config', config({ host: '0.0.0.0', httpPort: 8080 }));
    expect(everywhere).toMatch(/CONFIG_INVALID: the cloud listens on every address \(host 0\.0\.0\.0 in --config .*\).*set publicHttpUrl .* or pass --cloud-url/);
    const anyPort = await cliFails('pair', 'create', '--merchant', 'M1', '--store', 'S1', '--config', config({ httpPort: 0 }));
    expect(anyPort).toMatch(/CONFIG_INVALID: the cloud's httpPort in --config .* is 0 \(any free port\)/);
    expect(codesInStore()).toBe(0);
  }, 120_000);

  it('without --config says the address is the default one', async () => {
    await cli('merchant', 'add', 'M1');
    const r = await cli('pair', 'create', '--merchant', 'M1', '--store', 'S1', '--json');
    expect(JSON.parse(r.stdout).cloudUrlFrom).toBe('the HTTP listener in the defaults and SCANBOX_CLOUD_* environment (no --config) (host, httpPort)');
    expect(r.stderr).toContain("pass the running cloud's --config or --cloud-url");
  }, 60_000);
});

describe('pairingCloudUrl', () => {
  const base = parseConfig({});
  const source = '--config c.json';

  it('builds the listener URL: https with tls, brackets around an IPv6 host', () => {
    expect(pairingCloudUrl({ ...base, host: '10.0.0.5', httpPort: 9000 }, { source })).toEqual({ url: 'http://10.0.0.5:9000', from: 'the HTTP listener in --config c.json (host, httpPort)', loopback: false });
    expect(pairingCloudUrl({ ...base, host: 'cloud.lan', httpPort: 8443, tls: { certFile: 'c', keyFile: 'k' } }, { source }).url).toBe('https://cloud.lan:8443');
    expect(pairingCloudUrl({ ...base, host: '::1', httpPort: 8080 }, { source })).toMatchObject({ url: 'http://[::1]:8080', loopback: true });
  });

  it.each([
    ['0.0.0.0', 8080, /every address \(host 0\.0\.0\.0/],
    ['::', 8080, /every address \(host ::/],
    ['10.0.0.5', 0, /httpPort in --config c\.json is 0/],
  ])('refuses host %s port %s', (host, httpPort, message) => {
    expect(() => pairingCloudUrl({ ...base, host, httpPort }, { source })).toThrow(message);
  });

  it('refuses a given address that is no http(s) URL a box can call', () => {
    expect(() => pairingCloudUrl(base, { source, flag: 'cloud.example.com' })).toThrow('--cloud-url "cloud.example.com" is not a URL');
    expect(() => pairingCloudUrl(base, { source, flag: 'mqtt://cloud.example.com' })).toThrow('is not http:// or https://');
    expect(() => pairingCloudUrl(base, { source, flag: 'http://0.0.0.0:8080' })).toThrow('names every address');
    expect(() => pairingCloudUrl({ ...base, publicHttpUrl: 'https://[::]:8443' }, { source })).toThrow('publicHttpUrl "https://[::]:8443" names every address');
  });
});

describe('probeCloud', () => {
  it("tells the cloud's {ok:true} from another server and from silence", async () => {
    const { port, server } = await fakeCloud();
    try {
      expect((await probeCloud(`http://127.0.0.1:${port}`, 2_000)).ok).toBe(true);
    } finally {
      server.close();
    }
    const other = createServer((_req, res) => res.end('<html>router login</html>'));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    try {
      const r = await probeCloud(`http://127.0.0.1:${(other.address() as AddressInfo).port}`, 2_000);
      expect(r).toEqual({ ok: false, detail: expect.stringMatching(/answered HTTP 200, not the cloud's \{"ok":true\}/) });
    } finally {
      other.close();
    }
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const r = await probeCloud(`http://127.0.0.1:${(silent.address() as AddressInfo).port}`, 200);
      expect(r.detail).toMatch(/no answer within 200 ms/);
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });
});
