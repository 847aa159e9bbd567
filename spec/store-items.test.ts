import t from 'tap';
import { memcachedItemSize } from '../lib/protocol/command.js';
import { IF_FETCHED, IF_LINKED, MF_STALE } from '../lib/store/layout.js';
import { key, smallShard } from './helpers/shard.js';

t.test('writeHeader writes every field the accessors read back', async (t) => {
  const { items, allocator, m } = smallShard();
  m.now = 42;
  const ref = allocator.take(1);
  const at = items.writeHeader(ref, 1, key('some-key'), -1, 500, 5, 77);
  t.equal(at, ref * 8 + 48 + 8, 'value goes right after the 48-byte header and the key');
  t.equal(items.valueStart(ref), at);
  t.equal(Buffer.from(items.keyOf(ref)).toString(), 'some-key');
  t.equal(items.keyLength(ref), 8);
  t.equal(items.flagsOf(ref), 0xffffffff, 'client flags are u32');
  t.equal(items.exptimeOf(ref), 500);
  t.equal(items.lastAccessOf(ref), 42, 'accessed now');
  t.equal(items.casOf(ref), 77);
  t.equal(items.valueLength(ref), 5);
  t.equal(items.classOf(ref), 1);
  t.equal(items.itemFlags(ref), 0);
  t.notOk(items.isLinked(ref));
  t.equal(items.metaFlags(ref), 0);
  t.equal(items.chainOf(ref), 0);
  t.equal(items.memcachedSize(ref), memcachedItemSize(8, 5, 0xffffffff));
});

t.test('setters change one field each', async (t) => {
  const { items, allocator } = smallShard();
  const a = allocator.take(1);
  const b = allocator.take(1);
  items.writeHeader(a, 1, key('a'), 1, 0, 1, 10);
  items.writeHeader(b, 1, key('b'), 2, 0, 1, 20);
  items.setExptime(a, 99);
  items.setLastAccess(a, 7);
  items.setCas(a, 11);
  items.setItemFlags(a, IF_LINKED | IF_FETCHED);
  items.setMetaFlags(a, MF_STALE);
  t.equal(items.exptimeOf(a), 99);
  t.equal(items.lastAccessOf(a), 7);
  t.equal(items.casOf(a), 11);
  t.ok(items.isLinked(a));
  t.ok(items.fetched(a));
  t.equal(items.metaFlags(a), MF_STALE);
  t.equal(items.flagsOf(a), 1, 'flags untouched');
  t.same(
    [items.exptimeOf(b), items.casOf(b), items.itemFlags(b), items.metaFlags(b), Buffer.from(items.keyOf(b)).toString()],
    [0, 20, 0, 0, 'b'],
    'the neighbouring item is untouched',
  );
});
