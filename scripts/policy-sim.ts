// Hit ratios of LRU policies (`-o lru_policy=...` and LRU tunings) on cache-aside workloads,
// replayed straight into the stores the daemon builds for `-m 64` (its default 4 shards of 16 MB,
// keys routed by the same hash ring): no sockets, no threads, a simulated clock.
//
//   node dist/scripts/policy-sim.js [--gets 3000000] [--rate 100000] [--seed 1]
//
// Like mcload's cache mode (the memory bench's cache-aside row), every get that misses is followed
// by a set of the key's value, whose size is fixed per key (100-2000 B). The stores' clock moves
// one second every --rate gets: LRU bumps, HOT/WARM age caps and the slab mover all run on it.
// Prints a markdown table of hit ratios (all gets, and the second half) per workload and policy.
import { parseArgs as parseDaemonArgs } from '../lib/cli/options.js';
import { shardStoreConfigs } from '../lib/config.js';
import { HashRing } from '../lib/router.js';
import { Mode, Status, Store, type Clock, type StoreConfig } from '../lib/store/store.js';
import { log, positiveNumber, runMain, scriptOptions } from './bench.js';
import { seededRandom, zipfSampler } from './random.js';

/** Keys of the Zipf part (as the memory bench's mcload --keys 600000); scan keys are numbered after them. */
const KEYS = 600_000;
const MIN_VALUE = 100;
const MAX_VALUE = 2000;
/** scan-polluted: after every SCAN_EVERY Zipf gets, SCAN_BURST gets of keys never seen before (25% of all gets). */
const SCAN_EVERY = 30_000;
const SCAN_BURST = 10_000;
/** shifting: every SHIFT_PERIOD gets the Zipf ranks move SHIFT_STEP keys on (a new hot set). */
const SHIFT_PERIOD = 500_000;
const SHIFT_STEP = 100_000;

/** Each policy's `-o` options on top of `-m 64`; '' = the defaults (lru_policy=one_hit). */
const POLICIES: readonly string[] = [
  '',
  'lru_policy=two_hit',
  'lru_policy=frequency',
  // a smaller probation (HOT + COLD) with memcached's own knobs, no new code
  'hot_lru_pct=10,warm_lru_pct=70',
  'lru_policy=frequency,hot_lru_pct=10,warm_lru_pct=70',
];

const policyName = (o: string): string => (o === '' ? 'default (lru_policy=one_hit)' : `-o ${o}`);

interface Workload {
  name: string;
  /** The key-number stream of one run. */
  keys(seed: number): () => number;
}

const zipf = (s: number, seed: number): (() => number) => zipfSampler(KEYS, s, seededRandom(seed));

const WORKLOADS: readonly Workload[] = [
  { name: 'Zipf 0.99', keys: (seed) => zipf(0.99, seed) },
  { name: `Zipf 0.99 + scans (${SCAN_BURST / 1000}k one-time keys after every ${SCAN_EVERY / 1000}k gets)`, keys: (seed) => withScans(zipf(0.99, seed)) },
  { name: `Zipf 0.99, hot set moving ${SHIFT_STEP / 1000}k keys every ${SHIFT_PERIOD / 1000}k gets`, keys: (seed) => shifting(zipf(0.99, seed)) },
  { name: 'Zipf 0.8', keys: (seed) => zipf(0.8, seed) },
];

function withScans(next: () => number): () => number {
  let i = 0;
  let scanKey = KEYS;
  return () => (i++ % (SCAN_EVERY + SCAN_BURST) < SCAN_EVERY ? next() : scanKey++);
}

function shifting(next: () => number): () => number {
  let i = 0;
  return () => (next() + Math.floor(i++ / SHIFT_PERIOD) * SHIFT_STEP) % KEYS;
}

/** A key's value size: fixed per key, spread over MIN_VALUE..MAX_VALUE by a multiplicative hash. */
function valueLength(n: number): number {
  return MIN_VALUE + ((Math.imul(n, 0x9e3779b1) >>> 0) % (MAX_VALUE - MIN_VALUE + 1));
}

/** The stores' clock: server seconds, moved by the replay. */
class SimClock implements Clock {
  t = 2;
  readonly processStarted = 1_700_000_000;
  now(): number {
    return this.t;
  }
}

/** The daemon's shard configs for `-m 64 -o <extended>`, as lib/config.ts derives them. */
function daemonShardConfigs(extended: string): StoreConfig[] {
  const parsed = parseDaemonArgs(['-m', '64', ...(extended === '' ? [] : ['-o', extended])]);
  if (parsed.kind !== 'run') throw new Error(`-o ${extended} does not start a daemon`);
  return shardStoreConfigs(parsed.config);
}

interface Options {
  gets: number;
  rate: number;
  seed: number;
}

interface Outcome {
  hitRatio: number;
  secondHalf: number;
  failedSets: number;
  seconds: number;
}

function replay(policy: string, workload: Workload, o: Options): Outcome {
  const started = performance.now();
  const clock = new SimClock();
  const shards = daemonShardConfigs(policy).map((cfg) => new Store(new SharedArrayBuffer(Store.byteLength(cfg)), cfg, clock));
  const ring = new HashRing(shards.length);
  const next = workload.keys(o.seed);
  const value = new Uint8Array(MAX_VALUE).fill(0x78);
  const half = Math.floor(o.gets / 2);
  let hits = 0;
  let secondHalfHits = 0;
  let failedSets = 0;
  for (let i = 0; i < o.gets; i++) {
    clock.t = 2 + Math.floor(i / o.rate);
    const n = next();
    const key = Buffer.from(`key:${n}`, 'latin1');
    const store = shards[ring.shardOf(key)]!;
    if (store.get(key) !== 0) {
      hits++;
      if (i >= half) secondHalfHits++;
    } else if (store.store(Mode.Set, key, 0, 0, value.subarray(0, valueLength(n)), 0).status !== Status.Stored) {
      failedSets++;
    }
  }
  return { hitRatio: hits / o.gets, secondHalf: secondHalfHits / (o.gets - half), failedSets, seconds: (performance.now() - started) / 1000 };
}

async function main(): Promise<number> {
  const usage = 'usage: node dist/scripts/policy-sim.js [--gets 3000000] [--rate 100000] [--seed 1]';
  const opts = scriptOptions(usage, ['help'], ['gets', 'rate', 'seed']);
  if (typeof opts === 'number') return opts;
  const o: Options = {
    gets: Math.round(positiveNumber(opts.get('gets'), 3_000_000, 'gets')),
    rate: Math.round(positiveNumber(opts.get('rate'), 100_000, 'rate')),
    seed: Math.round(positiveNumber(opts.get('seed'), 1, 'seed')),
  };
  const started = performance.now();
  const f = (x: number): string => x.toFixed(4);
  const shards = daemonShardConfigs('');
  const lines = [
    `## policy-sim: -m 64 (${shards.length} shards of ${shards[0]!.memoryBytes / 2 ** 20} MB, ${shards[0]!.pageSize / 1024} KB pages), ` +
      `${o.gets.toLocaleString('en-US')} gets at ${o.rate.toLocaleString('en-US')} gets/s of store time, seed ${o.seed}`,
    '',
    '| workload | policy | hit ratio | second half | second half vs default |',
    '|---|---|---:|---:|---:|',
  ];
  let failed = 0;
  for (const w of WORKLOADS) {
    let base = NaN;
    for (const p of POLICIES) {
      const r = replay(p, w, o);
      if (p === POLICIES[0]) base = r.secondHalf;
      failed += r.failedSets;
      log(`${w.name} / ${policyName(p)}: ${f(r.hitRatio)} (${f(r.secondHalf)}) in ${r.seconds.toFixed(1)} s`);
      const delta = r.secondHalf - base;
      lines.push(`| ${w.name} | ${policyName(p)} | ${f(r.hitRatio)} | ${f(r.secondHalf)} | ${delta >= 0 ? '+' : ''}${f(delta)} |`);
    }
  }
  lines.push('', `${((performance.now() - started) / 1000).toFixed(0)} s in all; sets that failed: ${failed}.`);
  console.log(lines.join('\n'));
  return failed === 0 ? 0 : 1;
}

runMain(import.meta.url, main);
