import t from 'tap';
import { HashRing } from '../lib/router.js';

const KEYS = 1_000_000;

function keyBytes(i: number): Buffer {
  return Buffer.from(`user:${i}:profile`);
}

t.test('keys spread within 10% of the fair share over 4 shards', async (t) => {
  const ring = new HashRing(4);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < KEYS; i++) counts[ring.shardOf(keyBytes(i))]!++;
  const fair = KEYS / 4;
  for (const [shard, n] of counts.entries()) {
    t.ok(Math.abs(n - fair) / fair < 0.1, `shard ${shard} holds ${n} keys (fair share ${fair})`);
  }
});

t.test('adding a shard moves about 1/N of the keys, all to the new shard', async (t) => {
  const before = new HashRing(4);
  const after = new HashRing(5);
  const sample = 200_000;
  let moved = 0;
  let movedElsewhere = 0;
  for (let i = 0; i < sample; i++) {
    const k = keyBytes(i);
    const a = before.shardOf(k);
    const b = after.shardOf(k);
    if (a !== b) {
      moved++;
      if (b !== 4) movedElsewhere++;
    }
  }
  const share = moved / sample;
  t.ok(share > 0.15 && share < 0.25, `moved ${(share * 100).toFixed(1)}% of keys (ideal 20%)`);
  t.equal(movedElsewhere, 0, 'keys only move to the new shard');
});

t.test('routing is deterministic and covers every shard', async (t) => {
  const ring = new HashRing(3);
  const again = new HashRing(3);
  const seen = new Set<number>();
  let differ = 0;
  for (let i = 0; i < 1000; i++) {
    const k = keyBytes(i);
    if (ring.shardOf(k) !== again.shardOf(k)) differ++;
    seen.add(ring.shardOf(k));
  }
  t.equal(differ, 0, 'two rings of the same size agree');
  t.same([...seen].sort(), [0, 1, 2]);
  t.equal(new HashRing(1).shardOf(keyBytes(1)), 0);
});
