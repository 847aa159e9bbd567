import t from 'tap';
import { fnv1a32 } from '../lib/hash.js';
import { INDEX_START_BUCKETS } from '../lib/store/hash-index.js';
import { H_INDEX_BASE } from '../lib/store/layout.js';
import { Store } from '../lib/store/store.js';
import { key, PROCESS_STARTED, smallConfig, smallShard } from './helpers/shard.js';

function withItems(names: string[]) {
  const s = smallShard();
  const refs = names.map((n) => {
    const r = s.allocator.take(1);
    s.items.writeHeader(r, 1, key(n), 0, 0, 0, 1);
    return r;
  });
  return { ...s, refs };
}

t.test('insert, find and remove', async (t) => {
  const { index, refs } = withItems(['alpha', 'beta']);
  t.equal(index.hash(key('alpha')), fnv1a32(key('alpha'), 0, 5), 'the index hashes with fnv1a32');
  t.equal(index.find(key('alpha'), index.hash(key('alpha'))), 0, 'empty index');
  for (const [i, n] of ['alpha', 'beta'].entries()) index.insert(refs[i]!, index.hash(key(n)));
  t.equal(index.find(key('alpha'), index.hash(key('alpha'))), refs[0]);
  t.equal(index.find(key('beta'), index.hash(key('beta'))), refs[1]);
  t.equal(index.find(key('alph'), index.hash(key('alph'))), 0, 'a prefix is another key');
  index.remove(refs[0]!);
  t.equal(index.find(key('alpha'), index.hash(key('alpha'))), 0);
  t.equal(index.find(key('beta'), index.hash(key('beta'))), refs[1], 'the other key stays');
});

t.test('one chain: head insertion, unlinking head, middle and tail', async (t) => {
  const names = ['a', 'b', 'c', 'd'];
  const { index, refs, m } = withItems(names);
  // the same hash for all four keys puts them on one chain
  for (const r of refs) index.insert(r, 7);
  const chain = (): number[] => {
    const out: number[] = [];
    index.visitGroup(7, (r) => out.push(r));
    return out;
  };
  t.same(chain(), [refs[3], refs[2], refs[1], refs[0]], 'newest first');
  for (const [i, n] of names.entries()) t.equal(index.find(key(n), 7), refs[i], `finds ${n} on the shared chain`);
  t.equal(index.find(key('a'), 7 + m.bucketCount), refs[0], 'hashes wrap onto the table');
  // remove() finds the bucket by hashing the stored key, so give the items their real buckets
  const { index: real, refs: r2 } = withItems(names);
  for (const [i, n] of names.entries()) real.insert(r2[i]!, real.hash(key(n)));
  real.remove(r2[1]!);
  t.equal(real.find(key('b'), real.hash(key('b'))), 0);
  t.same(names.map((n) => real.find(key(n), real.hash(key(n))) !== 0), [true, false, true, true]);
});

t.test('remove of a non-head item on a chain of keys that really collide', async (t) => {
  // find keys sharing a bucket of the 1024-bucket table
  const s = smallShard();
  const mask = s.m.bucketCount - 1;
  const byBucket = new Map<number, string[]>();
  let trio: string[] = [];
  for (let i = 0; trio.length === 0; i++) {
    const n = `k${i}`;
    const b = s.index.hash(key(n)) & mask;
    const list = byBucket.get(b) ?? [];
    list.push(n);
    byBucket.set(b, list);
    if (list.length === 3) trio = list;
  }
  const refs = trio.map((n) => {
    const r = s.allocator.take(1);
    s.items.writeHeader(r, 1, key(n), 0, 0, 0, 1);
    s.index.insert(r, s.index.hash(key(n)));
    return r;
  });
  s.index.remove(refs[1]!); // the middle of [2, 1, 0]
  t.same(trio.map((n) => s.index.find(key(n), s.index.hash(key(n)))), [refs[0], 0, refs[2]]);
  s.index.remove(refs[0]!); // now the tail
  t.same(trio.map((n) => s.index.find(key(n), s.index.hash(key(n)))), [0, 0, refs[2]]);
  s.index.remove(refs[2]!); // the head and last
  let left = 0;
  s.index.visitGroup(s.index.hash(key(trio[0]!)) & mask, () => left++);
  t.equal(left, 0, 'bucket empty');
});

/** A shard of 8 MB whose index may grow from 1024 to 65536 buckets, with n items on it. */
function grownShard(n: number, from = 0) {
  const s = smallShard({ memoryBytes: 8 * 1024 * 1024, pageSize: 64 * 1024 });
  const refs = new Map<string, number>();
  const add = (count: number, start: number): void => {
    for (let i = start; i < start + count; i++) {
      const name = `key:${i}`;
      const r = s.allocator.take(1);
      s.items.writeHeader(r, 1, key(name), 0, 0, 0, 1);
      s.index.insert(r, s.index.hash(key(name)));
      refs.set(name, r);
    }
  };
  add(n, from);
  const found = (name: string) => s.index.find(key(name), s.index.hash(key(name)));
  const walk = (groups: number[]): number[] => {
    const seen: number[] = [];
    for (const g of groups) s.index.visitGroup(g, (r) => seen.push(r));
    return seen;
  };
  return { ...s, refs, add, found, walk };
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

t.test('the index grows with its items, one split per insert past 1.5 items per bucket', async (t) => {
  const s = grownShard(0);
  t.equal(s.index.capacity, 65536, 'the layout reserves a bucket per two smallest items of -m');
  t.equal(s.index.size, INDEX_START_BUCKETS, 'a fresh index starts small');
  s.add(1536, 0);
  t.equal(s.index.size, INDEX_START_BUCKETS, 'up to 1.5 items per bucket it does not grow');
  s.add(1, 1536);
  t.equal(s.index.size, INDEX_START_BUCKETS + 1, 'the next insert splits one bucket');
  s.add(20_000 - 1537, 1537);
  t.ok(s.index.size >= 20_000 / 1.5 && s.index.size < 20_000 / 1.5 + 1, `20,000 items on ${s.index.size} buckets`);
  t.equal(s.m.f64[H_INDEX_BASE], 8192, 'base 8192 after three doublings');
  const missing = [...s.refs].filter(([name, r]) => s.found(name) !== r);
  t.same(missing, [], 'every item is found after the splits');
  const { u32 } = s.m;
  const written = range(s.index.size, s.index.capacity).filter((b) => u32[s.m.buckets + b] !== 0);
  t.same(written, [], 'no bucket past the ones in use holds anything');
  const inUse = range(0, s.index.size).filter((b) => u32[s.m.buckets + b] !== 0).length;
  t.ok(inUse > s.index.size * 0.7, `the items spread over the buckets (${inUse} of ${s.index.size} hold some)`);
  for (let i = 0; i < 20_000; i += 2) s.index.remove(s.refs.get(`key:${i}`)!);
  const wrong = [...s.refs].filter(([name, r]) => s.found(name) !== (Number(name.slice(4)) % 2 === 0 ? 0 : r));
  t.same(wrong, [], 'removing half of them leaves exactly the other half');
});

t.test('the index stops growing at the capacity the layout reserved', async (t) => {
  // 96 pages of 42 smallest chunks; a bucket per two of the 4,096 items 96 B chunks could give
  const s = smallShard({ memoryBytes: 96 * 4096 });
  const cap = s.index.capacity;
  t.equal(cap, 2048);
  const names = range(0, 4000).map((i) => `k${i}`);
  const refs = names.map((n) => {
    const r = s.allocator.take(1);
    s.items.writeHeader(r, 1, key(n), 0, 0, 0, 1);
    s.index.insert(r, s.index.hash(key(n)));
    return r;
  });
  t.notOk(refs.includes(0), 'the chunks were there');
  t.equal(s.index.size, cap, `${names.length} items on the ${cap} buckets reserved`);
  t.same(names.filter((n, i) => s.index.find(key(n), s.index.hash(key(n))) !== refs[i]), [], 'all found');
});

t.test('a walk group by group meets every item exactly once, even while the table grows', async (t) => {
  const s = grownShard(3000);
  const before = new Set(s.refs.values());
  const all = s.walk(range(0, INDEX_START_BUCKETS));
  t.equal(all.length, 3000);
  t.same(new Set(all), before, 'a whole walk sees each item');
  const firstHalf = s.walk(range(0, 512));
  s.add(30_000, 3000); // grows the table from 2,000 to 22,000 buckets between the halves
  const secondHalf = s.walk(range(512, INDEX_START_BUCKETS));
  const old = [...firstHalf, ...secondHalf].filter((r) => before.has(r));
  t.equal(old.length, 3000, 'no item seen twice');
  t.same(new Set(old), before, 'none missed');
});

t.test('a store over a used buffer starts a fresh index and clears only the buckets in use', async (t) => {
  const s = grownShard(20_000);
  const grown = s.index.size;
  new Store(s.sab, smallConfig({ memoryBytes: 8 * 1024 * 1024, pageSize: 64 * 1024 }), { now: () => 10, processStarted: PROCESS_STARTED });
  t.equal(s.index.size, INDEX_START_BUCKETS, 'back to the first size');
  t.same(range(0, grown).filter((b) => s.m.u32[s.m.buckets + b] !== 0), [], `all ${grown} buckets it had used are empty`);
  t.equal(s.found('key:7'), 0, 'the old items are gone');
});

t.test('reset: a first size rounded down to a power of two within the bounds, and growth off', async (t) => {
  const s = grownShard(0);
  for (const [asked, got] of [[0, 1024], [1500, 1024], [5000, 4096], [1 << 20, 65536]] as const) {
    s.index.reset(asked, true);
    t.equal(s.index.size, got, `${asked} buckets asked: ${got}`);
  }
  s.index.reset(2048, false);
  s.add(10_000, 0);
  t.equal(s.index.size, 2048, 'without growth the table keeps its size');
  t.same([...s.refs].filter(([name, r]) => s.found(name) !== r), [], 'and finds every item on longer chains');
});
