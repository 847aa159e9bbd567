// A throwaway test PKI made with the `openssl` command line (no npm dependency), for the TLS tests
// and the TLS bench rows: a CA, server and client certificates it signs, a second server
// certificate (another key and serial, for rotation), and a certificate from a CA nobody trusts.
//
//   const pki = makeTestPki(fs.mkdtempSync(path.join(os.tmpdir(), 'memshard-pki-')));
//   memcached -Z -o ssl_chain_cert=<pki.serverCert>,ssl_key=<pki.serverKey>   (see serverTlsArgs)
//
// Keys are EC P-256 (fast to make; memcached's OpenSSL and Node both take them), unencrypted,
// mode 0600; certificates are valid from now for VALIDITY_DAYS days.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const VALIDITY_DAYS = 3;

export interface TestPki {
  dir: string;
  /** The CA that signs server, server2 and client (self-signed). */
  caCert: string;
  caKey: string;
  /** CN=localhost, subjectAltName DNS:localhost, IP:127.0.0.1; extendedKeyUsage serverAuth. */
  serverCert: string;
  serverKey: string;
  /** Like server, with a key and a serial of its own: the certificate to rotate to. */
  server2Cert: string;
  server2Key: string;
  /** CN=memshard-test-client; extendedKeyUsage clientAuth. */
  clientCert: string;
  clientKey: string;
  /** A second self-signed CA that nothing trusts. */
  untrustedCaCert: string;
  untrustedCaKey: string;
  /** CN=localhost with the server's subjectAltName, signed by the untrusted CA; serverAuth and clientAuth, so it can be offered by either side. */
  untrustedCert: string;
  untrustedKey: string;
  /** The serials (lower-case hex, as `openssl x509 -serial` prints them, without leading zeros) given to each certificate signed here. */
  serials: { server: string; server2: string; client: string; untrusted: string };
}

/** Run openssl; its stdout, or an Error carrying its stderr. */
export function openssl(args: string[], opts: { cwd?: string; input?: string } = {}): string {
  const r = spawnSync('openssl', args, {
    cwd: opts.cwd,
    input: opts.input,
    encoding: 'utf8',
    timeout: 30_000,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  if (r.error !== undefined) throw new Error(`openssl ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`openssl ${args.join(' ')} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim()}`);
  }
  return r.stdout;
}

/** A new EC P-256 key at file (mode 0600). */
function newKey(file: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
  fs.chmodSync(file, 0o600);
}

/** A self-signed CA certificate for key. */
function selfSignedCa(key: string, cert: string, cn: string, serial: string): void {
  openssl([
    'req', '-x509', '-new', '-key', key, '-out', cert, '-days', String(VALIDITY_DAYS), '-subj', `/CN=${cn}`,
    '-set_serial', `0x${serial}`, '-sha256',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-addext', 'subjectKeyIdentifier=hash',
  ]);
}

/** A certificate for key, CN cn, with the extensions in ext, signed by the CA. */
function signed(dir: string, name: string, key: string, cn: string, ca: { cert: string; key: string }, serial: string, ext: string[]): string {
  const csr = path.join(dir, `${name}.csr`);
  const extFile = path.join(dir, `${name}.ext`);
  const cert = path.join(dir, `${name}.crt`);
  openssl(['req', '-new', '-key', key, '-subj', `/CN=${cn}`, '-out', csr]);
  fs.writeFileSync(extFile, [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid',
    ...ext,
    '',
  ].join('\n'));
  openssl([
    'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x${serial}`,
    '-days', String(VALIDITY_DAYS), '-sha256', '-extfile', extFile, '-out', cert,
  ]);
  fs.rmSync(csr);
  fs.rmSync(extFile);
  return cert;
}

/** n distinct random positive serials (63 bits, lower-case hex, no leading zeros). */
function serials(n: number): string[] {
  const out = new Set<string>();
  while (out.size < n) {
    const b = randomBytes(8);
    b[0] = (b[0]! & 0x7f) | 0x10; // positive, and no leading zero nibble
    out.add(b.toString('hex'));
  }
  return [...out];
}

/**
 * Write a test PKI into dir (created if missing; existing files of the same names are
 * overwritten) and return the paths. Throws, with openssl's stderr, if a step fails.
 */
export function makeTestPki(dir: string): TestPki {
  fs.mkdirSync(dir, { recursive: true });
  const p = (f: string) => path.join(dir, f);
  const [caSerial, serverSerial, server2Serial, clientSerial, untrustedCaSerial, untrustedSerial] = serials(6) as [string, string, string, string, string, string];
  const serverSan = 'subjectAltName=DNS:localhost,IP:127.0.0.1';

  const ca = { cert: p('ca.crt'), key: p('ca.key') };
  newKey(ca.key);
  selfSignedCa(ca.key, ca.cert, 'memshard-test-ca', caSerial);

  newKey(p('server.key'));
  signed(dir, 'server', p('server.key'), 'localhost', ca, serverSerial, [serverSan, 'extendedKeyUsage=serverAuth']);
  newKey(p('server2.key'));
  signed(dir, 'server2', p('server2.key'), 'localhost', ca, server2Serial, [serverSan, 'extendedKeyUsage=serverAuth']);
  newKey(p('client.key'));
  signed(dir, 'client', p('client.key'), 'memshard-test-client', ca, clientSerial, ['extendedKeyUsage=clientAuth']);

  const untrustedCa = { cert: p('untrusted-ca.crt'), key: p('untrusted-ca.key') };
  newKey(untrustedCa.key);
  selfSignedCa(untrustedCa.key, untrustedCa.cert, 'memshard-untrusted-ca', untrustedCaSerial);
  newKey(p('untrusted.key'));
  signed(dir, 'untrusted', p('untrusted.key'), 'localhost', untrustedCa, untrustedSerial, [serverSan, 'extendedKeyUsage=serverAuth,clientAuth']);

  return {
    dir,
    caCert: ca.cert,
    caKey: ca.key,
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    server2Cert: p('server2.crt'),
    server2Key: p('server2.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    untrustedCaCert: untrustedCa.cert,
    untrustedCaKey: untrustedCa.key,
    untrustedCert: p('untrusted.crt'),
    untrustedKey: p('untrusted.key'),
    serials: { server: serverSerial, server2: server2Serial, client: clientSerial, untrusted: untrustedSerial },
  };
}

export interface CertInfo {
  /** Lower-case hex, leading zeros dropped. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** As openssl prints it with -nameopt RFC2253, e.g. `CN=localhost`. */
  subject: string;
  issuer: string;
}

/** A certificate's serial, validity and names (`openssl x509 -noout -serial -dates -subject -issuer`). */
export function certInfo(certFile: string): CertInfo {
  const out = openssl(['x509', '-in', certFile, '-noout', '-serial', '-startdate', '-enddate', '-subject', '-issuer', '-nameopt', 'RFC2253']);
  const field = (name: string): string => {
    const m = new RegExp(`^${name}=\\s*(.*)$`, 'm').exec(out);
    if (m === null) throw new Error(`openssl x509 printed no ${name} for ${certFile}: ${out}`);
    return m[1]!.trim();
  };
  const date = (name: string): Date => {
    const d = new Date(field(name));
    if (Number.isNaN(d.getTime())) throw new Error(`cannot read ${name} of ${certFile}: ${field(name)}`);
    return d;
  };
  return {
    serial: field('serial').toLowerCase().replace(/^0+(?=.)/, ''),
    notBefore: date('notBefore'),
    notAfter: date('notAfter'),
    subject: field('subject'),
    issuer: field('issuer'),
  };
}

/** `openssl verify -CAfile ca cert`: null when it verifies, else openssl's complaint. */
export function verifyCert(caFile: string, certFile: string): string | null {
  try {
    openssl(['verify', '-CAfile', caFile, certFile]);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * memcached's (and memshard's) `-Z -o ssl_chain_cert=...,ssl_key=...[,extra]` for a certificate and
 * key; extra e.g. `ssl_ca_cert=...,ssl_verify_mode=2`. The paths must not contain commas (-o splits on them).
 */
export function serverTlsArgs(cert: string, key: string, extra: string[] = []): string[] {
  for (const f of [cert, key]) if (f.includes(',')) throw new Error(`-o cannot carry a path with a comma: ${f}`);
  return ['-Z', '-o', [`ssl_chain_cert=${cert}`, `ssl_key=${key}`, ...extra].join(',')];
}
