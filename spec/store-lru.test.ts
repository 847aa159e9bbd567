import t from 'tap';
import { COLD, HOT, IF_ACTIVE, IF_FETCHED, K_COUNT, S, TEMP, WARM } from '../lib/store/layout.js';
import type { StoreTuning } from '../lib/store/tuning.js';
import { key, smallShard } from './helpers/shard.js';

/** Items of class 1 written and put on its LRU (not indexed: the LRU alone is under test). */
function lruOf(tuning: Partial<StoreTuning> = {}) {
  const s = smallShard({}, tuning);
  const add = (name: string, exp = 0): number => {
    const r = s.allocator.take(1);
    s.items.writeHeader(r, 1, key(name), 0, exp, 0, 1);
    s.lru.insert(r, 1);
    return r;
  };
  const count = (seg: number): number => s.m.u32[s.m.classState(1) + K_COUNT + seg]!;
  const stat = (name: keyof typeof S): number => s.m.f64[s.m.classStats(1) + S[name]]!;
  /** Refs of a segment from tail to head. */
  const walk = (seg: number): number[] => {
    const out: number[] = [];
    for (let r = s.lru.tail(1, seg); r !== 0; r = s.lru.prev(r)) out.push(r);
    return out;
  };
  return { ...s, add, count, stat, walk };
}

t.test('new items go to HOT, to COLD in flat mode, to TEMP with a short TTL', async (t) => {
  const seg = lruOf();
  const a = seg.add('a');
  const b = seg.add('b');
  t.same(seg.walk(HOT), [a, b], 'HOT, oldest at the tail');
  t.equal(seg.lru.segmentOf(b), HOT);
  t.equal(seg.lru.oldest(1), a, 'oldest falls back to the HOT tail');
  t.equal(seg.lru.oldestAge(2), Infinity, 'an empty class has no age');
  seg.m.now += 7;
  t.equal(seg.lru.oldestAge(1), 7);

  const flat = lruOf({ segmented: false });
  t.equal(flat.lru.segmentOf(flat.add('a')), COLD);

  const temp = lruOf({ tempLru: true, temporaryTtl: 61 });
  const short = temp.add('short', temp.m.now + 61);
  const long = temp.add('long', temp.m.now + 62);
  t.equal(temp.lru.segmentOf(short), TEMP);
  t.equal(temp.lru.segmentOf(long), HOT);
  temp.m.now += 100;
  temp.lru.bump(short, 1);
  t.equal(temp.items.itemFlags(short) & (IF_ACTIVE | IF_FETCHED), IF_ACTIVE | IF_FETCHED);
  t.same(temp.walk(TEMP), [short], 'TEMP items are never bumped');
  t.equal(temp.stat('hits_to_temp'), 1);
});

t.test('remove keeps heads, tails and counts right', async (t) => {
  const s = lruOf();
  const [a, b, c] = [s.add('a'), s.add('b'), s.add('c')];
  s.lru.remove(b, 1);
  t.same(s.walk(HOT), [a, c]);
  s.lru.remove(a, 1);
  t.same(s.walk(HOT), [c]);
  s.lru.remove(c, 1);
  t.same(s.walk(HOT), []);
  t.equal(s.count(HOT), 0);
  t.equal(s.lru.oldest(1), 0);
});

t.test('maintain moves HOT down to its cap, inactive items to COLD', async (t) => {
  const s = lruOf();
  const refs = ['a', 'b', 'c', 'd', 'e'].map((n) => s.add(n));
  s.lru.maintain(1);
  // 5 items, hot_lru_pct 20: HOT may keep one; at most 4 moves per call
  t.equal(s.count(HOT), 1);
  t.equal(s.count(COLD), 4);
  t.same(s.walk(COLD), refs.slice(0, 4), 'COLD keeps their order');
  t.equal(s.stat('moves_to_cold'), 4);

  const flat = lruOf({ segmented: false });
  for (const n of ['a', 'b', 'c']) flat.add(n);
  flat.lru.maintain(1);
  t.equal(flat.count(COLD), 3, 'flat mode: nothing to maintain');
  t.equal(flat.stat('moves_to_cold'), 0);
});

t.test('bumps: COLD needs two hits to reach WARM; HOT/WARM relink at most once a minute', async (t) => {
  const s = lruOf();
  const refs = ['a', 'b', 'c', 'd', 'e'].map((n) => s.add(n));
  s.lru.maintain(1);
  const cold = refs[0]!;
  s.lru.bump(cold, 1);
  t.equal(s.lru.segmentOf(cold), COLD, 'first hit: stays in COLD');
  t.ok(s.items.itemFlags(cold) & IF_ACTIVE, 'marked active');
  t.ok(s.items.fetched(cold));
  s.lru.bump(cold, 1);
  t.equal(s.lru.segmentOf(cold), WARM, 'second hit: to WARM');
  t.equal(s.items.itemFlags(cold) & IF_ACTIVE, 0, 'no longer active');
  t.equal(s.stat('moves_to_warm'), 1);
  t.equal(s.stat('hits_to_cold'), 2);

  const hot = lruOf();
  const [a, b] = [hot.add('a'), hot.add('b')];
  hot.m.now += 59;
  hot.lru.bump(a, 1);
  t.same(hot.walk(HOT), [a, b], 'within a minute: not relinked');
  t.equal(hot.items.lastAccessOf(a), hot.m.now, 'but its access time moves');
  hot.m.now += 60;
  hot.lru.bump(a, 1);
  t.same(hot.walk(HOT), [b, a], 'a minute later: back to the head');
});

t.test('rescue: an active COLD tail item gets a second chance in WARM', async (t) => {
  const s = lruOf({ segmented: false });
  const [a, b] = [s.add('a'), s.add('b')];
  s.items.setItemFlags(a, s.items.itemFlags(a) | IF_ACTIVE);
  s.lru.rescue(a, 1);
  t.equal(s.lru.segmentOf(a), WARM);
  t.equal(s.items.itemFlags(a) & IF_ACTIVE, 0);
  t.equal(s.lru.oldest(1), b, 'COLD is looked at before WARM');
  t.equal(s.stat('moves_to_warm'), 1);
});
