/**
 * The shard's storage engine at the level of commands: one SharedArrayBuffer, no JS object per
 * item, single-threaded. Each job is its own module over the same buffer (memory.ts):
 *
 *   items.ts       item header fields          lifetime.ts  exptime, flush_all, CAS
 *   hash-index.ts  the hash index              lru.ts       HOT / WARM / COLD / TEMP lists
 *   allocator.ts   slab pages and free lists   chains.ts    items larger than a chunk
 *   links.ts       linking and its accounting  eviction.ts  memory for a new item
 *   mover.ts       page moves between classes  crawler.ts   walks over the index
 *
 * This class implements memcached's commands over them and reads the clock once per command.
 */
import { memcachedItemSize } from '../protocol/command.js';
import { parseU64 } from '../protocol/text.js';
import { Allocator } from './allocator.js';
import { Chains } from './chains.js';
import { Crawler, type CrawlStep } from './crawler.js';
import { Evictor } from './eviction.js';
import { HashIndex, INDEX_START_BUCKETS } from './hash-index.js';
import { Items } from './items.js';
import {
  C, CLASS_F64_SLOTS, CLASS_TABLE_ENTRIES, COUNTER_SLOTS, COUNTERS_KEPT_ON_RESET, H_AUTOMOVE, H_AUTOMOVE_RATIO,
  H_CAS_SEQ, H_EVICT, H_HOT_FACTOR, H_HOT_PCT, H_MAGIC, H_NUM_CLASSES, H_PAGES, H_PAGE_LIMIT, H_PAGE_SIZE,
  H_LRU_POLICY, H_SEGMENTED, H_SIZES_CAS_MIN, H_TEMP_LRU, H_TEMP_TTL, H_WARM_FACTOR, H_WARM_PCT, ITEM_HEADER_BYTES, MAGIC,
  MF_KEY_BINARY, MF_STALE, MF_WIN_SENT, S, TUNING_SLOTS, computeLayout,
} from './layout.js';
import { Lifetime, Liveness } from './lifetime.js';
import { ItemLinks, type EvictionObserver } from './links.js';
import { Lru } from './lru.js';
import { ShardMemory } from './memory.js';
import { Mover, type ReassignResult } from './mover.js';
import { PAGE_SIZE_MAX, slabLadder } from './slabs.js';
import { DEFAULT_TUNING, LRU_POLICIES, type StoreTuning } from './tuning.js';

export interface StoreConfig {
  memoryBytes: number;
  /** Address space for pages beyond -m's share, so cache_memlimit can grow the shard. */
  capacityBytes?: number;
  /** Settings at start (kept over a re-initialisation once set). */
  tuning?: StoreTuning;
  pageSize: number;
  itemSizeMax: number;
  growthFactor: number;
  /** The ladder memcached would use (-f, or its 1.25): the class ids watch and metadump report. */
  memcachedGrowthFactor?: number;
  minChunk: number;
  shardIndex: number;
  shardCount: number;
  /** Buckets the hash index starts with (-o hashpower's share; rounded down to a power of two, at least INDEX_START_BUCKETS). */
  indexStartBuckets?: number;
  /** false = -o no_hashexpand: the index keeps its first size. */
  indexGrows?: boolean;
}

export interface Clock {
  now(): number;
  processStarted: number;
}

export const Status = {
  Stored: 0, NotStored: 1, Exists: 2, NotFound: 3, TooLarge: 4, NoMemory: 5, Deleted: 6, Touched: 7,
  NonNumeric: 8, Ok: 9,
} as const;
export type StatusCode = (typeof Status)[keyof typeof Status];

/**
 * What `store` and `incrDecr` return. It is one object per Store, overwritten by its next
 * store / incrDecr (so the get/set path allocates nothing): read it before the next command.
 */
export interface StoreResult {
  readonly status: StatusCode;
  /** The item written: set when status is Stored (store) or Ok (incrDecr), else 0. */
  readonly ref: number;
  /** incrDecr's new value when status is Ok, else 0n. */
  readonly number: bigint;
}

export const Mode = {
  Set: 0, Add: 1, Replace: 2, Append: 3, Prepend: 4, Cas: 5,
  /** ms with N: append / prepend, or store the value as a new item when the key is missing. */
  AppendOrCreate: 6, PrependOrCreate: 7,
} as const;
export type StoreMode = (typeof Mode)[keyof typeof Mode];

/** How a lookup for a fetch ended, in memcached's watch order (not_found found flushed expired). */
export const Fetch = { NotFound: 0, Found: 1, Flushed: 2, Expired: 3 } as const;
export type FetchResult = (typeof Fetch)[keyof typeof Fetch];

/** What `watch` hears from a store; the serving thread sets it (null: nobody listens). */
export interface StoreObserver extends EvictionObserver {
  /** A key looked up (by any command, as memcached logs them): ref is the item when found, else 0. */
  fetched(key: Uint8Array, ref: number, result: FetchResult): void;
  /** A store command's outcome; ref is the stored item (0 when not stored). */
  stored(key: Uint8Array, status: StatusCode, mode: StoreMode, exptime: number, vlen: number, flags: number, ref: number): void;
  deleted(ref: number, byMeta: boolean): void;
}

/** What the meta protocol adds to a store (ms). */
export interface StoreOptions {
  /** The new item's CAS (E); 0 = the next from the counter. */
  newCas?: number;
  /** ms I: a CAS lower than the item's still stores, but marks the new value stale. */
  allowStale?: boolean;
  /** The key came base64-encoded (b): meta replies encode it back. */
  keyBinary?: boolean;
}
const NO_OPTIONS: StoreOptions = {};

/** The append/prepend/incr scratch buffer is kept between calls up to this size. */
const SCRATCH_KEEP = 1024 * 1024;
const U64_MASK = (1n << 64n) - 1n;
/** memcached's slab_chunk_max (half its 1 MB slab page): larger items are chunked, and incr refuses them. */
const MEMCACHED_CHUNK_MAX = 512 * 1024;

/** Fetch result of a lookup, by Liveness. */
const FETCH_OF: readonly FetchResult[] = [Fetch.Found, Fetch.Flushed, Fetch.Expired];

/** The one result object of a Store, writable inside it. */
type MutableResult = { -readonly [K in keyof StoreResult]: StoreResult[K] };

export class Store {
  static byteLength(cfg: StoreConfig): number {
    return computeLayout(cfg).byteLength;
  }

  private readonly m: ShardMemory;
  private readonly items: Items;
  private readonly lifetime: Lifetime;
  private readonly index: HashIndex;
  private readonly lru: Lru;
  private readonly allocator: Allocator;
  private readonly chains: Chains;
  private readonly links: ItemLinks;
  private readonly evictor: Evictor;
  private readonly mover: Mover;
  private readonly crawler: Crawler;
  private readonly clock: Clock;
  private readonly itemSizeMax: number;
  /** memcached's own slab classes (its 1 MB pages), for the class `me` reports. */
  private readonly memcachedLadder: number[];
  private readonly result: MutableResult = { status: Status.Stored, ref: 0, number: 0n };
  private watcher: StoreObserver | null = null;
  /** Holds the old value during append/prepend: allocation may evict or move the old item. */
  private scratch: Uint8Array | null = null;

  /**
   * @param attach open a store another thread initialised, without touching it: every piece of
   *   state lives in the buffer, so two Store objects over one buffer stay consistent as long as
   *   they are never used at the same time (the shard lock guarantees that).
   */
  constructor(sab: SharedArrayBuffer, cfg: StoreConfig, clock: Clock, attach = false) {
    const L = computeLayout(cfg);
    const m = (this.m = new ShardMemory(sab, L)); // refuses a buffer smaller than the layout
    if (!(cfg.shardCount >= 1) || !(cfg.shardIndex >= 0) || cfg.shardIndex >= cfg.shardCount) {
      throw new RangeError('bad shardIndex / shardCount');
    }
    this.clock = clock;
    this.itemSizeMax = cfg.itemSizeMax;
    this.memcachedLadder = slabLadder(ITEM_HEADER_BYTES, cfg.minChunk, cfg.memcachedGrowthFactor ?? cfg.growthFactor, PAGE_SIZE_MAX);
    this.items = new Items(m);
    this.lifetime = new Lifetime(m, clock.processStarted, cfg.shardIndex, cfg.shardCount);
    this.index = new HashIndex(m);
    this.lru = new Lru(m);
    this.allocator = new Allocator(m);
    this.chains = new Chains(m, this.items, this.allocator);
    this.links = new ItemLinks(m, this.items, this.index, this.lru, this.chains, this.allocator, this.lifetime);
    this.mover = new Mover(m, this.items, this.allocator, this.lru, this.chains, this.links, this.lifetime);
    this.evictor = new Evictor(m, this.items, this.allocator, this.lru, this.links, this.lifetime, this.mover);
    this.crawler = new Crawler(m, this.items, this.index, this.links, this.lifetime);
    if (!attach) this.init(cfg, L.pageLimit);
  }

  private init(cfg: StoreConfig, pageLimit: number): void {
    const f = this.m.f64;
    const seq = f[H_CAS_SEQ]!;
    const kept = f[H_MAGIC] === MAGIC ? TUNING_SLOTS.map((slot) => f[slot]!) : null;
    if (f[H_MAGIC] === MAGIC) {
      // A previous store used this buffer: wipe all metadata, never the pages. Of the index, only
      // the buckets it grew into were written.
      this.index.clear();
      this.m.u32.fill(0, 0, this.m.buckets);
    } else {
      // Fresh buffers are zero-filled; touching only the small tables keeps the index's RSS lazy.
      this.m.u32.fill(0, 0, this.m.pageTable);
    }
    // the header is zero now: this only starts the index at its first size
    this.index.reset(cfg.indexStartBuckets ?? INDEX_START_BUCKETS, cfg.indexGrows ?? true);
    f[H_CAS_SEQ] = Number.isFinite(seq) && seq > 0 ? seq : 0;
    f[H_NUM_CLASSES] = this.m.classCount;
    f[H_PAGES] = this.m.pages;
    f[H_PAGE_SIZE] = this.m.pageSize;
    this.allocator.initClasses();
    if (kept !== null) {
      TUNING_SLOTS.forEach((slot, i) => (f[slot] = kept[i]!));
    } else {
      this.tune(cfg.tuning ?? DEFAULT_TUNING);
      f[H_PAGE_LIMIT] = pageLimit;
      f[H_SIZES_CAS_MIN] = -1;
    }
    f[H_MAGIC] = MAGIC;
  }

  get observer(): StoreObserver | null {
    return this.watcher;
  }

  set observer(o: StoreObserver | null) {
    this.watcher = o;
    this.links.observer = o;
  }

  // ---- tuning (memcached's runtime settings) ----------------------------------------------

  tuning(): StoreTuning {
    const f = this.m.f64;
    return {
      automove: f[H_AUTOMOVE]!,
      automoveRatio: f[H_AUTOMOVE_RATIO]!,
      hotPct: f[H_HOT_PCT]!,
      warmPct: f[H_WARM_PCT]!,
      hotMaxFactor: f[H_HOT_FACTOR]!,
      warmMaxFactor: f[H_WARM_FACTOR]!,
      tempLru: f[H_TEMP_LRU] === 1,
      temporaryTtl: f[H_TEMP_TTL]!,
      segmented: f[H_SEGMENTED] === 1,
      evict: f[H_EVICT] === 1,
      lruPolicy: LRU_POLICIES[f[H_LRU_POLICY]!]!,
    };
  }

  tune(t: Partial<StoreTuning>): void {
    const f = this.m.f64;
    if (t.automove !== undefined) f[H_AUTOMOVE] = t.automove;
    if (t.automoveRatio !== undefined) f[H_AUTOMOVE_RATIO] = t.automoveRatio;
    if (t.hotPct !== undefined) f[H_HOT_PCT] = t.hotPct;
    if (t.warmPct !== undefined) f[H_WARM_PCT] = t.warmPct;
    if (t.hotMaxFactor !== undefined) f[H_HOT_FACTOR] = t.hotMaxFactor;
    if (t.warmMaxFactor !== undefined) f[H_WARM_FACTOR] = t.warmMaxFactor;
    if (t.tempLru !== undefined) f[H_TEMP_LRU] = t.tempLru ? 1 : 0;
    if (t.temporaryTtl !== undefined) f[H_TEMP_TTL] = t.temporaryTtl;
    if (t.segmented !== undefined) f[H_SEGMENTED] = t.segmented ? 1 : 0;
    if (t.evict !== undefined) f[H_EVICT] = t.evict ? 1 : 0;
    if (t.lruPolicy !== undefined) f[H_LRU_POLICY] = LRU_POLICIES.indexOf(t.lruPolicy);
  }

  get pageSize(): number {
    return this.m.pageSize;
  }

  // ---- memory and pages -------------------------------------------------------------------

  /** -L: writes the page memory -m gives the shard, so the OS commits it now. */
  commitPages(): void {
    this.allocator.commitPages();
  }

  /** Pages the shard's address space holds (cache_memlimit's upper bound). */
  get pageCapacity(): number {
    return this.m.pages;
  }

  /** cache_memlimit (see Mover.setPageLimit). */
  setPageLimit(pages: number): boolean {
    this.m.now = this.clock.now();
    return this.mover.setPageLimit(pages);
  }

  /** `slabs reassign src dst` (see Mover.reassign). */
  reassign(src: number, dst: number): ReassignResult {
    this.m.now = this.clock.now();
    return this.mover.reassign(src, dst);
  }

  // ---- crawling ---------------------------------------------------------------------------

  /** One step of the background crawl (see Crawler.crawl). */
  crawl(maxItems: number): CrawlStep {
    this.m.now = this.clock.now();
    return this.crawler.crawl(maxItems);
  }

  /** `lru_crawler crawl` (see Crawler.reclaimDead). */
  reclaimDead(from: number, buckets: number, classes: ReadonlySet<number> | null, perClass: number, seen: Map<number, number>): number {
    this.m.now = this.clock.now();
    return this.crawler.reclaimDead(from, buckets, classes, perClass, seen);
  }

  /** Visits live items, walk group by walk group of the hash index (see Crawler.forEachLive). */
  forEachLive(from: number, buckets: number, visit: (ref: number) => void): number {
    this.m.now = this.clock.now();
    return this.crawler.forEachLive(from, buckets, visit);
  }

  // ---- statistics -------------------------------------------------------------------------

  /** `stats sizes_enable` / track_sizes: count items stored from now on, by 32-byte size bucket. */
  setSizeTracking(on: boolean): void {
    this.links.setSizeTracking(on);
  }

  get tracksSizes(): boolean {
    return this.links.tracksSizes;
  }

  /** Count per size bucket (bucket i holds items of memcached size (32(i-1), 32i]). */
  sizeHistogram(): Uint32Array {
    return this.links.sizeHistogram();
  }

  resetStats(): void {
    const { f64, counters } = this.m;
    for (let i = 0; i < COUNTER_SLOTS; i++) {
      if (!COUNTERS_KEPT_ON_RESET.includes(i)) f64[counters + i] = 0;
    }
    for (let id = 1; id < CLASS_TABLE_ENTRIES; id++) {
      const base = this.m.classStats(id);
      for (let i = 0; i < CLASS_F64_SLOTS; i++) if (i !== S.mem_requested) f64[base + i] = 0;
    }
  }

  // ---- commands ---------------------------------------------------------------------------

  get(key: Uint8Array): number {
    const m = this.m;
    m.now = this.clock.now();
    m.f64[m.counters + C.cmd_get]!++;
    const ref = this.lookup(key, this.index.hash(key), true);
    if (ref === 0) {
      m.f64[m.counters + C.get_misses]!++;
      return 0;
    }
    const cls = this.items.classOf(ref);
    m.f64[m.classStats(cls) + S.get_hits]!++;
    this.lru.bump(ref, cls);
    return ref;
  }

  getAndTouch(key: Uint8Array, exptime: number): number {
    this.m.now = this.clock.now();
    return this.touchItem(key, exptime);
  }

  touch(key: Uint8Array, exptime: number): StatusCode {
    this.m.now = this.clock.now();
    return this.touchItem(key, exptime) === 0 ? Status.NotFound : Status.Touched;
  }

  store(
    mode: StoreMode,
    key: Uint8Array,
    flags: number,
    exptime: number,
    value: Uint8Array,
    cas: number,
    options: StoreOptions = NO_OPTIONS,
  ): StoreResult {
    const r = this.result;
    r.ref = 0;
    r.number = 0n;
    r.status = this.storeItem(mode, key, flags, exptime, value, cas, options);
    this.watcher?.stored(key, r.status, mode, exptime, value.length, flags, r.ref);
    return r;
  }

  /** The store command itself; sets result.ref when it stores. */
  private storeItem(mode: StoreMode, key: Uint8Array, flags: number, exptime: number, value: Uint8Array, cas: number, options: StoreOptions): StatusCode {
    const m = this.m;
    const now = (m.now = this.clock.now());
    const f = m.f64;
    const items = this.items;
    const nkey = key.length;
    const h = this.index.hash(key);
    const old = this.lookup(key, h, false);
    let vlen = value.length;
    let src = value;
    // memcached allocates the new item before looking at the mode, so TooLarge wins over NotStored,
    // and (like memcached) an item that cannot be allocated is not counted in cmd_set.
    if (memcachedItemSize(nkey, vlen, flags) > this.itemSizeMax) {
      f[m.counters + C.store_too_large]!++;
      if (mode === Mode.Set && old !== 0) this.links.remove(old);
      return Status.TooLarge;
    }
    f[m.counters + C.cmd_set]!++;
    let exp = this.lifetime.realtime(exptime);
    let meta = options.keyBinary === true ? MF_KEY_BINARY : 0;
    switch (mode) {
      case Mode.Add:
        if (old !== 0) {
          items.setLastAccess(old, now); // memcached promotes the existing item
          return Status.NotStored;
        }
        break;
      case Mode.Replace:
        if (old === 0) return Status.NotStored;
        break;
      case Mode.Append:
      case Mode.Prepend:
      case Mode.AppendOrCreate:
      case Mode.PrependOrCreate: {
        if (old === 0) {
          if (mode === Mode.Append || mode === Mode.Prepend) return Status.NotStored;
          break; // stored as a new item
        }
        if (cas !== 0 && cas !== items.casOf(old)) return Status.Exists;
        const ovlen = items.valueLength(old);
        flags = items.flagsOf(old);
        // The combined item (with the old item's flags) not fitting is an allocation failure in memcached: NOT_STORED.
        if (memcachedItemSize(nkey, vlen + ovlen, flags) > this.itemSizeMax) return Status.NotStored;
        exp = items.exptimeOf(old);
        // Build the new value first: allocation may evict or move the old item.
        const scratch = this.scratchFor(vlen + ovlen);
        meta = 0; // memcached's combined item is a new one, without the request's key flag
        if (mode === Mode.Append || mode === Mode.AppendOrCreate) {
          this.chains.copyValue(old, scratch, 0);
          scratch.set(value, ovlen);
        } else {
          scratch.set(value, 0);
          this.chains.copyValue(old, scratch, vlen);
        }
        vlen += ovlen;
        src = scratch.subarray(0, vlen);
        break;
      }
      case Mode.Cas: {
        if (old === 0) {
          f[m.counters + C.cas_misses]!++;
          return Status.NotFound;
        }
        const oc = m.classStats(items.classOf(old));
        const oldCas = items.casOf(old);
        if (oldCas !== cas) {
          if (options.allowStale !== true || cas === 0 || cas > oldCas) {
            f[oc + S.cas_badval]!++;
            return Status.Exists;
          }
          // an older CAS with ms I: the value is stored stale, keeping the item's TTL and win
          exp = items.exptimeOf(old);
          meta |= MF_STALE | (items.metaFlags(old) & MF_WIN_SENT);
        }
        f[oc + S.cas_hits]!++;
        break;
      }
    }
    const conts = this.chains.contsFor(nkey, vlen);
    const cls = conts === 0 ? this.allocator.classFor(ITEM_HEADER_BYTES + nkey + vlen) : m.classCount;
    const sf = m.classStats(cls);
    f[sf + S.cmd_set]!++;
    const ref = conts === 0 ? this.evictor.chunkFor(cls) : this.chains.allocate(conts, this.evictor);
    if (ref === 0) {
      f[m.counters + C.store_no_memory]!++;
      f[m.counters + C.cmd_set]!--; // memcached counts a set only once its item was allocated
      f[sf + S.cmd_set]!--;
      if (mode === Mode.Set && old !== 0 && items.isLinked(old)) this.links.remove(old);
      return Status.NoMemory;
    }
    // Allocation may have evicted `old` (then its chunk may be `ref`) or moved its page away
    // (then its header was unlinked in place). Nothing has been written to `ref` yet, so the
    // LINKED bit still tells whether `old` is alive.
    if (old !== 0 && old !== ref && items.isLinked(old)) this.links.remove(old);
    const b = items.writeHeader(ref, cls, key, flags, exp, vlen, this.lifetime.nextCas());
    if (conts === 0) {
      m.u8.set(src, b);
    } else {
      this.chains.attach(ref);
      this.chains.write(ref, src);
    }
    items.setMetaFlags(ref, meta);
    if (options.newCas !== undefined && options.newCas !== 0) items.setCas(ref, options.newCas);
    this.link(ref, h, cls);
    this.result.ref = ref;
    return Status.Stored;
  }

  /**
   * A storage command refused before its value was read (declared length over -I): counts
   * store_too_large and, for set, drops the old item like memcached does.
   */
  refuseTooLarge(key: Uint8Array, isSet: boolean): void {
    this.m.now = this.clock.now();
    this.m.f64[this.m.counters + C.store_too_large]!++;
    if (!isSet) return;
    const ref = this.lookup(key, this.index.hash(key), false);
    if (ref !== 0) this.links.remove(ref);
  }

  /** Deleted | NotFound, or Exists when `cas` is given (binary protocol) and differs. */
  delete(key: Uint8Array, cas = 0): StatusCode {
    this.m.now = this.clock.now();
    const ref = this.lookup(key, this.index.hash(key), false);
    if (ref === 0) {
      this.countDeleteMiss();
      return Status.NotFound;
    }
    if (cas !== 0 && this.items.casOf(ref) !== cas) return Status.Exists;
    this.countDeleteHit(ref);
    this.watcher?.deleted(ref, false);
    this.links.remove(ref);
    return Status.Deleted;
  }

  /**
   * `cas` (binary, meta): Exists when given and different from the item's. `countMiss` false: the
   * caller creates the item on a miss, which memcached does not count as a miss.
   */
  incrDecr(key: Uint8Array, incr: boolean, delta: bigint, cas = 0, countMiss = true): StoreResult {
    const r = this.result;
    r.ref = 0;
    r.number = 0n;
    r.status = this.incrDecrItem(key, incr, delta, cas, countMiss);
    return r;
  }

  /** The arithmetic itself; sets result.ref and result.number when it succeeds. */
  private incrDecrItem(key: Uint8Array, incr: boolean, delta: bigint, cas: number, countMiss: boolean): StatusCode {
    const m = this.m;
    m.now = this.clock.now();
    const f = m.f64;
    const items = this.items;
    const nkey = key.length;
    const h = this.index.hash(key);
    const old = this.lookup(key, h, false);
    if (old === 0) {
      if (countMiss) f[m.counters + (incr ? C.incr_misses : C.decr_misses)]!++;
      return Status.NotFound;
    }
    const ovlen = items.valueLength(old);
    // memcached refuses an empty value, and one it stores in chunks (too large to be a number),
    // before it compares the CAS
    if (ovlen === 0 || items.memcachedSize(old) > MEMCACHED_CHUNK_MAX) return Status.NonNumeric;
    if (cas !== 0 && items.casOf(old) !== cas) return Status.Exists;
    const vstart = items.valueStart(old);
    let whole: Uint8Array | null = null; // a chained value, copied out
    if (items.chainOf(old) !== 0) {
      whole = this.scratchFor(ovlen);
      this.chains.copyValue(old, whole, 0);
    }
    // the value read as memcached's safe_strtoull reads it (the one number parser, exact to 2^64)
    const cur = whole === null ? parseU64(m.u8, vstart, vstart + ovlen) : parseU64(whole, 0, ovlen);
    if (cur === null) return Status.NonNumeric;
    let res: bigint;
    if (incr) res = (cur + delta) & U64_MASK;
    else res = delta > cur ? 0n : cur - delta;
    f[m.classStats(items.classOf(old)) + (incr ? S.incr_hits : S.decr_hits)]!++;
    const digits = res.toString();
    const n = digits.length;
    const u8 = m.u8;
    let ref = old;
    if (n <= ovlen) {
      // Like memcached: rewrite in place, padding with spaces (a later incr still parses it).
      if (whole === null) {
        for (let i = 0; i < n; i++) u8[vstart + i] = digits.charCodeAt(i);
        u8.fill(32, vstart + n, vstart + ovlen);
      } else {
        for (let i = 0; i < n; i++) whole[i] = digits.charCodeAt(i);
        whole.fill(32, n, ovlen);
        this.chains.write(old, whole.subarray(0, ovlen));
      }
      items.setCas(old, this.lifetime.nextCas());
      items.setUpdatedAt(old, m.now);
    } else {
      ref = this.linkSmall(key, h, old, items.flagsOf(old), items.exptimeOf(old), Buffer.from(digits, 'latin1'));
      if (ref === 0) return Status.NoMemory;
    }
    this.result.ref = ref;
    this.result.number = res;
    return Status.Ok;
  }

  flushAll(delaySeconds: number): void {
    this.m.now = this.clock.now();
    this.m.f64[this.m.counters + C.cmd_flush]!++;
    this.lifetime.flush(delaySeconds);
  }

  // ---- item fields ------------------------------------------------------------------------

  /** The item's slab class (the ids of `stats items` and `stats slabs`). */
  classOf(ref: number): number {
    return this.items.classOf(ref);
  }

  /** Server time of the item's last access. */
  lastAccessOf(ref: number): number {
    return this.items.lastAccessOf(ref);
  }

  keyOf(ref: number): Uint8Array {
    return this.items.keyOf(ref);
  }

  valueLength(ref: number): number {
    return this.items.valueLength(ref);
  }

  /** Copies the item's value (valueLength bytes, possibly spread over a chain) into dest at pos. */
  copyValue(ref: number, dest: Uint8Array, pos: number): void {
    this.chains.copyValue(ref, dest, pos);
  }

  flagsOf(ref: number): number {
    return this.items.flagsOf(ref);
  }

  casOf(ref: number): number {
    return this.items.casOf(ref);
  }

  exptimeOf(ref: number): number {
    return this.items.exptimeOf(ref);
  }

  // ---- meta protocol building blocks (lib/shards/meta.ts applies them in memcached's order) --

  /**
   * The live item under key, or 0, without counting a command or bumping it; an expired or
   * flushed item is dropped and counted as a get would count it.
   */
  peek(key: Uint8Array): number {
    this.m.now = this.clock.now();
    return this.lookup(key, this.index.hash(key), true);
  }

  /**
   * Links a new small item (not chained) under key, replacing a live one, with CAS `cas` (0 = the
   * next one); returns it, or 0 when memory is full. memcached makes mg N placeholders, md x
   * tombstones and ma N counters this way: they are not counted as sets.
   */
  insert(key: Uint8Array, flags: number, exptime: number, value: Uint8Array, cas: number): number {
    this.m.now = this.clock.now();
    const h = this.index.hash(key);
    const ref = this.linkSmall(key, h, this.lookup(key, h, false), flags, this.lifetime.realtime(exptime), value);
    if (ref !== 0 && cas !== 0) this.items.setCas(ref, cas);
    return ref;
  }

  /** Counts an mg: a get's hit or miss, or a touch's hit when it set a TTL (as memcached does). */
  countMetaGet(ref: number, touched: boolean): void {
    const { f64, counters } = this.m;
    if (ref === 0) {
      f64[counters + C.cmd_get]!++;
      f64[counters + C.get_misses]!++;
      return;
    }
    const sc = this.m.classStats(this.items.classOf(ref));
    if (touched) {
      f64[counters + C.cmd_touch]!++;
      f64[sc + S.touch_hits]!++;
    } else {
      f64[counters + C.cmd_get]!++;
      f64[sc + S.get_hits]!++;
    }
  }

  /** What a get does to the item it found: LRU activity, fetched bit, last access time. */
  hit(ref: number): void {
    this.lru.bump(ref, this.items.classOf(ref));
  }

  /** md: deletes a live item, counted as a delete hit. */
  deleteItem(ref: number): void {
    this.countDeleteHit(ref);
    this.watcher?.deleted(ref, true);
    this.links.remove(ref);
  }

  countDeleteHit(ref: number): void {
    this.m.f64[this.m.classStats(this.items.classOf(ref)) + S.delete_hits]!++;
  }

  countDeleteMiss(): void {
    this.m.f64[this.m.counters + C.delete_misses]!++;
  }

  /** `me` is memcached's only command counted in cmd_meta. */
  countMetaDebug(): void {
    this.m.f64[this.m.counters + C.cmd_meta]!++;
  }

  /** Sets the TTL from a client exptime (T, N). */
  setExptime(ref: number, exptime: number): void {
    this.items.setExptime(ref, this.lifetime.realtime(exptime));
  }

  /** Seconds left to live, -1 for never. */
  ttlOf(ref: number): number {
    const e = this.items.exptimeOf(ref);
    return e === 0 ? -1 : e - this.m.now;
  }

  /** mg R: the item expires, and sooner than a client exptime would. */
  expiresBefore(ref: number, exptime: number): boolean {
    const e = this.items.exptimeOf(ref);
    return e !== 0 && e < this.lifetime.realtime(exptime);
  }

  /** Seconds since the item was last accessed. */
  idleSeconds(ref: number): number {
    return this.m.now - this.items.lastAccessOf(ref);
  }

  fetched(ref: number): boolean {
    return this.items.fetched(ref);
  }

  /** The item's MF_* bits. */
  metaFlags(ref: number): number {
    return this.items.metaFlags(ref);
  }

  setMetaFlags(ref: number, bits: number): void {
    this.items.setMetaFlags(ref, bits);
  }

  /** Gives the item CAS `cas`, or the next one from the counter when 0. */
  setCas(ref: number, cas: number): void {
    this.items.setCas(ref, cas !== 0 ? cas : this.lifetime.nextCas());
  }

  /** The slab class memcached would keep the item in (`me`'s cls): memshard's own items are smaller. */
  memcachedClassOf(ref: number): number {
    return this.memcachedClassFor(this.sizeOf(ref));
  }

  /** memcached's slab class for an item of memcached size `size`. */
  memcachedClassFor(size: number): number {
    const i = this.memcachedLadder.findIndex((chunk) => chunk >= size);
    return i < 0 ? this.memcachedLadder.length : i + 1;
  }

  /** exptime as a store command gives it, as seconds from now (0 = never), as memcached's item_store logs it. */
  relativeTtl(exptime: number): number {
    const e = this.lifetime.realtime(exptime);
    return e === 0 ? 0 : e - this.m.now;
  }

  /** The item's size as memcached counts it (`me`'s size). */
  sizeOf(ref: number): number {
    return this.items.memcachedSize(ref);
  }

  // ---- shared steps -----------------------------------------------------------------------

  /**
   * Live item under key, or 0; an expired or flushed one is unlinked on the way (lazy expiry).
   * A fetch counts dead items (get_expired, get_flushed); the observer hears of every lookup.
   */
  private lookup(key: Uint8Array, h: number, isFetch: boolean): number {
    const ref = this.index.find(key, h);
    const d = ref === 0 ? Liveness.Alive : this.lifetime.liveness(ref);
    // memcached's stores, deletes and arithmetic look the key up as a fetch does, and log it alike
    this.watcher?.fetched(key, d === Liveness.Alive ? ref : 0, ref === 0 ? Fetch.NotFound : FETCH_OF[d]!);
    if (d === Liveness.Alive) return ref;
    if (isFetch) this.m.f64[this.m.counters + (d === Liveness.Flushed ? C.get_flushed : C.get_expired)]!++;
    this.links.remove(ref);
    return 0;
  }

  private touchItem(key: Uint8Array, exptime: number): number {
    const { f64, counters } = this.m;
    f64[counters + C.cmd_touch]!++;
    const ref = this.lookup(key, this.index.hash(key), true);
    if (ref === 0) {
      f64[counters + C.touch_misses]!++;
      return 0;
    }
    const cls = this.items.classOf(ref);
    f64[this.m.classStats(cls) + S.touch_hits]!++;
    this.items.setExptime(ref, this.lifetime.realtime(exptime));
    this.lru.bump(ref, cls);
    return ref;
  }

  /**
   * Links a new item of one chunk (flags, server exptime, value) under key, replacing `old` (its
   * live item or 0); returns it, or 0 (counted) when memory is full.
   */
  private linkSmall(key: Uint8Array, h: number, old: number, flags: number, exp: number, value: Uint8Array): number {
    const cls = this.allocator.classFor(ITEM_HEADER_BYTES + key.length + value.length);
    const ref = this.evictor.chunkFor(cls);
    if (ref === 0) {
      this.m.f64[this.m.counters + C.store_no_memory]!++;
      return 0;
    }
    // allocation may have evicted `old` (then ref may be its chunk): only a linked old item goes
    if (old !== 0 && old !== ref && this.items.isLinked(old)) this.links.remove(old);
    this.m.u8.set(value, this.items.writeHeader(ref, cls, key, flags, exp, value.length, this.lifetime.nextCas()));
    this.link(ref, h, cls);
    return ref;
  }

  /** Links a written item, then lets the slab mover have its look (once a second). */
  private link(ref: number, h: number, cls: number): void {
    this.links.link(ref, h, cls);
    this.mover.tick();
  }

  private scratchFor(n: number): Uint8Array {
    const s = this.scratch;
    if (s !== null && s.length >= n) return s;
    if (n > SCRATCH_KEEP) return new Uint8Array(n); // a one-off: do not keep a huge buffer alive
    return (this.scratch = new Uint8Array(Math.max(n, this.m.maxChunk)));
  }
}
