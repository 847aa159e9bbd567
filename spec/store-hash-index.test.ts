import t from 'tap';
import { fnv1a32 } from '../lib/hash.js';
import { key, smallShard } from './helpers/shard.js';

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
    for (let r = index.first(7); r !== 0; r = index.next(r)) out.push(r);
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
  t.equal(s.index.first(s.index.hash(key(trio[0]!)) & mask), 0, 'bucket empty');
});
