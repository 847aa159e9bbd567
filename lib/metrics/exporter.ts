/**
 * Prometheus metrics: the series of prometheus/memcached_exporter 0.16 (same names, labels and
 * derivations, so its dashboards and alerts work unchanged), computed from the same `stats` rows
 * memcached_exporter would scrape, plus memshard's own (latency, shards) and the process metrics.
 * Everything is read at scrape time from counters and the shards' shared memory: no message to
 * any worker.
 */
import v8 from 'node:v8';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { StatsReporter } from '../stats.js';
import type { ShardStats } from '../store/stats.js';
import { MEMCACHED_VERSION } from '../version.js';
import { loadServerTls } from '../tls/context.js';
import { Cell, Field, LATENCY_COMMANDS, type ThreadStats } from '../threads/thread-stats.js';
import { SharedLatencyHistogram } from './histogram.js';

/** A consistent view of all stats, taken once per scrape. */
interface Snapshot {
  shards: ShardStats[];
  general: Map<string, number>;
  settings: Map<string, number>;
  /** slab id -> field -> value, from `stats items` and `stats slabs`. */
  slabs: Map<string, Map<string, number>>;
}

export class Exporter {
  readonly registry = new Registry();
  private snap: Snapshot = { shards: [], general: new Map(), settings: new Map(), slabs: new Map() };

  constructor(
    private readonly stats: StatsReporter,
    private readonly threads: ThreadStats,
  ) {
    const reg = this.registry;
    new SharedLatencyHistogram(
      'memshard_command_duration_seconds',
      'Time from a request being parsed to its reply being ready, by command and protocol.',
      threads,
      reg,
      new Set(LATENCY_COMMANDS.filter((c) => c !== 'tls_handshake')),
    );
    new SharedLatencyHistogram(
      'memshard_tls_handshake_duration_seconds',
      'TLS handshakes (-Z), from the accept to the secure connection.',
      threads,
      reg,
      new Set(['tls_handshake']),
      false,
    );
    collectDefaultMetrics({ register: reg });
    // gauges whose names end in _total fail promtool's lint; their twins without it remain
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      reg.removeSingleMetric(name);
    }
    this.defineMemcachedSeries();
    this.defineShardSeries();
    this.defineThreadSeries();
  }

  /** The exposition text, from one fresh snapshot of the stats. */
  async scrape(): Promise<string> {
    this.snap = this.snapshot();
    return this.registry.metrics();
  }

  private snapshot(): Snapshot {
    // memcached_exporter reads yes/no settings as 1/0
    const toMap = (rows: Array<[string, string | number]>) => new Map(rows.map(([k, v]) => [k, v === 'yes' ? 1 : v === 'no' ? 0 : Number(v)]));
    const slabs = new Map<string, Map<string, number>>();
    const addSlabRows = (rows: Array<[string, string | number]>) => {
      for (const [key, value] of rows) {
        const m = /^(?:items:)?(\d+):(\w+)$/.exec(key);
        if (m === null) continue;
        const fields = slabs.get(m[1]!) ?? new Map<string, number>();
        fields.set(m[2]!, Number(value));
        slabs.set(m[1]!, fields);
      }
    };
    // one read of every shard's shared memory serves the whole scrape
    const shards = this.stats.shardStats();
    addSlabRows(this.stats.items(shards));
    addSlabRows(this.stats.slabs(shards));
    return { shards, general: toMap(this.stats.general(shards)), settings: toMap(this.stats.settings()), slabs };
  }

  private stat(name: string): number {
    return this.snap.general.get(name) ?? 0;
  }

  /** A series without labels, read at scrape time. */
  private single(type: 'gauge' | 'counter', name: string, help: string, value: () => number): void {
    const registers = [this.registry];
    if (type === 'gauge') new Gauge({ name, help, registers, collect() { this.set(value()); } });
    else new Counter({ name, help, registers, collect() { this.reset(); this.inc(value()); } });
  }

  /** A series with one label: `values` gives (label value, number) pairs at scrape time. */
  private labelled(type: 'gauge' | 'counter', name: string, help: string, label: string, values: () => Iterable<[string, number]>): void {
    const collect = function (this: Gauge | Counter) {
      this.reset();
      for (const [key, value] of values()) {
        if (this instanceof Gauge) this.set({ [label]: key }, value);
        else this.inc({ [label]: key }, value);
      }
    };
    const options = { name, help, labelNames: [label], registers: [this.registry], collect };
    if (type === 'gauge') new Gauge(options);
    else new Counter(options);
  }

  private defineMemcachedSeries(): void {
    const reg = this.registry;
    const stat = (name: string) => this.stat(name);
    const gauge = (name: string, help: string, value: () => number) => this.single('gauge', name, help, value);
    const counter = (name: string, help: string, value: () => number) => this.single('counter', name, help, value);

    gauge('memcached_up', 'Could the memcached server be reached.', () => 1);
    // a counter in memcached_exporter; a gauge here so that promtool's lint passes (a counter must
    // end in _total), and queries are the same
    gauge('memcached_uptime_seconds', 'Number of seconds since the server started.', () => stat('uptime'));
    gauge('memcached_time_seconds', 'Current UNIX time according to the server.', () => stat('time'));
    new Gauge({
      name: 'memcached_version',
      help: 'The version of this memcached server.',
      labelNames: ['version'],
      registers: [reg],
      collect() { this.set({ version: MEMCACHED_VERSION }, 1); },
    });
    counter('memcached_process_user_cpu_seconds_total', 'Accumulated user time for this process.', () => stat('rusage_user'));
    counter('memcached_process_system_cpu_seconds_total', 'Accumulated system time for this process.', () => stat('rusage_system'));
    gauge('memcached_current_bytes', 'Current number of bytes used to store items.', () => stat('bytes'));
    gauge('memcached_limit_bytes', 'Number of bytes this server is allowed to use for storage.', () => stat('limit_maxbytes'));
    gauge('memcached_current_items', 'Current number of items stored by this instance.', () => stat('curr_items'));
    counter('memcached_items_total', 'Total number of items stored during the life of this instance.', () => stat('total_items'));
    counter('memcached_items_evicted_total', 'Total number of valid items removed from cache to free memory for new items.', () => stat('evictions'));
    counter('memcached_items_reclaimed_total', 'Total number of times an entry was stored using memory from an expired entry.', () => stat('reclaimed'));
    counter('memcached_item_too_large_total', 'The number of times an item exceeded the max-item-size when being stored.', () => stat('store_too_large'));
    counter('memcached_item_no_memory_total', 'The number of times an item could not be stored due to no more memory.', () => stat('store_no_memory'));
    counter('memcached_read_bytes_total', 'Total number of bytes read by this server from network.', () => stat('bytes_read'));
    counter('memcached_written_bytes_total', 'Total number of bytes sent by this server to network.', () => stat('bytes_written'));
    gauge('memcached_current_connections', 'Current number of open connections.', () => stat('curr_connections'));
    gauge('memcached_max_connections', 'Maximum number of clients allowed.', () => this.snap.settings.get('maxconns') ?? 0);
    counter('memcached_connections_total', 'Total number of connections opened since the server started running.', () => stat('total_connections'));
    counter('memcached_connections_rejected_total', 'Total number of connections rejected due to hitting the max connection limit.', () => stat('rejected_connections'));
    counter('memcached_connections_yielded_total', "Total number of connections yielded running due to hitting the memcached's -R limit.", () => stat('conn_yields'));
    counter('memcached_slabs_moved_total', 'Total number of slab pages moved.', () => stat('slabs_moved'));
    if (this.stats.config.cluster !== null) {
      // ElastiCache's CloudWatch names these CmdConfigGet, CmdConfigSet and CurrConfig
      counter('memcached_config_get_total', 'Auto Discovery config get commands answered.', () => stat('cmd_config_get'));
      counter('memcached_config_set_total', 'Auto Discovery config set commands (none: the node list comes from flags, a file or DNS).', () => stat('cmd_config_set'));
      gauge('memcached_current_config', 'Auto Discovery configurations stored.', () => stat('curr_config'));
    }
    gauge('memcached_accepting_connections', 'The Memcached server is currently accepting new connections.', () => stat('accepting_conns'));

    // memcached_exporter's LRU crawler series, from stats settings and stats
    const setting = (name: string) => this.snap.settings.get(name) ?? 0;
    gauge('memcached_lru_crawler_enabled', 'Whether the LRU crawler is enabled.', () => setting('lru_crawler'));
    gauge('memcached_lru_crawler_sleep', 'Microseconds to sleep between LRU crawls.', () => setting('lru_crawler_sleep'));
    gauge('memcached_lru_crawler_to_crawl', 'Max items to crawl per slab per run.', () => setting('lru_crawler_tocrawl'));
    gauge('memcached_lru_crawler_maintainer_thread', 'Split LRU mode and background threads.', () => setting('lru_maintainer_thread'));
    gauge('memcached_lru_crawler_hot_percent', 'Percent of slab memory reserved for HOT LRU.', () => setting('hot_lru_pct'));
    gauge('memcached_lru_crawler_warm_percent', 'Percent of slab memory reserved for WARM LRU.', () => setting('warm_lru_pct'));
    gauge('memcached_lru_crawler_hot_max_factor', 'Set idle age of HOT LRU to COLD age * this', () => setting('hot_max_factor'));
    gauge('memcached_lru_crawler_warm_max_factor', 'Set idle age of WARM LRU to COLD age * this', () => setting('warm_max_factor'));
    counter('memcached_lru_crawler_starts_total', 'Times an LRU crawler was started.', () => stat('lru_crawler_starts'));
    counter('memcached_lru_crawler_reclaimed_total', 'Total items freed by LRU Crawler.', () => stat('crawler_reclaimed'));
    counter('memcached_lru_crawler_items_checked_total', 'Total items examined by LRU Crawler.', () => stat('crawler_items_checked'));
    counter('memcached_lru_crawler_moves_to_cold_total', 'Total number of items moved from HOT/WARM to COLD LRUs.', () => stat('moves_to_cold'));
    counter('memcached_lru_crawler_moves_to_warm_total', 'Total number of items moved from COLD to WARM LRU.', () => stat('moves_to_warm'));
    counter('memcached_lru_crawler_moves_within_lru_total', 'Total number of items reshuffled within HOT or WARM LRUs.', () => stat('moves_within_lru'));

    // memcached_exporter's derivation of commands_total from the stats counters
    const commands: Array<[string, string, () => number]> = [
      ['get', 'hit', () => stat('get_hits')],
      ['get', 'miss', () => stat('get_misses')],
      ['delete', 'hit', () => stat('delete_hits')],
      ['delete', 'miss', () => stat('delete_misses')],
      ['incr', 'hit', () => stat('incr_hits')],
      ['incr', 'miss', () => stat('incr_misses')],
      ['decr', 'hit', () => stat('decr_hits')],
      ['decr', 'miss', () => stat('decr_misses')],
      ['cas', 'hit', () => stat('cas_hits')],
      ['cas', 'miss', () => stat('cas_misses')],
      ['cas', 'badval', () => stat('cas_badval')],
      ['touch', 'hit', () => stat('touch_hits')],
      ['touch', 'miss', () => stat('touch_misses')],
      ['set', 'hit', () => stat('cmd_set') - stat('cas_hits') - stat('cas_misses') - stat('cas_badval')],
      ['flush', 'hit', () => stat('cmd_flush')],
    ];
    new Counter({
      name: 'memcached_commands_total',
      help: 'Total number of all requests broken down by command (get, set, etc.) and status.',
      labelNames: ['command', 'status'],
      registers: [reg],
      collect() {
        this.reset();
        for (const [command, status, value] of commands) this.inc({ command, status }, value());
      },
    });

    // per slab class, from `stats items` and `stats slabs`
    const slabs = () => this.snap.slabs;
    const slabSeries = (name: string, help: string, field: string, type: 'gauge' | 'counter') =>
      this.labelled(type, name, help, 'slab', function* () {
        for (const [slab, fields] of slabs()) {
          const value = fields.get(field);
          if (value !== undefined) yield [slab, value];
        }
      });
    slabSeries('memcached_slab_current_items', 'Number of items currently stored in this slab class.', 'number', 'gauge');
    slabSeries('memcached_slab_hot_items', 'Number of items presently stored in the HOT LRU.', 'number_hot', 'gauge');
    slabSeries('memcached_slab_warm_items', 'Number of items presently stored in the WARM LRU.', 'number_warm', 'gauge');
    slabSeries('memcached_slab_cold_items', 'Number of items presently stored in the COLD LRU.', 'number_cold', 'gauge');
    slabSeries('memcached_slab_items_age_seconds', 'Number of seconds the oldest item has been in the slab class.', 'age', 'gauge');
    slabSeries('memcached_slab_temporary_items', 'Number of items presently stored in the TEMPORARY LRU.', 'number_temp', 'gauge');
    slabSeries('memcached_slab_hot_age_seconds', 'Age of the oldest item in HOT LRU.', 'age_hot', 'gauge');
    slabSeries('memcached_slab_warm_age_seconds', 'Age of the oldest item in WARM LRU.', 'age_warm', 'gauge');
    // memcached_exporter's names; gauges, as they have no _total suffix (promtool would refuse counters)
    slabSeries('memcached_slab_items_evicted_time_seconds', 'Seconds since the last access for the most recent item evicted from this class.', 'evicted_time', 'gauge');
    slabSeries('memcached_slab_items_tailrepairs_total', 'Total number of times the entries for a particular ID need repairing.', 'tailrepairs', 'counter');
    slabSeries('memcached_slab_items_moves_to_cold', 'Number of items moved from HOT or WARM into COLD.', 'moves_to_cold', 'gauge');
    slabSeries('memcached_slab_items_moves_to_warm', 'Number of items moved from COLD to WARM.', 'moves_to_warm', 'gauge');
    slabSeries('memcached_slab_items_moves_within_lru', 'Number of times active items were bumped within HOT or WARM.', 'moves_within_lru', 'gauge');
    new Counter({
      name: 'memcached_slab_lru_hits_total',
      help: 'Number of get_hits to the LRU.',
      labelNames: ['slab', 'lru'],
      registers: [reg],
      collect() {
        this.reset();
        for (const [slab, fields] of slabs()) {
          for (const lru of ['hot', 'warm', 'cold', 'temporary']) {
            const value = fields.get(`hits_to_${lru === 'temporary' ? 'temp' : lru}`);
            if (value !== undefined) this.inc({ slab, lru }, value);
          }
        }
      },
    });
    slabSeries('memcached_slab_items_evicted_total', 'Total number of times an item had to be evicted from the LRU before it expired.', 'evicted', 'counter');
    slabSeries('memcached_slab_items_evicted_nonzero_total', 'Total number of times an item which had an explicit expire time set had to be evicted from the LRU before it expired.', 'evicted_nonzero', 'counter');
    slabSeries('memcached_slab_items_evicted_unfetched_total', 'Total number of items evicted and never fetched.', 'evicted_unfetched', 'counter');
    slabSeries('memcached_slab_items_expired_unfetched_total', 'Total number of valid items evicted from the LRU which were never touched after being set.', 'expired_unfetched', 'counter');
    slabSeries('memcached_slab_items_outofmemory_total', 'Total number of items for this slab class that have triggered an out of memory error.', 'outofmemory', 'counter');
    slabSeries('memcached_slab_items_reclaimed_total', 'Total number of items reclaimed.', 'reclaimed', 'counter');
    slabSeries('memcached_slab_items_crawler_reclaimed_total', 'Total number of items freed by the LRU Crawler.', 'crawler_reclaimed', 'counter');
    slabSeries('memcached_slab_mem_requested_bytes', 'Number of bytes of memory actual items take up within a slab.', 'mem_requested', 'gauge');
    slabSeries('memcached_slab_chunk_size_bytes', 'Number of bytes allocated to each chunk within this slab class.', 'chunk_size', 'gauge');
    slabSeries('memcached_slab_chunks_per_page', 'Number of chunks within a single page for this slab class.', 'chunks_per_page', 'gauge');
    slabSeries('memcached_slab_current_pages', 'Number of pages allocated to this slab class.', 'total_pages', 'gauge');
    slabSeries('memcached_slab_current_chunks', 'Number of chunks allocated to this slab class.', 'total_chunks', 'gauge');
    slabSeries('memcached_slab_chunks_used', 'Number of chunks allocated to an item.', 'used_chunks', 'gauge');
    slabSeries('memcached_slab_chunks_free', 'Number of chunks not yet allocated items.', 'free_chunks', 'gauge');
    slabSeries('memcached_slab_chunks_free_end', 'Number of free chunks at the end of the last allocated page.', 'free_chunks_end', 'gauge');
  }

  private defineShardSeries(): void {
    const shards = () => this.snap.shards.length;
    const perShard = (name: string, help: string, type: 'gauge' | 'counter', value: (shard: number) => number) =>
      this.labelled(type, name, help, 'shard', function* () {
        for (let s = 0; s < shards(); s++) yield [String(s), value(s)];
      });
    const counters = (shard: number) => this.snap.shards[shard]?.counters ?? {};
    perShard('memshard_shard_items', 'Items stored in the shard.', 'gauge', (s) => counters(s)['curr_items'] ?? 0);
    perShard('memshard_shard_bytes', 'Bytes of items stored in the shard.', 'gauge', (s) => counters(s)['bytes'] ?? 0);
    perShard('memshard_shard_malloced_bytes', 'Slab pages in use by the shard, bytes.', 'gauge', (s) => counters(s)['total_malloced'] ?? 0);
    perShard('memshard_shard_operations_total', 'Key operations the shard executed (gets, stores, deletes, incr/decr, touches).', 'counter', (s) => {
      const c = counters(s);
      return ['cmd_get', 'cmd_set', 'cmd_touch', 'delete_hits', 'delete_misses', 'incr_hits', 'incr_misses', 'decr_hits', 'decr_misses']
        .reduce((sum, k) => sum + (c[k] ?? 0), 0);
    });
    perShard('memshard_shard_evictions_total', 'Items evicted from the shard.', 'counter', (s) => counters(s)['evictions'] ?? 0);
    this.single('counter', 'memshard_worker_restarts_total', 'Serving threads replaced after dying.', () => this.stat('memshard_worker_restarts'));
    this.defineTlsSeries();
    this.single('counter', 'memshard_shard_resets_total', 'Shards emptied because a dying thread held their lock.', () => this.stat('memshard_shard_resets'));
  }

  /** -Z: memcached's TLS counters, and when the certificate in use expires (to alert before it does). */
  private defineTlsSeries(): void {
    const tls = this.stats.config.tls;
    if (tls === null) return;
    const stat = (name: string) => this.stat(name);
    this.single('counter', 'memshard_tls_handshake_errors_total', 'TLS handshakes that failed (memcached ssl_handshake_errors).', () => stat('ssl_handshake_errors'));
    this.single('counter', 'memshard_tls_protocol_errors_total', 'TLS errors on established connections (memcached ssl_proto_errors).', () => stat('ssl_proto_errors'));
    this.single('gauge', 'memshard_tls_seconds_since_cert_refresh', 'Seconds since the server certificate was (re)loaded.', () => stat('time_since_server_cert_refresh'));
    let known: { epoch: number; notAfter: number } | null = null;
    this.single('gauge', 'memshard_tls_certificate_expiry_timestamp_seconds', 'When the server certificate in use expires (Unix time).', () => {
      const epoch = Atomics.load(this.threads.shared, Cell.certEpoch);
      if (known === null || known.epoch !== epoch) {
        try {
          known = { epoch, notAfter: loadServerTls(tls).notAfter };
        } catch {
          // the files went bad after a successful reload: the threads keep the old certificate
          return known?.notAfter ?? 0;
        }
      }
      return known.notAfter;
    });
  }

  /** Per serving thread: its connections and the requests it parsed (to see the balance). */
  private defineThreadSeries(): void {
    const threads = this.threads;
    const perThread = (name: string, help: string, field: number, type: 'gauge' | 'counter') =>
      this.labelled(type, name, help, 'thread', function* () {
        for (let t = 0; t < threads.threads; t++) yield [String(t), threads.get(t, field)];
      });
    perThread('memshard_thread_connections', 'Open connections served by the thread.', Field.currConnections, 'gauge');
    perThread('memshard_thread_commands_total', 'Requests the thread parsed and answered.', Field.commands, 'counter');
    const memory = () => this.memoryBreakdown();
    this.labelled('gauge', 'memshard_memory_bytes', 'Where the process memory goes: rss (all of it), slab_pages (item pages handed out), store_index and store_tables (the hash buckets in use, and the other shard tables as laid out; the OS commits their pages as they are written), js_heap and js_external (V8 heaps of every thread and the Buffers outside them; serving threads report once a second), other (rss minus the rest: Node.js code, malloc, stacks).', 'kind', memory);
  }

  /** memshard_memory_bytes: the process RSS and its parts. */
  private *memoryBreakdown(): Iterable<[string, number]> {
    const rss = process.memoryUsage.rss();
    const pages = this.snap.shards.reduce((sum, s) => sum + s.counters.total_malloced!, 0);
    const { index, tables } = this.stats.storeTables();
    const main = v8.getHeapStatistics();
    const heap = this.threads.total(Field.heapBytes) + main.total_heap_size;
    const external = this.threads.total(Field.externalBytes) + main.external_memory;
    yield ['rss', rss];
    yield ['slab_pages', pages];
    yield ['store_index', index];
    yield ['store_tables', tables];
    yield ['js_heap', heap];
    yield ['js_external', external];
    yield ['other', Math.max(0, rss - pages - index - tables - heap - external)];
  }
}
