/**
 * `stats`, `stats settings|items|slabs|sizes|conns|reset`: memcached's field names, order and
 * formats. Shard counters are read straight from the shards' shared memory (no message).
 */
import { chunkMaxFor } from './store/slabs.js';
import { readShardStats, type ShardStats } from './store/stats.js';
import { hashpowerInit, idleTimeout, replyBudgetMb, slabReassign, watcherBufferKb, workerBufferKb, type Config } from './config.js';
import { Store } from './store/store.js';
import { computeLayout, HEADER_F64_SLOTS, SIZE_BUCKET_BYTES } from './store/layout.js';
import { bucketsInUse } from './store/hash-index.js';
import { TLS_VERSION_NAMES, type TlsSettings } from './tls/settings.js';
import type { ShardMemory } from './shards/shard-access.js';
import type { Clock } from './store/store.js';
import { Cell, Field, type ThreadStats } from './threads/thread-stats.js';
import { MEMCACHED_VERSION, MEMSHARD_VERSION } from './version.js';

export type Row = [string, string | number];

/** Counters summed over shards, in the order memcached prints them in `stats`. */
const COMMAND_COUNTERS = [
  'cmd_get', 'cmd_set', 'cmd_flush', 'cmd_touch', 'cmd_meta', 'get_hits', 'get_misses', 'get_expired', 'get_flushed',
  'delete_misses', 'delete_hits', 'incr_misses', 'incr_hits', 'decr_misses', 'decr_hits', 'cas_misses', 'cas_hits',
  'cas_badval', 'touch_hits', 'touch_misses', 'store_too_large', 'store_no_memory',
];
const ITEM_TOTALS = [
  'expired_unfetched', 'evicted_unfetched', 'evicted_active', 'evictions', 'reclaimed', 'crawler_reclaimed',
  'crawler_items_checked', 'lrutail_reflocked', 'moves_to_cold', 'moves_to_warm', 'moves_within_lru',
  'direct_reclaims', 'lru_bumps_dropped',
];
const ITEMS_FIELDS = [
  'number', 'number_hot', 'number_warm', 'number_cold', 'number_temp', 'age_hot', 'age_warm', 'age', 'mem_requested',
  'evicted', 'evicted_nonzero', 'evicted_time', 'outofmemory', 'tailrepairs', 'reclaimed', 'expired_unfetched',
  'evicted_unfetched', 'evicted_active', 'crawler_reclaimed', 'crawler_items_checked', 'lrutail_reflocked',
  'moves_to_cold', 'moves_to_warm', 'moves_within_lru', 'direct_reclaims', 'hits_to_hot', 'hits_to_warm',
  'hits_to_cold', 'hits_to_temp',
];
/** Fields that are ages or maxima, not sums, when several shards have the same class. */
const MAX_FIELDS = new Set(['age_hot', 'age_warm', 'age', 'evicted_time', 'chunk_size', 'chunks_per_page']);
const SLABS_FIELDS = [
  'chunk_size', 'chunks_per_page', 'total_pages', 'total_chunks', 'used_chunks', 'free_chunks', 'free_chunks_end',
  'get_hits', 'cmd_set', 'delete_hits', 'incr_hits', 'decr_hits', 'cas_hits', 'cas_badval', 'touch_hits',
];

/** `sec.usec`, as memcached prints rusage. */
function seconds(micros: number): string {
  return `${Math.floor(micros / 1e6)}.${String(Math.floor(micros % 1e6)).padStart(6, '0')}`;
}

/** What stats are computed from: all of it in shared memory, readable from any thread. */
export interface StatsSource {
  readonly config: Config;
  readonly clock: Clock;
  readonly shards: readonly ShardMemory[];
  readonly threads: ThreadStats;
}

/** One open connection, as `stats conns` shows it. */
export interface ConnInfo {
  id: number;
  /** Mutual TLS: the client certificate's subject. */
  peerSubject: string | null;
  addr: string;
  listenAddr: string;
  state: string;
  lastCommandAt: number;
}

const SLAB_REASSIGN_STATS = [
  'slab_reassign_rescues', 'slab_reassign_chunk_rescues', 'slab_reassign_evictions_nomem', 'slab_reassign_inline_reclaim',
  'slab_reassign_busy_items', 'slab_reassign_busy_deletes', 'slab_reassign_running',
];

export class StatsReporter {
  constructor(private readonly source: StatsSource) {}

  get config(): Config {
    return this.source.config;
  }

  /** The reply to `stats <group> <args>`; `conns` is every thread's connections (for `stats conns`). */
  report(group: string, args: string[], conns: ConnInfo[] = []): string {
    switch (group) {
      case 'reset':
        this.resetFrontEnd();
        return 'RESET\r\n';
      default: {
        const rows = this.rows(group, conns);
        return rows === null ? 'ERROR\r\n' : render(rows);
      }
    }
  }

  /** The rows of a stats group ('' = general), or null for an unknown group. `reset` resets. */
  rows(group: string, conns: ConnInfo[] = []): Row[] | null {
    switch (group) {
      case '':
        return this.general();
      case 'settings':
        return this.settings();
      case 'items':
        return this.items();
      case 'slabs':
        return this.slabs();
      case 'sizes':
        return this.sizes();
      case 'sizes_enable':
        return [['sizes_status', 'enabled']];
      case 'sizes_disable':
        return [['sizes_status', 'disabled']];
      case 'conns':
        return this.conns(conns);
      case 'reset':
        this.resetFrontEnd();
        return [];
      default:
        return null;
    }
  }

  /** Every shard's counters and classes, read from shared memory now. */
  /** Bytes of every shard's index (the hash buckets in use) and other tables (counters, classes, page table, as laid out). */
  storeTables(): { index: number; tables: number } {
    let index = 0;
    let tables = 0;
    for (const s of this.source.shards) {
      const L = computeLayout(s.config);
      index += bucketsInUse(new Float64Array(s.sab, 0, HEADER_F64_SLOTS)) * 4;
      tables += L.pageAreaByte - L.bucketCount * 4;
    }
    return { index, tables };
  }

  shardStats(): ShardStats[] {
    const now = this.now();
    return this.source.shards.map((s) => readShardStats(s.sab, s.config, now));
  }

  private now(): number {
    return this.source.clock.now();
  }

  /** Sum of one counter over all shards. */
  private static total(shards: ShardStats[], name: string): number {
    let sum = 0;
    for (const s of shards) sum += s.counters[name] ?? 0;
    return sum;
  }

  general(shards = this.shardStats()): Row[] {
    const { config, threads } = this.source;
    const c = (field: number): number => threads.total(field);
    const total = (name: string): number => StatsReporter.total(shards, name);
    const usage = process.resourceUsage();
    const rows: Row[] = [
      ['pid', process.pid],
      ['uptime', this.now()],
      ['time', Math.floor(Date.now() / 1000)],
      ['version', MEMCACHED_VERSION],
      ['libevent', `node-${process.version}`],
      ['pointer_size', 64],
      ['rusage_user', seconds(usage.userCPUTime)],
      ['rusage_system', seconds(usage.systemCPUTime)],
      ['max_connections', config.connLimit],
      ['curr_connections', c(Field.currConnections)],
      ['total_connections', c(Field.totalConnections)],
      ['rejected_connections', c(Field.rejectedConnections)],
      ['connection_structures', c(Field.currConnections)],
      // memcached's response objects and read buffers are memshard's unsent replies
      ['response_obj_oom', c(Field.replyBudgetWaits)],
      ['response_obj_bytes', Atomics.load(this.source.threads.shared, Cell.heldReplyKb) * 1024],
      ['reserved_fds', 0],
    ];
    for (const name of COMMAND_COUNTERS) {
      rows.push([name, name === 'cmd_flush' ? c(Field.flushCommands) : total(name)]);
      // memcached on ElastiCache (1.4.14+) counts config commands next to cmd_touch
      if (name === 'cmd_touch' && config.cluster !== null) rows.push(['cmd_config_get', c(Field.configGets)], ['cmd_config_set', 0]);
    }
    rows.push(
      ['auth_cmds', c(Field.authCommands)],
      ['auth_errors', c(Field.authErrors)],
      ['idle_kicks', c(Field.idleKicks)],
      ['bytes_read', c(Field.bytesRead)],
      ['bytes_written', c(Field.bytesWritten)],
      ['limit_maxbytes', config.memoryLimitMb * 1024 * 1024],
      ['accepting_conns', 1],
      ['listen_disabled_num', 0],
      ['time_in_listen_disabled_us', 0],
      ['threads', config.threads],
      ['conn_yields', c(Field.connYields)],
      // of the shards' tables together, as memcached's one table (-o hashpower=N gives N)
      ['hash_power_level', Math.floor(Math.log2(shards.reduce((sum, s) => sum + s.hashBaseBuckets, 0)))],
      ['hash_bytes', shards.reduce((sum, s) => sum + s.hashBytes, 0)],
      ['hash_is_expanding', 0],
      // memshard never reassigns slab pages between classes, has no LRU maintainer thread and no watchers
      ...SLAB_REASSIGN_STATS.map((name): Row => [name, 0]),
      ['slabs_moved', total('slabs_moved')],
      ['lru_crawler_running', 0],
      ['lru_crawler_starts', Atomics.load(threads.shared, Cell.crawlerStarts)],
      ['lru_maintainer_juggles', 0],
      ['malloc_fails', 0],
      ['log_worker_dropped', 0],
      ['log_worker_written', Atomics.load(threads.shared, Cell.logWorkerWritten)],
      ['log_watcher_skipped', Atomics.load(threads.shared, Cell.logWatcherSkipped)],
      ['log_watcher_sent', Atomics.load(threads.shared, Cell.logWatcherSent)],
      ['log_watchers', Atomics.load(threads.shared, Cell.watchers)],
      ...this.tlsRows(),
      ['unexpected_napi_ids', 0],
      ['round_robin_fallback', 0],
      ['bytes', total('bytes')],
      ['curr_items', total('curr_items')],
      ...(config.cluster === null ? [] : [['curr_config', 1] as Row]),
      ['total_items', total('total_items')],
    );
    for (const name of ITEM_TOTALS) rows.push([name, total(name)]);
    rows.push(
      ['memshard_version', MEMSHARD_VERSION],
      ['memshard_worker_restarts', Atomics.load(threads.shared, Cell.threadRestarts)],
      ['memshard_shard_resets', Atomics.load(threads.shared, Cell.shardResets)],
    );
    return rows;
  }

  settings(): Row[] {
    const cfg = this.source.config;
    const cells = this.source.threads.shared;
    const shard0 = this.source.shards[0]!;
    // an unlocked read of a few header numbers: a setting being changed shows either value
    const store = new Store(shard0.sab, shard0.config, this.source.clock, true);
    const t = store.tuning();
    const onOff = (b: boolean): string => (b ? 'yes' : 'no');
    return [
      ['maxbytes', Atomics.load(cells, Cell.memoryLimitMb) * 1024 * 1024],
      ['maxconns', cfg.connLimit],
      ['tcpport', cfg.port],
      ['udpport', cfg.udpPort],
      ['inter', cfg.listen ?? 'NULL'],
      ['verbosity', Atomics.load(cells, Cell.verbosity)],
      ['oldest', 0],
      ['evictions', t.evict ? 'on' : 'off'],
      ['domain_socket', cfg.unixSocket ?? 'NULL'],
      ['umask', cfg.unixMask.toString(8)],
      ['shutdown_command', onOff(cfg.enableShutdown)],
      ['growth_factor', shard0.config.growthFactor.toFixed(2)],
      ['chunk_size', cfg.minChunk],
      ['num_threads', cfg.threads],
      ['num_threads_per_udp', cfg.threads],
      ['stat_key_prefix', cfg.prefixDelimiter],
      ['detail_enabled', onOff(Atomics.load(cells, Cell.detailEnabled) === 1)],
      ['reqs_per_event', cfg.reqsPerEvent],
      ['cas_enabled', 'yes'],
      ['tcp_backlog', cfg.backlog],
      ['binding_protocol', cfg.sasl ? 'binary' : cfg.authFile !== undefined ? 'ascii' : cfg.protocol === 'auto' ? 'auto-negotiate' : cfg.protocol],
      ['auth_enabled_sasl', onOff(cfg.sasl)],
      ['auth_enabled_ascii', cfg.authFile ?? 'no'],
      ['item_size_max', cfg.maxItemSize],
      ['maxconns_fast', 'yes'],
      ['hashpower_init', hashpowerInit(cfg)],
      ['slab_reassign', onOff(slabReassign(cfg))],
      ['slab_automove', t.automove],
      ['slab_automove_ratio', t.automoveRatio.toFixed(2)],
      ['slab_automove_window', 30],
      ['slab_chunk_max', chunkMaxFor(shard0.config.pageSize)],
      ['lru_crawler', onOff(Atomics.load(cells, Cell.crawlerEnabled) === 1)],
      ['lru_crawler_sleep', Atomics.load(cells, Cell.crawlerSleepUs)],
      ['lru_crawler_tocrawl', Atomics.load(cells, Cell.crawlerToCrawl) >>> 0],
      ['tail_repair_time', 0],
      ['flush_enabled', onOff(cfg.flushEnabled)],
      ['dump_enabled', onOff(cfg.dumpEnabled)],
      ['hash_algorithm', 'fnv1a'],
      ['lru_maintainer_thread', onOff(!('no_lru_maintainer' in cfg.extras))],
      ['lru_segmented', onOff(t.segmented)],
      ['hot_lru_pct', t.hotPct],
      ['warm_lru_pct', t.warmPct],
      ['hot_max_factor', t.hotMaxFactor.toFixed(2)],
      ['warm_max_factor', t.warmMaxFactor.toFixed(2)],
      ['temp_lru', onOff(t.tempLru)],
      ['temporary_ttl', t.temporaryTtl],
      ['idle_timeout', idleTimeout(cfg)],
      ['watcher_logbuf_size', watcherBufferKb(cfg) * 1024],
      ['worker_logbuf_size', workerBufferKb(cfg) * 1024],
      ['read_buf_mem_limit', replyBudgetMb(cfg) * 1024 * 1024],
      ['track_sizes', onOff(store.tracksSizes)],
      ['inline_ascii_response', 'no'],
      ...tlsSettingsRows(cfg.tls),
      ['memshard_slab_page_size', shard0.config.pageSize],
      ['memshard_shards', cfg.threads],
      ['memshard_lru_policy', t.lruPolicy],
    ];
  }

  items(shards = this.shardStats()): Row[] {
    const rows: Row[] = [];
    for (const [id, cls] of mergeClasses(shards)) {
      if ((cls['number'] ?? 0) === 0 && (cls['evicted'] ?? 0) === 0) continue;
      for (const f of ITEMS_FIELDS) rows.push([`items:${id}:${f}`, cls[f] ?? 0]);
    }
    return rows;
  }

  slabs(shards = this.shardStats()): Row[] {
    const rows: Row[] = [];
    let active = 0;
    for (const [id, cls] of mergeClasses(shards)) {
      if ((cls['total_pages'] ?? 0) === 0) continue;
      active++;
      for (const f of SLABS_FIELDS) rows.push([`${id}:${f}`, cls[f] ?? 0]);
    }
    rows.push(['active_slabs', active], ['total_malloced', StatsReporter.total(shards, 'total_malloced')]);
    return rows;
  }

  /** memcached 1.6.45's TLS counters, shown with -Z. */
  private tlsRows(): Row[] {
    const { config, threads } = this.source;
    if (config.tls === null) return [];
    const c = (field: number): number => threads.total(field);
    return [
      ...(config.tls.sessionCache ? [['ssl_new_sessions', c(Field.sslNewSessions)] as Row] : []),
      ['ssl_handshake_errors', c(Field.sslHandshakeErrors)],
      ['ssl_proto_errors', c(Field.sslProtoErrors)],
      ['time_since_server_cert_refresh', this.now() - Atomics.load(threads.shared, Cell.certRefreshedAt)],
    ];
  }

  /** `stats sizes` (memcached's, with -o track_sizes or after `stats sizes_enable`): items per 32-byte size. */
  private sizes(): Row[] {
    let total: number[] | null = null;
    for (const shard of this.source.shards) {
      const store = new Store(shard.sab, shard.config, this.source.clock, true);
      if (!store.tracksSizes) continue;
      const hist = store.sizeHistogram();
      total ??= new Array<number>(hist.length).fill(0);
      for (let i = 0; i < hist.length; i++) total[i]! += hist[i]!;
    }
    if (total === null) return [['sizes_status', 'disabled']];
    const rows: Row[] = [];
    total.forEach((n, i) => {
      if (n !== 0) rows.push([String(i * SIZE_BUCKET_BYTES), n]);
    });
    return rows;
  }

  private conns(conns: ConnInfo[]): Row[] {
    const rows: Row[] = [];
    const now = this.now();
    for (const conn of [...conns].sort((a, b) => a.id - b.id)) {
      rows.push(
        [`${conn.id}:addr`, conn.addr],
        [`${conn.id}:listen_addr`, conn.listenAddr],
        [`${conn.id}:state`, conn.state],
        [`${conn.id}:secs_since_last_cmd`, now - conn.lastCommandAt],
      );
      if (conn.peerSubject !== null) rows.push([`${conn.id}:memshard_tls_peer`, conn.peerSubject]);
    }
    return rows;
  }

  /** The shards' counters are reset by the caller (under their locks); these are the threads'. */
  private resetFrontEnd(): void {
    this.source.threads.resetCounters();
  }
}

/** Per slab class id, the fields of that class summed over shards (ages: the oldest). */
function mergeClasses(shards: ShardStats[]): Map<number, Record<string, number>> {
  const merged = new Map<number, Record<string, number>>();
  for (const shard of shards) {
    for (const cls of shard.classes) {
      const into = merged.get(cls.id) ?? {};
      for (const [k, v] of Object.entries(cls)) {
        if (k === 'id') continue;
        into[k] = MAX_FIELDS.has(k) ? Math.max(into[k] ?? 0, v) : (into[k] ?? 0) + v;
      }
      merged.set(cls.id, into);
    }
  }
  return new Map([...merged].sort((a, b) => a[0] - b[0]));
}

/** memcached prints OpenSSL's verify flags: PEER 1, FAIL_IF_NO_PEER_CERT 2, CLIENT_ONCE 4. */
const OPENSSL_VERIFY_FLAGS = [0, 1, 3, 7];

/** memcached's `stats settings` ssl_* rows (a TLS build prints them with or without -Z). */
function tlsSettingsRows(tls: TlsSettings | null): Row[] {
  return [
    ['ssl_enabled', tls === null ? 'no' : 'yes'],
    ['ssl_chain_cert', tls?.chainCert ?? '(null)'],
    ['ssl_key', tls?.key ?? '(null)'],
    ['ssl_verify_mode', OPENSSL_VERIFY_FLAGS[tls?.verifyMode ?? 0]!],
    ['ssl_keyformat', tls?.keyFormat ?? 1],
    ['ssl_ciphers', tls?.ciphers ?? 'NULL'],
    ['ssl_ca_cert', tls?.caCert ?? 'NULL'],
    ['ssl_wbuf_size', tls?.wbufSize ?? 16384],
    ['ssl_session_cache', tls?.sessionCache === true ? 'yes' : 'no'],
    ['ssl_kernel_tls', 'no'],
    ['ssl_min_version', TLS_VERSION_NAMES[tls?.minVersion ?? 2]],
  ];
}

function render(rows: Row[]): string {
  let out = '';
  for (const [k, v] of rows) out += `STAT ${k} ${v}\r\n`;
  return `${out}END\r\n`;
}
