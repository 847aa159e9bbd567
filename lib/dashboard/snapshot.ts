/**
 * The dashboard's one JSON document (GET /api/snapshot, see README "Dashboard"): every number of
 * `stats` as it is now, rates and latency percentiles over the last second or so, per thread, per
 * shard and per slab class, hot keys and the Auto Discovery nodes. Built in the main thread from
 * shared memory (stats, latency histogram) and one gather of the threads (hot keys).
 *
 * Rates compare with a sample the server keeps (at least MIN_INTERVAL_MS old), not with the
 * previous request: any number of pages and scripts may poll and see the same rates.
 */
import type { ClusterView } from '../cluster/discovery.js';
import { DEFAULT_TOP, mergeHotReports, type HotKeysView } from '../hotkeys/report.js';
import type { StatsReporter } from '../stats.js';
import type { ShardStats } from '../store/stats.js';
import type { ThreadReport } from '../threads/messages.js';
import { Field, LATENCY_BUCKETS, LATENCY_COMMANDS, PROTOCOLS, type ThreadStats } from '../threads/thread-stats.js';
import { MEMSHARD_VERSION } from '../version.js';

export const SNAPSHOT_VERSION = 1;
/** Rates cover at least this long (a sample younger than this is not compared with). */
const MIN_INTERVAL_MS = 900;
/** Samples older than this are dropped. */
const KEEP_MS = 30_000;
/** Requests within this time of a snapshot get the same one (several pages polling). */
const REUSE_MS = 250;
/** A thread that does not report within this time fails the snapshot (500) rather than holding the request. */
const GATHER_TIMEOUT_MS = 3000;

/** `stats` counters that get a per-second rate. */
const RATE_FIELDS = [
  'cmd_get', 'cmd_set', 'cmd_touch', 'cmd_meta', 'get_hits', 'get_misses', 'get_expired', 'delete_hits', 'delete_misses',
  'incr_hits', 'incr_misses', 'decr_hits', 'decr_misses', 'cas_hits', 'cas_misses', 'cas_badval', 'evictions', 'reclaimed',
  'expired_unfetched', 'evicted_unfetched', 'total_items', 'total_connections', 'rejected_connections', 'bytes_read', 'bytes_written',
];
/** A shard's key operations (as memshard_shard_operations_total counts them). */
const SHARD_OPS = ['cmd_get', 'cmd_set', 'cmd_touch', 'delete_hits', 'delete_misses', 'incr_hits', 'incr_misses', 'decr_hits', 'decr_misses'];

export interface CommandRow {
  command: string;
  /** Requests since the start (or the last `stats reset`). */
  count: number;
  /** Requests per second over the interval. */
  rate: number;
  /** Latency percentiles over the interval, seconds (null: no request in it). */
  p50: number | null;
  p90: number | null;
  p99: number | null;
  /** Mean latency over the interval, seconds. */
  mean: number | null;
}

export interface Snapshot {
  version: typeof SNAPSHOT_VERSION;
  /** Unix ms when it was taken. */
  time: number;
  /** Seconds the rates and percentiles cover (0: no earlier sample yet). */
  interval: number;
  server: { pid: number; memshard: string; threads: number; shards: number; hotKeys: boolean };
  /** Every numeric row of `stats`, by memcached's names. */
  stats: Record<string, number>;
  /** Per second over the interval, for RATE_FIELDS; hit_ratio = get_hits / (get_hits + get_misses) in it (null: no get). */
  rates: Record<string, number> & { hit_ratio: number | null };
  commands: CommandRow[];
  threads: Array<{ thread: number; connections: number; commands: number; rate: number }>;
  shards: Array<{ shard: number; items: number; bytes: number; malloced: number; limit: number; ops: number; rate: number; evictions: number }>;
  slabs: Array<{
    id: number; chunk_size: number; pages: number; chunks: number; used_chunks: number; free_chunks: number;
    items: number; mem_requested: number; evicted: number; evicted_rate: number;
  }>;
  hotKeys: HotKeysView;
  cluster: { version: number; nodes: Array<{ host: string; ip: string; port: number }> } | null;
}

/** The cumulative numbers rates are computed from. */
interface Sample {
  time: number;
  stats: Record<string, number>;
  /** Per LATENCY_COMMANDS index: bucket counts (both protocols), count, sum. */
  latency: Array<{ buckets: number[]; count: number; sum: number }>;
  threadCommands: number[];
  shardOps: number[];
  slabEvicted: Map<number, number>;
}

export interface SnapshotSources {
  reporter: StatsReporter;
  threads: ThreadStats;
  hotKeys: boolean;
  cluster: () => ClusterView | null;
  gather: () => Promise<ThreadReport>;
}

/** The q-quantile of a histogram's bucket counts (upper bounds LATENCY_BUCKETS, then +Inf), interpolated linearly inside a bucket. */
export function quantile(buckets: readonly number[], overflow: number, q: number): number | null {
  const total = buckets.reduce((a, b) => a + b, 0) + overflow;
  if (total <= 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    const n = buckets[i]!;
    if (n > 0 && seen + n >= rank) {
      const lo = i === 0 ? 0 : LATENCY_BUCKETS[i - 1]!;
      const hi = LATENCY_BUCKETS[i]!;
      return lo + ((hi - lo) * (rank - seen)) / n;
    }
    seen += n;
  }
  // in the +Inf bucket: all that is known is that it is above the last bound
  return LATENCY_BUCKETS[LATENCY_BUCKETS.length - 1]!;
}

export class SnapshotBuilder {
  private samples: Sample[] = [];
  private last: { at: number; snapshot: Promise<Snapshot> } | null = null;

  constructor(private readonly src: SnapshotSources) {}

  /** A snapshot as of now (or of less than REUSE_MS ago). */
  snapshot(): Promise<Snapshot> {
    const now = Date.now();
    if (this.last !== null && now - this.last.at < REUSE_MS) return this.last.snapshot;
    const snapshot = this.build();
    this.last = { at: now, snapshot };
    snapshot.catch(() => (this.last = null));
    return snapshot;
  }

  private async build(): Promise<Snapshot> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the serving threads did not report within ${GATHER_TIMEOUT_MS} ms`)), GATHER_TIMEOUT_MS);
    });
    const report = await Promise.race([this.src.gather(), timeout]).finally(() => clearTimeout(timer));
    const { reporter, threads } = this.src;
    const time = Date.now();
    const shardStats = reporter.shardStats();
    const stats: Record<string, number> = {};
    for (const [k, v] of reporter.general(shardStats)) {
      const n = typeof v === 'number' ? v : Number(v);
      if (Number.isFinite(n) && String(v).trim() !== '') stats[k] = n;
    }
    const sample = this.sample(time, stats, shardStats);
    const base = this.baseFor(sample);
    const interval = base === null ? 0 : (sample.time - base.time) / 1000;
    const per = (now: number, then: number | undefined): number => (base === null || interval <= 0 ? 0 : Math.max(0, now - (then ?? 0)) / interval);

    const rates = { hit_ratio: null } as Snapshot['rates'];
    for (const f of RATE_FIELDS) rates[f] = per(stats[f] ?? 0, base?.stats[f]);
    const hits = (stats['get_hits'] ?? 0) - (base?.stats['get_hits'] ?? 0);
    const misses = (stats['get_misses'] ?? 0) - (base?.stats['get_misses'] ?? 0);
    rates.hit_ratio = base !== null && hits + misses > 0 ? hits / (hits + misses) : null;

    const commands: CommandRow[] = [];
    LATENCY_COMMANDS.forEach((command, c) => {
      const now = sample.latency[c]!;
      if (now.count === 0 || command === 'tls_handshake') return;
      const then = base?.latency[c];
      const d = now.buckets.map((n, i) => n - (then?.buckets[i] ?? 0));
      const count = now.count - (then?.count ?? 0);
      const overflow = count - d.reduce((a, b) => a + b, 0);
      const q = (p: number) => (base === null ? null : quantile(d, overflow, p));
      commands.push({
        command,
        count: now.count,
        rate: per(now.count, then?.count),
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        mean: base !== null && count > 0 ? (now.sum - (then?.sum ?? 0)) / count : null,
      });
    });

    const limit = stats['limit_maxbytes'] ?? 0;
    const shards = shardStats.map((s, shard) => ({
      shard,
      items: s.counters['curr_items'] ?? 0,
      bytes: s.counters['bytes'] ?? 0,
      malloced: s.counters['total_malloced'] ?? 0,
      limit: limit / Math.max(1, shardStats.length),
      ops: sample.shardOps[shard]!,
      rate: per(sample.shardOps[shard]!, base?.shardOps[shard]),
      evictions: s.counters['evictions'] ?? 0,
    }));
    const slabs: Snapshot['slabs'] = [];
    const items = reporter.items(shardStats);
    const field = (rows: Array<[string, string | number]>, key: string): number => Number(rows.find(([k]) => k === key)?.[1] ?? 0);
    const slabRows = reporter.slabs(shardStats);
    for (const [k] of slabRows) {
      const m = /^(\d+):chunk_size$/.exec(k);
      if (m === null) continue;
      const id = Number(m[1]);
      const evicted = field(items, `items:${id}:evicted`);
      slabs.push({
        id,
        chunk_size: field(slabRows, `${id}:chunk_size`),
        pages: field(slabRows, `${id}:total_pages`),
        chunks: field(slabRows, `${id}:total_chunks`),
        used_chunks: field(slabRows, `${id}:used_chunks`),
        free_chunks: field(slabRows, `${id}:free_chunks`),
        items: field(items, `items:${id}:number`),
        mem_requested: field(items, `items:${id}:mem_requested`),
        evicted,
        evicted_rate: per(evicted, base?.slabEvicted.get(id)),
      });
    }
    const threadRows = sample.threadCommands.map((n, thread) => ({
      thread,
      connections: threads.get(thread, Field.currConnections),
      commands: n,
      rate: per(n, base?.threadCommands[thread]),
    }));
    const view = this.src.cluster();
    const cluster = view === null ? null : { version: view.version, nodes: parseNodes(view.line) };
    this.keep(sample);
    return {
      version: SNAPSHOT_VERSION,
      time,
      interval,
      server: { pid: process.pid, memshard: MEMSHARD_VERSION, threads: threads.threads, shards: shardStats.length, hotKeys: this.src.hotKeys },
      stats,
      rates,
      commands,
      threads: threadRows,
      shards,
      slabs,
      hotKeys: mergeHotReports(report.hot ?? [], this.src.hotKeys, shardStats.length, DEFAULT_TOP, time),
      cluster,
    };
  }

  private sample(time: number, stats: Record<string, number>, shardStats: ShardStats[]): Sample {
    const threads = this.src.threads;
    const latency = LATENCY_COMMANDS.map((_, c) => {
      const sum = { buckets: new Array<number>(LATENCY_BUCKETS.length).fill(0), count: 0, sum: 0 };
      PROTOCOLS.forEach((_p, p) => {
        const s = threads.latencySeries(p, c);
        s.buckets.forEach((n, i) => (sum.buckets[i]! += n));
        sum.count += s.count;
        sum.sum += s.sum;
      });
      return sum;
    });
    const slabEvicted = new Map<number, number>();
    for (const shard of shardStats) for (const cls of shard.classes) slabEvicted.set(cls.id, (slabEvicted.get(cls.id) ?? 0) + (cls['evicted'] ?? 0));
    return {
      time,
      stats,
      latency,
      threadCommands: Array.from({ length: threads.threads }, (_, t) => threads.get(t, Field.commands)),
      shardOps: shardStats.map((s) => SHARD_OPS.reduce((sum, k) => sum + (s.counters[k] ?? 0), 0)),
      slabEvicted,
    };
  }

  /** The newest kept sample at least MIN_INTERVAL_MS older than `now`, else the oldest one. */
  private baseFor(now: Sample): Sample | null {
    let base: Sample | null = null;
    for (const s of this.samples) if (now.time - s.time >= MIN_INTERVAL_MS) base = s;
    base ??= this.samples[0] ?? null;
    return base !== null && base.time < now.time ? base : null;
  }

  /** Keep a sample per MIN_INTERVAL_MS at most, for KEEP_MS. */
  private keep(sample: Sample): void {
    const newest = this.samples[this.samples.length - 1];
    if (newest === undefined || sample.time - newest.time >= MIN_INTERVAL_MS) this.samples.push(sample);
    this.samples = this.samples.filter((s) => sample.time - s.time <= KEEP_MS);
  }
}

/** Auto Discovery's `host|ip|port` entries (space separated). */
function parseNodes(line: string): Array<{ host: string; ip: string; port: number }> {
  return line
    .split(' ')
    .filter((e) => e !== '')
    .map((e) => {
      const [host = '', ip = '', port = '0'] = e.split('|');
      return { host, ip, port: Number(port) };
    });
}
