/**
 * The item dumps operators use: `lru_crawler metadump` (memcached-tool dump and keys) and
 * `stats cachedump` (libmemcached's memcdump), compared with memcached 1.6.18 where it answers
 * the same, and run through the real tools.
 */
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { rawClient, startDaemon, startMemcached, type Daemon, type RawClient } from './helpers/daemon.js';

const MEMCACHED_TOOL = '/usr/share/memcached/scripts/memcached-tool';

/** Keys needing every kind of encoding, with and without expiry, fetched or not. */
const ITEMS: Array<{ key: string; value: string; exptime: number; fetch: boolean }> = [
  { key: 'plain', value: 'v', exptime: 0, fetch: true },
  { key: 'a%b', value: 'percent', exptime: 0, fetch: false },
  { key: 'odd\x01\x7f\xff', value: 'bytes', exptime: 300, fetch: true },
  { key: 'dots-and_tildes.~', value: 'x'.repeat(500), exptime: 1000, fetch: false },
  { key: 'big', value: 'y'.repeat(20_000), exptime: 0, fetch: true },
];

async function fill(c: RawClient): Promise<void> {
  for (const it of ITEMS) {
    c.send(`set ${it.key} 3 ${it.exptime} ${it.value.length}\r\n${it.value}\r\n`);
    t.equal(await c.readUntil('\r\n'), 'STORED\r\n');
    if (it.fetch) {
      c.send(`get ${it.key}\r\n`);
      await c.readUntil('END\r\n', 3000);
    }
  }
}

/** A dump (read to its END) or, for a refused one, its one line. */
async function ask(c: RawClient, line: string, dump = true): Promise<string> {
  c.send(`${line}\r\n`);
  // memcached answers nothing more on a connection that sent a metadump until the dump is out
  return c.readUntil(dump ? 'END\r\n' : '\r\n', 5000);
}

/** metadump lines by key, without what must differ (cas, last access); exp apart. */
function metadumpByKey(reply: string): Map<string, { exp: number; rest: string }> {
  const out = new Map<string, { exp: number; rest: string }>();
  for (const line of reply.split('\n')) {
    const m = /^key=(\S+) exp=(-?\d+) la=\d+ cas=\d+ (fetch=\S+ cls=\d+ size=\d+)$/.exec(line);
    if (m !== null) out.set(m[1]!, { exp: Number(m[2]), rest: m[3]! });
  }
  return out;
}

/** The two dumps list the same items alike, their expiry times within a few seconds (the two servers stored them moments apart). */
function sameDump(a: Map<string, { exp: number; rest: string }>, b: Map<string, { exp: number; rest: string }>): string[] {
  const problems: string[] = [];
  for (const [key, x] of a) {
    const y = b.get(key);
    if (y === undefined) problems.push(`${key} missing`);
    else if (y.rest !== x.rest || (x.exp === -1) !== (y.exp === -1) || Math.abs(x.exp - y.exp) > 5) problems.push(`${key}: exp=${x.exp} ${x.rest} vs exp=${y.exp} ${y.rest}`);
  }
  for (const key of b.keys()) if (!a.has(key)) problems.push(`${key} extra`);
  return problems;
}

t.test('lru_crawler metadump and stats cachedump answer as memcached does', async (t) => {
  const servers: Daemon[] = [await startMemcached(), await startDaemon(['-t', '4'])];
  t.teardown(() => Promise.all(servers.map((s) => s.stop())));
  const [mc, ms] = await Promise.all(servers.map((s) => rawClient(s.port)));
  await fill(mc!);
  await fill(ms!);
  const dumps = [metadumpByKey(await ask(mc!, 'lru_crawler metadump all')), metadumpByKey(await ask(ms!, 'lru_crawler metadump all'))];
  t.equal(dumps[1]!.size, ITEMS.length, 'every item listed once');
  t.same(sameDump(dumps[0]!, dumps[1]!), [], 'the same keys (encoded alike), expiry, fetch, class and size');
  t.ok((await ask(ms!, 'lru_crawler metadump all')).endsWith('END\r\n'));
  for (const line of ['lru_crawler metadump x', 'lru_crawler metadump', 'lru_crawler bogus', 'lru_crawler', 'stats cachedump', 'stats cachedump 1', 'stats cachedump x 0', 'stats cachedump 1 x', 'stats cachedump -1 0', 'stats cachedump 64 0', 'stats cachedump 99 0', 'lru_crawler metadump 1,2,200']) {
    t.equal(await ask(ms!, line, false), await ask(mc!, line, false), line);
  }
  // memcached 1.6 lists only an LRU's cold segment here; memshard lists the class's live items
  const classes = [...(await ask(ms!, 'stats items')).matchAll(/STAT items:(\d+):number (\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  let listed = 0;
  for (const [cls, count] of classes) {
    const dump = await ask(ms!, `stats cachedump ${cls} 0`);
    t.equal(dump.split('\r\n').filter((l) => l.startsWith('ITEM ')).length, count, `class ${cls}: its ${count} items`);
    listed += count!;
    t.equal((await ask(ms!, `stats cachedump ${cls} 1`)).split('\r\n').filter((l) => l.startsWith('ITEM ')).length, 1, `class ${cls}: limit 1`);
  }
  t.equal(listed, ITEMS.length);
  t.match(await ask(ms!, 'stats cachedump 1 0'), /^(ITEM \S+ \[\d+ b; \d+ s\]\r\n)*END\r\n$/);
  await Promise.all([mc!.close(), ms!.close()]);
});

t.test('-X turns the dumps off, as in memcached', async (t) => {
  const servers: Daemon[] = [await startMemcached(['-X']), await startDaemon(['-X'])];
  t.teardown(() => Promise.all(servers.map((s) => s.stop())));
  const [mc, ms] = await Promise.all(servers.map((s) => rawClient(s.port)));
  for (const line of ['lru_crawler metadump all', 'stats cachedump 1 0']) t.equal(await ask(ms!, line, false), await ask(mc!, line, false), line);
  await Promise.all([mc!.close(), ms!.close()]);
});

t.test("memcached-tool's dump and keys, and memcdump, read every item", async (t) => {
  const d = await startDaemon(['-t', '4']);
  t.teardown(() => d.stop());
  const c = await rawClient(d.port);
  const keys = Array.from({ length: 300 }, (_, i) => `tool:${i}`);
  c.send(keys.map((k) => `set ${k} 7 0 ${k.length}\r\n${k}\r\n`).join(''));
  await c.readUntil((b) => b.toString().split('STORED\r\n').length - 1 === keys.length);
  await c.close();
  const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'latin1', timeout: 20_000 });
  const keysOut = run('perl', [MEMCACHED_TOOL, `127.0.0.1:${d.port}`, 'keys']);
  t.equal(keysOut.status, 0, 'memcached-tool keys ends');
  const decoded = keysOut.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => /^key=(\S+) /.exec(l)?.[1]?.replace(/%([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))));
  t.same(decoded.sort(), [...keys].sort(), 'memcached-tool keys lists every key');
  const dumpOut = run('perl', [MEMCACHED_TOOL, `127.0.0.1:${d.port}`, 'dump']);
  t.equal(dumpOut.status, 0, 'memcached-tool dump ends');
  const adds = [...dumpOut.stdout.matchAll(/add (\S+) 7 0 (\d+)\r\n(\S+)\r\n/g)];
  t.equal(adds.length, keys.length, 'an add command per item');
  t.ok(adds.every((m) => m[1] === m[3] && Number(m[2]) === m[1]!.length), 'with its flags and value');
  const memcdump = run('memcdump', [`--servers=127.0.0.1:${d.port}`]);
  t.equal(memcdump.status, 0, 'memcdump ends');
  t.same(memcdump.stdout.split('\n').filter((l) => l !== '').sort(), [...keys].sort(), 'memcdump lists every key');
});
