/**
 * scripts/tls-certs.ts: the throwaway test PKI (openssl CLI) that the TLS tests and bench rows use.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { certInfo, makeTestPki, openssl, serverTlsArgs, verifyCert, VALIDITY_DAYS } from '../scripts/tls-certs.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'memshard-pki-test-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

const pki = makeTestPki(dir);

t.test('every file exists, keys are private to the owner', async (t) => {
  const files = [
    pki.caCert, pki.caKey, pki.serverCert, pki.serverKey, pki.server2Cert, pki.server2Key,
    pki.clientCert, pki.clientKey, pki.untrustedCaCert, pki.untrustedCaKey, pki.untrustedCert, pki.untrustedKey,
  ];
  t.equal(new Set(files).size, files.length, 'distinct paths');
  for (const f of files) {
    t.ok(fs.statSync(f).size > 0, `${path.basename(f)} exists`);
    t.equal(path.dirname(f), dir, `${path.basename(f)} is in the given directory`);
  }
  for (const k of [pki.caKey, pki.serverKey, pki.server2Key, pki.clientKey, pki.untrustedCaKey, pki.untrustedKey]) {
    t.equal(fs.statSync(k).mode & 0o077, 0, `${path.basename(k)}: no group/other access`);
  }
  t.same(fs.readdirSync(dir).filter((f) => /\.(csr|ext|srl)$/.test(f)), [], 'no leftovers (csr, ext, srl)');
});

t.test('openssl verify: the CA signs server, server2 and client; the untrusted one fails', async (t) => {
  for (const c of [pki.serverCert, pki.server2Cert, pki.clientCert]) t.equal(verifyCert(pki.caCert, c), null, `${path.basename(c)} verifies`);
  const refused = verifyCert(pki.caCert, pki.untrustedCert);
  t.not(refused, null, 'untrusted.crt does not verify against ca.crt');
  t.match(refused, /unable to get local issuer certificate|verification failed/i, "openssl's reason is carried");
  t.equal(verifyCert(pki.untrustedCaCert, pki.untrustedCert), null, 'but it verifies against its own CA');
  t.not(verifyCert(pki.untrustedCaCert, pki.serverCert), null, 'and the untrusted CA does not sign server.crt');
});

t.test('serials, names, validity', async (t) => {
  const server = certInfo(pki.serverCert);
  const server2 = certInfo(pki.server2Cert);
  const client = certInfo(pki.clientCert);
  const untrusted = certInfo(pki.untrustedCert);
  t.not(server.serial, server2.serial, 'the rotation certificate has another serial');
  t.equal(new Set([server.serial, server2.serial, client.serial, untrusted.serial]).size, 4, 'all serials differ');
  t.same(
    { server: server.serial, server2: server2.serial, client: client.serial, untrusted: untrusted.serial },
    pki.serials,
    'the serials returned are the ones in the certificates',
  );
  t.equal(server.subject, 'CN=localhost');
  t.equal(server2.subject, 'CN=localhost');
  t.equal(client.subject, 'CN=memshard-test-client');
  t.equal(server.issuer, 'CN=memshard-test-ca');
  t.equal(untrusted.issuer, 'CN=memshard-untrusted-ca');
  const now = Date.now();
  for (const [name, c] of Object.entries({ server, server2, client, untrusted })) {
    t.ok(c.notBefore.getTime() <= now + 5_000, `${name}: valid now`);
    const days = (c.notAfter.getTime() - now) / 86_400_000;
    t.ok(days > VALIDITY_DAYS - 0.1 && days <= VALIDITY_DAYS + 0.01, `${name}: valid for ${VALIDITY_DAYS} days (${days.toFixed(2)})`);
  }
});

t.test('extensions: subjectAltName, key usages, CA flag', async (t) => {
  const text = (f: string) => openssl(['x509', '-in', f, '-noout', '-text']);
  const server = text(pki.serverCert);
  t.match(server, /DNS:localhost, IP Address:127\.0\.0\.1/, 'server SAN');
  t.match(server, /TLS Web Server Authentication/);
  t.match(text(pki.server2Cert), /DNS:localhost, IP Address:127\.0\.0\.1/, 'server2 SAN');
  t.match(text(pki.clientCert), /TLS Web Client Authentication/);
  t.match(text(pki.caCert), /CA:TRUE/);
  t.match(text(pki.serverCert), /CA:FALSE/);
  // Node's own check of the name, as a client with servername localhost or 127.0.0.1 does it
  const x = new crypto.X509Certificate(fs.readFileSync(pki.serverCert));
  t.equal(tls.checkServerIdentity('localhost', { subject: { CN: 'localhost' }, subjectaltname: x.subjectAltName ?? '' } as tls.PeerCertificate), undefined, 'localhost matches');
  t.equal(tls.checkServerIdentity('127.0.0.1', { subject: { CN: 'localhost' }, subjectaltname: x.subjectAltName ?? '' } as tls.PeerCertificate), undefined, '127.0.0.1 matches');
  t.ok(x.checkPrivateKey(crypto.createPrivateKey(fs.readFileSync(pki.serverKey))), 'server.key is the key of server.crt');
  t.notOk(x.checkPrivateKey(crypto.createPrivateKey(fs.readFileSync(pki.server2Key))), 'server2 has a key of its own');
});

t.test('a TLS handshake with the certificates: mutual TLS passes, the untrusted client is refused', async (t) => {
  const server = tls.createServer({
    cert: fs.readFileSync(pki.serverCert),
    key: fs.readFileSync(pki.serverKey),
    ca: fs.readFileSync(pki.caCert),
    requestCert: true,
    rejectUnauthorized: true,
  }, (s) => s.end('hello\r\n'));
  server.on('tlsClientError', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as { port: number }).port;
  const connect = (cert: string, key: string) =>
    new Promise<string>((resolve, reject) => {
      const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: fs.readFileSync(pki.caCert), cert: fs.readFileSync(cert), key: fs.readFileSync(key) });
      let got = '';
      const timer = setTimeout(() => s.destroy(new Error('timeout')), 5_000);
      s.setEncoding('utf8');
      s.on('data', (d: string) => (got += d));
      s.on('end', () => {
        clearTimeout(timer);
        resolve(got);
      });
      s.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  t.equal(await connect(pki.clientCert, pki.clientKey), 'hello\r\n', 'client.crt accepted, server.crt verified for localhost');
  // TLS 1.3: the server checks the client's certificate after the client is done, so the refusal is
  // an alert or a close on the first read, not a failed connect
  const refused = await connect(pki.untrustedCert, pki.untrustedKey).catch((e: Error) => e);
  t.not(refused, 'hello\r\n', `untrusted.crt as a client certificate is refused (${refused instanceof Error ? refused.message : JSON.stringify(refused)})`);
  const noClientCert = await new Promise<string | Error>((resolve) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: fs.readFileSync(pki.untrustedCaCert) });
    s.on('secureConnect', () => resolve('connected'));
    s.on('error', resolve);
  });
  t.type(noClientCert, Error, 'a client trusting only the untrusted CA refuses server.crt');
});

t.test('serverTlsArgs: memcached -Z -o form', async (t) => {
  t.same(serverTlsArgs('/a/c.crt', '/a/k.key'), ['-Z', '-o', 'ssl_chain_cert=/a/c.crt,ssl_key=/a/k.key']);
  t.same(serverTlsArgs('/a/c.crt', '/a/k.key', ['ssl_ca_cert=/a/ca.crt', 'ssl_verify_mode=2']), ['-Z', '-o', 'ssl_chain_cert=/a/c.crt,ssl_key=/a/k.key,ssl_ca_cert=/a/ca.crt,ssl_verify_mode=2']);
  t.throws(() => serverTlsArgs('/a,b/c.crt', '/a/k.key'), /comma/);
});

t.test('a failing step throws with openssl stderr', async (t) => {
  const bad = path.join(dir, 'not-a-dir');
  fs.writeFileSync(bad, 'a file where a directory should be');
  t.throws(() => makeTestPki(path.join(bad, 'sub')), 'cannot create the directory');
  t.throws(() => certInfo(path.join(dir, 'missing.crt')), /openssl x509 .*exited 1: .*(No such file|Could not open|unable to load)/is, "openssl's stderr is in the message");
});
