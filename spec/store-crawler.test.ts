import t from 'tap';
import { C, H_CRAWL_POS, S } from '../lib/store/layout.js';
import { key, putItem, smallShard } from './helpers/shard.js';

/** Items a0..a4 of class 1 and b0..b4 of class 2; the odd ones expire at 20. */
function mixed() {
  const s = smallShard();
  for (let i = 0; i < 5; i++) {
    putItem(s, `a${i}`, 'v', i % 2 === 1 ? 20 : 0);
    putItem(s, `b${i}`, 'v'.repeat(100), i % 2 === 1 ? 20 : 0);
  }
  const find = (k: string): number => s.index.find(key(k), s.index.hash(key(k)));
  const present = (prefix: string): boolean[] => [0, 1, 2, 3, 4].map((i) => find(`${prefix}${i}`) !== 0);
  const stat = (cls: number, name: keyof typeof S): number => s.m.f64[s.m.classStats(cls) + S[name]]!;
  return { ...s, find, present, stat };
}

t.test('crawl: removes the dead items it passes, from where it stopped', async (t) => {
  const s = mixed();
  t.same(s.crawler.crawl(100), { checked: 10, reclaimed: 0, passEnded: true }, 'looks at every item (one pass over 1024 buckets)');
  t.same(s.present('a'), [true, true, true, true, true], 'nothing is dead yet');
  s.m.now = 20;
  t.same(s.crawler.crawl(100), { checked: 10, reclaimed: 4, passEnded: true });
  t.same(s.present('a'), [true, false, true, false, true]);
  t.same(s.present('b'), [true, false, true, false, true]);
  t.equal(s.stat(1, 'crawler_reclaimed'), 2);
  t.equal(s.stat(1, 'reclaimed'), 2);
  t.equal(s.m.f64[s.m.counters + C.crawler_items_checked], 20);
  t.equal(s.m.f64[s.m.counters + C.curr_items], 6);
  t.equal(s.m.f64[H_CRAWL_POS], 0, 'a whole cycle ends where it started');
  t.equal(s.crawler.crawl(1).passEnded, false, 'a short crawl stops part way');
  t.ok(s.m.f64[H_CRAWL_POS]! > 0);
});

t.test('reclaimDead: chosen classes, a per-class limit, a resumable range', async (t) => {
  const s = mixed();
  s.m.now = 20;
  const seen = new Map<number, number>();
  t.equal(s.crawler.reclaimDead(0, 512, new Set([1]), 0, seen), 512, 'the next bucket');
  t.equal(s.crawler.reclaimDead(512, 4096, new Set([1]), 0, seen), -1, 'the end');
  t.equal(seen.get(1), 5, 'class 1 items looked at');
  t.equal(seen.get(2), undefined, 'class 2 not at all');
  t.same(s.present('a'), [true, false, true, false, true]);
  t.same(s.present('b'), [true, true, true, true, true]);
  const once = new Map<number, number>();
  s.crawler.reclaimDead(0, 1024, null, 1, once);
  t.equal(once.get(2), 1, 'at most one per class');
  t.equal(s.present('b').filter((p) => !p).length <= 1, true, 'so at most one class 2 item reclaimed');
});

t.test('forEachLive visits the live items and leaves the dead ones', async (t) => {
  const s = mixed();
  s.m.now = 20;
  const visited: string[] = [];
  const next = s.crawler.forEachLive(0, 1024, (ref) => visited.push(Buffer.from(s.items.keyOf(ref)).toString()));
  t.equal(next, -1);
  t.same(visited.sort(), ['a0', 'a2', 'a4', 'b0', 'b2', 'b4']);
  t.same(s.present('a'), [true, true, true, true, true], 'dead items are not removed');
  t.equal(s.crawler.forEachLive(0, 10, () => {}), 10);
});
