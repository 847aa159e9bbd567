/**
 * The memjs client (binary protocol only) through its whole API against memshard, one server and
 * two. Expected results are what the same calls give against memcached 1.6.18
 * (MEMJS_TARGET=memcached runs the suite against /usr/bin/memcached).
 */
import t, { type Test } from 'tap';
import memjs from 'memjs';
import { startDaemon, startMemcached, type Daemon } from './helpers/daemon.js';

const start = process.env['MEMJS_TARGET'] === 'memcached' ? startMemcached : startDaemon;
const ARGS = ['-t', '4', '-m', '64'];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let daemon: Daemon;
t.before(async () => {
  daemon = await start(ARGS);
});
t.teardown(async () => {
  await daemon?.stop();
});

/** memjs logs every error status through options.logger: keep it for diagnostics, not on stdout. */
function newClient(t: Test, servers: string): { client: memjs.Client; log: string[] } {
  const log: string[] = [];
  const client = memjs.Client.create(servers, {
    retries: 1,
    timeout: 3,
    conntimeout: 3,
    logger: { log: (...args: unknown[]) => void log.push(args.map(String).join(' ')) },
  });
  t.teardown(() => client.close());
  return { client, log };
}

function statsOf(client: memjs.Client, servers: number): Promise<Map<string, Record<string, string>>> {
  return new Promise((resolve, reject) => {
    const out = new Map<string, Record<string, string>>();
    const timer = setTimeout(() => reject(new Error(`stats: ${out.size}/${servers} servers answered in 5 s`)), 5000);
    client.stats((err, server, stats) => {
      if (err || stats === null) {
        clearTimeout(timer);
        reject(err ?? new Error(`stats from ${server}: null`));
        return;
      }
      out.set(server, stats);
      if (out.size === servers) {
        clearTimeout(timer);
        resolve(out);
      }
    });
  });
}

const text = (b: Buffer | null) => (b === null ? null : b.toString('latin1'));

t.test('set, get, add, replace, delete', async (t) => {
  const { client } = newClient(t, `127.0.0.1:${daemon.port}`);
  t.equal(await client.set('mj:a', 'hello'), true, 'set');
  const got = await client.get('mj:a');
  t.equal(text(got.value), 'hello', 'get value');
  t.same(got.flags, Buffer.alloc(4), 'get flags: memjs stores flags 0, returned as the 4-byte extras');
  t.same(await client.get('mj:none'), { value: null, flags: null }, 'get miss: nulls, no error');

  t.equal(await client.add('mj:a', 'x'), false, 'add on an existing key -> false');
  t.equal(await client.add('mj:b', 'bee'), true, 'add on a new key -> true');
  t.equal(text((await client.get('mj:b')).value), 'bee');
  t.equal(await client.replace('mj:none', 'x'), false, 'replace on a missing key -> false');
  t.equal(await client.replace('mj:a', 'world'), true, 'replace on an existing key');
  t.equal(text((await client.get('mj:a')).value), 'world');
  t.equal(await client.delete('mj:a'), true, 'delete hit');
  t.equal(await client.delete('mj:a'), false, 'delete miss');
  t.equal((await client.get('mj:a')).value, null, 'gone');
});

t.test('increment and decrement, with initial values', async (t) => {
  const { client, log } = newClient(t, `127.0.0.1:${daemon.port}`);
  // (memjs 1.3.2's decrement throws without an options object: always pass one)
  t.same(await client.increment('mj:n', 5, { initial: 10 }), { success: true, value: 10 }, 'miss: seeded with the initial value');
  t.same(await client.increment('mj:n', 5, { initial: 10 }), { success: true, value: 15 }, 'hit: +5');
  t.same(await client.decrement('mj:n', 3, {}), { success: true, value: 12 }, 'decrement');
  t.same(await client.decrement('mj:n', 100, {}), { success: true, value: 0 }, 'decrement stops at 0');
  t.same(await client.decrement('mj:d', 1, { initial: 7 }), { success: true, value: 7 }, 'decrement miss: seeded');
  t.same(await client.increment('mj:z', 1, {}), { success: true, value: 0 }, 'increment miss without initial: seeded with 0');
  t.equal(text((await client.get('mj:n')).value), '0 ', 'stored as text (memcached pads a shrinking number in place)');
  t.equal(text((await client.get('mj:d')).value), '7');

  await client.set('mj:word', 'abc');
  await t.rejects(client.increment('mj:word', 1, {}), /MemJS INCREMENT: Incr\/Decr on non-numeric value/, 'non-numeric -> error');
  await t.rejects(client.decrement('mj:word', 1, {}), /MemJS DECREMENT: Incr\/Decr on non-numeric value/, 'non-numeric -> error');
  t.ok(log.some((l) => l.includes('non-numeric')), 'memjs logged the error');

  // expiration given with the initial value applies to the seeded item
  t.same(await client.increment('mj:exp', 1, { initial: 3, expires: 1 }), { success: true, value: 3 });
  await sleep(2100);
  t.equal((await client.get('mj:exp')).value, null, 'seeded counter expired');
});

t.test('append and prepend', async (t) => {
  const { client } = newClient(t, `127.0.0.1:${daemon.port}`);
  await client.set('mj:ap', 'mid');
  t.equal(await client.append('mj:ap', '>>'), true, 'append');
  t.equal(text((await client.get('mj:ap')).value), 'mid>>');
  // memjs 1.3.2 sends its prepend with opcode 0x0e (Append): the server appends
  t.equal(await client.prepend('mj:ap', '<<'), true, 'prepend answers success');
  t.equal(text((await client.get('mj:ap')).value), 'mid>><<', 'memjs "prepend" appends (client bug, same on memcached)');
  // a miss answers 5 (not stored), which memjs reports as an error
  await t.rejects(client.append('mj:none', 'x'), /MemJS APPEND: Item not stored/, 'append on a missing key');
  await t.rejects(client.prepend('mj:none', 'x'), /MemJS PREPEND: Item not stored/, 'prepend on a missing key');
  t.equal((await client.get('mj:none')).value, null, 'still missing');
});

t.test('touch and expiration', async (t) => {
  const { client } = newClient(t, `127.0.0.1:${daemon.port}`);
  await client.set('mj:e1', 'a', { expires: 1 });
  await client.set('mj:e2', 'b', { expires: 100 });
  await client.set('mj:e3', 'c', { expires: 1 });
  await client.set('mj:e4', 'd');
  t.equal(await client.touch('mj:e2', 1), true, 'touch shortens');
  t.equal(await client.touch('mj:e3', 100), true, 'touch extends');
  t.equal(await client.touch('mj:none', 100), false, 'touch miss');
  t.equal(text((await client.get('mj:e1')).value), 'a', 'still there right away');
  await sleep(2100);
  t.equal((await client.get('mj:e1')).value, null, 'expired (set with expires 1)');
  t.equal((await client.get('mj:e2')).value, null, 'expired (touched to 1)');
  t.equal(text((await client.get('mj:e3')).value), 'c', 'kept (touched to 100)');
  t.equal(text((await client.get('mj:e4')).value), 'd', 'kept (no expiration)');
});

t.test('values: empty, 1 KB, 500 KB, non-UTF-8 bytes', async (t) => {
  const { client } = newClient(t, `127.0.0.1:${daemon.port}`);
  const values: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['1k', Buffer.from('x'.repeat(1024))],
    ['500k', Buffer.from(Array.from({ length: 500 * 1024 }, (_, i) => (i * 7 + 3) & 0xff))],
    ['bin', Buffer.from([0x00, 0xff, 0x80, 0x0d, 0x0a, 0xc3, 0x28, 0xfe, 0x00, 0x20])],
    ['all bytes', Buffer.from(Array.from({ length: 256 }, (_, i) => i))],
  ];
  for (const [name, v] of values) {
    t.equal(await client.set(`mj:v:${name}`, v), true, `set ${name} (${v.length} bytes)`);
  }
  for (const [name, v] of values) {
    const got = await client.get(`mj:v:${name}`);
    t.ok(got.value !== null && got.value.equals(v), `get ${name}: ${v.length} bytes back intact (got ${got.value?.length ?? 'null'})`);
  }
  // a UTF-8 string value comes back as its UTF-8 bytes
  await client.set('mj:v:utf8', 'héllo ✓');
  t.equal((await client.get('mj:v:utf8')).value?.toString('utf8'), 'héllo ✓');
  // binary-safe append
  t.equal(await client.append('mj:v:bin', Buffer.from([0x00, 0x81])), true);
  t.same((await client.get('mj:v:bin')).value, Buffer.concat([values[3]![1], Buffer.from([0x00, 0x81])]));
});

t.test('stats and flush', async (t) => {
  const { client } = newClient(t, `127.0.0.1:${daemon.port}`);
  await client.set('mj:st', 'v');
  await client.get('mj:st');
  const all = await statsOf(client, 1);
  const stats = all.get(`127.0.0.1:${daemon.port}`);
  t.ok(stats, 'stats keyed by host:port');
  t.match(stats?.['version'] ?? '', /^1\.6\.\d+$/, 'version stat');
  for (const k of ['pid', 'uptime', 'curr_items', 'cmd_get', 'get_hits', 'curr_connections', 'limit_maxbytes']) {
    t.match(stats?.[k] ?? '<missing>', /^\d+$/, `stat ${k}`);
  }
  t.ok(Number(stats?.['curr_items']) >= 1, 'curr_items');
  t.ok(Number(stats?.['get_hits']) >= 1, 'get_hits');

  const flushed = await client.flush();
  t.same(flushed, { [`127.0.0.1:${daemon.port}`]: true }, 'flush: one result per server');
  t.equal((await client.get('mj:st')).value, null, 'flushed');
  t.equal(await client.set('mj:st', 'again'), true, 'set after flush');
  t.equal(text((await client.get('mj:st')).value), 'again');
});

t.test('quit closes the connection; the client reconnects on the next call', async (t) => {
  const { client } = newClient(t, `127.0.0.1:${daemon.port}`);
  await client.set('mj:q', 'v');
  client.quit();
  await sleep(200);
  t.equal(text((await client.get('mj:q')).value), 'v', 'works again after quit');
});

t.test('many concurrent requests on one connection', async (t) => {
  const { client } = newClient(t, `127.0.0.1:${daemon.port}`);
  const n = 300;
  const sets = await Promise.all(Array.from({ length: n }, (_, i) => client.set(`mj:c:${i}`, `v${i}`)));
  t.equal(sets.filter((x) => x).length, n, 'all set');
  const gets = await Promise.all(Array.from({ length: n }, (_, i) => client.get(`mj:c:${i}`)));
  t.same(
    gets.map((g) => text(g.value)),
    Array.from({ length: n }, (_, i) => `v${i}`),
    'every reply matched to its request',
  );
});

t.test('several servers: keys spread over both and all come back', async (t) => {
  // two fresh servers, so that curr_items counts exactly this test's keys (a flush is lazy:
  // flushed items stay in curr_items until reclaimed, on memcached as on memshard)
  const [d1, d2] = await Promise.all([start(ARGS), start(ARGS)]);
  t.teardown(() => Promise.all([d1.stop(), d2.stop()]));
  const s1 = `127.0.0.1:${d1.port}`;
  const s2 = `127.0.0.1:${d2.port}`;
  const { client } = newClient(t, `${s1},${s2}`);
  const keys = Array.from({ length: 200 }, (_, i) => `mj:multi:${i}`);
  const sets = await Promise.all(keys.map((k) => client.set(k, `val-${k}`)));
  t.equal(sets.filter((x) => x).length, keys.length, 'all set');
  const gets = await Promise.all(keys.map((k) => client.get(k)));
  t.same(
    gets.map((g) => text(g.value)),
    keys.map((k) => `val-${k}`),
    'all come back through the two-server client',
  );

  // which server holds which key: ask each server on its own
  const { client: c1 } = newClient(t, s1);
  const { client: c2 } = newClient(t, s2);
  const on1 = (await Promise.all(keys.map((k) => c1.get(k)))).map((g) => g.value !== null);
  const on2 = (await Promise.all(keys.map((k) => c2.get(k)))).map((g) => g.value !== null);
  const n1 = on1.filter((x) => x).length;
  const n2 = on2.filter((x) => x).length;
  t.ok(n1 > 20 && n2 > 20, `keys spread over both servers (${n1} / ${n2})`);
  t.equal(n1 + n2, keys.length, 'each key on exactly one server');
  t.notOk(on1.some((x, i) => x && on2[i]), 'no key on both');
  // memjs's own placement: hashCode(key) % 2
  t.same(
    on2.map((x, i) => (x ? 1 : 0) === Number(client.getServer(keys[i]!))),
    keys.map(() => true),
    'placement matches client.getServer() (typed string, returns a number)',
  );

  const stats = await statsOf(client, 2);
  t.same([...stats.keys()].sort(), [s1, s2].sort(), 'stats from both servers');
  t.same(
    [Number(stats.get(s1)?.['curr_items']), Number(stats.get(s2)?.['curr_items'])],
    [n1, n2],
    'curr_items per server match the spread',
  );
  t.same(await client.flush(), { [s1]: true, [s2]: true }, 'flush reaches both');
  const after = await Promise.all(keys.map((k) => client.get(k)));
  t.equal(after.filter((g) => g.value !== null).length, 0, 'all gone after flush');
});
