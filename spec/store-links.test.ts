import t from 'tap';
import { C, COLD, IF_FETCHED, S } from '../lib/store/layout.js';
import { key, putItem, smallShard } from './helpers/shard.js';

function linked() {
  const s = smallShard();
  const counter = (name: keyof typeof C): number => s.m.f64[s.m.counters + C[name]]!;
  const stat = (cls: number, name: keyof typeof S): number => s.m.f64[s.m.classStats(cls) + S[name]]!;
  const find = (k: string): number => s.index.find(key(k), s.index.hash(key(k)));
  return { ...s, counter, stat, find };
}

t.test('link puts an item in the index and on its LRU, and counts it', async (t) => {
  const s = linked();
  const r = putItem(s, 'k', 'value');
  t.equal(s.find('k'), r);
  t.ok(s.items.isLinked(r));
  // linked into HOT, then the link's LRU maintenance moved it on: HOT may hold 20% of one item
  t.equal(s.lru.segmentOf(r), COLD);
  t.equal(s.lru.oldest(1), r);
  t.equal(s.stat(1, 'moves_to_cold'), 1);
  t.equal(s.counter('curr_items'), 1);
  t.equal(s.counter('total_items'), 1);
  t.equal(s.counter('bytes'), 48 + 1 + 5);
  t.equal(s.stat(1, 'mem_requested'), 48 + 1 + 5);
});

t.test('unlink takes it out and uncounts it, but keeps its chunk; remove frees the chunk', async (t) => {
  const s = linked();
  const r = putItem(s, 'k', 'value');
  putItem(s, 'other');
  const spare = s.allocator.spareChunks(1);
  s.links.unlink(r);
  t.equal(s.find('k'), 0);
  t.notOk(s.items.isLinked(r));
  t.equal(s.lru.oldest(1), s.find('other'), 'off the LRU');
  t.equal(s.counter('curr_items'), 1);
  t.equal(s.counter('total_items'), 2, 'total_items is history');
  t.equal(s.counter('bytes'), 48 + 5 + 1);
  t.equal(s.allocator.spareChunks(1), spare, 'the chunk is the caller\'s');
  const o = s.find('other');
  s.links.remove(o);
  t.equal(s.allocator.spareChunks(1), spare + 1);
  t.equal(s.allocator.take(1), o, 'its chunk is the next one handed out');
  t.equal(s.counter('bytes'), 0);
});

t.test('reclaim and eviction counters; the observer hears of evictions', async (t) => {
  const s = linked();
  const heard: number[] = [];
  s.links.observer = { evicted: (ref) => heard.push(ref) };
  const a = putItem(s, 'a', 'v', 50);
  const b = putItem(s, 'b');
  s.items.setItemFlags(b, s.items.itemFlags(b) | IF_FETCHED);
  s.m.now = 30;
  s.links.countEviction(a, 1);
  t.same(heard, [a]);
  t.same(
    [s.stat(1, 'evicted'), s.stat(1, 'evicted_nonzero'), s.stat(1, 'evicted_unfetched'), s.stat(1, 'evicted_time')],
    [1, 1, 1, 20],
  );
  s.links.countEviction(b, 1);
  t.same([s.stat(1, 'evicted'), s.stat(1, 'evicted_nonzero'), s.stat(1, 'evicted_unfetched')], [2, 1, 1], 'b: no TTL, fetched');
  s.links.countReclaim(a, 1);
  s.links.countReclaim(b, 1);
  t.same([s.stat(1, 'reclaimed'), s.stat(1, 'expired_unfetched')], [2, 1]);
});

t.test('stats sizes counts items linked once tracking is on', async (t) => {
  const s = linked();
  const before = putItem(s, 'old');
  t.notOk(s.links.tracksSizes);
  s.links.setSizeTracking(true);
  t.ok(s.links.tracksSizes);
  const r = putItem(s, 'new', 'x'.repeat(40));
  const bucket = Math.ceil(s.items.memcachedSize(r) / 32);
  t.equal(s.links.sizeHistogram()[bucket], 1);
  s.links.remove(before);
  t.equal(s.links.sizeHistogram().reduce((a, b) => a + b, 0), 1, 'an item from before is not uncounted');
  s.links.remove(r);
  t.equal(s.links.sizeHistogram()[bucket], 0);
  s.links.setSizeTracking(false);
  t.notOk(s.links.tracksSizes);
});
