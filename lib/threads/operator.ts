/**
 * memcached's operator commands, with its syntax, replies and errors (proto_text.c of 1.6.18):
 * `slabs reassign|automove`, `lru tune|mode|temp_ttl`, `lru_crawler ...` and `cache_memlimit`.
 * Settings that the stores act on are written into every shard's header under its lock; the
 * crawler's live in shared cells that every thread reads.
 */
import { MB, slabReassign, type Config } from '../config.js';
import { parseI32, parseU32 } from '../protocol/text.js';
import { metadump, mgdump, SLAB_CLASS_LIMIT, type Dumping } from '../shards/dump.js';
import type { ShardAccess } from '../shards/shard-access.js';
import type { Store } from '../store/store.js';
import type { StoreTuning } from '../store/tuning.js';
import { Cell } from './thread-stats.js';

export const OperatorReplies = {
  ok: 'OK\r\n',
  error: 'ERROR\r\n',
  badFormat: 'CLIENT_ERROR bad command line format\r\n',
  reassignDisabled: 'CLIENT_ERROR slab reassignment disabled\r\n',
  badClassPair: 'BADCLASS invalid src or dst class id\r\n',
  noSpare: 'NOSPARE source class has no spare pages\r\n',
  same: 'SAME src and dst class are identical\r\n',
  badClass: 'BADCLASS invalid class id\r\n',
  crawlerDisabled: 'CLIENT_ERROR lru crawler disabled\r\n',
  metadumpDisabled: 'ERROR metadump not allowed\r\n',
  keyDumpDisabled: 'ERROR key dump not allowed\r\n',
  crawlerStartFailed: 'ERROR failed to start lru crawler thread\r\n',
  sleepTooLong: 'CLIENT_ERROR sleep must be one second or less\r\n',
  pctTooHigh: 'ERROR hot and warm pcts must not exceed 80\r\n',
  factorTooLow: 'ERROR hot/warm age factors must be greater than 0\r\n',
  memlimitTooSmall: 'MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n',
  memlimitNotBytes: 'MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n',
  memlimitFailed: 'MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust\r\n',
} as const;

/** Hash buckets a crawl looks at per slice under a shard's lock. */
const CRAWL_BUCKETS_PER_SLICE = 4096;

export interface OperatorHost {
  readonly config: Config;
  readonly access: ShardAccess;
  /** The threads' shared cells (Cell.*). */
  readonly shared: Int32Array;
  readonly dumping: Dumping;
  log(level: number, msg: string): void;
}

const num = (text: string | undefined, parse: typeof parseU32): number | null =>
  text === undefined ? null : parse(Buffer.from(text, 'latin1'), 0, text.length);
const u32 = (text: string | undefined): number | null => num(text, parseU32);
const i32 = (text: string | undefined): number | null => num(text, parseI32);
/** memcached's safe_strtod: a whole token that strtod reads as a finite number. */
function f64(text: string | undefined): number | null {
  if (text === undefined || !/^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return null;
  const v = Number(text);
  return Number.isFinite(v) ? v : null;
}

export class OperatorCommands {
  constructor(private readonly host: OperatorHost) {}

  /** `words` are the command's tokens after its name, `noreply` included (memcached's ntokens is words + 2). */
  run(name: 'slabs' | 'lru' | 'lru_crawler' | 'cache_memlimit', words: string[]): string {
    const noreply = words[words.length - 1] === 'noreply';
    switch (name) {
      case 'slabs':
        return this.slabs(words, noreply);
      case 'lru':
        return this.quiet(this.lru(words), noreply);
      case 'lru_crawler':
        return this.lruCrawler(words);
      case 'cache_memlimit':
        return this.quiet(this.memlimit(words), noreply);
    }
  }

  private quiet(reply: string, noreply: boolean): string {
    return noreply ? '' : reply;
  }

  private slabs(words: string[], noreply: boolean): string {
    const R = OperatorReplies;
    if (words.length === 3 && words[0] === 'reassign') {
      if (!slabReassign(this.host.config)) return R.reassignDisabled;
      const src = i32(words[1]);
      const dst = i32(words[2]);
      if (src === null || dst === null) return R.badFormat;
      return this.reassign(src, dst);
    }
    if (words.length >= 2 && words[0] === 'automove') {
      if (words[1] === 'ratio') {
        const ratio = words.length >= 3 ? f64(words[2]) : null;
        if (ratio === null) return this.quiet(R.error, noreply);
        this.tuneAll({ automoveRatio: ratio });
        return this.quiet(R.ok, noreply);
      }
      const level = u32(words[1]);
      if (level === null) return this.quiet(R.badFormat, noreply);
      if (level > 2) return this.quiet(R.error, noreply);
      this.tuneAll({ automove: level });
      return this.quiet(R.ok, noreply);
    }
    return R.error;
  }

  /** One page per shard (memshard's pages are a shard's share of memcached's 1 MB ones). */
  private reassign(src: number, dst: number): string {
    const R = OperatorReplies;
    const results = this.eachShard((store) => store.reassign(src, dst));
    if (results.includes('ok')) {
      this.host.log(2, `slabs reassign ${src} -> ${dst}: ${results.filter((r) => r === 'ok').length} pages moved`);
      return R.ok;
    }
    if (results.includes('same')) return R.same;
    if (results.includes('badclass')) return R.badClassPair;
    return R.noSpare;
  }

  private lru(words: string[]): string {
    const R = OperatorReplies;
    const [sub, ...rest] = words;
    if (sub === 'tune' && words.length >= 5) {
      const hot = u32(rest[0]);
      const warm = u32(rest[1]);
      const hotFactor = f64(rest[2]);
      const warmFactor = f64(rest[3]);
      if (hot === null || warm === null || hotFactor === null || warmFactor === null) return R.error;
      if (hot + warm > 80) return R.pctTooHigh;
      if (warmFactor <= 0 || hotFactor <= 0) return R.factorTooLow;
      this.tuneAll({ hotPct: hot, warmPct: warm, hotMaxFactor: hotFactor, warmMaxFactor: warmFactor });
      return R.ok;
    }
    if (sub === 'mode' && words.length >= 2 && this.maintainerRuns()) {
      if (rest[0] !== 'flat' && rest[0] !== 'segmented') return R.error;
      this.tuneAll({ segmented: rest[0] === 'segmented' });
      return R.ok;
    }
    if (sub === 'temp_ttl' && words.length >= 2 && this.maintainerRuns()) {
      const ttl = i32(rest[0]);
      if (ttl === null) return R.error;
      this.tuneAll(ttl < 0 ? { tempLru: false } : { tempLru: true, temporaryTtl: ttl });
      return R.ok;
    }
    return R.error;
  }

  /** memcached refuses `lru mode` and `lru temp_ttl` without its LRU maintainer (-o no_lru_maintainer). */
  private maintainerRuns(): boolean {
    return !('no_lru_maintainer' in this.host.config.extras);
  }

  private lruCrawler(words: string[]): string {
    const R = OperatorReplies;
    const shared = this.host.shared;
    const enabled = Atomics.load(shared, Cell.crawlerEnabled) === 1;
    const [sub, arg] = words;
    if (words.length === 2 && sub === 'crawl') {
      if (!enabled) return R.crawlerDisabled;
      const classes = this.classList(arg!, false);
      if (classes === undefined) return R.badClass;
      this.crawl(classes);
      return R.ok;
    }
    if (words.length === 2 && (sub === 'metadump' || sub === 'mgdump')) {
      if (!enabled) return R.crawlerDisabled;
      if (!this.host.config.dumpEnabled) return sub === 'metadump' ? R.metadumpDisabled : R.keyDumpDisabled;
      const classes = this.classList(arg!, true);
      if (classes === undefined) return R.badClass;
      Atomics.add(shared, Cell.crawlerStarts, 1);
      return sub === 'metadump' ? metadump(this.host.dumping, classes) : mgdump(this.host.dumping, classes);
    }
    if (words.length === 2 && (sub === 'tocrawl' || sub === 'sleep')) {
      const n = u32(arg);
      if (n === null) return R.badFormat;
      if (sub === 'sleep' && n > 1_000_000) return R.sleepTooLong;
      Atomics.store(shared, sub === 'sleep' ? Cell.crawlerSleepUs : Cell.crawlerToCrawl, n | 0);
      return R.ok;
    }
    if (words.length === 1 && sub === 'enable') {
      if (enabled) return R.crawlerStartFailed;
      Atomics.store(shared, Cell.crawlerEnabled, 1);
      return R.ok;
    }
    if (words.length === 1 && sub === 'disable') {
      Atomics.store(shared, Cell.crawlerEnabled, 0);
      return R.ok;
    }
    return R.error;
  }

  /**
   * `all`, `hash` (dumps only) or a comma list of class ids 1..63; null = every class,
   * undefined = a bad list (memcached's BADCLASS).
   */
  private classList(text: string, hashAllowed: boolean): ReadonlySet<number> | null | undefined {
    if (text === 'all' || (hashAllowed && text === 'hash')) return null;
    const ids = text.split(',').filter((p) => p !== '').map((p) => u32(p));
    if (ids.length === 0 || !ids.every((c) => c !== null && c > 0 && c < SLAB_CLASS_LIMIT)) return undefined;
    return new Set(ids as number[]);
  }

  /**
   * `lru_crawler crawl`: reclaims the expired and flushed items of the classes (memshard's class
   * ids, as `stats items` shows), looking at up to lru_crawler_tocrawl items per class and shard
   * (0 = all); done before the reply, a slice of hash buckets at a time under each shard's lock.
   */
  private crawl(classes: ReadonlySet<number> | null): void {
    const shared = this.host.shared;
    Atomics.add(shared, Cell.crawlerStarts, 1);
    const perClass = Atomics.load(shared, Cell.crawlerToCrawl) >>> 0;
    const { access } = this.host;
    for (let shard = 0; shard < access.count; shard++) {
      const seen = new Map<number, number>();
      for (let from = 0; from >= 0; ) {
        from = access.with(shard, (store) => store.reclaimDead(from, CRAWL_BUCKETS_PER_SLICE, classes, perClass, seen));
      }
    }
  }

  private memlimit(words: string[]): string {
    const R = OperatorReplies;
    const mb = u32(words[0]);
    if (mb === null) return R.error;
    if (mb < 8) return R.memlimitTooSmall;
    if (mb > 1_000_000_000) return R.memlimitNotBytes;
    if (this.host.config.preallocate) return R.memlimitFailed;
    const shards = this.host.access.count;
    const pagesOf = (pageSize: number): number => Math.floor((mb * MB) / shards / pageSize);
    const fits = this.eachShard((store) => pagesOf(store.pageSize) >= 1 && pagesOf(store.pageSize) <= store.pageCapacity);
    if (fits.includes(false)) return R.memlimitFailed;
    this.eachShard((store) => store.setPageLimit(pagesOf(store.pageSize)));
    Atomics.store(this.host.shared, Cell.memoryLimitMb, mb);
    this.host.log(1, `maxbytes adjusted to ${mb}m`);
    return R.ok;
  }

  private tuneAll(t: Partial<StoreTuning>): void {
    this.eachShard((store) => store.tune(t));
  }

  private eachShard<T>(fn: (store: Store) => T): T[] {
    const { access } = this.host;
    return Array.from({ length: access.count }, (_, shard) => access.with(shard, fn));
  }
}
