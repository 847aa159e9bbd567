import t from 'tap';
import { Store, Status, Mode } from '../lib/store/store.js';
import type { StoreConfig } from '../lib/store/store.js';
import { readShardStats } from '../lib/store/stats.js';
import { computeLayout, ITEM_HEADER_BYTES } from '../lib/store/layout.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const STARTED = 1_700_000_000;

class FakeClock {
  t = 2;
  processStarted = STARTED;
  now(): number {
    return this.t;
  }
}

function cfgOf(over: Partial<StoreConfig> = {}): StoreConfig {
  return {
    memoryBytes: 4 * MiB, pageSize: MiB, itemSizeMax: MiB, growthFactor: 1.25, minChunk: 48,
    shardIndex: 0, shardCount: 1, ...over,
  };
}

function make(over: Partial<StoreConfig> = {}) {
  const cfg = cfgOf(over);
  const sab = new SharedArrayBuffer(Store.byteLength(cfg));
  const clock = new FakeClock();
  const store = new Store(sab, cfg, clock);
  const stats = () => readShardStats(sab, cfg, clock.t);
  return { cfg, sab, clock, store, stats };
}

const k = (s: string) => Buffer.from(s, 'latin1');
const str = (u: Uint8Array) => Buffer.from(u).toString('latin1');
const set = (s: Store, key: string, value: string | Uint8Array, exptime = 0, flags = 0) =>
  s.store(Mode.Set, k(key), flags, exptime, typeof value === 'string' ? k(value) : value, 0);
const val = (s: Store, key: string): string | null => {
  const r = s.get(k(key));
  return r === 0 ? null : str(s.valueOf(r));
};

t.test('set/get round trip: flags, binary, empty values, 250-byte keys', async (t) => {
  const { store } = make();
  t.equal(store.get(k('nope')), 0);
  t.equal(set(store, 'a', 'hello', 0, 0xdeadbeef), Status.Stored);
  const r = store.get(k('a'));
  t.ok(r > 0);
  t.equal(r, store.lastRef);
  t.equal(str(store.keyOf(r)), 'a');
  t.equal(str(store.valueOf(r)), 'hello');
  t.equal(store.flagsOf(r), 0xdeadbeef);
  t.equal(store.exptimeOf(r), 0);

  const bin = new Uint8Array(256).map((_, i) => i);
  t.equal(set(store, 'bin', bin), Status.Stored);
  t.same(Array.from(store.valueOf(store.get(k('bin')))), Array.from(bin));

  t.equal(set(store, 'empty', ''), Status.Stored);
  const e = store.get(k('empty'));
  t.ok(e > 0, 'a 0-byte value is a hit');
  t.equal(store.valueOf(e).length, 0);

  const long = 'k'.repeat(249) + 'x';
  const long2 = 'k'.repeat(249) + 'y';
  t.equal(set(store, long, 'L1'), Status.Stored);
  t.equal(set(store, long2, 'L2'), Status.Stored);
  t.equal(val(store, long), 'L1');
  t.equal(val(store, long2), 'L2');
  t.equal(str(store.keyOf(store.get(k(long)))), long);

  // Overwrite with a different size class; the old item is gone.
  t.equal(set(store, 'a', 'x'.repeat(5000)), Status.Stored);
  t.equal(val(store, 'a'), 'x'.repeat(5000));
  t.equal(set(store, 'a', 'tiny'), Status.Stored);
  t.equal(val(store, 'a'), 'tiny');
  t.equal(store.delete(k('a')), Status.Deleted);
  t.equal(store.delete(k('a')), Status.NotFound);
  t.equal(store.get(k('a')), 0);
});

t.test('add / replace / append / prepend / cas', async (t) => {
  const { store } = make();
  const kk = k('key');
  t.equal(store.store(Mode.Replace, kk, 0, 0, k('v'), 0), Status.NotStored);
  t.equal(store.store(Mode.Append, kk, 0, 0, k('v'), 0), Status.NotStored);
  t.equal(store.store(Mode.Prepend, kk, 0, 0, k('v'), 0), Status.NotStored);
  t.equal(store.store(Mode.Cas, kk, 0, 0, k('v'), 123), Status.NotFound);
  t.equal(store.store(Mode.Add, kk, 7, 100, k('mid'), 0), Status.Stored);
  t.equal(store.store(Mode.Add, kk, 0, 0, k('other'), 0), Status.NotStored);
  t.equal(val(store, 'key'), 'mid');
  t.equal(store.store(Mode.Append, kk, 9, 0, k('>>'), 0), Status.Stored);
  t.equal(store.store(Mode.Prepend, kk, 9, 0, k('<<'), 0), Status.Stored);
  let r = store.get(kk);
  t.equal(str(store.valueOf(r)), '<<mid>>');
  t.equal(store.flagsOf(r), 7, 'append/prepend keep flags');
  t.equal(store.exptimeOf(r), 102, 'append/prepend keep exptime');
  // Append that crosses into a larger class.
  t.equal(store.store(Mode.Append, kk, 0, 0, k('z'.repeat(3000)), 0), Status.Stored);
  t.equal(val(store, 'key'), '<<mid>>' + 'z'.repeat(3000));
  t.equal(store.store(Mode.Replace, kk, 1, 0, k('rep'), 0), Status.Stored);
  r = store.get(kk);
  t.equal(str(store.valueOf(r)), 'rep');
  t.equal(store.flagsOf(r), 1);
  const cas = store.casOf(r);
  t.equal(store.store(Mode.Cas, kk, 0, 0, k('bad'), cas + 1), Status.Exists);
  t.equal(store.store(Mode.Cas, kk, 2, 0, k('good'), cas), Status.Stored);
  t.equal(store.store(Mode.Cas, kk, 0, 0, k('again'), cas), Status.Exists, 'cas is single use');
  t.equal(val(store, 'key'), 'good');
});

t.test('CAS values: unique, increasing, distinct across shards, kept across re-init', async (t) => {
  const cfgA = cfgOf({ shardCount: 2, shardIndex: 0 });
  const cfgB = cfgOf({ shardCount: 2, shardIndex: 1 });
  const sabA = new SharedArrayBuffer(Store.byteLength(cfgA));
  const sabB = new SharedArrayBuffer(Store.byteLength(cfgB));
  const a = new Store(sabA, cfgA, new FakeClock());
  const b = new Store(sabB, cfgB, new FakeClock());
  const seen = new Set<number>();
  let lastA = 0;
  let lastB = 0;
  for (let i = 0; i < 200; i++) {
    set(a, `k${i % 10}`, 'v');
    set(b, `k${i % 10}`, 'v');
    const ca = a.casOf(a.lastRef);
    const cb = b.casOf(b.lastRef);
    t.ok(ca > lastA && cb > lastB);
    lastA = ca;
    lastB = cb;
    seen.add(ca);
    seen.add(cb);
  }
  t.equal(seen.size, 400, 'no CAS handed out twice by two shards');
  // incr changes the CAS, touch does not.
  set(a, 'n', '5');
  const before = a.casOf(a.lastRef);
  t.equal(a.touch(k('n'), 100), Status.Touched);
  t.equal(a.casOf(a.get(k('n'))), before);
  t.equal(a.incrDecr(k('n'), true, 1n), Status.Ok);
  t.ok(a.casOf(a.get(k('n'))) > before);
  const maxA = a.casOf(a.get(k('n')));

  // A replaced worker re-initialises the same buffer: empty store, CAS keeps growing.
  const a2 = new Store(sabA, cfgA, new FakeClock());
  t.equal(a2.get(k('n')), 0, 're-init empties the store');
  t.equal(readShardStats(sabA, cfgA, 2).counters.curr_items, 0);
  set(a2, 'n', 'x');
  t.ok(a2.casOf(a2.lastRef) > maxA, 'CAS never reused after re-init');
  t.equal(a2.casOf(a2.lastRef) % 2, 1, 'shard 0 of 2 hands out odd CAS values');
});

t.test('incr / decr', async (t) => {
  const { store } = make();
  const n = k('n');
  t.equal(store.incrDecr(n, true, 1n), Status.NotFound);
  set(store, 'n', '18446744073709551615', 0, 42);
  t.equal(store.incrDecr(n, true, 1n), Status.Ok);
  t.equal(store.lastNumber, 0n, 'incr wraps at 2^64');
  t.equal(store.flagsOf(store.get(n)), 42, 'flags kept');
  set(store, 'n', '10');
  t.equal(store.incrDecr(n, false, 3n), Status.Ok);
  t.equal(store.lastNumber, 7n);
  t.equal(val(store, 'n'), '7 ', 'shorter result rewritten in place, space padded like memcached');
  t.equal(store.incrDecr(n, true, 100n), Status.Ok, 'a padded value still parses');
  t.equal(store.lastNumber, 107n);
  t.equal(val(store, 'n'), '107');
  t.equal(store.incrDecr(n, false, 1000n), Status.Ok);
  t.equal(store.lastNumber, 0n, 'decr floors at 0');
  set(store, 'n', '99999999999999999999'); // 20 digits, > 2^64
  t.equal(store.incrDecr(n, true, 1n), Status.NonNumeric, 'out of u64 range');
  set(store, 'n', '12345678901234567890'); // 20 digits, < 2^64
  t.equal(store.incrDecr(n, true, 1n), Status.Ok);
  t.equal(store.lastNumber, 12345678901234567891n);
  t.equal(val(store, 'n'), '12345678901234567891');
  for (const bad of ['', 'abc', '12a', '1x2', '-5', '+', ' ']) {
    set(store, 'n', bad);
    t.equal(store.incrDecr(n, true, 1n), Status.NonNumeric, `"${bad}" is not numeric`);
  }
  // memcached parses with strtoull: leading blanks and a trailing blank-separated tail are accepted.
  set(store, 'n', '1 2x');
  t.equal(store.incrDecr(n, true, 1n), Status.Ok, 'digits then a blank: the rest is ignored');
  t.equal(store.lastNumber, 2n);
  set(store, 'n', '  12');
  t.equal(store.incrDecr(n, true, 1n), Status.Ok);
  t.equal(store.lastNumber, 13n);
  set(store, 'n', '99');
  t.equal(store.incrDecr(n, true, 1n), Status.Ok);
  t.equal(val(store, 'n'), '100', 'longer result gets a new item');
  set(store, 'n', '5', 100);
  const exp = store.exptimeOf(store.get(n));
  store.incrDecr(n, true, 1000n);
  t.equal(store.exptimeOf(store.get(n)), exp, 'exptime kept');
});

t.test('TTL rules', async (t) => {
  const { store, clock } = make();
  set(store, 'rel', 'v', 10);
  t.equal(store.exptimeOf(store.get(k('rel'))), 12);
  clock.t = 11;
  t.equal(val(store, 'rel'), 'v');
  clock.t = 12;
  t.equal(val(store, 'rel'), null, 'expired at now + ttl');

  clock.t = 100;
  set(store, 'd30', 'v', 2592000);
  t.equal(store.exptimeOf(store.get(k('d30'))), 100 + 2592000, '2592000 is relative');
  set(store, 'abs', 'v', STARTED + 2592001);
  t.equal(store.exptimeOf(store.get(k('abs'))), 2592001, '2592001+ is absolute Unix time');
  set(store, 'abs2', 'v', 2592001);
  t.equal(val(store, 'abs2'), null, 'absolute time before process start: expired at once');
  set(store, 'absPast', 'v', STARTED + 50);
  t.equal(val(store, 'absPast'), null, 'absolute time in the past');
  set(store, 'absSoon', 'v', STARTED + 105);
  t.equal(val(store, 'absSoon'), 'v');
  clock.t = 105;
  t.equal(val(store, 'absSoon'), null);
  t.equal(set(store, 'neg', 'v', -1), Status.Stored);
  t.equal(val(store, 'neg'), null, 'negative: expired at once');
  set(store, 'never', 'v', 0);
  clock.t = 1e8;
  t.equal(val(store, 'never'), 'v');
});

t.test('touch / gat', async (t) => {
  const { store, clock, stats } = make();
  set(store, 'a', 'v', 5);
  t.equal(store.touch(k('a'), 100), Status.Touched);
  t.equal(store.touch(k('zz'), 100), Status.NotFound);
  clock.t = 50;
  t.equal(val(store, 'a'), 'v', 'touch extended the ttl');
  const r = store.getAndTouch(k('a'), 10);
  t.ok(r > 0);
  t.equal(str(store.valueOf(r)), 'v');
  t.equal(store.exptimeOf(r), 60);
  t.equal(store.getAndTouch(k('zz'), 10), 0);
  clock.t = 60;
  t.equal(store.getAndTouch(k('a'), 10), 0, 'expired');
  const c = stats().counters;
  t.equal(c.cmd_touch, 5);
  t.equal(c.touch_hits, 2);
  t.equal(c.touch_misses, 3);
  t.equal(c.cmd_get, 1, 'gat is not a get');
  t.equal(c.get_hits, 1);
});

t.test('flush_all now and delayed', async (t) => {
  const { store, clock, stats } = make();
  set(store, 'a', '1');
  set(store, 'b', '2');
  store.flushAll(0);
  t.equal(val(store, 'a'), null);
  set(store, 'c', '3');
  t.equal(val(store, 'c'), '3', 'stored after the flush: visible');
  t.equal(stats().counters.get_flushed, 1);

  clock.t = 10;
  store.flushAll(5);
  set(store, 'd', '4');
  clock.t = 14;
  t.equal(val(store, 'c'), '3', 'delayed flush not yet due');
  clock.t = 15;
  t.equal(val(store, 'c'), null);
  t.equal(val(store, 'd'), null, 'updated before the flush moment');
  set(store, 'e', '5');
  t.equal(val(store, 'e'), '5', 'updated at/after the flush moment');

  clock.t = 20;
  set(store, 'f', '6');
  store.flushAll(10); // due at 30
  store.flushAll(100); // replaces it: due at 120
  clock.t = 40;
  t.equal(val(store, 'f'), '6', 'a later flush_all replaced the pending one');
  store.flushAll(-1);
  t.equal(val(store, 'f'), null, 'negative delay = now');
  t.equal(stats().counters.cmd_flush, 5);
});

t.test('too large', async (t) => {
  const { store, stats } = make({ itemSizeMax: 2000 });
  set(store, 'big', 'small');
  // -I counts memcached's item size (48-byte header, 8-byte CAS, key + NUL, value + CRLF)
  const max = 'x'.repeat(2000 - 48 - 8 - (3 + 1) - 2);
  t.equal(set(store, 'big', max), Status.Stored, 'exactly -I fits');
  t.equal(set(store, 'big', max + 'x'), Status.TooLarge);
  t.equal(store.get(k('big')), 0, 'set of a too large value removes the old item');
  set(store, 'big2', 'keep');
  t.equal(store.store(Mode.Add, k('big2'), 0, 0, k(max + 'x'), 0), Status.TooLarge);
  t.equal(val(store, 'big2'), 'keep', 'only set removes');
  t.equal(store.store(Mode.Append, k('big2'), 0, 0, k(max.slice(1)), 0), Status.NotStored, 'combined append too large');
  t.equal(val(store, 'big2'), 'keep');
  store.refuseTooLarge(k('big2'), true);
  t.equal(val(store, 'big2'), null);
  const c = stats().counters;
  t.equal(c.store_too_large, 3);
  t.equal(c.cmd_set, 4, 'too large sets are not counted in cmd_set (memcached)');
  // Larger than a page is always too large.
  const { store: s2 } = make({ pageSize: 64 * KiB, itemSizeMax: MiB, memoryBytes: MiB });
  t.equal(set(s2, 'x', new Uint8Array(64 * KiB)), Status.TooLarge);
});

t.test('LRU: least recently used goes first, an item hit again survives', async (t) => {
  const pageSize = 64 * KiB;
  const { store, stats } = make({ pageSize, memoryBytes: pageSize, itemSizeMax: pageSize });
  const v = 'v'.repeat(100); // 48 + 4 + 100 = 152: class 3, 431 per page
  const perPage = Math.floor(pageSize / 152);
  for (let i = 0; i < perPage; i++) t.equal(set(store, `k${String(i).padStart(3, '0')}`, v), Status.Stored);
  t.equal(stats().counters.evictions, 0);
  t.ok(store.get(k('k001')) > 0); // k001 becomes active
  t.equal(set(store, 'new1', v), Status.Stored);
  t.equal(set(store, 'new2', v), Status.Stored);
  t.equal(store.get(k('k000')), 0, 'oldest evicted first');
  t.ok(store.get(k('k001')) > 0, 'recently hit item survived');
  t.equal(store.get(k('k002')), 0, 'next oldest evicted');
  t.ok(store.get(k('k003')) > 0);
  const c = stats().counters;
  t.equal(c.evictions, 2);
  t.equal(c.evicted_unfetched, 2);
  t.ok(c.moves_to_warm! >= 1);
  t.equal(c.curr_items, perPage);
});

t.test('allocation reuses expired items at the LRU tail before evicting', async (t) => {
  const pageSize = 64 * KiB;
  const { store, stats, clock } = make({ pageSize, memoryBytes: pageSize, itemSizeMax: pageSize });
  const v = 'v'.repeat(100);
  for (let i = 0; i < 431; i++) set(store, `k${String(i).padStart(3, '0')}`, v, i < 3 ? 5 : 0);
  clock.t += 5;
  for (let i = 0; i < 3; i++) t.equal(set(store, `new${i}`, v), Status.Stored);
  let c = stats().counters;
  t.equal(c.evictions, 0, 'no eviction: expired items were reclaimed');
  t.equal(c.reclaimed, 3);
  t.equal(c.expired_unfetched, 3);
  t.equal(set(store, 'new3', v), Status.Stored);
  c = stats().counters;
  t.equal(c.evictions, 1);
  t.equal(store.get(k('k003')), 0);
  t.equal(stats().classes[0]!.evicted_nonzero, 0);
});

function xorshift(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

t.test('16 pages, 100k sets of 100 B .. 100 KB: always stored, never over budget', async (t) => {
  const cfg = cfgOf({ memoryBytes: 16 * MiB });
  const L = computeLayout(cfg);
  const sab = new SharedArrayBuffer(Store.byteLength(cfg));
  t.equal(sab.byteLength, L.byteLength);
  const clock = new FakeClock();
  const store = new Store(sab, cfg, clock);
  const rnd = xorshift(42);
  const pool = new Uint8Array(200 * KiB).map(() => Math.floor(rnd() * 256));
  const written = new Map<string, [number, number]>(); // key -> [offset in pool, length]
  let failures = 0;
  let badRange = 0;
  let badContent = 0;
  let hits = 0;
  const budget = 16 * MiB;
  for (let i = 0; i < 100_000; i++) {
    if (i % 1000 === 0) clock.t++;
    const key = `key:${Math.floor(rnd() * 20000)}`;
    // Log-uniform sizes between 100 B and 100 KB.
    const len = Math.floor(100 * Math.pow(1000, rnd()));
    const off = Math.floor(rnd() * 100 * KiB);
    if (set(store, key, pool.subarray(off, off + len)) !== Status.Stored) failures++;
    written.set(key, [off, len]);
    const ref = store.lastRef;
    const byte = ref * 8;
    const total = ITEM_HEADER_BYTES + key.length + len;
    const inPage = (byte - L.pageAreaByte) % cfg.pageSize;
    if (byte < L.pageAreaByte || byte + total > L.byteLength || inPage + total > cfg.pageSize) badRange++;
    if (i % 7 === 0) {
      const probe = `key:${Math.floor(rnd() * 20000)}`;
      const r = store.get(k(probe));
      if (r !== 0) {
        hits++;
        const [o, n] = written.get(probe)!;
        if (Buffer.compare(Buffer.from(store.valueOf(r)), Buffer.from(pool.subarray(o, o + n))) !== 0) badContent++;
      }
    }
    if (i % 5000 === 0) {
      const s = readShardStats(sab, cfg, clock.t);
      if (s.counters.total_malloced! > budget || s.counters.bytes! > budget) badRange++;
    }
  }
  t.equal(failures, 0, 'every set stored');
  t.equal(badRange, 0, 'items inside the page area, inside one page, under budget');
  t.equal(badContent, 0, 'hits return the value last set');
  t.ok(hits > 100, `some probes hit (${hits})`);
  const s = readShardStats(sab, cfg, clock.t);
  const c = s.counters;
  t.equal(c.total_malloced, budget);
  t.ok(c.bytes! <= budget);
  t.ok(c.evictions! > 0);
  t.ok(c.slabs_moved! > 0, 'pages moved between classes');
  t.equal(c.curr_items, s.classes.reduce((a, x) => a + x.number, 0), 'curr_items = sum of classes');
  t.equal(c.bytes, s.classes.reduce((a, x) => a + x.mem_requested, 0), 'bytes = sum of mem_requested');
  t.equal(s.classes.reduce((a, x) => a + x.total_pages, 0), 16, 'all pages accounted for');
  for (const cl of s.classes) {
    if (cl.used_chunks + cl.free_chunks > cl.total_chunks) t.fail(`class ${cl.id} chunk accounting`);
    if (cl.number_hot + cl.number_warm + cl.number_cold !== cl.number) t.fail(`class ${cl.id} lru counts`);
  }
  // Every item still in the store is intact and findable.
  let live = 0;
  for (const [key, [o, n]] of written) {
    const r = store.get(k(key));
    if (r === 0) continue;
    live++;
    if (Buffer.compare(Buffer.from(store.valueOf(r)), Buffer.from(pool.subarray(o, o + n))) !== 0) badContent++;
  }
  t.equal(live, readShardStats(sab, cfg, clock.t).counters.curr_items, 'index and counters agree');
  t.equal(badContent, 0);
});

t.test('page rebalancing: a class that owns every page gives pages up', async (t) => {
  const pageSize = 64 * KiB;
  const { store, stats, clock } = make({ pageSize, memoryBytes: 4 * pageSize, itemSizeMax: pageSize });
  for (let i = 0; i < 4 * 431 + 100; i++) t.equal(set(store, `s${String(i).padStart(4, '0')}`, 'v'.repeat(99)), Status.Stored, 'small');
  t.equal(stats().classes.length, 1, 'one class holds all four pages');
  t.equal(stats().classes[0]!.total_pages, 4);
  for (let i = 0; i < 20; i++) {
    t.equal(set(store, `big${i}`, 'B'.repeat(20000)), Status.Stored);
    t.equal(val(store, `big${i}`)?.length, 20000);
  }
  const s = stats();
  t.ok(s.counters.slabs_moved! >= 1);
  t.ok(s.classes.length >= 2);
  // Older data in the small class yields a second page to the busy class.
  clock.t += 100;
  for (let i = 20; i < 60; i++) t.equal(set(store, `big${i}`, 'B'.repeat(20000)), Status.Stored);
  const big = stats().classes.find((c) => c.chunk_size >= 20000 + 48)!;
  t.ok(big.total_pages >= 2, `the busy class took pages from the idle one (${big.total_pages})`);
  t.equal(stats().classes.reduce((a, x) => a + x.total_pages, 0), 4);
});

t.test('crawl reclaims expired and flushed items', async (t) => {
  const { store, clock, stats } = make();
  for (let i = 0; i < 100; i++) set(store, `t${i}`, 'v', 10);
  for (let i = 0; i < 100; i++) set(store, `p${i}`, 'v');
  t.equal(store.crawl(1_000_000), 200);
  t.equal(stats().counters.curr_items, 200, 'nothing expired yet');
  clock.t += 10;
  let checked = 0;
  for (let i = 0; i < 10000 && checked < 200; i++) checked += store.crawl(50);
  t.equal(checked, 200, 'crawl resumes where it left off');
  const c = stats().counters;
  t.equal(c.curr_items, 100);
  t.equal(c.crawler_reclaimed, 100);
  t.equal(c.reclaimed, 100);
  t.equal(c.expired_unfetched, 100);
  t.equal(c.crawler_items_checked, 400);
  t.equal(val(store, 'p5'), 'v');
  store.flushAll(0);
  store.crawl(1_000_000);
  t.equal(stats().counters.curr_items, 0);
  t.equal(stats().counters.bytes, 0);
});

t.test('readShardStats matches the operations performed', async (t) => {
  const { store, stats, sab, cfg } = make();
  set(store, 'a', '1');
  set(store, 'b', '22');
  store.get(k('a'));
  store.get(k('a'));
  store.get(k('x'));
  store.delete(k('b'));
  store.delete(k('b'));
  store.incrDecr(k('a'), true, 5n);
  store.incrDecr(k('a'), false, 1n);
  store.incrDecr(k('q'), true, 1n);
  store.incrDecr(k('q'), false, 1n);
  const cas = store.casOf(store.get(k('a')));
  store.store(Mode.Cas, k('a'), 0, 0, k('9'), cas + 100);
  store.store(Mode.Cas, k('a'), 0, 0, k('9'), cas);
  store.store(Mode.Cas, k('zz'), 0, 0, k('9'), cas);
  store.touch(k('a'), 0);
  const s = stats();
  const c = s.counters;
  const expect: Record<string, number> = {
    cmd_get: 4, get_hits: 3, get_misses: 1, cmd_set: 5, delete_hits: 1, delete_misses: 1,
    incr_hits: 1, incr_misses: 1, decr_hits: 1, decr_misses: 1, cas_hits: 1, cas_badval: 1,
    cas_misses: 1, cmd_touch: 1, touch_hits: 1, touch_misses: 0, curr_items: 1, total_items: 3,
    bytes: ITEM_HEADER_BYTES + 2, total_malloced: MiB, evictions: 0,
  };
  for (const [name, v] of Object.entries(expect)) t.equal(c[name], v, name);
  const cls = s.classes.find((x) => x.id === 1)!;
  t.equal(cls.chunk_size, 96);
  t.equal(cls.chunks_per_page, Math.floor(MiB / 96));
  t.equal(cls.total_pages, 1);
  t.equal(cls.used_chunks, 1);
  t.equal(cls.number, 1);
  t.equal(cls.get_hits, 3);
  t.equal(cls.free_chunks, cls.total_chunks - 1);
  t.equal(s.hashPowerLevel >= 10, true);
  store.resetStats();
  const r = readShardStats(sab, cfg, 2).counters;
  t.equal(r.cmd_get, 0);
  t.equal(r.get_hits, 0);
  t.equal(r.total_items, 0);
  t.equal(r.curr_items, 1, 'curr_items survives stats reset');
  t.equal(r.bytes, ITEM_HEADER_BYTES + 2);
  t.equal(r.total_malloced, MiB);
});
