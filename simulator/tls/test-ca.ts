import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A private CA and one server certificate it signed, made with openssl at run time (tests, the demo's wallet simulators). */
export interface TestCa {
  dir: string;
  caCertFile: string;
  caCert: string;
  serverKeyFile: string;
  serverKey: string;
  serverCertFile: string;
  serverCert: string;
  remove(): void;
}

const OPENSSL = '/usr/bin/openssl';
/** The names a loopback test server answers on; the certificate must cover each one a test dials. */
const SERVER_NAMES = 'subjectAltName=IP:127.0.0.1,DNS:localhost,IP:::1';

function openssl(args: string[], cwd: string): void {
  execFileSync(OPENSSL, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * Nothing is checked in: a committed key would be a key anyone can read, and a committed
 * certificate expires. EC P-256 keys keep this to a few tens of milliseconds.
 */
export function makeTestCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'scanbox-ca-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=scanbox test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir);
  writeFileSync(join(dir, 'server.ext'), `${SERVER_NAMES}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n`);
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext'], dir);
  // mkdtemp made the directory 0700, so the keys were never readable by others before this.
  for (const key of ['ca.key', 'server.key']) chmodSync(join(dir, key), 0o600);
  const file = (name: string) => join(dir, name);
  return {
    dir,
    caCertFile: file('ca.pem'),
    caCert: readFileSync(file('ca.pem'), 'utf8'),
    serverKeyFile: file('server.key'),
    serverKey: readFileSync(file('server.key'), 'utf8'),
    serverCertFile: file('server.pem'),
    serverCert: readFileSync(file('server.pem'), 'utf8'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A client certificate (and its key) issued by a test CA, for mutual TLS. */
export interface TestClientCert {
  certFile: string;
  cert: string;
  keyFile: string;
  key: string;
}

/**
 * Issues a TLS client certificate (extendedKeyUsage clientAuth) from `ca`, in its directory, made at
 * test time like the CA itself. `name` keeps several certificates of one CA apart.
 */
export function issueClientCert(ca: TestCa, name = 'client'): TestClientCert {
  if (!/^[a-z0-9-]{1,32}$/.test(name)) throw new Error(`client certificate name ${JSON.stringify(name)} must be 1–32 of a-z 0-9 -`);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=scanbox test ${name}`], ca.dir);
  writeFileSync(join(ca.dir, `${name}.ext`), 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n');
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`], ca.dir);
  chmodSync(join(ca.dir, `${name}.key`), 0o600);
  const certFile = join(ca.dir, `${name}.pem`);
  const keyFile = join(ca.dir, `${name}.key`);
  return { certFile, cert: readFileSync(certFile, 'utf8'), keyFile, key: readFileSync(keyFile, 'utf8') };
}
