// memshard health check for containers (Docker HEALTHCHECK, the Kubernetes readiness probe):
// send `version` to 127.0.0.1:<port> and exit 0 only on a `VERSION ...` line, else 1 (within 2 s).
//   node healthcheck.mjs [port]        (default: $MEMSHARD_PORT, else 11211)
// A -Y server answers `CLIENT_ERROR unauthenticated` before a login: alive too. A binary-only (-S)
// or TLS-only (-Z) server needs another check (a tcpSocket probe, or openssl s_client).
import net from 'node:net';

const port = Number(process.argv[2] ?? process.env.MEMSHARD_PORT ?? 11211);
const sock = net.connect({ host: '127.0.0.1', port });
let reply = '';
const done = (ok, why) => {
  if (!ok) process.stderr.write(`memshard health check on port ${port}: ${why}\n`);
  sock.destroy();
  process.exit(ok ? 0 : 1);
};
sock.setTimeout(2000, () => done(false, 'no reply within 2 s'));
sock.on('connect', () => sock.write('version\r\n'));
sock.on('data', (d) => {
  reply += d.toString('latin1');
  const end = reply.indexOf('\r\n');
  if (end < 0) return;
  const line = reply.slice(0, end);
  done(line.startsWith('VERSION ') || line === 'CLIENT_ERROR unauthenticated', `unexpected reply ${JSON.stringify(line)}`);
});
sock.on('error', (e) => done(false, e.message));
sock.on('close', () => done(false, 'connection closed before a reply'));
