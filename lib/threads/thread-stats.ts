/**
 * Counters every serving thread keeps in shared memory, so that the main thread (stats totals,
 * /metrics) and any thread answering `stats` read them without a message. One Float64 row per
 * thread (a row is written only by its thread), plus a few server-wide Int32 cells, plus the
 * command latency histogram (thread x protocol x command x bucket).
 *
 * Layout of `ThreadStatsBuffers.counters` (Float64): row t = Field.* of thread t.
 * Layout of `ThreadStatsBuffers.shared` (Int32): Cell.*.
 * Layout of `ThreadStatsBuffers.latency` (Float64): per (thread, protocol, command):
 *   LATENCY_BUCKETS.length bucket counts, then count, then sum (seconds).
 */

export const Field = {
  currConnections: 0,
  totalConnections: 1,
  rejectedConnections: 2,
  bytesRead: 3,
  bytesWritten: 4,
  flushCommands: 5,
  authCommands: 6,
  authErrors: 7,
  /** Requests parsed (every protocol), for the per-thread load series. */
  commands: 8,
  /** A connection gave way after -R requests (memcached's conn_yields). */
  connYields: 9,
  /** Connections closed by -o idle_timeout (memcached's idle_kicks). */
  idleKicks: 10,
  /** A connection waited because all connections' unsent replies reached -o read_buf_mem_limit. */
  replyBudgetWaits: 11,
  /** This thread's part of Cell.heldReplyKb. */
  heldReplyKb: 12,
  /** TLS (-Z): failed handshakes, TLS errors after one, sessions made with ssl_session_cache on. */
  sslHandshakeErrors: 13,
  sslProtoErrors: 14,
  sslNewSessions: 15,
  /** `config get cluster` answered (ElastiCache's cmd_config_get). */
  configGets: 16,
  /** The thread's V8 heap and the memory its ArrayBuffers and Buffers hold outside it (bytes, gauges). */
  heapBytes: 17,
  externalBytes: 18,
} as const;
const FIELDS = Object.keys(Field).length;

export const Cell = {
  /** Open connections over all threads: the -c limit is server-wide, as in memcached. */
  connections: 0,
  verbosity: 1,
  /** Serving threads replaced after dying. */
  threadRestarts: 2,
  /** Shards wiped because a dead thread held their lock. */
  shardResets: 3,
  /** Serving threads of the first start that are ready to listen (see ServingThread.start). */
  startBarrier: 4,
  /** KB of replies all connections hold unsent, for -o read_buf_mem_limit. */
  heldReplyKb: 5,
  /** The LRU crawler's runtime settings (`lru_crawler enable|disable|sleep|tocrawl`) and runs. */
  crawlerEnabled: 6,
  crawlerSleepUs: 7,
  crawlerToCrawl: 8,
  crawlerStarts: 9,
  /** maxbytes in MB, as cache_memlimit last set it. */
  memoryLimitMb: 10,
  /** `stats detail on|off`. */
  detailEnabled: 11,
  /** Open `watch` connections (log_watchers), the last event id, and memcached's logger counters. */
  watchers: 12,
  watchGid: 13,
  logWorkerWritten: 14,
  logWatcherSent: 15,
  logWatcherSkipped: 16,
  /** Bumped by `stats reset`: each thread then drops its per-prefix counts. */
  detailEpoch: 17,
  /** Bumped when `refresh_certs` or SIGHUP loaded new certificates (server time in certRefreshedAt). */
  certEpoch: 18,
  certRefreshedAt: 19,
  /** Watchers wanting each event kind: the WATCH_KIND_COUNT cells from watching + WatchKind. */
  watching: 20,
} as const;
/** New certificates are in use (for time_since_server_cert_refresh and the expiry gauge). */
export function certificatesReloaded(shared: Int32Array, now: number): void {
  Atomics.store(shared, Cell.certRefreshedAt, now);
  Atomics.add(shared, Cell.certEpoch, 1);
}

/** memshard's `watch` event kinds (see WatchKind in watch.ts). */
export const WATCH_KIND_COUNT = 5;
const CELLS = Cell.watching + WATCH_KIND_COUNT;

/** Command latency buckets, seconds: 10 us .. 1 s. */
export const LATENCY_BUCKETS = [1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1];
export const PROTOCOLS = ['text', 'binary'] as const;
export type Protocol = (typeof PROTOCOLS)[number];
/** Every command name the latency histogram knows (memcached's names, meta commands by theirs). */
export const LATENCY_COMMANDS = [
  'get', 'gets', 'gat', 'gats', 'set', 'add', 'replace', 'append', 'prepend', 'cas', 'delete', 'incr', 'decr',
  'touch', 'mg', 'ms', 'md', 'ma', 'me', 'mn', 'version', 'verbosity', 'quit', 'shutdown', 'stats', 'flush_all',
  'debug', 'noop', 'sasl', 'auth', 'tls_handshake',
] as const;
export const COMMAND_INDEX = new Map<string, number>(LATENCY_COMMANDS.map((c, i) => [c, i]));
const SERIES_SLOTS = LATENCY_BUCKETS.length + 2;
const SERIES_PER_THREAD = PROTOCOLS.length * LATENCY_COMMANDS.length;

export interface ThreadStatsBuffers {
  counters: SharedArrayBuffer;
  shared: SharedArrayBuffer;
  latency: SharedArrayBuffer;
}

export function newThreadStatsBuffers(threads: number): ThreadStatsBuffers {
  return {
    counters: new SharedArrayBuffer(8 * FIELDS * threads),
    shared: new SharedArrayBuffer(4 * CELLS),
    latency: new SharedArrayBuffer(8 * SERIES_SLOTS * SERIES_PER_THREAD * threads),
  };
}

export class ThreadStats {
  readonly counters: Float64Array;
  readonly shared: Int32Array;
  readonly latency: Float64Array;

  constructor(
    buffers: ThreadStatsBuffers,
    readonly threads: number,
  ) {
    this.counters = new Float64Array(buffers.counters);
    this.shared = new Int32Array(buffers.shared);
    this.latency = new Float64Array(buffers.latency);
  }

  /** Add to thread `thread`'s counter (only that thread writes its row). */
  add(thread: number, field: number, n: number): void {
    this.counters[thread * FIELDS + field]! += n;
  }

  /** Set a gauge of thread `thread`'s row (only that thread writes it). */
  set(thread: number, field: number, n: number): void {
    this.counters[thread * FIELDS + field] = n;
  }

  get(thread: number, field: number): number {
    return this.counters[thread * FIELDS + field]!;
  }

  /** A counter summed over all threads. */
  total(field: number): number {
    let sum = 0;
    for (let t = 0; t < this.threads; t++) sum += this.counters[t * FIELDS + field]!;
    return sum;
  }

  /** `stats reset`: every thread's cumulative counters (current connections stay). */
  resetCounters(): void {
    for (let t = 0; t < this.threads; t++) {
      for (let f = 0; f < FIELDS; f++) if (f !== Field.currConnections) this.counters[t * FIELDS + f] = 0;
    }
  }

  /** A thread that died took its connections with it: its current count goes to zero. */
  /** A dead thread's connections and their unsent replies are gone. */
  threadGone(thread: number): void {
    for (const [field, cell] of [[Field.currConnections, Cell.connections], [Field.heldReplyKb, Cell.heldReplyKb]] as const) {
      Atomics.sub(this.shared, cell, this.counters[thread * FIELDS + field]!);
      this.counters[thread * FIELDS + field] = 0;
    }
  }

  /** Thread `thread`'s connections hold deltaKb more (or less) unsent replies. */
  holdReplies(thread: number, deltaKb: number): void {
    this.add(thread, Field.heldReplyKb, deltaKb);
    Atomics.add(this.shared, Cell.heldReplyKb, deltaKb);
  }

  observe(thread: number, protocol: number, command: number, seconds: number): void {
    const base = ((thread * PROTOCOLS.length + protocol) * LATENCY_COMMANDS.length + command) * SERIES_SLOTS;
    const l = this.latency;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]!) i++;
    if (i < LATENCY_BUCKETS.length) l[base + i]!++;
    l[base + LATENCY_BUCKETS.length]!++;
    l[base + LATENCY_BUCKETS.length + 1]! += seconds;
  }

  /** One latency series summed over threads: per-bucket counts, count, sum. */
  latencySeries(protocol: number, command: number): { buckets: number[]; count: number; sum: number } {
    const buckets = new Array<number>(LATENCY_BUCKETS.length).fill(0);
    let count = 0;
    let sum = 0;
    for (let t = 0; t < this.threads; t++) {
      const base = ((t * PROTOCOLS.length + protocol) * LATENCY_COMMANDS.length + command) * SERIES_SLOTS;
      for (let i = 0; i < buckets.length; i++) buckets[i]! += this.latency[base + i]!;
      count += this.latency[base + LATENCY_BUCKETS.length]!;
      sum += this.latency[base + LATENCY_BUCKETS.length + 1]!;
    }
    return { buckets, count, sum };
  }
}
