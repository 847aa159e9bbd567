import t from 'tap';
import { C, IF_ACTIVE, WARM } from '../lib/store/layout.js';
import { fullShard, smallShard } from './helpers/shard.js';

t.test('free memory first: no reclaim, no eviction', async (t) => {
  const s = smallShard();
  const r = s.evictor.chunkFor(1);
  t.not(r, 0);
  t.equal(s.m.f64[s.m.counters + C.direct_reclaims], 0);
});

t.test('a full class evicts its least recently used item', async (t) => {
  const s = fullShard();
  t.notOk(s.refs.includes(0), 'all 8 stored');
  t.equal(s.allocator.take(5), 0, 'nothing free');
  const r = s.evictor.chunkFor(5);
  t.equal(r, s.refs[0], 'the oldest item\'s chunk');
  t.equal(s.find('k0'), 0, 'evicted');
  t.equal(s.find('k1'), s.refs[1]);
  t.equal(s.stat(5, 'evicted'), 1);
  t.equal(s.counter('direct_reclaims'), 1);
});

t.test('a dead item near the tail is reused before anything is evicted', async (t) => {
  const s = fullShard();
  s.items.setExptime(s.refs[2]!, 1);
  const r = s.evictor.chunkFor(5);
  t.equal(r, s.refs[2]);
  t.equal(s.stat(5, 'reclaimed'), 1);
  t.equal(s.stat(5, 'evicted'), 0);
  t.equal(s.find('k0'), s.refs[0], 'the oldest live item stays');
});

t.test('an active item at the COLD tail gets a second chance', async (t) => {
  const s = fullShard({ segmented: false });
  s.items.setItemFlags(s.refs[0]!, s.items.itemFlags(s.refs[0]!) | IF_ACTIVE);
  t.equal(s.evictor.chunkFor(5), s.refs[1], 'the next one goes');
  t.equal(s.find('k0'), s.refs[0]);
  t.equal(s.lru.segmentOf(s.refs[0]!), WARM);
});

t.test('-M: out of memory instead of evicting', async (t) => {
  const s = fullShard({ evict: false });
  t.equal(s.evictor.chunkFor(5), 0);
  t.equal(s.stat(5, 'outofmemory'), 1);
  t.equal(s.find('k0'), s.refs[0]);
});

t.test('a class without a page takes one from another class', async (t) => {
  const s = fullShard();
  const r = s.evictor.chunkFor(1);
  t.not(r, 0);
  t.equal(s.allocator.pagesOf(1), 1);
  t.equal(s.allocator.pagesOf(5), 3);
  t.equal(s.allocator.pageOf(r), s.allocator.pageOf(s.refs[0]!), "the page of class 5's oldest data");
  t.equal(s.find('k0') + s.find('k1'), 0, 'its two items evicted');
  t.equal(s.counter('slabs_moved'), 1);
});
