/**
 * Plain connections of a thread read into one shared buffer (lib/threads/socket-reads.ts), which
 * the next read of any of them overwrites. What a connection keeps between reads (a request cut
 * mid-line or mid-value, input waiting for its turn, a multi-get's keys not answered yet) must be
 * its own copy. With -t 1 every connection shares the one thread's buffer: requests cut at
 * generated places and interleaved over connections must get memcached's replies.
 */
import net from 'node:net';
import t from 'tap';
import { seededRandom } from '../scripts/random.js';
import { rawClient, startDaemon, startMemcached, type Daemon } from './helpers/daemon.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A value of `size` bytes that holds CRLFs and whole commands, so a desync would show. */
function valueOf(rnd: () => number, size: number): string {
  const parts = ['delete a0\r\n', 'get a1\r\n', '\r\n', 'END\r\n', 'x', 'yz', '0123456789'];
  let v = '';
  while (v.length < size) v += parts[Math.floor(rnd() * parts.length)]!;
  return v.slice(0, size);
}

/** One connection's requests: storage, appends, counters, single and multi gets, meta; keys of its own. */
function requests(rnd: () => number, conn: number, count: number): string {
  const key = () => `c${conn}k${Math.floor(rnd() * 12)}`;
  const size = () => {
    const r = rnd();
    return r < 0.4 ? Math.floor(rnd() * 20) : r < 0.8 ? 100 + Math.floor(rnd() * 2000) : 30_000 + Math.floor(rnd() * 90_000);
  };
  let out = '';
  for (let i = 0; i < count; i++) {
    const r = rnd();
    if (r < 0.3) {
      const v = valueOf(rnd, size());
      out += `set ${key()} ${Math.floor(rnd() * 100)} 0 ${v.length}\r\n${v}\r\n`;
    } else if (r < 0.4) {
      const v = valueOf(rnd, Math.floor(rnd() * 300));
      out += `${rnd() < 0.5 ? 'append' : 'prepend'} ${key()} 0 0 ${v.length}\r\n${v}\r\n`;
    } else if (r < 0.5) {
      const k = `c${conn}n${Math.floor(rnd() * 3)}`;
      out += rnd() < 0.3 ? `set ${k} 0 0 1\r\n${Math.floor(rnd() * 10)}\r\n` : `incr ${k} ${Math.floor(rnd() * 1000)}\r\n`;
    } else if (r < 0.65) {
      out += `get ${Array.from({ length: 1 + Math.floor(rnd() * 30) }, key).join(' ')}\r\n`;
    } else if (r < 0.75) {
      out += `delete ${key()}\r\n`;
    } else if (r < 0.85) {
      const v = valueOf(rnd, size());
      out += `ms ${key()} ${v.length} F${Math.floor(rnd() * 9)} T0\r\n${v}\r\n`;
    } else {
      out += `mg ${key()} v k f s\r\n`;
    }
  }
  return out + 'mn\r\n';
}

/** Cut each stream at generated places and send the pieces interleaved, a pause between each. */
async function run(port: number, streams: string[], seed: number): Promise<string[]> {
  const rnd = seededRandom(seed);
  const sockets = await Promise.all(
    streams.map(
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(s));
          s.setNoDelay(true);
          s.once('error', reject);
        }),
    ),
  );
  const replies = streams.map(() => '');
  const done = sockets.map(
    (s, i) =>
      new Promise<void>((resolve) => {
        s.on('data', (d: Buffer) => {
          replies[i] += d.toString('latin1');
          if (replies[i]!.endsWith('MN\r\n')) resolve();
        });
        s.on('close', () => resolve());
      }),
  );
  const offsets = streams.map(() => 0);
  for (;;) {
    const open = streams.map((s, i) => i).filter((i) => offsets[i]! < streams[i]!.length);
    if (open.length === 0) break;
    const i = open[Math.floor(rnd() * open.length)]!;
    // mostly short pieces (a line or a value cut anywhere), now and then a long one
    const len = rnd() < 0.8 ? 1 + Math.floor(rnd() * 200) : 1 + Math.floor(rnd() * 70_000);
    sockets[i]!.write(Buffer.from(streams[i]!.slice(offsets[i], offsets[i]! + len), 'latin1'));
    offsets[i]! += len;
    await sleep(1);
  }
  await Promise.race([Promise.all(done), sleep(15_000)]);
  for (const s of sockets) s.destroy();
  return replies;
}

t.test('requests cut anywhere and interleaved over connections of one thread: memcached replies', async (t) => {
  const servers: Daemon[] = [await startMemcached(['-t', '1']), await startDaemon(['-t', '1'])];
  t.teardown(() => Promise.all(servers.map((s) => s.stop())));
  for (let seed = 1; seed <= 6; seed++) {
    const rnd = seededRandom(seed * 7919);
    const streams = [0, 1, 2].map((c) => requests(rnd, c, 120));
    const [expected, got] = [await run(servers[0]!.port, streams, seed), await run(servers[1]!.port, streams, seed)];
    for (let c = 0; c < streams.length; c++) {
      t.ok(expected[c]!.endsWith('MN\r\n'), `seed ${seed} connection ${c}: memcached answered everything`);
      // compared whole, then reported at the first difference so a failure is readable
      const at = [...expected[c]!].findIndex((ch, i) => got[c]![i] !== ch);
      t.equal(got[c]!.length === expected[c]!.length && at < 0, true, `seed ${seed} connection ${c}: the same ${expected[c]!.length} reply bytes` + (at < 0 ? '' : ` (first difference at ${at}: ${JSON.stringify(got[c]!.slice(at, at + 80))} vs ${JSON.stringify(expected[c]!.slice(at, at + 80))})`));
    }
  }
});

t.test("a multi-get paused for a client that does not read keeps its keys while other connections' reads reuse the buffer", async (t) => {
  const d = await startDaemon(['-t', '1', '-I', '2m']);
  t.teardown(() => d.stop());
  const setup = await rawClient(d.port);
  const MB = 1024 * 1024;
  // eight 1 MB values, each filled with its own letter
  for (let i = 0; i < 8; i++) {
    setup.send(`set big${i} 0 0 ${MB}\r\n${String.fromCharCode(97 + i).repeat(MB)}\r\n`);
    t.equal(await setup.readUntil('\r\n', 5000), 'STORED\r\n');
  }
  const order = Array.from({ length: 24 }, (_, i) => `big${(i * 5) % 8}`);
  const reader = net.connect({ port: d.port, host: '127.0.0.1' });
  await new Promise((r) => reader.once('connect', r));
  reader.pause(); // reads nothing yet: the server stops after its 4 MB mark with keys to go
  reader.write(`get ${order.join(' ')}\r\n`);
  await sleep(300);
  // another connection's requests, with keys of the same length, overwrite the shared buffer
  for (let i = 0; i < 50; i++) {
    setup.send(`set bug${i % 8} 0 0 4\r\nxxxx\r\nget bug${i % 8} big9 bog1\r\n`);
    await setup.readUntil('END\r\n', 2000);
  }
  const chunks: Buffer[] = [];
  let bytes = 0;
  const total = order.reduce((n, k) => n + `VALUE ${k} 0 ${MB}\r\n`.length + MB + 2, 0) + 'END\r\n'.length;
  await new Promise<void>((resolve) => {
    reader.on('data', (b: Buffer) => {
      chunks.push(b);
      bytes += b.length;
      if (bytes >= total) resolve();
    });
    reader.resume();
    setTimeout(resolve, 20_000);
  });
  reader.destroy();
  const reply = Buffer.concat(chunks).toString('latin1');
  t.equal(reply.length, total, 'the whole reply arrived');
  let pos = 0;
  const seen: string[] = [];
  let intact = true;
  for (;;) {
    const eol = reply.indexOf('\r\n', pos);
    const line = reply.slice(pos, eol);
    if (line !== `VALUE ${/^VALUE (\S+)/.exec(line)?.[1]} 0 ${MB}`) break;
    const key = line.split(' ')[1]!;
    seen.push(key);
    const value = reply.slice(eol + 2, eol + 2 + MB);
    if (value !== String.fromCharCode(97 + Number(key.slice(3))).repeat(MB)) intact = false;
    pos = eol + 2 + MB + 2;
  }
  t.same(seen, order, 'every key answered, in the order asked');
  t.ok(intact, "each value is its key's");
  t.equal(reply.slice(pos), 'END\r\n');
  await setup.close();
});
