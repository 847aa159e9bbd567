/**
 * The hot-key sketch (lib/hotkeys): Space-Saving's error bound on a seeded Zipf stream whose true
 * counts the test keeps, the same bound after merging truncated summaries of several threads and
 * epochs, the tracker's epochs and read/write split, and how keys are printed.
 */
import t from 'tap';
import { hotKeyRows, hotKeysTop, mergeHotReports, printableKey } from '../lib/hotkeys/report.js';
import { mergeSummaries, SpaceSaving, type SketchSummary } from '../lib/hotkeys/sketch.js';
import { EPOCH_SECONDS, HotKeyTracker, REPORT_ENTRIES } from '../lib/hotkeys/tracker.js';
import { Op } from '../lib/protocol/command.js';
import { seededRandom, zipfSampler } from '../scripts/random.js';

/** A seeded Zipf(s) sampler over n keys. */
function zipf(n: number, s: number, seed: number): () => number {
  return zipfSampler(n, s, seededRandom(seed));
}

/** The stream as keys and its exact counts. */
function stream(length: number, keys: number, s: number, seed: number): { items: string[]; truth: Map<string, number> } {
  const next = zipf(keys, s, seed);
  const items: string[] = [];
  const truth = new Map<string, number>();
  for (let i = 0; i < length; i++) {
    const key = `user:${next()}`;
    items.push(key);
    truth.set(key, (truth.get(key) ?? 0) + 1);
  }
  return { items, truth };
}

const trueTop = (truth: Map<string, number>, k: number): string[] => [...truth].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, k).map(([key]) => key);

t.test('Space-Saving on a Zipf stream: every estimate within its error, every error within N/k, the top 10 found', async (t) => {
  for (const [s, seed] of [[1.1, 1], [0.9, 7], [1.3, 42]] as const) {
    const N = 200_000;
    const capacity = 256;
    const { items, truth } = stream(N, 20_000, s, seed);
    const sketch = new SpaceSaving(capacity);
    for (const key of items) sketch.add(key);
    t.equal(sketch.total, N, `s=${s}: N counted`);
    t.equal(sketch.size, capacity, `s=${s}: the sketch is full (${truth.size} distinct keys)`);
    const { entries, floor } = sketch.summary();
    let bad = 0;
    let maxError = 0;
    for (const [key, count, error] of entries) {
      const real = truth.get(key)!;
      if (!(count - error <= real && real <= count)) bad++;
      maxError = Math.max(maxError, error);
    }
    t.equal(bad, 0, `s=${s}: count - error <= true <= count for all ${entries.length} entries`);
    t.ok(maxError <= floor && floor <= N / capacity, `s=${s}: largest error ${maxError} <= floor ${floor} <= N/k ${N / capacity}`);
    const missed = [...truth].filter(([key, n]) => n > N / capacity && sketch.estimate(key) === null);
    t.same(missed, [], `s=${s}: every key above N/k is tracked`);
    const untrackedAboveFloor = [...truth].filter(([key, n]) => sketch.estimate(key) === null && n > floor);
    t.same(untrackedAboveFloor, [], `s=${s}: no untracked key has more than the floor`);
    t.same(entries.slice(0, 10).map(([k]) => k), trueTop(truth, 10), `s=${s}: the top 10 in order`);
    t.equal(new Set(entries.map(([k]) => k)).size, entries.length, `s=${s}: no key listed twice`);
  }
});

t.test('heavy churn on a small sketch: its hash table keeps finding every counter', async (t) => {
  // 'steady' is 1/11 of the stream, above N/k = 55,000/32: it must be tracked
  const sketch = new SpaceSaving(32);
  let x = 12345;
  for (let i = 0; i < 50_000; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    sketch.add(`k${x % 100_000}`);
    if (i % 10 === 0) sketch.add('steady');
  }
  const { entries } = sketch.summary();
  t.equal(entries[0]![0], 'steady', 'the one repeated key is first');
  const [count, error] = sketch.estimate('steady')!;
  t.ok(count - error <= 5000 && 5000 <= count, `steady: ${count - error} <= 5000 <= ${count}`);
  for (const [key, c, e] of entries) t.same(sketch.estimate(key), [c, e], `${key} is found by its fingerprint`);
  t.equal(sketch.size, 32);
});

t.test('few distinct keys: counts are exact, errors 0, floor 0', async (t) => {
  const sketch = new SpaceSaving(8);
  for (let i = 0; i < 100; i++) sketch.add(`k${i % 5}`);
  sketch.add('k0', 10);
  t.same(sketch.summary().entries, [['k0', 30, 0], ['k1', 20, 0], ['k2', 20, 0], ['k3', 20, 0], ['k4', 20, 0]]);
  t.equal(sketch.floor, 0);
  t.throws(() => new SpaceSaving(0), RangeError);
});

t.test('merged summaries of 4 threads x 2 epochs, cut to their top entries: the bound still holds', async (t) => {
  const N = 160_000;
  const { items, truth } = stream(N, 20_000, 1.05, 3);
  const sketches = Array.from({ length: 8 }, () => new SpaceSaving(512));
  items.forEach((key, i) => sketches[i % 8]!.add(key));
  const summaries: SketchSummary[] = sketches.map((s) => s.summary(REPORT_ENTRIES));
  const merged = mergeSummaries(summaries, 50);
  t.equal(merged.total, N, 'totals add up');
  t.equal(merged.keys.length, 50, 'top 50 asked, 50 given');
  const bad = merged.keys.filter((k) => !(k.count - k.error <= truth.get(k.key)! && truth.get(k.key)! <= k.count));
  t.same(bad, [], 'count - error <= true <= count for every merged row');
  t.ok(merged.errorBound <= N / 512 * 8, `error bound ${merged.errorBound} <= sum of N_i/k`);
  const listed = new Set(merged.keys.map((k) => k.key));
  const above = [...truth].filter(([key, n]) => n > merged.errorBound && !listed.has(key) && n > merged.keys[merged.keys.length - 1]!.count);
  t.same(above, [], 'no key left out has more than the last one listed');
  t.same(merged.keys.slice(0, 10).map((k) => k.key), trueTop(truth, 10), 'the top 10 in order');
});

t.test('tracker: reads and writes apart, per shard, over the current and the previous epoch', async (t) => {
  let now = 1000 * EPOCH_SECONDS + 3;
  const tracker = new HotKeyTracker(2, true, () => now);
  const key = (s: string) => new Uint8Array(Buffer.from(s));
  for (let i = 0; i < 5; i++) tracker.record(0, Op.Get, key('a'));
  tracker.record(1, Op.MetaGet, key('b'));
  for (const op of [Op.Set, Op.Delete, Op.Incr, Op.Touch, Op.MetaSet, Op.MetaArith]) tracker.record(1, op, key('w'));
  let r = tracker.report();
  t.equal(r.epochs.length, 2, 'current and (empty) previous epoch');
  t.same(r.epochs[0]!.reads!.entries, [['a', 5, 0], ['b', 1, 0]]);
  t.same(r.epochs[0]!.writes!.entries, [['w', 6, 0]]);
  t.same(r.epochs[0]!.shardReads, [5, 1]);
  t.same(r.epochs[0]!.shardWrites, [0, 6]);
  now += EPOCH_SECONDS;
  tracker.record(0, Op.Get, key('a'));
  r = tracker.report();
  t.same(r.epochs.map((e) => e.reads!.entries), [[['a', 1, 0]], [['a', 5, 0], ['b', 1, 0]]], 'the previous epoch is still in the window');
  const view = mergeHotReports([r], true, 2, 10, now * 1000);
  t.same(view.reads.keys.map((k) => [k.key, k.count]), [['a', 6], ['b', 1]]);
  t.equal(view.reads.total, 7);
  t.equal(view.writes.total, 6);
  t.same(view.shards.map((s) => s.shard), [1, 0], 'shard 1 (7 commands) is hotter than shard 0 (6)');
  now += 2 * EPOCH_SECONDS;
  r = tracker.report();
  t.same(r.epochs.map((e) => e.reads!.entries), [[], []], 'two epochs later: nothing left');

  const nameless = new HotKeyTracker(2, false, () => now);
  nameless.record(1, Op.Get, key('secret'));
  const rows = hotKeyRows(mergeHotReports([nameless.report()], false, 2, 10, now * 1000));
  t.notMatch(JSON.stringify(rows), /secret/, 'without names, the key appears nowhere');
  t.same(rows.find(([k]) => k === 'shard:1:reads'), ['shard:1:reads', 1], 'the shard count is kept');
});

t.test('window: from the start of the previous epoch, or from when counting began', async (t) => {
  const start = 5000 * EPOCH_SECONDS;
  const report = { epochs: [], since: (start + 4) * 1000 };
  t.equal(mergeHotReports([report], true, 1, 10, (start + 7) * 1000).windowSeconds, 3, 'counting began 3 s ago');
  t.equal(mergeHotReports([{ epochs: [], since: 0 }], true, 1, 10, (start + 7) * 1000).windowSeconds, EPOCH_SECONDS + 7);
});

t.test('printed keys and N', async (t) => {
  t.equal(printableKey('user:1'), 'user:1');
  t.equal(printableKey('a b%\x00\xff'), 'a%20b%25%00%FF');
  t.equal(hotKeysTop([]), 10);
  t.equal(hotKeysTop(['25']), 25);
  for (const bad of [['0'], ['101'], ['x'], ['1', '2'], ['-1']]) t.equal(hotKeysTop(bad), null, `stats hotkeys ${bad.join(' ')}`);
});
