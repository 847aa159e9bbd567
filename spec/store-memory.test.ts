import t from 'tap';
import { CLASS_F64_SLOTS, CLASS_U32_SLOTS, computeLayout } from '../lib/store/layout.js';
import { ShardMemory } from '../lib/store/memory.js';
import { smallConfig } from './helpers/shard.js';

t.test('views, offsets and classes come from the layout', async (t) => {
  const L = computeLayout(smallConfig());
  const m = new ShardMemory(new SharedArrayBuffer(L.byteLength), L);
  m.f64[m.counters] = 1.5;
  t.equal(new DataView(m.u8.buffer).getFloat64(L.countersF64 * 8, true), 1.5, 'all views share the buffer');
  t.equal(m.u32.length, L.byteLength / 4);
  t.equal(m.pageRef0, L.pageAreaByte / 8, 'page refs start at the page area');
  t.equal(m.pageRefs, 4096 / 8);
  t.same(Array.from(m.chunkSizes), [96, 192, 384, 768, 2048]);
  t.equal(m.classCount, 5);
  t.equal(m.maxChunk, 2048);
  t.equal(m.classStats(3), L.classF64 + 3 * CLASS_F64_SLOTS);
  t.equal(m.classState(3), L.classU32 + 3 * CLASS_U32_SLOTS);
  t.equal(m.buckets, L.bucketsU32);
  t.equal(m.bucketCount, L.bucketCount);
});

t.test('a buffer smaller than the layout is refused', async (t) => {
  const L = computeLayout(smallConfig());
  t.throws(() => new ShardMemory(new SharedArrayBuffer(L.byteLength - 8), L), RangeError);
});
