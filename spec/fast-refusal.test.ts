import net from 'node:net';
import t from 'tap';
import { refuseEarly } from '../lib/threads/fast-refusal.js';

const LINE = 'ERROR Too many open connections\r\n';

/**
 * Connects, sends `get k`, and gives what the server sent until it closed (or 2 s passed). A close
 * with our request unread is a reset, as memcached's: what came before it counts.
 */
function visit(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => s.write('get k\r\n'));
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve(`${got}(still open)`);
    }, 2000);
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}

t.test('while full, a connection gets the line and is closed before Node builds a Socket for it', async (t) => {
  let full = true;
  let refused = 0;
  const served: net.Socket[] = [];
  const server = net.createServer((socket) => {
    served.push(socket);
    socket.resume(); // reads on to the client's close
    socket.end('served\r\n');
  });
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1' }, resolve));
  const port = (server.address() as net.AddressInfo).port;
  t.equal(refuseEarly(server, () => full, LINE, () => refused++), true, 'this Node lets the handle refuse');
  const replies = await Promise.all(Array.from({ length: 50 }, () => visit(port)));
  t.same(new Set(replies), new Set([LINE]), 'each of 50 got the line, then the close');
  t.equal(refused, 50, 'each counted');
  t.equal(served.length, 0, "none reached the 'connection' listener");
  full = false;
  t.equal(await visit(port), 'served\r\n', 'below the limit a connection is served as usual');
  t.equal(served.length, 1);
  t.equal(refused, 50);
  await new Promise((resolve) => server.close(resolve));
});

t.test('a server that is not listening is left alone', async (t) => {
  const server = net.createServer();
  t.equal(refuseEarly(server, () => true, LINE, () => {}), false);
});
