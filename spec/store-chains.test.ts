import t from 'tap';
import type { ChunkSource } from '../lib/store/chains.js';
import { IF_CHUNK, K_CHUNKS, K_FREE_COUNT, S } from '../lib/store/layout.js';
import { key, smallShard } from './helpers/shard.js';

// The largest chunk is 2048 bytes: a continuation chunk holds 2000 value bytes, a head with a
// 3-byte key 2048 - 48 - 3 = 1997.

const MAX = 5; // the largest class

function chained() {
  const s = smallShard();
  let calls = 0;
  let failAt = Infinity;
  const source: ChunkSource = {
    chunkFor: (cls) => (++calls >= failAt ? 0 : s.allocator.take(cls)),
  };
  const failFrom = (n: number): void => {
    calls = 0;
    failAt = n;
  };
  const u32At = (slot: number): number => s.m.u32[s.m.classState(MAX) + slot]!;
  return { ...s, source, failFrom, u32At, calls: () => calls };
}

t.test('geometry: continuation chunks and the bytes an item counts', async (t) => {
  const { chains } = chained();
  t.equal(chains.contsFor(3, 1997), 0, 'fills the largest chunk exactly');
  t.equal(chains.contsFor(3, 1998), 1);
  t.equal(chains.contsFor(3, 1997 + 2000), 1);
  t.equal(chains.contsFor(3, 1997 + 2001), 2);
  t.equal(chains.itemBytes(3, 100), 48 + 3 + 100);
  t.equal(chains.itemBytes(3, 1998), 48 + 3 + 1998 + 48, 'a chunk header per continuation chunk');
});

t.test('allocate, attach, write and copy a value over three chunks, free the chain', async (t) => {
  const { chains, items, source, u32At, lifetime } = chained();
  const value = Buffer.alloc(1997 + 2000 + 500);
  for (let i = 0; i < value.length; i++) value[i] = (i * 7) & 255;
  const head = chains.allocate(chains.contsFor(3, value.length), source);
  t.not(head, 0);
  items.writeHeader(head, MAX, key('big'), 0, 0, value.length, lifetime.nextCas());
  chains.attach(head);
  const c1 = items.chainOf(head);
  t.not(c1, 0, 'the head points to its chain');
  t.equal(items.itemFlags(c1), IF_CHUNK, 'continuation chunks are marked as such');
  t.equal(chains.headOf(c1), head);
  t.equal(u32At(K_CHUNKS), 2);
  chains.write(head, value);
  const out = Buffer.alloc(value.length + 4);
  chains.copyValue(head, out, 4);
  t.ok(out.subarray(4).equals(value), 'copied back whole, at the offset asked');
  const freeBefore = u32At(K_FREE_COUNT);
  chains.free(head);
  t.equal(items.chainOf(head), 0);
  t.equal(u32At(K_CHUNKS), 0);
  t.equal(u32At(K_FREE_COUNT), freeBefore + 2, 'continuation chunks freed, the head left to the caller');
});

t.test('copyValue of a one-chunk item', async (t) => {
  const { chains, items, allocator, m } = chained();
  const r = allocator.take(1);
  m.u8.set(key('hello'), items.writeHeader(r, 1, key('k'), 0, 0, 5, 1));
  const out = Buffer.alloc(5);
  chains.copyValue(r, out, 0);
  t.equal(out.toString(), 'hello');
});

t.test('a failed allocation gives back what it held', async (t) => {
  const { chains, source, failFrom, u32At, m, calls } = chained();
  failFrom(3);
  t.equal(chains.allocate(2, source), 0);
  t.equal(u32At(K_FREE_COUNT), 2, 'the two chunks it got are free again');
  // more chunks than the page limit could ever hold: refused before asking for any
  failFrom(Infinity);
  const before = m.f64[m.classStats(MAX) + S.outofmemory]!;
  t.equal(chains.allocate(8, source), 0, '9 chunks > 4 pages x 2');
  t.equal(m.f64[m.classStats(MAX) + S.outofmemory], before + 1);
  t.equal(calls(), 0, 'without asking for a chunk');
  t.not(chains.allocate(7, source), 0, '8 chunks fit');
});
