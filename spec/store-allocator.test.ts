import t from 'tap';
import { H_PAGES_USED, K_FREE_COUNT } from '../lib/store/layout.js';
import { smallShard } from './helpers/shard.js';

// 4 KiB pages, 4 of them; classes 96 192 384 768 2048 (42, 21, 10, 5 and 2 per page).

t.test('class table and classFor', async (t) => {
  const { allocator } = smallShard();
  t.same([1, 2, 3, 4, 5].map((c) => allocator.perPage(c)), [42, 21, 10, 5, 2]);
  t.same([1, 96, 97, 192, 193, 2048, 5000].map((n) => allocator.classFor(n)), [1, 1, 2, 2, 3, 5, 5]);
});

t.test('carving: consecutive chunks, a page per class on demand', async (t) => {
  const { allocator, m } = smallShard();
  const a = allocator.take(1);
  const b = allocator.take(1);
  t.equal(b - a, 96 / 8, 'next chunk of the page');
  t.equal(allocator.pageOf(a), 0);
  t.equal(m.u32[m.pageTable + 0], 1, 'the page table names the owner');
  t.equal(allocator.pagesOf(1), 1);
  t.equal(allocator.spareChunks(1), 40);
  for (let i = 2; i < 42; i++) allocator.take(1);
  t.equal(allocator.spareChunks(1), 0);
  const c = allocator.take(1);
  t.equal(allocator.pageOf(c), 1, 'a full page: the next page');
  t.equal(allocator.pagesOf(1), 2);
  t.equal(allocator.pagesInUse(), 2);
  t.equal(allocator.firstPageOf(1), 0);
  t.equal(allocator.pageOf(allocator.take(2)), 2, 'another class: its own page');
});

t.test('free lists are last in, first out', async (t) => {
  const { allocator } = smallShard();
  const a = allocator.take(3);
  const b = allocator.take(3);
  allocator.freeChunk(3, a);
  allocator.freeChunk(3, b);
  t.equal(allocator.spareChunks(3), 8 + 2);
  t.equal(allocator.take(3), b);
  t.equal(allocator.take(3), a);
});

t.test('the page limit: take gives 0 instead of a page beyond it', async (t) => {
  const { allocator, m } = smallShard();
  const got: number[] = [];
  for (let r = allocator.take(5); r !== 0; r = allocator.take(5)) got.push(r);
  t.equal(got.length, 8, '4 pages of 2 chunks');
  t.equal(allocator.take(1), 0, 'no page left for another class either');
  t.equal(m.f64[H_PAGES_USED], 4);
  allocator.pageLimit = 3;
  t.equal(allocator.pageLimit, 3);
});

t.test('taking a page away: stopCarving, chunkAt, releasePage, the pool', async (t) => {
  const { allocator, m } = smallShard();
  const first = [allocator.take(1), allocator.take(1), allocator.take(1)];
  t.equal(allocator.chunkAt(1, 0, 2), first[2]);
  allocator.take(2); // page 1, for class 2
  allocator.freeChunk(1, first[1]!);
  t.equal(allocator.stopCarving(1, 0), 3, 'three chunks of the page were handed out');
  t.equal(allocator.stopCarving(2, 0), 21, 'a page not being carved: all its chunks count');
  t.equal(allocator.spareChunks(1), 1, 'no more carving from page 0');
  allocator.releasePage(1, 0);
  t.equal(m.u32[m.classState(1) + K_FREE_COUNT], 0, "the page's free chunks left the free list");
  t.equal(allocator.pagesOf(1), 0);
  t.equal(m.u32[m.pageTable + 0], 0, 'no owner');
  allocator.addToPool();
  t.equal(allocator.poolPages(), 1);
  t.equal(allocator.pagesInUse(), 1);
  const r = allocator.take(4);
  t.equal(allocator.pageOf(r), 0, 'the pooled page is used before a new one');
  t.equal(allocator.poolPages(), 0);
  t.equal(m.f64[H_PAGES_USED], 2, 'no new page taken');
});

t.test('givePage keeps the rest of the page a class was carving', async (t) => {
  const { allocator } = smallShard();
  allocator.take(1); // page 0: 41 left to carve
  allocator.take(2); // page 1
  allocator.stopCarving(2, 1);
  allocator.freeChunk(2, allocator.chunkAt(2, 1, 0));
  allocator.releasePage(2, 1);
  allocator.givePage(1, 1);
  t.equal(allocator.pagesOf(1), 2);
  t.equal(allocator.spareChunks(1), 41 + 42, 'the old page rest went to the free list');
  t.equal(allocator.pageOf(allocator.carve(1)), 1, 'carving goes on in the new page');
});

t.test('commitPages writes the page memory', async (t) => {
  const { allocator, m } = smallShard();
  const r = allocator.take(1);
  m.u8[r * 8 + 100] = 5;
  allocator.commitPages();
  t.equal(m.u8[r * 8 + 100], 0);
});
