/**
 * Server configuration: memcached's flags and defaults, validated into one immutable object, and
 * the per-shard store configuration derived from it.
 */
import { pageSizeFor } from './store/slabs.js';
import type { StoreConfig } from './store/store.js';

export interface Config {
  port: number;
  /** Interface to listen on; undefined = all interfaces, like memcached. */
  listen: string | undefined;
  memoryLimitMb: number;
  connLimit: number;
  threads: number;
  maxItemSize: number;
  growthFactor: number;
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
  /** `-o key=value` extras. */
  extras: Record<string, string>;
}

export type ProtocolChoice = 'auto' | 'ascii' | 'binary';

export const MB = 1024 * 1024;

/** Thrown for an invalid flag value; the message is the one line the CLI prints. */
export class ConfigError extends Error {}

/** `-o` keys memshard honours (validated in validate()). */
const HONOURED_EXTRAS = new Set(['idle_timeout', 'read_buf_mem_limit']);

/** `-o` keys memcached accepts that memshard takes but that change nothing here. */
export const IGNORED_EXTRAS = new Set([
  'maxconns_fast', 'hashpower', 'hash_algorithm', 'no_lru_crawler', 'lru_crawler', 'lru_crawler_sleep',
  'lru_crawler_tocrawl', 'no_lru_maintainer', 'lru_maintainer', 'hot_lru_pct', 'warm_lru_pct', 'hot_max_factor',
  'warm_max_factor', 'temporary_ttl', 'slab_chunk_max', 'slab_reassign',
  'slab_automove', 'watcher_logbuf_size', 'worker_logbuf_size', 'track_sizes', 'no_hashexpand', 'modern',
  'no_modern', 'drop_privileges', 'no_drop_privileges',
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
  if (c.sasl && c.saslPwdb === undefined) {
    throw new ConfigError('-S/--enable-sasl: needs a password file: --sasl-pwdb FILE or MEMCACHED_SASL_PWDB');
  }
  if (c.sasl && c.authFile !== undefined) throw new ConfigError('-Y/--auth-file: cannot be combined with -S (text-only vs binary-only)');
  if (c.udpPort !== 0) throw new ConfigError('-U/--udp-port: UDP is not supported; use 0 (off, the default)');
  if (!(c.growthFactor > 1)) throw new ConfigError(`-f/--slab-growth-factor: must be greater than 1, got '${c.growthFactor}'`);
  if (c.maxItemSize < 1024) throw new ConfigError('-I/--max-item-size: must be at least 1k');
  if (c.maxItemSize > 1024 * MB) throw new ConfigError('-I/--max-item-size: cannot be larger than 1g');
  if (c.maxItemSize > (c.memoryLimitMb * MB) / 2) {
    throw new ConfigError('-I/--max-item-size: cannot be larger than half of -m/--memory-limit');
  }
  const perShard = Math.floor((c.memoryLimitMb * MB) / c.threads);
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

/** -m is split evenly across the shards. */
export function shardStoreConfigs(c: Config): StoreConfig[] {
  const memoryBytes = Math.floor((c.memoryLimitMb * MB) / c.threads);
  return Array.from({ length: c.threads }, (_, shardIndex) => ({
    memoryBytes,
    pageSize: pageSize(c),
    itemSizeMax: c.maxItemSize,
    growthFactor: c.growthFactor,
    minChunk: c.minChunk,
    shardIndex,
    shardCount: c.threads,
  }));
}
