/**
 * memcached's operator commands (`slabs`, `lru`, `lru_crawler`, `cache_memlimit`, `stats sizes`)
 * and the flags behind them (-M, -L, -o ...): replies compared with memcached 1.6.18 line by line,
 * then what each one changes checked through `stats settings`, `stats items` and the items kept.
 */
import t from 'tap';
import { rawClient, startDaemon, startMemcached, type Daemon, type RawClient } from './helpers/daemon.js';

async function line(c: RawClient, request: string): Promise<string> {
  c.send(`${request}\r\n`);
  return (await c.readUntil('\r\n', 3000)).slice(0, -2);
}

/** Until memcached's `stats` says no crawl is running (5 s at most). */
async function crawlerIdle(c: RawClient): Promise<void> {
  for (const deadline = Date.now() + 5000; Date.now() < deadline; ) {
    if ((await stats(c)).get('lru_crawler_running') === '0') return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function settings(c: RawClient): Promise<Map<string, string>> {
  c.send('stats settings\r\n');
  const reply = await c.readUntil('END\r\n', 3000);
  return new Map(reply.split('\r\n').filter((l) => l.startsWith('STAT ')).map((l) => l.slice(5).split(' ') as [string, string]));
}

async function stats(c: RawClient, group = ''): Promise<Map<string, string>> {
  c.send(`stats ${group}\r\n`);
  const reply = await c.readUntil('END\r\n', 3000);
  return new Map(reply.split('\r\n').filter((l) => l.startsWith('STAT ')).map((l) => l.slice(5).split(' ') as [string, string]));
}

/** Requests whose one-line reply does not depend on which slab classes hold pages. */
const SAME_REPLY = [
  'slabs', 'slabs bogus', 'slabs automove', 'slabs automove invalid', 'slabs automove 3', 'slabs automove 2',
  'slabs automove 0', 'slabs automove 1', 'slabs automove 1 noreply', 'slabs automove ratio', 'slabs automove ratio 0.5 x',
  'slabs reassign', 'slabs reassign 1', 'slabs reassign x 2', 'slabs reassign 1 y', 'slabs reassign 3 3', 'slabs reassign 1 200',
  'slabs reassign 200 1', 'slabs reassign -2 1', 'slabs reassign 5 6',
  'lru', 'lru bogus', 'lru tune', 'lru tune 10 10 0.1', 'lru tune 10 10 0.1 2', 'lru tune 50 40 0.1 2', 'lru tune x 10 0.1 2',
  'lru tune 10 10 0 2', 'lru tune 10 10 0.5 -1', 'lru tune 20 40 0.2 2.0', 'lru mode', 'lru mode bogus', 'lru mode flat',
  'lru mode segmented', 'lru temp_ttl', 'lru temp_ttl x', 'lru temp_ttl 30', 'lru temp_ttl -1',
  'lru_crawler', 'lru_crawler bogus', 'lru_crawler crawl', 'lru_crawler crawl all', 'lru_crawler crawl 1,2,3',
  'lru_crawler crawl 0', 'lru_crawler crawl 64', 'lru_crawler crawl x', 'lru_crawler tocrawl', 'lru_crawler tocrawl x',
  'lru_crawler tocrawl 100', 'lru_crawler tocrawl 0', 'lru_crawler sleep 2000000', 'lru_crawler sleep x', 'lru_crawler sleep 100',
  'lru_crawler enable', 'lru_crawler disable', 'lru_crawler disable', 'lru_crawler enable', 'lru_crawler enable',
  'cache_memlimit', 'cache_memlimit x', 'cache_memlimit 7', 'cache_memlimit 2000000000', 'cache_memlimit 1 2 3',
  'cache_memlimit 128', 'cache_memlimit 64', 'cache_memlimit 100 noreply',
];

t.test('operator commands answer as memcached 1.6.18 does', async (t) => {
  const servers: Daemon[] = [await startMemcached(['-m', '64']), await startDaemon(['-t', '4', '-m', '64'])];
  t.teardown(() => Promise.all(servers.map((s) => s.stop())));
  const [mc, ms] = await Promise.all(servers.map((s) => rawClient(s.port)));
  for (const c of [mc!, ms!]) {
    for (let i = 0; i < 200; i++) {
      c.send(`set k${i} 0 0 100\r\n${'v'.repeat(100)}\r\n`);
      await c.readUntil('STORED\r\n');
    }
  }
  for (const request of SAME_REPLY) {
    // memcached's crawler thread answers BUSY while its last crawl runs (memshard's crawls end
    // before their reply): on a busy machine `crawl all` may still run when the next one comes
    if (request.startsWith('lru_crawler crawl')) await crawlerIdle(mc!);
    // a noreply request answers nothing: the mn after it shows nothing came first
    const ask = async (c: RawClient): Promise<string> => (request.endsWith('noreply') ? line(c, `${request}\r\nmn`) : line(c, request));
    const [expected, got] = await Promise.all([ask(mc!), ask(ms!)]);
    t.equal(got, expected, request);
  }
  // memcached's crawler thread stops a moment after `disable` (until then a crawl may answer
  // otherwise): memshard's stops at once
  t.equal(await line(ms!, 'lru_crawler disable'), 'OK');
  t.equal(await line(ms!, 'lru_crawler crawl all'), 'CLIENT_ERROR lru crawler disabled');
  t.equal(await line(ms!, 'lru_crawler metadump all'), 'CLIENT_ERROR lru crawler disabled');
  t.equal((await settings(ms!)).get('lru_crawler'), 'no');
  t.equal(await line(ms!, 'lru_crawler enable'), 'OK');
  const [a, b] = await Promise.all([settings(mc!), settings(ms!)]);
  for (const name of ['slab_automove', 'lru_crawler', 'lru_crawler_sleep', 'lru_crawler_tocrawl', 'hot_lru_pct', 'warm_lru_pct',
    'hot_max_factor', 'warm_max_factor', 'temp_lru', 'temporary_ttl', 'lru_segmented', 'maxbytes', 'track_sizes']) {
    t.equal(b.get(name), a.get(name), `stats settings ${name} after the same commands`);
  }
  const names = (m: Map<string, string>): string[] => [...m.keys()].filter((k) => !k.startsWith('ext_') && !k.startsWith('ssl_') && !k.startsWith('memshard_') && !['num_napi_ids', 'memory_file', 'slab_automove_freeratio'].includes(k));
  t.same(names(b), names(a), 'stats settings: memcached 1.6.18 fields in its order (no extstore or TLS)');
});

t.test('slabs reassign moves a page per shard; slabs automove 0 stops the automatic moves', async (t) => {
  const ms = await startDaemon(['-t', '2', '-m', '16']);
  t.teardown(() => ms.stop());
  const c = await rawClient(ms.port);
  // fill two classes, so that both own pages
  for (let i = 0; i < 9000; i++) {
    c.send(`set small${i} 0 0 50 noreply\r\n${'s'.repeat(50)}\r\nset large${i} 0 0 2000 noreply\r\n${'L'.repeat(2000)}\r\n`);
  }
  t.equal(await line(c, 'mn'), 'MN');
  // with automove off, a new class finds every page taken and cannot store
  t.equal(await line(c, 'slabs automove 0'), 'OK');
  t.equal(await line(c, `set huge 0 0 60000\r\n${'h'.repeat(60000)}`), 'SERVER_ERROR out of memory storing object', 'no page moves for a starving class');
  t.equal(await line(c, 'slabs automove 1'), 'OK');
  t.equal(await line(c, `set huge 0 0 60000\r\n${'h'.repeat(60000)}`), 'STORED', 'automove 1 takes a page for it');
  const slabs = await stats(c, 'slabs');
  const pages = (cls: string): number => Number(slabs.get(`${cls}:total_pages`) ?? 0);
  const classes = [...slabs.keys()].filter((k) => k.endsWith(':total_pages')).map((k) => k.split(':')[0]!);
  const rich = classes.sort((x, y) => pages(y) - pages(x))[0]!;
  const poor = classes.find((cls) => cls !== rich)!;
  t.ok(pages(rich) >= 4, `class ${rich} has pages (${pages(rich)})`);
  const moved = Number((await stats(c)).get('slabs_moved'));
  t.equal(await line(c, `slabs reassign ${rich} ${poor}`), 'OK');
  const after = await stats(c, 'slabs');
  t.equal(Number(after.get(`${rich}:total_pages`)), pages(rich) - 2, 'one page less in each of the 2 shards');
  t.equal(Number(after.get(`${poor}:total_pages`)), pages(poor) + 2, 'one page more in each shard');
  t.equal(Number((await stats(c)).get('slabs_moved')), moved + 2, 'slabs_moved counts both');
  t.equal(await line(c, `slabs reassign ${rich} 0`), 'OK', 'a page to the global pool');
  t.equal(await line(c, `slabs reassign 0 ${poor}`), 'NOSPARE source class has no spare pages', 'the pool needs 2 pages to give one');
  t.equal(await line(c, `slabs reassign -1 ${poor}`), 'OK', '-1: any class with pages to spare');
});

t.test('slabs reassign -1 with no class to spare a page: BADCLASS, as memcached (never the free pool)', async (t) => {
  const want = 'BADCLASS invalid src or dst class id';
  for (const server of [await startMemcached(['-m', '64']), await startDaemon(['-t', '2', '-m', '64'])]) {
    t.teardown(() => server.stop());
    const c = await rawClient(server.port);
    t.equal(await line(c, 'slabs reassign -1 5'), want, 'a fresh cache');
    t.equal(await line(c, 'set a 0 0 1\r\nx'), 'STORED');
    t.equal(await line(c, 'slabs reassign -1 5'), want, 'one class with one page');
    await c.close();
  }
});

t.test('cache_memlimit shrinks and grows a running cache; -L fixes it', async (t) => {
  const ms = await startDaemon(['-t', '2', '-m', '32']);
  t.teardown(() => ms.stop());
  const c = await rawClient(ms.port);
  for (let i = 0; i < 6000; i++) c.send(`set k${i} 0 0 4000 noreply\r\n${'x'.repeat(4000)}\r\n`);
  t.equal(await line(c, 'mn'), 'MN');
  const before = await stats(c);
  t.ok(Number(before.get('bytes')) > 20 * 1024 * 1024, `items before: ${before.get('bytes')} bytes`);
  t.equal(await line(c, 'cache_memlimit 8'), 'OK');
  const shrunk = await stats(c);
  t.ok(Number(shrunk.get('bytes')) <= 8 * 1024 * 1024, `items fit the new limit: ${shrunk.get('bytes')} bytes`);
  t.equal((await settings(c)).get('maxbytes'), String(8 * 1024 * 1024), 'stats settings maxbytes follows');
  t.ok(Number(shrunk.get('evictions')) > Number(before.get('evictions')), 'shrinking evicted');
  t.equal(await line(c, 'cache_memlimit 96'), 'OK', 'growing past -m (up to 4 x -m)');
  for (let i = 0; i < 20000; i++) c.send(`set g${i} 0 0 4000 noreply\r\n${'x'.repeat(4000)}\r\n`);
  t.equal(await line(c, 'mn'), 'MN');
  t.ok(Number((await stats(c)).get('bytes')) > 48 * 1024 * 1024, 'the cache holds more than -m once grown');
  t.equal(await line(c, 'cache_memlimit 1000'), 'MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust', 'beyond the reserved address space');

  const pre = await startDaemon(['-t', '2', '-m', '16', '-L']);
  t.teardown(() => pre.stop());
  const p = await rawClient(pre.port);
  t.equal(await line(p, 'cache_memlimit 32'), 'MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust', '-L: preallocated, as memcached');
});

t.test('-M answers out of memory instead of evicting; lru temp_ttl keeps short-TTL items from eviction', async (t) => {
  const ms = await startDaemon(['-t', '1', '-m', '8', '-M']);
  t.teardown(() => ms.stop());
  const c = await rawClient(ms.port);
  t.equal((await settings(c)).get('evictions'), 'off');
  let refused = '';
  for (let i = 0; i < 4000 && refused === ''; i++) {
    const reply = await line(c, `set k${i} 0 0 4000\r\n${'x'.repeat(4000)}`);
    if (reply !== 'STORED') refused = reply;
  }
  t.equal(refused, 'SERVER_ERROR out of memory storing object');
  t.equal((await stats(c)).get('evictions'), '0', 'nothing evicted');
  c.send('get k0\r\n');
  t.match(await c.readUntil('END\r\n'), /^VALUE k0 /, 'the first item is still there');

  const temp = await startDaemon(['-t', '1', '-m', '8', '-o', 'temporary_ttl=100']);
  t.teardown(() => temp.stop());
  const d = await rawClient(temp.port);
  t.equal((await settings(d)).get('temp_lru'), 'yes');
  for (let i = 0; i < 50; i++) d.send(`set short${i} 0 60 4000 noreply\r\n${'s'.repeat(4000)}\r\n`);
  for (let i = 0; i < 4000; i++) d.send(`set long${i} 0 0 4000 noreply\r\n${'l'.repeat(4000)}\r\n`);
  t.equal(await line(d, 'mn'), 'MN');
  t.ok(Number((await stats(d)).get('evictions')) > 0, 'the long-lived items were evicted');
  d.send('get short0 short49\r\n');
  const kept = await d.readUntil('END\r\n');
  t.equal((kept.match(/^VALUE /gm) ?? []).length, 2, 'the TEMP LRU items were not');
});

t.test('stats sizes with -o track_sizes counts items by 32-byte size as memcached does', async (t) => {
  const servers: Daemon[] = [await startMemcached(['-o', 'track_sizes']), await startDaemon(['-t', '4', '-o', 'track_sizes'])];
  t.teardown(() => Promise.all(servers.map((s) => s.stop())));
  const [mc, ms] = await Promise.all(servers.map((s) => rawClient(s.port)));
  for (const c of [mc!, ms!]) {
    for (let i = 0; i < 300; i++) {
      const len = (i * 37) % 3000;
      c.send(`set key${i} ${i % 3} 0 ${len} noreply\r\n${'z'.repeat(len)}\r\n`);
    }
    c.send('delete key7 noreply\r\ndelete key8 noreply\r\n');
    t.equal(await line(c, 'mn'), 'MN');
  }
  const [a, b] = await Promise.all([stats(mc!, 'sizes'), stats(ms!, 'sizes')]);
  t.ok(a.size > 10, `memcached reports ${a.size} sizes`);
  t.same(Object.fromEntries(b), Object.fromEntries(a), 'the same histogram');
  // memcached 1.6.18 leaves END off these two replies (a client waiting for it hangs): memshard ends them
  t.equal(await line(mc!, 'stats sizes_disable'), 'STAT sizes_status disabled');
  ms!.send('stats sizes_disable\r\n');
  t.equal(await ms!.readUntil('END\r\n', 3000), 'STAT sizes_status disabled\r\nEND\r\n');
  t.same(Object.fromEntries(await stats(ms!, 'sizes')), { sizes_status: 'disabled' });
  ms!.send('stats sizes_enable\r\n');
  t.equal(await ms!.readUntil('END\r\n', 3000), 'STAT sizes_status enabled\r\nEND\r\n');
  ms!.send('set fresh 0 0 10\r\n0123456789\r\n');
  await ms!.readUntil('STORED\r\n');
  t.same(Object.fromEntries(await stats(ms!, 'sizes')), { '96': '1' }, 'counting starts again with the items stored after it');
  t.equal((await settings(ms!)).get('track_sizes'), 'yes');
});
