import t from 'tap';
import { parseArgs } from '../lib/cli/options.js';
import { storeTuning } from '../lib/config.js';
import { COLD, H_HOT_PCT, H_WARM_PCT, HOT, IF_ACTIVE, IF_FETCHED, WARM } from '../lib/store/layout.js';
import { Store } from '../lib/store/store.js';
import { DEFAULT_TUNING, type LruPolicy } from '../lib/store/tuning.js';
import { fullShard, PROCESS_STARTED, putItem, smallConfig, smallShard } from './helpers/shard.js';

const tuningOf = (argv: string[]) => {
  const parsed = parseArgs(argv);
  if (parsed.kind !== 'run') throw new Error('not a run');
  return storeTuning(parsed.config);
};

t.test('-o lru_policy: one_hit by default, two_hit on request, anything else refused', async (t) => {
  t.equal(DEFAULT_TUNING.lruPolicy, 'one_hit');
  t.equal(tuningOf([]).lruPolicy, 'one_hit');
  t.equal(tuningOf(['-o', 'lru_policy=two_hit']).lruPolicy, 'two_hit');
  t.throws(() => tuningOf(['-o', 'lru_policy=lfu']), { message: '-o lru_policy=lfu: lru_policy must be one of one_hit, two_hit, frequency' });
});

t.test('the policy lives in the shard header and survives a re-initialisation', async (t) => {
  const cfg = smallConfig();
  const sab = new SharedArrayBuffer(Store.byteLength(cfg));
  const clock = { now: () => 10, processStarted: PROCESS_STARTED };
  new Store(sab, cfg, clock).tune({ lruPolicy: 'two_hit' });
  t.equal(new Store(sab, cfg, clock, true).tuning().lruPolicy, 'two_hit', 'another thread sees it');
  t.equal(new Store(sab, cfg, clock).tuning().lruPolicy, 'two_hit', 'kept over a re-initialisation');
});

t.test('a first hit marks an item ACTIVE by default, only FETCHED with two_hit', async (t) => {
  for (const [policy, bits] of [['one_hit', IF_FETCHED | IF_ACTIVE], ['two_hit', IF_FETCHED]] as const) {
    const s = fullShard({ lruPolicy: policy });
    const ref = s.find('k3');
    s.lru.bump(ref, 5);
    t.equal(s.items.itemFlags(ref) & (IF_FETCHED | IF_ACTIVE), bits, `${policy}: first hit`);
    s.lru.bump(ref, 5);
    t.equal(s.lru.segmentOf(ref), policy === 'one_hit' ? WARM : COLD, `${policy}: a second hit in COLD`);
    t.equal(s.items.itemFlags(ref) & IF_ACTIVE, policy === 'one_hit' ? 0 : IF_ACTIVE);
  }
});

/** HOT's tail after a, hit once, and b, hit twice: where maintain moves them. */
function hotTail(policy: LruPolicy): { once: number; twice: number } {
  // HOT at 100% keeps every new item until the cap is lowered
  const s = smallShard({}, { lruPolicy: policy, hotPct: 100 });
  const [a, b] = ['a', 'b', 'c', 'd', 'e'].map((k) => putItem(s, k));
  s.lru.bump(a!, 1);
  s.lru.bump(b!, 1);
  s.lru.bump(b!, 1);
  s.m.f64[H_HOT_PCT] = 20;
  s.lru.maintain(1);
  return { once: s.lru.segmentOf(a!), twice: s.lru.segmentOf(b!) };
}

t.test("HOT's tail: an item hit once goes to WARM by default, to COLD with two_hit", async (t) => {
  t.same(hotTail('one_hit'), { once: WARM, twice: WARM });
  t.same(hotTail('two_hit'), { once: COLD, twice: WARM });
});

t.test("COLD's tail: two_hit evicts an item hit once and keeps one hit twice", async (t) => {
  // k0 .. k6 in COLD (k0 at the tail), k7 in HOT; no free chunk
  const run = (policy: LruPolicy) => {
    const s = fullShard({ lruPolicy: policy });
    t.same([0, 1, 2, 6].map((i) => s.lru.segmentOf(s.refs[i]!)), [COLD, COLD, COLD, COLD]);
    t.equal(s.lru.segmentOf(s.refs[7]!), HOT);
    s.lru.bump(s.refs[0]!, 5);
    s.lru.bump(s.refs[1]!, 5);
    s.lru.bump(s.refs[1]!, 5);
    t.not(s.evictor.chunkFor(5), 0);
    return ['k0', 'k1', 'k2'].filter((k) => s.find(k) === 0);
  };
  t.same(run('one_hit'), ['k2'], 'one_hit: the one-hit k0 is rescued to WARM, the never-hit k2 goes');
  t.same(run('two_hit'), ['k0'], 'two_hit: the one-hit k0 goes, the twice-hit k1 stays');
});

t.test("WARM's tail: with frequency an item spends its counted hits to stay in WARM", async (t) => {
  const run = (policy: LruPolicy) => {
    // a hit three times, b once, both in HOT; then HOT and WARM squeezed to nothing at once
    const s = smallShard({}, { lruPolicy: policy, hotPct: 100, warmPct: 100 });
    const [a, b] = ['a', 'b'].map((k) => putItem(s, k));
    for (const r of [a!, a!, a!, b!]) s.lru.bump(r, 1);
    s.m.f64[H_HOT_PCT] = 0;
    s.m.f64[H_WARM_PCT] = 0;
    s.lru.maintain(1);
    return [s.lru.segmentOf(a!), s.lru.segmentOf(b!)];
  };
  t.same(run('one_hit'), [COLD, COLD], 'one_hit: both through WARM to COLD');
  t.same(run('frequency'), [WARM, COLD], 'frequency: a, with hits to spend, stays longer');
});
