/**
 * Server configuration: memcached's flags and defaults, validated into one immutable object, and
 * the per-shard store configuration derived from it.
 */
import { finestGrowthFactor, MEMCACHED_GROWTH_FACTOR, pageSizeFor } from './store/slabs.js';
import { computeLayout, ITEM_HEADER_BYTES, type LayoutConfig } from './store/layout.js';
import { INDEX_START_BUCKETS } from './store/hash-index.js';
import { constants as bufferConstants } from 'node:buffer';
import type { StoreConfig } from './store/store.js';
import { DEFAULT_TUNING, LRU_POLICIES, type LruPolicy, type StoreTuning } from './store/tuning.js';
import { TLS_EXTRAS, type TlsSettings } from './tls/settings.js';
import { ListenerError, parseListeners, type ListenerSpec } from './listeners.js';
import { ClusterConfigError, parseNodeList } from './cluster/config.js';
import type { ClusterSource } from './cluster/discovery.js';

export interface Config {
  port: number;
  /** -l as given (memcached's `inter`); undefined = all interfaces. See listeners(). */
  listen: string | undefined;
  memoryLimitMb: number;
  connLimit: number;
  threads: number;
  maxItemSize: number;
  /** -f; null = memshard's finest ladder (finestGrowthFactor). */
  growthFactor: number | null;
  minChunk: number;
  verbosity: number;
  enableShutdown: boolean;
  udpPort: number;
  /** SASL PLAIN over the binary protocol (-S) with its password file; makes the server binary-only. */
  sasl: boolean;
  saslPwdb: string | undefined;
  /** memcached's text-protocol auth file (-Y); makes the server text-only. */
  authFile: string | undefined;
  /** Prometheus endpoint port (0 = off) and interface (undefined = as `listen`). */
  metricsPort: number;
  metricsListen: string | undefined;
  /** --hot-keys: track key names (`stats hotkeys`, the dashboard); without it only per-shard counts. */
  hotKeys: boolean;
  /** --metrics-public: the dashboard asks for no credentials even with -S/-Y. */
  metricsPublic: boolean;
  /** -R: requests one connection may run before the thread serves its other connections. */
  reqsPerEvent: number;
  /** -b: the listen backlog. */
  backlog: number;
  /** -B: which protocols a connection may speak (auto: its first byte decides). */
  protocol: ProtocolChoice;
  /** -F turns flush_all off, -X the item dumps (cachedump, metadump). */
  flushEnabled: boolean;
  dumpEnabled: boolean;
  /** -d: detach and run in the background; -P: its PID file. */
  daemon: boolean;
  pidFile: string | undefined;
  /** -u: the user to switch to after listening, when started as root. */
  user: string | undefined;
  /** -s: listen on this UNIX domain socket instead of TCP; -a: its file mode. */
  unixSocket: string | undefined;
  unixMask: number;
  /** -M: answer out of memory instead of evicting. */
  evictions: boolean;
  /** -L: commit the item memory at start (memcached preallocates it); cache_memlimit is then fixed. */
  preallocate: boolean;
  /** -W turns `watch` off. */
  watchEnabled: boolean;
  /** Auto Discovery's node list (`config get cluster`): at most one of nodes, file, dns. */
  cluster: ClusterSource | null;
  /** -Z and its `-o ssl_*` options; null = plain TCP. */
  tls: TlsSettings | null;
  /** -D: the key prefix delimiter of `stats detail`, which is then on from the start. */
  prefixDelimiter: string;
  detailAtStart: boolean;
  /** `-o key=value` extras. */
  extras: Record<string, string>;
}

export type ProtocolChoice = 'auto' | 'ascii' | 'binary';

export const MB = 1024 * 1024;

/** Thrown for an invalid flag value; the message is the one line the CLI prints. */
export class ConfigError extends Error {}

/** `-o` keys memshard honours (validated in validate()). */
const HONOURED_EXTRAS = new Set([
  'idle_timeout', 'read_buf_mem_limit', 'slab_reassign', 'no_slab_reassign', 'slab_automove', 'no_slab_automove',
  'slab_automove_ratio', 'lru_crawler', 'no_lru_crawler', 'lru_crawler_sleep', 'lru_crawler_tocrawl', 'lru_maintainer', 'no_lru_maintainer',
  'hot_lru_pct', 'warm_lru_pct', 'hot_max_factor', 'warm_max_factor', 'temporary_ttl', 'lru_policy', 'track_sizes',
  'watcher_logbuf_size', 'worker_logbuf_size', 'hashpower', 'no_hashexpand', ...TLS_EXTRAS,
]);

/** `-o` keys memcached accepts that memshard takes but that change nothing here. */
export const IGNORED_EXTRAS = new Set([
  'maxconns_fast', 'hash_algorithm', 'slab_chunk_max', 'modern', 'no_modern',
  'drop_privileges', 'no_drop_privileges',
]);

/** `1m`, `512k`, `2g` or plain bytes (memcached's -I syntax). */
export function parseSize(flag: string, text: string): number {
  const m = /^(\d+)([kKmMgG]?)$/.exec(text.trim());
  if (m === null) throw new ConfigError(`${flag}: invalid size '${text}' (expected bytes or a number with k/m/g)`);
  const unit = { '': 1, k: 1024, m: MB, g: 1024 * MB }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(m[1]) * unit;
}

export function parseExtras(specs: string[]): Record<string, string> {
  const extras: Record<string, string> = {};
  for (const spec of specs) {
    for (const part of spec.split(',')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const key = eq < 0 ? part : part.slice(0, eq);
      if (!IGNORED_EXTRAS.has(key) && !HONOURED_EXTRAS.has(key)) throw new ConfigError(`-o: illegal suboption '${key}'`);
      extras[key] = eq < 0 ? '' : part.slice(eq + 1);
    }
  }
  return extras;
}

function int(flag: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${flag}: must be an integer from ${min} to ${max}, got '${value}'`);
  }
  return value;
}

/** Checks a raw config and returns it, or throws a ConfigError naming the flag. */
export function validate(c: Config): Config {
  int('-p/--port', c.port, 0, 65535);
  int('--metrics-port', c.metricsPort, 0, 65535);
  int('-c/--conn-limit', c.connLimit, 1, 1_000_000);
  int('-t/--threads', c.threads, 1, 256);
  int('-m/--memory-limit', c.memoryLimitMb, 1, 1024 * 1024);
  int('-n/--slab-min-size', c.minChunk, 1, 1024 * 1024);
  int('-R/--max-reqs-per-event', c.reqsPerEvent, 1, 1_000_000);
  int('-b/--listen-backlog', c.backlog, 1, 1_000_000);
  idleTimeout(c);
  replyBudgetMb(c);
  hashpowerInit(c);
  listeners(c);
  clusterSource(c);
  storeTuning(c);
  crawlerSettings(c);
  watcherBufferKb(c);
  if (c.prefixDelimiter.length !== 1) throw new ConfigError(`-D/--stats-delimiter: must be one character, got '${c.prefixDelimiter}'`);
  if (c.sasl && c.saslPwdb === undefined) {
    throw new ConfigError('-S/--enable-sasl: needs a password file: --sasl-pwdb FILE or MEMCACHED_SASL_PWDB');
  }
  if (c.sasl && c.authFile !== undefined) throw new ConfigError('-Y/--auth-file: cannot be combined with -S (text-only vs binary-only)');
  int('-U/--udp-port', c.udpPort, 0, 65535);
  // memcached refuses UDP with either kind of authentication (it has no logins over UDP)
  if (c.udpPort !== 0 && c.sasl) throw new ConfigError('-U/--udp-port: cannot enable UDP while using binary SASL authentication (-S)');
  if (c.udpPort !== 0 && c.authFile !== undefined) throw new ConfigError('-U/--udp-port: cannot use UDP with ascii authentication enabled (-Y); use -U 0');
  if (c.growthFactor !== null && !(c.growthFactor > 1)) throw new ConfigError(`-f/--slab-growth-factor: must be greater than 1, got '${c.growthFactor}'`);
  if (c.maxItemSize < 1024) throw new ConfigError('-I/--max-item-size: must be at least 1k');
  if (c.maxItemSize > 1024 * MB) throw new ConfigError('-I/--max-item-size: cannot be larger than 1g');
  if (c.maxItemSize > (c.memoryLimitMb * MB) / 2) {
    throw new ConfigError('-I/--max-item-size: cannot be larger than half of -m/--memory-limit');
  }
  const perShard = Math.floor((c.memoryLimitMb * MB) / c.threads);
  if (storeCapacity({ ...shardLayoutOf(c), memoryBytes: perShard }) < perShard) {
    throw new ConfigError(
      `-m/--memory-limit: ${c.memoryLimitMb} MB gives each of the ${c.threads} shards more than one shard can hold (its pages and index within ${Math.floor(MAX_SHARD_BYTES / MB)} MB with this Node.js); raise -t`,
    );
  }
  if (perShard < pageSize(c)) {
    throw new ConfigError(
      `-m/--memory-limit: ${c.memoryLimitMb} MB gives each of the ${c.threads} shards less than one ${pageSize(c) / 1024} KB slab page; raise -m or lower -t`,
    );
  }
  // Items larger than a chunk are chained over pages, but one item still lives in one shard.
  if (perShard < c.maxItemSize) {
    throw new ConfigError(
      `-m/--memory-limit: ${c.memoryLimitMb} MB gives each of the ${c.threads} shards less than one -I/--max-item-size item (${c.maxItemSize} bytes); raise -m, lower -t or lower -I`,
    );
  }
  return c;
}

/** `-o idle_timeout=<seconds>`: close connections idle that long (memcached's idle_kicks); 0 = never. */
export function idleTimeout(c: Config): number {
  return wholeExtra(c, 'idle_timeout', 'seconds');
}

/**
 * `-o read_buf_mem_limit=<MB>`: a server-wide cap on the replies connections hold unsent (memshard's
 * buffers are its replies; memcached's are its read and response buffers); 0 = none, as there.
 */
export function replyBudgetMb(c: Config): number {
  return wholeExtra(c, 'read_buf_mem_limit', 'megabytes');
}

/**
 * `-o hashpower=N` (memcached's hashpower_init): the hash index starts with 2^N buckets over all
 * shards instead of growing from small; 0 when not given. memcached reads N with atoi.
 */
export function hashpowerInit(c: Config): number {
  const text = c.extras['hashpower'];
  if (text === undefined) return 0;
  if (text === '') throw new ConfigError('-o hashpower: Missing numeric argument for hashpower');
  const n = Number.parseInt(text, 10);
  const power = Number.isNaN(n) ? 0 : n;
  if (power < 12) throw new ConfigError(`-o hashpower=${text}: Initial hashtable multiplier of ${power} is too low`);
  if (power > 32) {
    throw new ConfigError(`-o hashpower=${text}: Initial hashtable multiplier of ${power} is too high; choose a value based on "STAT hash_power_level" from a running instance`);
  }
  return power;
}

/** Checks the Auto Discovery flags: one source at most, a node list that parses, a sane interval. */
function clusterSource(c: Config): void {
  const s = c.cluster;
  if (s === null) return;
  const given = [s.nodes, s.file, s.dns].filter((x) => x !== undefined).length;
  if (given > 1) throw new ConfigError('--cluster-nodes, --cluster-file and --cluster-dns: give one of them');
  int('--cluster-dns-interval', s.dnsIntervalSeconds, 1, 86_400);
  if (s.nodes !== undefined) {
    try {
      parseNodeList(s.nodes, c.port);
    } catch (err) {
      if (err instanceof ClusterConfigError) throw new ConfigError(`--cluster-nodes: ${err.message}`);
      throw err;
    }
  }
}

/** Where the daemon listens (-l, -p, -Z): one or more TCP listeners. */
export function listeners(c: Config): ListenerSpec[] {
  try {
    return parseListeners(c.listen, c.port, c.tls !== null);
  } catch (err) {
    if (err instanceof ListenerError) throw new ConfigError(`-l/--listen: ${err.message}`);
    throw err;
  }
}

/** The interface UDP and /metrics bind by default: the first listener's (memcached's UDP uses the same list). */
export function firstHost(c: Config): string | undefined {
  return listeners(c)[0]!.host;
}

/** The LRU and slab settings each shard starts with (-M and memcached's `-o` LRU options). */
export function storeTuning(c: Config): StoreTuning {
  const x = c.extras;
  const t: StoreTuning = { ...DEFAULT_TUNING, evict: c.evictions };
  if ('no_lru_maintainer' in x) t.segmented = false;
  if ('no_slab_automove' in x || 'no_slab_reassign' in x) t.automove = 0;
  if ('slab_automove' in x) t.automove = x['slab_automove'] === '' ? 1 : ranged(x, 'slab_automove', 0, 2, 'slab_automove must be between 0 and 2');
  if ('slab_automove_ratio' in x) {
    t.automoveRatio = Number(x['slab_automove_ratio']);
    if (!(t.automoveRatio > 0 && t.automoveRatio <= 1)) throw new ConfigError(`-o slab_automove_ratio=${x['slab_automove_ratio']}: slab_automove_ratio must be > 0 and < 1`);
  }
  if ('hot_lru_pct' in x) t.hotPct = ranged(x, 'hot_lru_pct', 2, 79, 'hot_lru_pct must be > 1 and < 80');
  if ('warm_lru_pct' in x) t.warmPct = ranged(x, 'warm_lru_pct', 2, 79, 'warm_lru_pct must be > 1 and < 80');
  if (t.hotPct + t.warmPct > 80) throw new ConfigError('-o: hot_lru_pct + warm_lru_pct cannot be more than 80% combined');
  if ('hot_max_factor' in x) t.hotMaxFactor = positive(x, 'hot_max_factor');
  if ('warm_max_factor' in x) t.warmMaxFactor = positive(x, 'warm_max_factor');
  if ('temporary_ttl' in x) {
    t.tempLru = true;
    t.temporaryTtl = ranged(x, 'temporary_ttl', 0, 0x7fffffff, 'temporary_ttl must be a number of seconds');
  }
  if ('lru_policy' in x) t.lruPolicy = lruPolicy(x['lru_policy']!);
  return t;
}

function lruPolicy(text: string): LruPolicy {
  const policy = LRU_POLICIES.find((p) => p === text);
  if (policy === undefined) throw new ConfigError(`-o lru_policy=${text}: lru_policy must be one of ${LRU_POLICIES.join(', ')}`);
  return policy;
}

/** The LRU crawler's settings at start (`-o lru_crawler_sleep=`, `no_lru_crawler`...). */
export interface CrawlerSettings {
  enabled: boolean;
  /** Microseconds between crawl steps (memcached's lru_crawler_sleep). */
  sleepUs: number;
  /** Items a `lru_crawler crawl` looks at per class, 0 = all. */
  toCrawl: number;
}

export function crawlerSettings(c: Config): CrawlerSettings {
  const x = c.extras;
  return {
    enabled: !('no_lru_crawler' in x),
    sleepUs: 'lru_crawler_sleep' in x ? ranged(x, 'lru_crawler_sleep', 0, 1_000_000, 'LRU crawler sleep must be between 0 and 1 second') : 100,
    toCrawl: 'lru_crawler_tocrawl' in x ? ranged(x, 'lru_crawler_tocrawl', 0, 0xffffffff, 'lru_crawler_tocrawl takes a numeric 32bit value') : 0,
  };
}

/** `-o slab_reassign` is memcached 1.6's default; `no_slab_reassign` turns `slabs reassign` off. */
export function slabReassign(c: Config): boolean {
  return !('no_slab_reassign' in c.extras);
}

/** `-o track_sizes`: `stats sizes` counts from the start. */
export function trackSizes(c: Config): boolean {
  return 'track_sizes' in c.extras;
}

/** memcached's defaults: a watcher's buffer is 256 KB, a worker's 64 KB (`-o watcher_logbuf_size=KB`). */
export function watcherBufferKb(c: Config): number {
  return 'watcher_logbuf_size' in c.extras ? ranged(c.extras, 'watcher_logbuf_size', 1, 1024 * 1024, 'could not parse argument to watcher_logbuf_size') : 256;
}

export function workerBufferKb(c: Config): number {
  return 'worker_logbuf_size' in c.extras ? ranged(c.extras, 'worker_logbuf_size', 1, 1024 * 1024, 'could not parse argument to worker_logbuf_size') : 64;
}

function ranged(x: Record<string, string>, key: string, min: number, max: number, message: string): number {
  const text = x[key]!;
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= min && n <= max)) throw new ConfigError(`-o ${key}=${text}: ${message}`);
  return n;
}

function positive(x: Record<string, string>, key: string): number {
  const n = Number(x[key]);
  if (!(n > 0) || !Number.isFinite(n)) throw new ConfigError(`-o ${key}=${x[key]}: ${key} must be > 0`);
  return n;
}

function wholeExtra(c: Config, key: string, unit: string): number {
  const text = c.extras[key];
  if (text === undefined) return 0;
  if (!/^\d+$/.test(text)) throw new ConfigError(`-o ${key}: must be a number of ${unit}, got '${text}'`);
  return Number(text);
}

/**
 * Slab page size, from each shard's share of -m (see pageSizeFor: 1 MB pages for shards of 64 MB
 * or more, smaller ones down to 64 KB so a shard always has pages for its classes). -I does not
 * change it: items larger than half a page are chained.
 */
export function pageSize(c: Config): number {
  return pageSizeFor(Math.floor((c.memoryLimitMb * MB) / c.threads));
}

/**
 * How far cache_memlimit can grow the cache, as a multiple of -m. The pages beyond -m are address
 * space only (the OS commits page memory when it is first written), so this costs no RSS.
 */
export const MEMLIMIT_GROWTH = 4;

/**
 * A shard's buffer is viewed through typed arrays, whose length Node.js limits (4 GiB on Node 20,
 * far more on Node 22+), and addressed by 8-byte refs in a u32 (32 GiB).
 */
export const MAX_SHARD_BYTES = Math.min(bufferConstants.MAX_LENGTH, 32 * 1024 * MB - 8);

/** The layout-relevant part of a shard's store config (everything but the memory sizes). */
function shardLayoutOf(c: Config): Omit<LayoutConfig, 'memoryBytes' | 'capacityBytes'> {
  return {
    pageSize: pageSize(c),
    itemSizeMax: c.maxItemSize,
    growthFactor: c.growthFactor ?? finestGrowthFactor(ITEM_HEADER_BYTES, c.minChunk, pageSize(c)),
    minChunk: c.minChunk,
  };
}

/** The page bytes a shard of this layout can address: its -m share times MEMLIMIT_GROWTH, as far as MAX_SHARD_BYTES allows. */
function storeCapacity(l: LayoutConfig): number {
  let metadata: number;
  try {
    metadata = computeLayout({ ...l, capacityBytes: 0 }).pageAreaByte;
  } catch {
    return 0; // even -m's share alone is past the 32 GiB refs can address
  }
  const fits = Math.floor((MAX_SHARD_BYTES - metadata) / l.pageSize) * l.pageSize;
  return Math.min(l.memoryBytes * MEMLIMIT_GROWTH, fits);
}

/** -m is split evenly across the shards. */
export function shardStoreConfigs(c: Config): StoreConfig[] {
  const memoryBytes = Math.floor((c.memoryLimitMb * MB) / c.threads);
  const tuning = storeTuning(c);
  const layout = shardLayoutOf(c);
  const hashpower = hashpowerInit(c);
  return Array.from({ length: c.threads }, (_, shardIndex) => ({
    ...layout,
    memoryBytes,
    // -L fixes the size; else cache_memlimit may grow a shard to this much address space
    capacityBytes: c.preallocate ? memoryBytes : storeCapacity({ ...layout, memoryBytes }),
    tuning,
    memcachedGrowthFactor: c.growthFactor ?? MEMCACHED_GROWTH_FACTOR,
    indexStartBuckets: hashpower === 0 ? INDEX_START_BUCKETS : 2 ** hashpower / c.threads,
    indexGrows: !('no_hashexpand' in c.extras),
    shardIndex,
    shardCount: c.threads,
  }));
}
