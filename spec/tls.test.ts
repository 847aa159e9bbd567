/**
 * TLS (-Z), over real TLS sockets with certificates made here: the same replies as memcached -Z
 * with the same certificates (text, meta, binary, large values, pipelining), openssl s_client,
 * pymemcache with tls_context, mutual TLS, refresh_certs and SIGHUP (seen by a new handshake's
 * serial), minimum versions, garbage and plaintext on a TLS port, authentication inside TLS, and
 * the stats and /metrics TLS series.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { makeTestPki, serverTlsArgs } from '../scripts/tls-certs.js';
import { Op, readResponses, request, storeExtras } from './helpers/binary.js';
import { freePort, httpGet, rawClient, startDaemon, startMemcached, type Daemon, type RawClient } from './helpers/daemon.js';

const dir = mkdtempSync(path.join(tmpdir(), 'memshard-tls-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const pki = makeTestPki(path.join(dir, 'pki'));
const ca = readFileSync(pki.caCert);
const trusting: tls.ConnectionOptions = { ca };
const withClientCert: tls.ConnectionOptions = { ca, cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) };

/** The server certificate in files the test may overwrite (rotation). */
function liveCertFiles(name: string): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  copyFileSync(pki.serverCert, cert);
  copyFileSync(pki.serverKey, key);
  return { cert, key };
}

const tlsArgs = (files: { cert: string; key: string }, extra: string[] = []) => serverTlsArgs(files.cert, files.key, extra);

async function ask(c: RawClient, request: string, until = '\r\n'): Promise<string> {
  c.send(request);
  return c.readUntil(until, 5000);
}

/** A handshake; the server certificate's serial, or the error that ended it. */
function handshake(port: number, options: tls.ConnectionOptions): Promise<{ serial?: string; error?: string }> {
  return new Promise((resolve) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ...options });
    const done = (r: { serial?: string; error?: string }) => {
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ error: 'timeout' }), 5000);
    s.once('secureConnect', () => {
      // TLS 1.3: a refused client certificate is only told after the handshake; a request shows it
      s.write('version\r\n');
    });
    s.once('data', () => done({ serial: s.getPeerCertificate().serialNumber.toLowerCase().replace(/^0+/, '') }));
    s.once('error', (e) => done({ error: e.message }));
    s.once('close', () => done({ error: 'closed' }));
  });
}

async function stats(c: RawClient, group = ''): Promise<Map<string, string>> {
  const reply = await ask(c, `stats ${group}\r\n`, 'END\r\n');
  return new Map(reply.split('\r\n').filter((l) => l.startsWith('STAT ')).map((l) => l.slice(5).split(' ', 2) as [string, string]));
}

/** Text, meta and pipelined requests whose replies carry no CAS or clock. */
const SCRIPT = [
  'set a 5 0 3\r\nabc\r\n', 'get a\r\n', 'append a 0 0 2\r\nde\r\n', 'get a b a\r\n', 'incr a 1\r\n',
  'set n 0 0 2\r\n10\r\n', 'incr n 5\r\n', 'decr n 100\r\n', 'delete a\r\n', 'delete a\r\n',
  'mg n v f\r\n', 'ms m 2 T0\r\nhi\r\n', 'mg m v\r\n', 'md m q\r\n', 'get nope\r\n', 'bogus\r\n',
  `set big 0 0 600000\r\n${'x'.repeat(600_000)}\r\n`, 'get big\r\n',
  'get n\r\n'.repeat(200),
];

t.test('memshard -Z answers as memcached -Z does, with the same certificates', async (t) => {
  const files = liveCertFiles('same');
  const servers: Daemon[] = [
    await startMemcached(tlsArgs(files), { tls: trusting }),
    await startDaemon(['-t', '4', ...tlsArgs(files)], { tls: trusting }),
  ];
  t.teardown(() => Promise.all(servers.map((s) => s.stop())));
  const replies: string[][] = [];
  for (const server of servers) {
    const c = await rawClient(server.port, 3000, trusting);
    const got: string[] = [];
    for (const req of SCRIPT) {
      if (req.startsWith('set big')) {
        // memcached 1.6.18 -Z leaves a request that follows a large value in the same read
        // unanswered until more bytes come: the large set goes alone
        c.send(req);
        got.push(await c.readUntil('\r\n', 10_000));
        continue;
      }
      c.send(`${req}mn\r\n`);
      got.push(await c.readUntil('MN\r\n', 10_000));
    }
    // binary, on a connection of its own (the first byte picks the protocol); memcached 1.6.18 -Z
    // stalls on a 70 KB binary set (it waits for more), so the shared script keeps values small
    const b = await rawClient(server.port, 3000, trusting);
    b.send(Buffer.concat([request({ opcode: Op.Set, key: 'bin', extras: storeExtras(7, 0), value: 'v'.repeat(100) }), request({ opcode: Op.Get, key: 'bin' })]));
    const bin = await readResponses(b, 2, 5000);
    got.push(bin.map((r) => `${r.opcode} ${r.status} ${r.extras.toString('hex')} ${r.value.length}`).join('|'));
    await b.close();
    replies.push(got);
    const settings = await stats(c, 'settings');
    replies.push(['ssl_enabled', 'ssl_verify_mode', 'ssl_keyformat', 'ssl_ciphers', 'ssl_ca_cert', 'ssl_wbuf_size', 'ssl_session_cache', 'ssl_kernel_tls', 'ssl_min_version', 'ssl_chain_cert', 'ssl_key']
      .map((k) => `${k} ${settings.get(k)}`));
    const general = await stats(c);
    t.equal(general.get('ssl_handshake_errors'), '0', `${server === servers[0] ? 'memcached' : 'memshard'}: ssl_handshake_errors`);
    t.ok(general.has('time_since_server_cert_refresh'));
    await c.close();
  }
  t.same(replies[2], replies[0], 'every reply, byte for byte');
  const big = await rawClient(servers[1]!.port, 3000, trusting);
  big.send(Buffer.concat([request({ opcode: Op.Set, key: 'bin', extras: storeExtras(7, 0), value: 'v'.repeat(700_000) }), request({ opcode: Op.Get, key: 'bin' })]));
  const [set, get] = await readResponses(big, 2, 10_000);
  t.same([set!.status, get!.status, get!.value.length], [0, 0, 700_000], 'memshard: a 700 KB binary value over TLS');
  await big.close();
  t.same(replies[3], replies[1], 'stats settings ssl_* rows');
});

t.test('openssl s_client and pymemcache (tls_context) talk to memshard -Z', async (t) => {
  const files = liveCertFiles('clients');
  const ms = await startDaemon(['-t', '2', ...tlsArgs(files)], { tls: trusting });
  t.teardown(() => ms.stop());
  // s_client ends at the end of its input: keep it open until the replies are in
  const sClient = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${ms.port}`, '-CAfile', pki.caCert, '-verify_return_error', '-quiet'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  const replied = new Promise<void>((resolve) => {
    sClient.stdout.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      if (out.includes('END\r\n')) resolve();
    });
  });
  const timer = setTimeout(() => sClient.kill(), 10_000);
  sClient.stdin.write('set greeting 0 0 5\r\nhello\r\nget greeting\r\n');
  await Promise.race([replied, new Promise((r) => sClient.once('exit', r))]);
  sClient.stdin.end('quit\r\n');
  await new Promise((r) => (sClient.exitCode === null ? sClient.once('exit', r) : r(null)));
  clearTimeout(timer);
  t.equal(out, 'STORED\r\nVALUE greeting 0 5\r\nhello\r\nEND\r\n', 'openssl s_client');
  const python = spawnSync('/usr/bin/python3', ['-c', [
    'import ssl, sys',
    'from pymemcache.client.base import Client',
    `ctx = ssl.create_default_context(cafile=${JSON.stringify(pki.caCert)})`,
    `c = Client(('127.0.0.1', ${ms.port}), tls_context=ctx)`,
    "c.set('py', b'from python')",
    "print(c.get('py').decode())",
  ].join('\n')], { encoding: 'utf8', timeout: 20_000 });
  t.equal(python.stdout.trim(), 'from python', `pymemcache over TLS (stderr: ${python.stderr.trim().split('\n').pop()}; needs Debian's python3-pymemcache)`);
});

t.test('mutual TLS: ssl_verify_mode 2 refuses clients without a trusted certificate, as memcached does', async (t) => {
  const files = liveCertFiles('mtls');
  const extra = [`ssl_ca_cert=${pki.caCert}`, 'ssl_verify_mode=2'];
  const servers: Daemon[] = [
    await startMemcached(tlsArgs(files, extra), { tls: withClientCert }),
    await startDaemon(['-t', '2', ...tlsArgs(files, extra)], { tls: withClientCert }),
  ];
  t.teardown(() => Promise.all(servers.map((s) => s.stop())));
  const untrusted: tls.ConnectionOptions = { ca, cert: readFileSync(pki.untrustedCert), key: readFileSync(pki.untrustedKey) };
  for (const [name, server] of [['memcached', servers[0]!], ['memshard', servers[1]!]] as const) {
    t.ok((await handshake(server.port, withClientCert)).serial, `${name}: a client certificate from the CA is accepted`);
    t.ok((await handshake(server.port, trusting)).error, `${name}: no client certificate: refused`);
    t.ok((await handshake(server.port, untrusted)).error, `${name}: a certificate from another CA: refused`);
  }
  const c = await rawClient(servers[1]!.port, 3000, withClientCert);
  const conns = await ask(c, 'stats conns\r\n', 'END\r\n');
  t.match(conns, /STAT \d+:memshard_tls_peer CN=memshard-test-client/, 'the client certificate subject in stats conns');
  t.ok(Number((await stats(c)).get('ssl_handshake_errors')) >= 2, 'refused handshakes counted');
  await c.close();
});

t.test('refresh_certs and SIGHUP: new handshakes see the new certificate, open connections go on', async (t) => {
  const files = liveCertFiles('rotate');
  const ms = await startDaemon(['-t', '3', ...tlsArgs(files)], { tls: trusting });
  t.teardown(() => ms.stop());
  t.equal((await handshake(ms.port, trusting)).serial, pki.serials.server, 'the first certificate');
  const open = await rawClient(ms.port, 3000, trusting);
  t.equal(await ask(open, 'set k 0 0 1\r\nv\r\n'), 'STORED\r\n');
  copyFileSync(pki.server2Cert, files.cert);
  copyFileSync(pki.server2Key, files.key);
  t.equal(await ask(open, 'refresh_certs\r\n'), 'OK\r\n');
  // every thread takes it: several handshakes land on several threads
  for (let i = 0; i < 6; i++) t.equal((await handshake(ms.port, trusting)).serial, pki.serials.server2, `handshake ${i}: the new certificate`);
  t.equal(await ask(open, 'get k\r\n', 'END\r\n'), 'VALUE k 0 1\r\nv\r\nEND\r\n', 'the open connection goes on');
  writeFileSync(files.cert, 'not a certificate\n');
  t.match(await ask(open, 'refresh_certs\r\n'), new RegExp(`^Error loading the certificate chain: ${files.cert.replace(/[.]/g, '\\.')} : .+\\r\\n$`), 'a bad file: memcached\'s error');
  t.equal((await handshake(ms.port, trusting)).serial, pki.serials.server2, 'and the old certificate stays');
  copyFileSync(pki.serverCert, files.cert);
  copyFileSync(pki.serverKey, files.key);
  process.kill(ms.pid, 'SIGHUP');
  await new Promise((r) => setTimeout(r, 300));
  t.equal((await handshake(ms.port, trusting)).serial, pki.serials.server, 'SIGHUP reloads too');
  t.equal(Number((await stats(open)).get('time_since_server_cert_refresh')) <= 2, true, 'time_since_server_cert_refresh restarts');
  await open.close();

  const plain = await startDaemon([]);
  t.teardown(() => plain.stop());
  const p = await rawClient(plain.port);
  t.equal(await ask(p, 'refresh_certs\r\n'), 'Error TLS not enabled\r\n', 'without -Z, as memcached');
});

t.test('minimum versions; plaintext and garbage on a TLS port harm nobody', async (t) => {
  const files = liveCertFiles('versions');
  const ms = await startDaemon(['-t', '2', ...tlsArgs(files, ['ssl_min_version=3'])], { tls: trusting });
  t.teardown(() => ms.stop());
  t.ok((await handshake(ms.port, { ...trusting, maxVersion: 'TLSv1.2' })).error, 'TLS 1.2 refused under ssl_min_version=3');
  t.ok((await handshake(ms.port, { ...trusting, minVersion: 'TLSv1.3' })).serial, 'TLS 1.3 accepted');
  const d = await startDaemon(['-t', '2', ...tlsArgs(files)], { tls: trusting });
  t.teardown(() => d.stop());
  t.ok((await handshake(d.port, { ...trusting, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' })).error, 'TLS 1.1 refused by default (tlsv1.2)');
  const bystander = await rawClient(d.port, 3000, trusting);
  t.equal(await ask(bystander, 'set keep 0 0 4\r\nsafe\r\n'), 'STORED\r\n');
  // plaintext and random bytes where a handshake should be
  for (const junk of [Buffer.from('get keep\r\n'), Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) % 256))]) {
    const raw = net.connect(d.port, '127.0.0.1');
    raw.on('error', () => {});
    raw.write(junk);
    const answer = await new Promise<string>((resolve) => {
      let got = '';
      raw.on('data', (b) => (got += b.toString('latin1')));
      raw.on('close', () => resolve(got));
      setTimeout(() => {
        raw.destroy();
        resolve(`${got}(still open)`);
      }, 3000);
    });
    t.notMatch(answer, /VALUE|END/, 'no plaintext answer');
  }
  // a TLS connection that then sends a broken record
  const tcp = net.connect(d.port, '127.0.0.1');
  tcp.on('error', () => {});
  const secure = tls.connect({ socket: tcp, servername: 'localhost', ...trusting });
  secure.on('error', () => {});
  await new Promise((r) => secure.once('secureConnect', r));
  // a reply first: the server's side of the handshake is over
  secure.write('version\r\n');
  await new Promise((r) => secure.once('data', r));
  tcp.write(Buffer.from([0x17, 0x03, 0x03, 0x00, 0x20, ...new Array(32).fill(0x41)]));
  await new Promise((r) => setTimeout(r, 300));
  secure.destroy();
  t.equal(await ask(bystander, 'get keep\r\n', 'END\r\n'), 'VALUE keep 0 4\r\nsafe\r\nEND\r\n', 'the other connection and its data are fine');
  const s = await stats(bystander);
  t.ok(Number(s.get('ssl_handshake_errors')) >= 3, `ssl_handshake_errors ${s.get('ssl_handshake_errors')}`);
  t.ok(Number(s.get('ssl_proto_errors')) >= 1, `ssl_proto_errors ${s.get('ssl_proto_errors')}`);
  await bystander.close();
});

t.test('a TLS client that does not read is paused; others are served; every reply arrives once it reads', async (t) => {
  const files = liveCertFiles('slow');
  const ms = await startDaemon(['-t', '2', ...tlsArgs(files)], { tls: trusting });
  t.teardown(() => ms.stop());
  const size = 512 * 1024;
  const setter = await rawClient(ms.port, 3000, trusting);
  t.equal(await ask(setter, `set big 0 0 ${size}\r\n${'z'.repeat(size)}\r\n`), 'STORED\r\n');
  const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${ms.pid}/status`, 'utf8'))?.[1]);
  const before = rssKb();
  const slow = tls.connect({ port: ms.port, host: '127.0.0.1', servername: 'localhost', ...trusting });
  await new Promise((r) => slow.once('secureConnect', r));
  slow.pause();
  slow.write('get big\r\n'.repeat(300));
  await new Promise((r) => setTimeout(r, 800));
  t.equal(await ask(setter, 'get nope\r\n', 'END\r\n'), 'END\r\n', 'another client is served meanwhile');
  const grown = rssKb() - before;
  t.ok(grown < 64 * 1024, `server RSS grew ${Math.round(grown / 1024)} MB for 150 MB of unread TLS replies`);
  const expected = 300 * (size + 'VALUE big 0 524288\r\n'.length + 2 + 5);
  let received = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${received} of ${expected} bytes`)), 30_000);
    slow.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= expected) {
        clearTimeout(timer);
        resolve();
      }
    });
    slow.resume();
  });
  t.equal(received, expected, 'every reply, in full');
  slow.destroy();
  await setter.close();
});

t.test('-l notls: a plaintext listener beside the TLS one, as memcached 1.6 allows', async (t) => {
  const files = liveCertFiles('notls');
  const plainPort = await freePort();
  const ms = await startDaemon(['-t', '2', '-l', `notls:127.0.0.1:${plainPort}`, ...tlsArgs(files)], { tls: trusting });
  t.teardown(() => ms.stop());
  const secure = await rawClient(ms.port, 3000, trusting);
  t.equal(await ask(secure, 'set both 0 0 2\r\nok\r\n'), 'STORED\r\n', 'the -p port speaks TLS');
  const plain = await rawClient(plainPort);
  t.equal(await ask(plain, 'get both\r\n', 'END\r\n'), 'VALUE both 0 2\r\nok\r\nEND\r\n', 'the notls: port plain TCP, the same cache');
  t.match((await stats(plain, 'settings')).get('inter'), new RegExp(`^127\\.0\\.0\\.1,notls:127\\.0\\.0\\.1:${plainPort}$`), 'stats settings inter: every -l, joined');
  t.ok((await handshake(plainPort, trusting)).error, 'no TLS on the notls: port');
  await secure.close();
  await plain.close();
});

t.test('SASL (-S) and the text login (-Y) inside TLS; /metrics TLS series', async (t) => {
  const files = liveCertFiles('auth');
  const pwdb = path.join(dir, 'users');
  writeFileSync(pwdb, 'alice:s3cret\n');
  const metricsPort = await freePort();
  const sasl = await startDaemon(['-t', '2', '-S', '--sasl-pwdb', pwdb, '--metrics-port', String(metricsPort), ...tlsArgs(files)], { tls: trusting });
  t.teardown(() => sasl.stop());
  const c = await rawClient(sasl.port, 3000, trusting);
  c.send(request({ opcode: 0x21, key: 'PLAIN', value: Buffer.from('\0alice\0s3cret') }));
  t.equal((await readResponses(c, 1))[0]!.status, 0, 'SASL PLAIN over TLS');
  c.send(Buffer.concat([request({ opcode: Op.Set, key: 'k', extras: storeExtras(0, 0), value: 'v' }), request({ opcode: Op.Get, key: 'k' })]));
  t.equal((await readResponses(c, 2))[1]!.value.toString(), 'v');
  await c.close();
  const metrics = (await httpGet(`http://127.0.0.1:${metricsPort}/metrics`)).body;
  t.match(metrics, /memshard_tls_handshake_duration_seconds_count \d+/, 'handshake histogram');
  const expiry = Number(/memshard_tls_certificate_expiry_timestamp_seconds (\d+)/.exec(metrics)?.[1]);
  t.ok(expiry > Date.now() / 1000 && expiry < Date.now() / 1000 + 4 * 86400, `certificate expiry ${expiry}, within the test certificate's days`);

  const authFile = path.join(dir, 'ascii');
  writeFileSync(authFile, 'bob:hunter2\n');
  const ascii = await startDaemon(['-t', '2', '-Y', authFile, ...tlsArgs(files)], { tls: trusting });
  t.teardown(() => ascii.stop());
  const a = await rawClient(ascii.port, 3000, trusting);
  t.equal(await ask(a, 'get k\r\n'), 'CLIENT_ERROR unauthenticated\r\n');
  t.equal(await ask(a, 'set x 0 0 11\r\nbob hunter2\r\n'), 'STORED\r\n', 'the text login over TLS');
  t.equal(await ask(a, 'get k\r\n'), 'END\r\n');
  await a.close();
});
