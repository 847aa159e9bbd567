import t from 'tap';
import { H_AUTOMOVE_SECOND, H_AUTOMOVE_TICKS, S } from '../lib/store/layout.js';
import { fullShard, putItem, smallShard } from './helpers/shard.js';

t.test('slabs reassign: refusals', async (t) => {
  const s = fullShard();
  t.equal(s.mover.reassign(1, 1), 'same');
  t.equal(s.mover.reassign(99, 1), 'badclass');
  t.equal(s.mover.reassign(5, 1.5), 'badclass');
  t.equal(s.mover.reassign(1, 5), 'nospare', 'class 1 has no page');
  t.equal(s.mover.reassign(0, 1), 'nospare', 'the pool is empty');
  t.equal(s.counter('slabs_moved'), 0);
});

t.test('slabs reassign moves the page with the oldest data, evicting its items', async (t) => {
  const s = fullShard();
  // page 0 gets the newest data: the oldest is now on page 1
  s.links.remove(s.refs[0]!);
  s.links.remove(s.refs[1]!);
  t.equal(s.allocator.pageOf(putItem(s, 'k8', 'x'.repeat(1900))), 0);
  t.equal(s.allocator.pageOf(putItem(s, 'k9', 'x'.repeat(1900))), 0);
  const page = s.allocator.pageOf(s.refs[2]!);
  t.equal(page, 1);
  t.equal(s.mover.reassign(5, 1), 'ok');
  t.equal(s.allocator.pagesOf(5), 3);
  t.equal(s.allocator.pagesOf(1), 1);
  t.equal(s.m.u32[s.m.pageTable + page], 1, 'the page is class 1\'s now');
  t.equal(s.find('k2') + s.find('k3'), 0);
  t.ok(s.find('k8') && s.find('k9'), 'page 0 kept');
  t.equal(s.find('k4'), s.refs[4]);
  t.equal(s.counter('curr_items'), 6);
  t.equal(s.m.f64[s.m.classStats(5) + S.evicted], 2);
  t.equal(s.counter('slabs_moved'), 1);
  t.equal(s.allocator.pageOf(s.allocator.take(1)), page, 'class 1 carves it');
});

t.test('to and from the pool; -1 picks the class with the most pages', async (t) => {
  const s = fullShard();
  t.equal(s.mover.reassign(5, 0), 'ok');
  t.equal(s.mover.reassign(-1, 0), 'ok', 'class 5 again');
  t.equal(s.allocator.poolPages(), 2);
  t.equal(s.allocator.pagesOf(5), 2);
  t.equal(s.mover.reassign(0, 2), 'ok');
  t.equal(s.allocator.pagesOf(2), 1);
  t.equal(s.mover.reassign(0, 2), 'nospare', 'the pool keeps its last page');
});

t.test('cache_memlimit: shrinking empties pages into the pool', async (t) => {
  const s = fullShard();
  t.notOk(s.mover.setPageLimit(0));
  t.notOk(s.mover.setPageLimit(5), 'beyond the address space');
  t.ok(s.mover.setPageLimit(2));
  t.equal(s.allocator.pageLimit, 2);
  t.equal(s.allocator.pagesInUse(), 2);
  t.equal(s.allocator.poolPages(), 2);
  t.equal(s.counter('curr_items'), 4);
  t.same(['k0', 'k1', 'k2', 'k3'].map((k) => s.find(k)), [0, 0, 0, 0], 'the oldest data went');
  t.equal(s.allocator.take(1), 0, 'no page beyond the limit');
  t.ok(s.mover.setPageLimit(4));
  t.not(s.allocator.take(1), 0, 'grown back: the pool serves again');
});

t.test('rebalance: a needy class always gets a page, an evicting one only when eager', async (t) => {
  const s = fullShard();
  t.ok(s.mover.rebalance(1, false), 'class 1 has no page');
  t.equal(s.allocator.pagesOf(1), 1);
  putItem(s, 'small');
  t.notOk(s.mover.rebalance(1, false), 'it has data now: not without slab_automove=2');
  s.m.now += 100; // class 1's data gets old, class 5's is older still
  t.ok(s.mover.rebalance(1, true), 'eager: from a class keeping older data');
  t.equal(s.allocator.pagesOf(1), 2);
});

t.test('the windowed mover looks once a second when slab_automove=1', async (t) => {
  const s = smallShard({}, { automove: 1 });
  s.mover.tick();
  s.mover.tick();
  t.equal(s.m.f64[H_AUTOMOVE_TICKS], 1, 'once in a second');
  t.equal(s.m.f64[H_AUTOMOVE_SECOND], s.m.now);
  s.m.now++;
  s.mover.tick();
  t.equal(s.m.f64[H_AUTOMOVE_TICKS], 2);
  const off = smallShard({}, { automove: 0 });
  off.mover.tick();
  t.equal(off.m.f64[H_AUTOMOVE_TICKS], 0, 'not at all with slab_automove=0');
});
