import t from 'tap';
import { Liveness } from '../lib/store/lifetime.js';
import { PROCESS_STARTED, smallShard } from './helpers/shard.js';

t.test('realtime: memcached exptime rules', async (t) => {
  const { lifetime, m } = smallShard();
  m.now = 100;
  t.equal(lifetime.realtime(0), 0, '0 = never');
  t.equal(lifetime.realtime(-1), 1, 'negative = already expired');
  t.equal(lifetime.realtime(60), 160, 'up to 30 days: relative');
  t.equal(lifetime.realtime(2592000), 100 + 2592000, 'exactly 30 days is still relative');
  t.equal(lifetime.realtime(PROCESS_STARTED + 500), 500, 'beyond: absolute Unix time');
  t.equal(lifetime.realtime(PROCESS_STARTED - 5), 1, 'absolute time in the past: expired');
  t.equal(lifetime.realtime(2 ** 40), 0x7fffffff, 'clamped to i32');
});

t.test('CAS values: shard i of n hands out seq * n + i + 1', async (t) => {
  const { lifetime } = smallShard({ shardIndex: 1, shardCount: 3 });
  const first = lifetime.lastCas();
  t.same([lifetime.nextCas(), lifetime.nextCas(), lifetime.nextCas()], [5, 8, 11]);
  t.equal(first, 2, 'lastCas before any is below the first');
  t.equal(lifetime.lastCas(), 11);
});

t.test('liveness: expiry, immediate and delayed flush', async (t) => {
  const s = smallShard();
  const { lifetime, items, allocator, m } = s;
  const item = (exp: number): number => {
    const r = allocator.take(1);
    items.writeHeader(r, 1, Buffer.from('k'), 0, exp, 0, lifetime.nextCas());
    return r;
  };
  m.now = 10;
  const never = item(0);
  const soon = item(12);
  t.equal(lifetime.liveness(never), Liveness.Alive);
  t.equal(lifetime.liveness(soon), Liveness.Alive);
  m.now = 12;
  t.equal(lifetime.liveness(soon), Liveness.Expired, 'expired at its exptime');
  t.equal(lifetime.liveness(never), Liveness.Alive);

  lifetime.flush(0);
  t.equal(lifetime.liveness(never), Liveness.Flushed, 'flush_all: older items are flushed');
  const after = item(0);
  t.equal(lifetime.liveness(after), Liveness.Alive, 'items stored after it are not');

  lifetime.flush(5); // at server time 17
  t.equal(lifetime.liveness(after), Liveness.Alive, 'a delayed flush waits');
  m.now = 17;
  t.equal(lifetime.liveness(after), Liveness.Flushed, 'then flushes what was updated before');
  const later = item(0);
  t.equal(lifetime.liveness(later), Liveness.Alive, 'not what is stored at or after it');
});
