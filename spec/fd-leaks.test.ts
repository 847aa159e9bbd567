/**
 * No descriptor outlives its connection, whatever way the connection ends: closed after a reply,
 * reset by the peer, half-closed, refused over -c, cut in the middle of a value, paused with
 * unread output. Counted in /proc/<pid>/fd before and after a thousand connections of each kind.
 */
import { readdirSync } from 'node:fs';
import net from 'node:net';
import t from 'tap';
import { rawClient, startDaemon, type Daemon } from './helpers/daemon.js';

const CONNECTIONS = 1000;
/** Connections open at once while a kind is exercised (well under -c, except for 'refused'). */
const BATCH = 50;

const openFds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

/** How a test client ends its connection after connecting. */
type Ending = (socket: net.Socket) => Promise<void>;

const closed = (socket: net.Socket): Promise<void> =>
  new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    socket.once('close', () => resolve());
  });

const endings: Record<string, Ending> = {
  'closed after a reply': async (s) => {
    s.write('set k 0 0 1\r\nv\r\nget k\r\n');
    await new Promise((r) => s.once('data', r));
    s.end();
    await closed(s);
  },
  'reset by the peer': async (s) => {
    s.write('get k\r\n');
    s.resetAndDestroy();
  },
  'half-closed (FIN, then the client waits for the server)': async (s) => {
    s.on('data', () => {});
    s.end('get k\r\n');
    await closed(s);
  },
  'cut in the middle of a value': async (s) => {
    s.write('set k 0 0 100\r\npartial');
    s.destroy();
  },
  'unread output, then reset': async (s) => {
    s.pause();
    s.write('get big\r\n'.repeat(64));
    await new Promise((r) => setTimeout(r, 5));
    s.resetAndDestroy();
  },
};

async function connectAndEnd(port: number, ending: Ending): Promise<void> {
  const s = net.connect({ port, host: '127.0.0.1' });
  s.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('error', reject);
  });
  await ending(s);
}

/** Wait until the daemon holds at most `want` descriptors (connections close asynchronously). */
async function settle(d: Daemon, want: number): Promise<number> {
  let n = openFds(d.pid);
  for (let i = 0; i < 100 && n > want; i++) {
    await new Promise((r) => setTimeout(r, 50));
    n = openFds(d.pid);
  }
  return n;
}

t.test('connections that end in any way leave no descriptor behind', async (t) => {
  const d = await startDaemon(['-t', '2', '-c', '200']);
  t.teardown(() => d.stop());
  const admin = await rawClient(d.port);
  admin.send(`set big 0 0 ${64 * 1024}\r\n${'b'.repeat(64 * 1024)}\r\n`);
  t.equal(await admin.readUntil('\r\n'), 'STORED\r\n');
  const baseline = await settle(d, 0);
  for (const [kind, ending] of Object.entries(endings)) {
    for (let done = 0; done < CONNECTIONS; done += BATCH) {
      await Promise.all(Array.from({ length: BATCH }, () => connectAndEnd(d.port, ending)));
    }
    t.equal(await settle(d, baseline), baseline, `${kind}: ${CONNECTIONS} connections, descriptors back to ${baseline}`);
  }
  admin.send('get big\r\n');
  t.match(await admin.readUntil('END\r\n', 5000), /^VALUE big 0 65536\r\n/, 'the server still serves');
  await admin.close();
});

t.test('connections refused over -c leave no descriptor behind', async (t) => {
  const d = await startDaemon(['-t', '2', '-c', '10']);
  t.teardown(() => d.stop());
  const held = await Promise.all(Array.from({ length: 8 }, () => rawClient(d.port)));
  const baseline = await settle(d, 0);
  const refusedReplies = new Set<string>();
  for (let done = 0; done < CONNECTIONS; done += BATCH) {
    await Promise.all(
      Array.from({ length: BATCH }, () =>
        connectAndEnd(d.port, async (s) => {
          let got = '';
          s.on('data', (b: Buffer) => {
            got += b.toString('latin1');
            // one of the free slots: served, then this client leaves
            if (got === 'END\r\n') s.end();
          });
          // as real clients do: a request at once, before the server's answer
          s.write('get k\r\n');
          await closed(s);
          refusedReplies.add(got);
        }),
      ),
    );
  }
  t.ok(refusedReplies.has('ERROR Too many open connections\r\n'), "memcached's error for the refused ones");
  t.equal(await settle(d, baseline), baseline, `descriptors back to ${baseline} after ${CONNECTIONS} refused`);
  const c = held[0]!;
  c.send('version\r\n');
  t.match(await c.readUntil('\r\n'), /^VERSION /, 'the held connections are still served');
  await Promise.all(held.map((h) => h.close()));
});
