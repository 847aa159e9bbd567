// A client that sends its requests and closes its side at once (a shell's `printf ... | nc`, a
// short-lived script) gets every reply before the server closes, as from memcached: memshard
// closes on the client's end only once nothing waits for its turn or its reply.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { makeTestPki, serverTlsArgs } from '../scripts/tls-certs.js';
import { startDaemon, startMemcached, type Daemon } from './helpers/daemon.js';

/** Sends `bytes`, half-closes, and gives everything received until the server closed (10 s at most). */
function sendAndEnd(port: number, bytes: Buffer, secure = false): Promise<{ reply: Buffer; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const at = { port, host: '127.0.0.1', allowHalfOpen: true };
    const s: net.Socket = secure ? tls.connect({ ...at, rejectUnauthorized: false }, () => s.end(bytes)) : net.connect(at, () => s.end(bytes));
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ reply: Buffer.concat(chunks), closedByServer: false });
    }, 10_000);
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', () => {});
    s.on('end', () => {
      clearTimeout(timer);
      s.destroy();
      resolve({ reply: Buffer.concat(chunks), closedByServer: true });
    });
  });
}

const requests = (n: number, valueBytes: number): Buffer => {
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    parts.push(`set hc${i} ${i} 0 ${valueBytes}\r\n${String(i % 10).repeat(valueBytes)}\r\n`, `get hc${i} hc${i + 1}\r\n`, `incr n${i % 7} 1\r\n`);
  }
  return Buffer.from(`${parts.join('')}version\r\n`);
};

t.test('requests then the client closes its side: every reply, then the server closes, as memcached', async (t) => {
  const servers: Daemon[] = [await startMemcached(['-t', '1']), await startDaemon(['-t', '2', '-R', '5'])];
  t.teardown(() => Promise.all(servers.map((s) => s.stop())));
  // -R 5: the requests outnumber a turn's, so some wait for a later turn when the end arrives
  for (const [n, size] of [[1, 10], [300, 100], [40, 200_000]] as const) {
    const input = requests(n, size);
    const [mc, ms] = await Promise.all(servers.map((s) => sendAndEnd(s.port, input)));
    t.ok(mc!.closedByServer && ms!.closedByServer, `${n} x ${size} B: both servers closed after the client's end`);
    const version = /VERSION [^\r]*\r\n$/;
    t.match(ms!.reply.toString('latin1'), version, 'the last request was answered');
    t.equal(ms!.reply.length, mc!.reply.length, `${n} x ${size} B: as many reply bytes (${mc!.reply.length})`);
    t.ok(ms!.reply.toString('latin1').replace(version, '') === mc!.reply.toString('latin1').replace(version, ''), 'the same replies but the version line');
  }
});

t.test('the same over TLS: every reply, then the close', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'memshard-half-close-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pki = makeTestPki(dir);
  const plain = await startDaemon(['-t', '2', '-R', '5']);
  t.teardown(() => plain.stop());
  const secure = await startDaemon(['-t', '2', '-R', '5', ...serverTlsArgs(pki.serverCert, pki.serverKey)], { tls: { rejectUnauthorized: false } });
  t.teardown(() => secure.stop());
  const input = requests(60, 100);
  const [a, b] = [await sendAndEnd(plain.port, input), await sendAndEnd(secure.port, input, true)];
  t.ok(b.closedByServer, 'the server closed after the client\'s end');
  t.match(b.reply.toString('latin1'), /VERSION [^\r]*\r\n$/, 'the last request was answered');
  t.equal(b.reply.toString('latin1'), a.reply.toString('latin1'), `the same ${a.reply.length} reply bytes as without TLS`);
});
