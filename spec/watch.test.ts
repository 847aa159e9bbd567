/**
 * `watch`: the log lines memcached's watchers read (fetchers, mutations, connevents...), compared
 * with memcached 1.6.18 line by line over generated command sequences; every thread's events reach
 * a watcher; a watcher that does not read loses lines (log_watcher_skipped), not the server.
 */
import net from 'node:net';
import t from 'tap';
import { seededRandom } from '../scripts/random.js';
import { rawClient, startDaemon, startMemcached, type Daemon, type RawClient } from './helpers/daemon.js';

/** What must differ between two servers: the clock, event ids, descriptors and client ports. */
/**
 * The same line, but for a remaining TTL one second apart: the two servers run the sequence
 * moments apart, so a clock second can fall between an item's store and its relog on one of them.
 */
function sameLine(a: string, b: string | undefined): boolean {
  if (b === undefined) return false;
  const ttl = /ttl=(-?\d+)/;
  const [ta, tb] = [ttl.exec(a)?.[1], ttl.exec(b)?.[1]];
  if (ta === undefined || tb === undefined) return a === b;
  return a.replace(ttl, 'ttl=') === b.replace(ttl, 'ttl=') && Math.abs(Number(ta) - Number(tb)) <= 1;
}

function normalise(lines: string): string[] {
  return lines
    .split('\n')
    .filter((l) => l.startsWith('ts='))
    .map((l) => l.replace(/^ts=\d+\.\d+ gid=\d+ /, '').replace(/ cfd=-?\d+/, '').replace(/ rport=\d+/, ''));
}


/** A seeded sequence of text commands over a few keys, each answered with one line or a value block. */
function commands(seed: number, count: number): string[] {
  const rnd = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  // keys of their own per seed: a key left by an earlier sequence would be flushed or not
  // depending on the second it was stored in (memcached unlinks only the current second's items)
  const keys = ['a', 'b', 'c', 'counter', 'k%20x', 'long_key_'.repeat(5)].map((k) => `${k}${seed}`);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const key = pick(keys);
    const value = pick(['1', '42', 'hello', 'x'.repeat(Math.floor(rnd() * 3000))]);
    const exptime = pick([0, 0, 100, 3000]);
    switch (pick(['set', 'add', 'replace', 'append', 'prepend', 'get', 'gets', 'gat', 'touch', 'delete', 'incr', 'decr', 'multiget', 'mg', 'ms', 'md'])) {
      case 'set':
      case 'add':
      case 'replace':
      case 'append':
      case 'prepend': {
        const cmd = pick(['set', 'add', 'replace', 'append', 'prepend']);
        out.push(`${cmd} ${key} ${Math.floor(rnd() * 5)} ${exptime} ${value.length}\r\n${value}`);
        break;
      }
      case 'get':
      case 'gets':
        out.push(`${pick(['get', 'gets'])} ${key}`);
        break;
      case 'multiget':
        out.push(`get ${pick(keys)} ${pick(keys)} ${pick(keys)}`);
        break;
      case 'gat':
        out.push(`gat ${exptime} ${key}`);
        break;
      case 'touch':
        out.push(`touch ${key} ${exptime}`);
        break;
      case 'delete':
        out.push(`delete ${key}`);
        break;
      case 'incr':
      case 'decr':
        out.push(`${pick(['incr', 'decr'])} ${key} ${Math.floor(rnd() * 100)}`);
        break;
      case 'mg':
        out.push(`mg ${key} ${pick(['v', 's t', 'v c f'])}`);
        break;
      case 'ms':
        out.push(`ms ${key} ${value.length} T${exptime}\r\n${value}`);
        break;
      case 'md':
        out.push(`md ${key}`);
        break;
    }
  }
  return out;
}

async function watcher(port: number, kinds: string): Promise<{ lines: () => string; client: RawClient }> {
  const client = await rawClient(port);
  client.send(`watch ${kinds}\r\n`);
  const ok = await client.readUntil('\r\n', 3000);
  if (ok !== 'OK\r\n') throw new Error(`watch answered ${JSON.stringify(ok)}`);
  return { lines: () => client.pending().toString('latin1'), client };
}

/** Send each command, waiting for its reply (so the two servers see the same order). */
async function run(c: RawClient, cmds: string[]): Promise<void> {
  for (const cmd of cmds) {
    c.send(`${cmd}\r\nmn\r\n`);
    await c.readUntil('MN\r\n', 3000);
  }
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('watch fetchers mutations connevents: the lines memcached 1.6.18 writes', async (t) => {
  const servers: Daemon[] = [await startMemcached(), await startDaemon(['-t', '4'])];
  t.teardown(() => Promise.all(servers.map((s) => s.stop())));
  for (const seed of [1, 2, 3]) {
    const seen: string[][] = [];
    for (const server of servers) {
      const w = await watcher(server.port, 'fetchers mutations connevents');
      const c = await rawClient(server.port);
      await run(c, commands(seed, 300));
      c.socket.end();
      await settle(300);
      seen.push(normalise(w.lines()));
      w.client.socket.destroy();
    }
    const [expected, got] = seen;
    t.ok(expected!.length > 300, `seed ${seed}: memcached wrote ${expected!.length} lines`);
    const firstDiff = expected!.findIndex((line, i) => !sameLine(line, got![i]));
    t.equal(firstDiff, -1, `seed ${seed}: first different line ${firstDiff}: ${expected![firstDiff]} vs ${got![firstDiff]}`);
    t.equal(got!.length, expected!.length, `seed ${seed}: as many lines`);
  }
});

t.test('watch: errors, -W, deletions (1.6.45), every thread reaches the watcher', async (t) => {
  const ms = await startDaemon(['-t', '4']);
  t.teardown(() => ms.stop());
  const c = await rawClient(ms.port);
  c.send('watch bogus\r\n');
  t.equal(await c.readUntil('\r\n'), 'ERROR\r\n');
  c.send('mn\r\nwatch\r\n');
  t.equal(await c.readUntil('MN\r\nERROR cannot pipeline other commands before watch\r\n'), 'MN\r\nERROR cannot pipeline other commands before watch\r\n');
  const w = await watcher(ms.port, 'deletions mutations');
  t.equal((await (async () => {
    c.send('stats\r\n');
    return c.readUntil('END\r\n');
  })()).match(/STAT log_watchers (\d+)/)?.[1], '1', 'stats log_watchers');
  // many connections: the kernel spreads them over the 4 threads
  const clients = await Promise.all(Array.from({ length: 16 }, () => rawClient(ms.port)));
  await Promise.all(clients.map(async (cl, i) => {
    for (let j = 0; j < 20; j++) {
      cl.send(`set k${i}_${j} 0 0 1\r\nx\r\ndelete k${i}_${j}\r\n`);
      await cl.readUntil('DELETED\r\n');
    }
  }));
  await settle(300);
  const lines = normalise(w.lines());
  t.equal(lines.filter((l) => l.startsWith('type=item_store')).length, 320, 'every set of every thread');
  t.equal(lines.filter((l) => l.startsWith('type=deleted')).length, 320, 'every delete');
  t.match(lines.find((l) => l.startsWith('type=deleted')), /^type=deleted key=k\d+_\d+ cmd=delete clsid=1 size=1$/);
  t.notOk(lines.some((l) => l.startsWith('type=item_get')), 'no fetchers asked for, none sent');
  c.send('stats\r\n');
  t.match(await c.readUntil('END\r\n'), /STAT log_watcher_sent (\d{3,})/);
  await Promise.all(clients.map((cl) => cl.socket.end()));

  const nw = await startDaemon(['-W']);
  t.teardown(() => nw.stop());
  const d = await rawClient(nw.port);
  d.send('watch\r\n');
  t.equal(await d.readUntil('\r\n'), 'CLIENT_ERROR watch commands not allowed\r\n', '-W');
});

t.test('a watcher that does not read loses lines, the server and other clients do not', async (t) => {
  const ms = await startDaemon(['-t', '2', '-o', 'watcher_logbuf_size=64']);
  t.teardown(() => ms.stop());
  // a raw socket that sends watch and never reads
  const lazy = net.connect(ms.port, '127.0.0.1');
  await new Promise((r) => lazy.once('connect', r));
  lazy.pause();
  lazy.write('watch fetchers\r\n');
  const c = await rawClient(ms.port);
  c.send('set k 0 0 1\r\nx\r\n');
  await c.readUntil('STORED\r\n');
  for (let round = 0; round < 100; round++) {
    c.send(`${'get k\r\n'.repeat(2000)}mn\r\n`);
    await c.readUntil('MN\r\n', 10_000);
  }
  await settle(200);
  c.send('stats\r\n');
  const stats = await c.readUntil('END\r\n');
  t.ok(Number(/STAT log_watcher_skipped (\d+)/.exec(stats)?.[1]) > 0, 'lines skipped for the watcher that does not read');
  t.match(stats, /STAT log_watchers 1\r\n/);
  lazy.destroy();
  await settle(200);
  c.send('stats\r\n');
  t.match(await c.readUntil('END\r\n'), /STAT log_watchers 0\r\n/, 'a closed watcher is forgotten');
});
