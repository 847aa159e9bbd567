/**
 * The shard's storage engine: one SharedArrayBuffer, no JS object per item, single-threaded.
 *
 * Items live in fixed-size chunks of slab pages (see layout.ts for the byte layout). An item is
 * addressed by its ref = byte offset / 8; 0 means "none" (offset 0 is the buffer header).
 * Each item sits on one hash chain (index) and one of its class's HOT / WARM / COLD lists.
 * Items larger than the largest chunk (slab_chunk_max = pageSize / 2) are chained: a head chunk
 * (an ordinary item: header, key, first value bytes) plus continuation chunks, all taken from the
 * largest class (see layout.ts). Only the head is indexed and on an LRU; unlinking the head frees
 * the whole chain, and a page steal that meets a continuation chunk evicts the item via its head.
 */
import { fnv1a32 } from '../hash.js';
import { memcachedItemSize } from '../protocol/command.js';
import { PAGE_SIZE_MAX, slabLadder } from './slabs.js';
import { parseU64 } from '../protocol/text.js';
import { DEFAULT_TUNING, type StoreTuning } from './tuning.js';
import { automoveStep, type ClassReading } from './automove.js';
import {
  B_CLSID, B_IFLAGS, B_KEY, B_META, B_NKEY, C, CHUNK_HEADER_BYTES, CLASS_F64_SLOTS, CLASS_TABLE_ENTRIES,
  CLASS_U32_SLOTS, COLD, COUNTER_SLOTS, COUNTERS_KEPT_ON_RESET, F_CAS, HOT, H_CAS_SEQ, H_CRAWL_POS,
  H_FLUSH_CAS, H_FLUSH_TIME, H_MAGIC, H_NUM_CLASSES, H_PAGES, H_PAGES_USED, H_PAGE_SIZE, IF_ACTIVE,
  H_AUTOMOVE, H_EVICT, H_FREE_PAGES, H_HOT_FACTOR, H_HOT_PCT, H_PAGE_LIMIT, H_SEGMENTED, H_SIZES_CAS_MIN,
  H_TEMP_LRU, H_TEMP_TTL, H_WARM_FACTOR, H_WARM_PCT, SIZE_BUCKET_BYTES, TEMP, TUNING_SLOTS,
  H_AUTOMOVE_RATIO, H_AUTOMOVE_SECOND, H_AUTOMOVE_TICKS,
  IF_CHUNK, IF_FETCHED, IF_LINKED, ITEM_HEADER_BYTES, I_ATIME, I_CFLAGS, I_CHAIN, I_CHEAD, I_CNEXT,
  I_EXPTIME, I_HNEXT, I_NEXT, I_PREV, I_UTIME, I_VLEN, K_CARVE_NEXT, K_CARVE_PAGE, K_CHUNKS,
  K_CHUNK_SIZE, K_COUNT, K_FREE_COUNT, K_FREE_HEAD, K_PER_PAGE, K_TOTAL_PAGES, MAGIC, MF_KEY_BINARY, MF_STALE,
  MF_WIN_SENT, S, SEG_MASK,
  SEG_SHIFT, WARM, computeLayout,
} from './layout.js';

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
export interface StoreObserver {
  /** A key looked up (by any command, as memcached logs them): ref is the item when found, else 0. */
  fetched(key: Uint8Array, ref: number, result: FetchResult): void;
  /** A store command's outcome; ref is the stored item (0 when not stored). */
  stored(key: Uint8Array, status: StatusCode, mode: StoreMode, exptime: number, vlen: number, flags: number, ref: number): void;
  /** Called before the item goes. */
  evicted(ref: number): void;
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

/** exptimes up to 30 days are relative, larger ones absolute Unix time (memcached). */
const REALTIME_MAXDELTA = 2592000;
/** An item in HOT/WARM is relinked on hit at most this often (memcached's ITEM_UPDATE_INTERVAL). */
const BUMP_INTERVAL = 60;
/** Tails looked at for a dead item to reuse: TEMP's first, its items are never evicted. */
const RECLAIM_ORDER = [TEMP, COLD, WARM, HOT] as const;
/** How many tail items allocation inspects for an expired one before evicting. */
const TAIL_SEARCH = 5;
/** Segment moves done per link: bounds the work of one store while keeping caps converging. */
const MAINTAIN_MOVES = 4;
const EXPTIME_MAX = 0x7fffffff;
/** The append/prepend/incr scratch buffer is kept between calls up to this size. */
const SCRATCH_KEEP = 1024 * 1024;
const U64_MASK = (1n << 64n) - 1n;
/** memcached's slab_chunk_max (half its 1 MB slab page): larger items are chunked, and incr refuses them. */
const MEMCACHED_CHUNK_MAX = 512 * 1024;

export class Store {
  static byteLength(cfg: StoreConfig): number {
    return computeLayout(cfg).byteLength;
  }

  /** Ref of the item written by the last successful store / incrDecr. */
  lastRef = 0;
  observer: StoreObserver | null = null;
  /** Result of the last successful incrDecr. */
  lastNumber = 0n;

  private readonly u8: Uint8Array;
  private readonly u32: Uint32Array;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly clock: Clock;
  private readonly itemSizeMax: number;
  /** memcached's own slab classes (its 1 MB pages), for the class `me` reports. */
  private readonly memcachedLadder: number[];
  private readonly pages: number;
  private readonly pageRef0: number; // ref of page 0's first byte
  private readonly pageRefs: number; // page size in refs (8-byte units)
  private readonly cnt: number; // Float64 index of counter 0
  private readonly cf: number; // Float64 index of class 0 stats
  private readonly am: number; // Float64 index of class 0's slab mover block
  private readonly cu: number; // Uint32 index of class 0 state
  private readonly pt: number; // Uint32 index of the page table
  private readonly sz: number; // Uint32 index of the `stats sizes` histogram
  private readonly sizeBuckets: number;
  private readonly bk: number; // Uint32 index of bucket 0
  private readonly mask: number;
  private readonly bucketCount: number;
  private readonly sizes: Uint32Array; // chunk size of class id i+1
  private readonly nClasses: number;
  private readonly maxChunk: number;
  /** Value bytes a continuation chunk holds. */
  private readonly contData: number;
  /** Largest-class chunks one page holds (a chained item may use at most a page limit of them). */
  private readonly chunksPerPage: number;
  private readonly casMul: number;
  private readonly casAdd: number;
  /** Mirrors of the header's flush state, read on every lookup. */
  /** Server time of the current operation (one clock read per call). */
  private now = 0;
  /** Holds the old value during append/prepend: allocation may evict or move the old item. */
  private scratch: Uint8Array | null = null;
  /**
   * Chunks of a chained item being allocated (transient, within one store call; never survives it,
   * so `attach` stays valid). They are invisible to eviction and page moves while held: they are
   * neither linked nor IF_CHUNK, and only the largest class, which never gives up a page to
   * itself, holds them.
   */
  private readonly held: number[] = [];

  /**
   * @param attach open a store another thread initialised, without touching it: every piece of
   *   state lives in the buffer, so two Store objects over one buffer stay consistent as long as
   *   they are never used at the same time (the shard lock guarantees that).
   */
  constructor(sab: SharedArrayBuffer, cfg: StoreConfig, clock: Clock, attach = false) {
    const L = computeLayout(cfg);
    if (sab.byteLength < L.byteLength) {
      throw new RangeError(`SharedArrayBuffer too small: ${sab.byteLength} < ${L.byteLength}`);
    }
    if (!(cfg.shardCount >= 1) || !(cfg.shardIndex >= 0) || cfg.shardIndex >= cfg.shardCount) {
      throw new RangeError('bad shardIndex / shardCount');
    }
    const len = L.byteLength;
    this.u8 = new Uint8Array(sab, 0, len);
    this.u32 = new Uint32Array(sab, 0, len / 4);
    this.i32 = new Int32Array(sab, 0, len / 4);
    this.f64 = new Float64Array(sab, 0, len / 8);
    this.clock = clock;
    this.itemSizeMax = cfg.itemSizeMax;
    this.memcachedLadder = slabLadder(ITEM_HEADER_BYTES, cfg.minChunk, cfg.memcachedGrowthFactor ?? cfg.growthFactor, PAGE_SIZE_MAX);
    this.pages = L.pages;
    this.pageRef0 = L.pageAreaByte / 8;
    this.pageRefs = L.pageSize / 8;
    this.cnt = L.countersF64;
    this.cf = L.classF64;
    this.am = L.automoveF64;
    this.cu = L.classU32;
    this.pt = L.pageTableU32;
    this.sz = L.sizesU32;
    this.sizeBuckets = L.sizeBuckets;
    this.bk = L.bucketsU32;
    this.bucketCount = L.bucketCount;
    this.mask = L.bucketCount - 1;
    this.sizes = Uint32Array.from(L.classSizes);
    this.nClasses = L.classSizes.length;
    this.maxChunk = L.classSizes[L.classSizes.length - 1]!;
    this.contData = this.maxChunk - CHUNK_HEADER_BYTES;
    this.chunksPerPage = Math.floor(L.pageSize / this.maxChunk);
    this.casMul = cfg.shardCount;
    this.casAdd = cfg.shardIndex + 1;
    if (!attach) this.init(L.pageSize, L.pageAreaByte, L.pageLimit, cfg.tuning ?? DEFAULT_TUNING);
  }

  private init(pageSize: number, pageAreaByte: number, pageLimit: number, tuning: StoreTuning): void {
    const f = this.f64;
    const seq = f[H_CAS_SEQ]!;
    const kept = f[H_MAGIC] === MAGIC ? TUNING_SLOTS.map((slot) => f[slot]!) : null;
    if (f[H_MAGIC] === MAGIC) {
      // A previous store used this buffer: wipe all metadata (index included), never the pages.
      this.u32.fill(0, 0, pageAreaByte / 4);
    } else {
      // Fresh buffers are zero-filled; touching only the small tables keeps the index's RSS lazy.
      this.u32.fill(0, 0, this.pt);
    }
    f[H_CAS_SEQ] = Number.isFinite(seq) && seq > 0 ? seq : 0;
    f[H_NUM_CLASSES] = this.nClasses;
    f[H_PAGES] = this.pages;
    f[H_PAGE_SIZE] = pageSize;
    for (let id = 1; id <= this.nClasses; id++) {
      const cs = this.cu + id * CLASS_U32_SLOTS;
      const size = this.sizes[id - 1]!;
      this.u32[cs + K_CHUNK_SIZE] = size;
      this.u32[cs + K_PER_PAGE] = Math.floor(pageSize / size);
    }
    if (kept !== null) {
      TUNING_SLOTS.forEach((slot, i) => (f[slot] = kept[i]!));
    } else {
      this.tune(tuning);
      f[H_PAGE_LIMIT] = pageLimit;
      f[H_SIZES_CAS_MIN] = -1;
    }
    f[H_MAGIC] = MAGIC;
  }

  // ---- tuning (memcached's runtime settings) ----------------------------------------------

  tuning(): StoreTuning {
    const f = this.f64;
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
    };
  }

  tune(t: Partial<StoreTuning>): void {
    const f = this.f64;
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
  }

  get pageSize(): number {
    return this.pageRefs * 8;
  }

  /**
   * `lru_crawler crawl`: over `count` hash buckets from `from`, removes the dead items of the
   * classes (null = all), at most `perClass` looked at per class (0 = no limit; `seen` counts them
   * over calls). The next bucket, or -1 after the last.
   */
  reclaimDead(from: number, count: number, classes: ReadonlySet<number> | null, perClass: number, seen: Map<number, number>): number {
    this.now = this.clock.now();
    const u32 = this.u32;
    const end = Math.min(this.bucketCount, from + count);
    let checked = 0;
    for (let b = from; b < end; b++) {
      for (let r = u32[this.bk + b]!; r !== 0; ) {
        const next = u32[r * 2 + I_HNEXT]!;
        const cls = this.u8[r * 8 + B_CLSID]!;
        const n = seen.get(cls) ?? 0;
        if ((classes === null || classes.has(cls)) && (perClass === 0 || n < perClass)) {
          seen.set(cls, n + 1);
          checked++;
          if (this.dead(r) !== 0) this.crawlerReclaim(r);
        }
        r = next;
      }
    }
    this.f64[this.cnt + C.crawler_items_checked]! += checked;
    return end >= this.bucketCount ? -1 : end;
  }

  /** -L: writes the page memory -m gives the shard, so the OS commits it now. */
  commitPages(): void {
    const start = this.pageRef0 * 8;
    this.u8.fill(0, start, start + this.f64[H_PAGE_LIMIT]! * this.pageSize);
  }

  /** Pages the shard's address space holds (cache_memlimit's upper bound). */
  get pageCapacity(): number {
    return this.pages;
  }

  /**
   * cache_memlimit: the shard may use `pages` pages. Shrinking empties the pages beyond it at once
   * (evicting their items, oldest data first) into the free pool; false if beyond the capacity.
   */
  setPageLimit(pages: number): boolean {
    if (!(pages >= 1 && pages <= this.pages)) return false;
    this.now = this.clock.now();
    const f = this.f64;
    f[H_PAGE_LIMIT] = pages;
    while (f[H_PAGES_USED]! - f[H_FREE_PAGES]! > pages) {
      const v = this.richestClass();
      if (v === 0) break;
      this.takePage(v, this.pageToTake(v));
      f[H_FREE_PAGES]!++;
    }
    return true;
  }

  /**
   * `slabs reassign src dst`: moves one page of class src (evicting its items) to class dst, or to
   * the free pool when dst is 0; src -1 picks the class with the most pages.
   */
  reassign(src: number, dst: number): 'ok' | 'badclass' | 'nospare' | 'same' {
    if (src === dst) return 'same';
    this.now = this.clock.now();
    const from = src === -1 ? this.richestClass(dst) : src;
    const valid = (c: number): boolean => Number.isInteger(c) && c >= 0 && c <= this.nClasses;
    if (!valid(from) || !valid(dst)) return 'badclass';
    const f = this.f64;
    // class 0 is memcached's global page pool; like any class it must keep a page
    const spare = from === 0 ? f[H_FREE_PAGES]! : this.u32[this.cu + from * CLASS_U32_SLOTS + K_TOTAL_PAGES]!;
    if (spare < 2) return 'nospare';
    let page: number;
    if (from === 0) {
      page = this.freePage(f[H_PAGES_USED]!);
      f[H_FREE_PAGES]!--;
    } else {
      page = this.pageToTake(from);
      this.takePage(from, page);
    }
    if (dst === 0) f[H_FREE_PAGES]!++;
    else this.givePage(dst, page);
    this.f64[this.cnt + C.slabs_moved]!++;
    return 'ok';
  }

  /** `stats sizes_enable` / track_sizes: count items stored from now on, by 32-byte size bucket. */
  setSizeTracking(on: boolean): void {
    this.u32.fill(0, this.sz, this.sz + this.sizeBuckets);
    this.f64[H_SIZES_CAS_MIN] = on ? this.f64[H_CAS_SEQ]! * this.casMul + this.casAdd : -1;
  }

  get tracksSizes(): boolean {
    return this.f64[H_SIZES_CAS_MIN] !== -1;
  }

  /** Count per size bucket (bucket i holds items of memcached size (32(i-1), 32i]). */
  sizeHistogram(): Uint32Array {
    return this.u32.subarray(this.sz, this.sz + this.sizeBuckets);
  }

  // ---- public API -------------------------------------------------------------------------

  get(key: Uint8Array): number {
    this.now = this.clock.now();
    this.f64[this.cnt + C.cmd_get]!++;
    const ref = this.lookup(key, fnv1a32(key, 0, key.length), true);
    if (ref === 0) {
      this.f64[this.cnt + C.get_misses]!++;
      return 0;
    }
    this.f64[this.cf + this.u8[ref * 8 + B_CLSID]! * CLASS_F64_SLOTS + S.get_hits]!++;
    this.bump(ref);
    return ref;
  }

  getAndTouch(key: Uint8Array, exptime: number): number {
    this.now = this.clock.now();
    return this.touchItem(key, exptime);
  }

  touch(key: Uint8Array, exptime: number): StatusCode {
    this.now = this.clock.now();
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
  ): StatusCode {
    const status = this.storeItem(mode, key, flags, exptime, value, cas, options);
    this.observer?.stored(key, status, mode, exptime, value.length, flags, status === Status.Stored ? this.lastRef : 0);
    return status;
  }

  private storeItem(mode: StoreMode, key: Uint8Array, flags: number, exptime: number, value: Uint8Array, cas: number, options: StoreOptions): StatusCode {
    const now = (this.now = this.clock.now());
    const f = this.f64;
    const nkey = key.length;
    const h = fnv1a32(key, 0, nkey);
    const old = this.lookup(key, h, false);
    let vlen = value.length;
    let src = value;
    // memcached allocates the new item before looking at the mode, so TooLarge wins over NotStored,
    // and (like memcached) an item that cannot be allocated is not counted in cmd_set.
    if (memcachedItemSize(nkey, vlen, flags) > this.itemSizeMax) {
      f[this.cnt + C.store_too_large]!++;
      if (mode === Mode.Set && old !== 0) this.remove(old);
      return Status.TooLarge;
    }
    f[this.cnt + C.cmd_set]!++;
    let exp = this.realtime(exptime);
    let meta = options.keyBinary === true ? MF_KEY_BINARY : 0;
    switch (mode) {
      case Mode.Add:
        if (old !== 0) {
          this.i32[old * 2 + I_ATIME] = now; // memcached promotes the existing item
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
        if (cas !== 0 && cas !== f[old + F_CAS]) return Status.Exists;
        const w = old * 2;
        const ovlen = this.u32[w + I_VLEN]!;
        flags = this.u32[w + I_CFLAGS]!;
        // The combined item (with the old item's flags) not fitting is an allocation failure in memcached: NOT_STORED.
        if (memcachedItemSize(nkey, vlen + ovlen, flags) > this.itemSizeMax) return Status.NotStored;
        exp = this.i32[w + I_EXPTIME]!;
        // Build the new value first: allocation may evict or move the old item.
        const scratch = this.scratchFor(vlen + ovlen);
        meta = 0; // memcached's combined item is a new one, without the request's key flag
        if (mode === Mode.Append || mode === Mode.AppendOrCreate) {
          this.copyValue(old, scratch, 0);
          scratch.set(value, ovlen);
        } else {
          scratch.set(value, 0);
          this.copyValue(old, scratch, vlen);
        }
        vlen += ovlen;
        src = scratch.subarray(0, vlen);
        break;
      }
      case Mode.Cas: {
        if (old === 0) {
          f[this.cnt + C.cas_misses]!++;
          return Status.NotFound;
        }
        const oc = this.cf + this.u8[old * 8 + B_CLSID]! * CLASS_F64_SLOTS;
        const oldCas = f[old + F_CAS]!;
        if (oldCas !== cas) {
          if (options.allowStale !== true || cas === 0 || cas > oldCas) {
            f[oc + S.cas_badval]!++;
            return Status.Exists;
          }
          // an older CAS with ms I: the value is stored stale, keeping the item's TTL and win
          exp = this.i32[old * 2 + I_EXPTIME]!;
          meta |= MF_STALE | (this.u8[old * 8 + B_META]! & MF_WIN_SENT);
        }
        f[oc + S.cas_hits]!++;
        break;
      }
    }
    const conts = this.contsFor(nkey, vlen);
    const cls = conts === 0 ? this.classFor(ITEM_HEADER_BYTES + nkey + vlen) : this.nClasses;
    f[this.cf + cls * CLASS_F64_SLOTS + S.cmd_set]!++;
    const ref = conts === 0 ? this.alloc(cls) : this.allocChain(conts);
    if (ref === 0) {
      f[this.cnt + C.store_no_memory]!++;
      f[this.cnt + C.cmd_set]!--; // memcached counts a set only once its item was allocated
      f[this.cf + cls * CLASS_F64_SLOTS + S.cmd_set]!--;
      if (mode === Mode.Set && old !== 0 && this.isLinked(old)) this.remove(old);
      return Status.NoMemory;
    }
    // Allocation may have evicted `old` (then its chunk may be `ref`) or moved its page away
    // (then its header was unlinked in place). Nothing has been written to `ref` yet, so the
    // LINKED bit still tells whether `old` is alive.
    if (old !== 0 && old !== ref && this.isLinked(old)) this.remove(old);
    const b = this.writeHeader(ref, cls, key, flags, exp, vlen);
    if (conts === 0) {
      this.u8.set(src, b);
    } else {
      this.attachChain(ref);
      this.writeChained(ref, src);
    }
    this.u8[ref * 8 + B_META] = meta;
    if (options.newCas !== undefined && options.newCas !== 0) f[ref + F_CAS] = options.newCas;
    this.link(ref, h, cls);
    this.lastRef = ref;
    return Status.Stored;
  }

  /**
   * A storage command refused before its value was read (declared length over -I): counts
   * store_too_large and, for set, drops the old item like memcached does.
   */
  refuseTooLarge(key: Uint8Array, isSet: boolean): void {
    this.now = this.clock.now();
    this.f64[this.cnt + C.store_too_large]!++;
    if (!isSet) return;
    const ref = this.lookup(key, fnv1a32(key, 0, key.length), false);
    if (ref !== 0) this.remove(ref);
  }

  /** Deleted | NotFound, or Exists when `cas` is given (binary protocol) and differs. */
  delete(key: Uint8Array, cas = 0): StatusCode {
    this.now = this.clock.now();
    const ref = this.lookup(key, fnv1a32(key, 0, key.length), false);
    if (ref === 0) {
      this.f64[this.cnt + C.delete_misses]!++;
      return Status.NotFound;
    }
    if (cas !== 0 && this.f64[ref + F_CAS] !== cas) return Status.Exists;
    this.f64[this.cf + this.u8[ref * 8 + B_CLSID]! * CLASS_F64_SLOTS + S.delete_hits]!++;
    this.observer?.deleted(ref, false);
    this.remove(ref);
    return Status.Deleted;
  }

  /**
   * `cas` (binary, meta): Exists when given and different from the item's. `countMiss` false: the
   * caller creates the item on a miss, which memcached does not count as a miss.
   */
  incrDecr(key: Uint8Array, incr: boolean, delta: bigint, cas = 0, countMiss = true): StatusCode {
    this.now = this.clock.now();
    const f = this.f64;
    const nkey = key.length;
    const h = fnv1a32(key, 0, nkey);
    const old = this.lookup(key, h, false);
    if (old === 0) {
      if (countMiss) f[this.cnt + (incr ? C.incr_misses : C.decr_misses)]!++;
      return Status.NotFound;
    }
    const w = old * 2;
    const ovlen = this.u32[w + I_VLEN]!;
    // memcached refuses an empty value, and one it stores in chunks (too large to be a number),
    // before it compares the CAS
    if (ovlen === 0 || memcachedItemSize(nkey, ovlen, this.u32[w + I_CFLAGS]!) > MEMCACHED_CHUNK_MAX) return Status.NonNumeric;
    if (cas !== 0 && f[old + F_CAS] !== cas) return Status.Exists;
    const vstart = old * 8 + B_KEY + nkey;
    const chained = this.u32[w + I_CHAIN] !== 0;
    let whole: Uint8Array | null = null; // a chained value, copied out
    if (chained) {
      whole = this.scratchFor(ovlen);
      this.copyValue(old, whole, 0);
    }
    // the value read as memcached's safe_strtoull reads it (the one number parser, exact to 2^64)
    const cur = whole === null ? parseU64(this.u8, vstart, vstart + ovlen) : parseU64(whole, 0, ovlen);
    if (cur === null) return Status.NonNumeric;
    let res: bigint;
    if (incr) res = (cur + delta) & U64_MASK;
    else res = delta > cur ? 0n : cur - delta;
    f[this.cf + this.u8[old * 8 + B_CLSID]! * CLASS_F64_SLOTS + (incr ? S.incr_hits : S.decr_hits)]!++;
    this.lastNumber = res;
    const digits = res.toString();
    const n = digits.length;
    const u8 = this.u8;
    if (n <= ovlen) {
      // Like memcached: rewrite in place, padding with spaces (a later incr still parses it).
      if (whole === null) {
        for (let i = 0; i < n; i++) u8[vstart + i] = digits.charCodeAt(i);
        u8.fill(32, vstart + n, vstart + ovlen);
      } else {
        for (let i = 0; i < n; i++) whole[i] = digits.charCodeAt(i);
        whole.fill(32, n, ovlen);
        this.writeChained(old, whole.subarray(0, ovlen));
      }
      f[old + F_CAS] = this.nextCas();
      this.i32[w + I_UTIME] = this.now;
      this.lastRef = old;
      return Status.Ok;
    }
    const ref = this.linkSmall(key, h, old, this.u32[w + I_CFLAGS]!, this.i32[w + I_EXPTIME]!, Buffer.from(digits, 'latin1'));
    if (ref === 0) return Status.NoMemory;
    this.lastRef = ref;
    return Status.Ok;
  }

  flushAll(delaySeconds: number): void {
    this.now = this.clock.now();
    this.f64[this.cnt + C.cmd_flush]!++;
    if (delaySeconds > 0) {
      this.f64[H_FLUSH_TIME] = this.realtime(delaySeconds);
    } else {
      // Everything stored so far has a CAS <= the last one handed out.
      this.f64[H_FLUSH_CAS] = this.f64[H_CAS_SEQ]! * this.casMul + this.casAdd;
      this.f64[H_FLUSH_TIME] = 0; // replaces a pending delayed flush
    }
  }

  crawl(maxItems: number): number {
    this.now = this.clock.now();
    const u32 = this.u32;
    const bk = this.bk;
    const maxBuckets = Math.min(this.bucketCount, Math.max(1024, maxItems * 16));
    let pos = this.f64[H_CRAWL_POS]! & this.mask;
    let checked = 0;
    for (let visited = 0; checked < maxItems && visited < maxBuckets; visited++) {
      let r = u32[bk + pos]!;
      while (r !== 0) {
        const next = u32[r * 2 + I_HNEXT]!;
        checked++;
        if (this.dead(r) !== 0) this.crawlerReclaim(r);
        r = next;
      }
      pos = (pos + 1) & this.mask;
    }
    this.f64[H_CRAWL_POS] = pos;
    this.f64[this.cnt + C.crawler_items_checked]! += checked;
    return checked;
  }

  private crawlerReclaim(r: number): void {
    const sc = this.cf + this.u8[r * 8 + B_CLSID]! * CLASS_F64_SLOTS;
    this.f64[sc + S.crawler_reclaimed]!++;
    this.f64[sc + S.reclaimed]!++;
    if ((this.u8[r * 8 + B_IFLAGS]! & IF_FETCHED) === 0) this.f64[sc + S.expired_unfetched]!++;
    this.remove(r);
  }

  /**
   * Visit the live items of `count` hash buckets from bucket `from`, in bucket order (dead ones are
   * skipped, not reclaimed); the next bucket to visit, or -1 after the last.
   */
  forEachLive(from: number, count: number, visit: (ref: number) => void): number {
    this.now = this.clock.now();
    const u32 = this.u32;
    const end = Math.min(this.bucketCount, from + count);
    for (let b = from; b < end; b++) {
      for (let r = u32[this.bk + b]!; r !== 0; r = u32[r * 2 + I_HNEXT]!) if (this.dead(r) === 0) visit(r);
    }
    return end < this.bucketCount ? end : -1;
  }

  /** The item's slab class (the ids of `stats items` and `stats slabs`). */
  classOf(ref: number): number {
    return this.u8[ref * 8 + B_CLSID]!;
  }

  /** Server time of the item's last access. */
  lastAccessOf(ref: number): number {
    return this.i32[ref * 2 + I_ATIME]!;
  }

  resetStats(): void {
    const f = this.f64;
    for (let i = 0; i < COUNTER_SLOTS; i++) {
      if (!COUNTERS_KEPT_ON_RESET.includes(i)) f[this.cnt + i] = 0;
    }
    for (let id = 1; id < CLASS_TABLE_ENTRIES; id++) {
      const base = this.cf + id * CLASS_F64_SLOTS;
      for (let i = 0; i < CLASS_F64_SLOTS; i++) if (i !== S.mem_requested) f[base + i] = 0;
    }
  }

  keyOf(ref: number): Uint8Array {
    const b = ref * 8 + B_KEY;
    return this.u8.subarray(b, b + this.u8[ref * 8 + B_NKEY]!);
  }

  valueLength(ref: number): number {
    return this.u32[ref * 2 + I_VLEN]!;
  }

  /** Copies the item's value (valueLength bytes, possibly spread over a chain) into dest at pos. */
  copyValue(ref: number, dest: Uint8Array, pos: number): void {
    const u8 = this.u8;
    const u32 = this.u32;
    const nkey = u8[ref * 8 + B_NKEY]!;
    const vlen = u32[ref * 2 + I_VLEN]!;
    const b = ref * 8 + B_KEY + nkey;
    let c = u32[ref * 2 + I_CHAIN]!;
    if (c === 0) {
      dest.set(u8.subarray(b, b + vlen), pos);
      return;
    }
    let done = this.maxChunk - ITEM_HEADER_BYTES - nkey;
    dest.set(u8.subarray(b, b + done), pos);
    const cd = this.contData;
    while (done < vlen && c !== 0) {
      const n = Math.min(vlen - done, cd);
      const s = c * 8 + CHUNK_HEADER_BYTES;
      dest.set(u8.subarray(s, s + n), pos + done);
      done += n;
      c = u32[c * 2 + I_CNEXT]!;
    }
  }

  flagsOf(ref: number): number {
    return this.u32[ref * 2 + I_CFLAGS]!;
  }

  casOf(ref: number): number {
    return this.f64[ref + F_CAS]!;
  }

  exptimeOf(ref: number): number {
    return this.i32[ref * 2 + I_EXPTIME]!;
  }

  // ---- meta protocol building blocks (lib/shards/meta.ts applies them in memcached's order) --

  /**
   * The live item under key, or 0, without counting a command or bumping it; an expired or
   * flushed item is dropped and counted as a get would count it.
   */
  peek(key: Uint8Array): number {
    this.now = this.clock.now();
    return this.lookup(key, fnv1a32(key, 0, key.length), true);
  }

  /**
   * Links a new small item (not chained) under key, replacing a live one, with CAS `cas` (0 = the
   * next one); returns it, or 0 when memory is full. memcached makes mg N placeholders, md x
   * tombstones and ma N counters this way: they are not counted as sets.
   */
  insert(key: Uint8Array, flags: number, exptime: number, value: Uint8Array, cas: number): number {
    this.now = this.clock.now();
    const h = fnv1a32(key, 0, key.length);
    const ref = this.linkSmall(key, h, this.lookup(key, h, false), flags, this.realtime(exptime), value);
    if (ref !== 0 && cas !== 0) this.f64[ref + F_CAS] = cas;
    return ref;
  }

  /** Counts an mg: a get's hit or miss, or a touch's hit when it set a TTL (as memcached does). */
  countMetaGet(ref: number, touched: boolean): void {
    const f = this.f64;
    if (ref === 0) {
      f[this.cnt + C.cmd_get]!++;
      f[this.cnt + C.get_misses]!++;
      return;
    }
    const sc = this.cf + this.u8[ref * 8 + B_CLSID]! * CLASS_F64_SLOTS;
    if (touched) {
      f[this.cnt + C.cmd_touch]!++;
      f[sc + S.touch_hits]!++;
    } else {
      f[this.cnt + C.cmd_get]!++;
      f[sc + S.get_hits]!++;
    }
  }

  /** What a get does to the item it found: LRU activity, fetched bit, last access time. */
  hit(ref: number): void {
    this.bump(ref);
  }

  /** md: deletes a live item, counted as a delete hit. */
  deleteItem(ref: number): void {
    this.countDeleteHit(ref);
    this.observer?.deleted(ref, true);
    this.remove(ref);
  }

  countDeleteHit(ref: number): void {
    this.f64[this.cf + this.u8[ref * 8 + B_CLSID]! * CLASS_F64_SLOTS + S.delete_hits]!++;
  }

  countDeleteMiss(): void {
    this.f64[this.cnt + C.delete_misses]!++;
  }

  /** `me` is memcached's only command counted in cmd_meta. */
  countMetaDebug(): void {
    this.f64[this.cnt + C.cmd_meta]!++;
  }

  /** Sets the TTL from a client exptime (T, N). */
  setExptime(ref: number, exptime: number): void {
    this.i32[ref * 2 + I_EXPTIME] = this.realtime(exptime);
  }

  /** Seconds left to live, -1 for never. */
  ttlOf(ref: number): number {
    const e = this.i32[ref * 2 + I_EXPTIME]!;
    return e === 0 ? -1 : e - this.now;
  }

  /** mg R: the item expires, and sooner than a client exptime would. */
  expiresBefore(ref: number, exptime: number): boolean {
    const e = this.i32[ref * 2 + I_EXPTIME]!;
    return e !== 0 && e < this.realtime(exptime);
  }

  /** Seconds since the item was last accessed. */
  idleSeconds(ref: number): number {
    return this.now - this.i32[ref * 2 + I_ATIME]!;
  }

  fetched(ref: number): boolean {
    return (this.u8[ref * 8 + B_IFLAGS]! & IF_FETCHED) !== 0;
  }

  /** The item's MF_* bits. */
  metaFlags(ref: number): number {
    return this.u8[ref * 8 + B_META]!;
  }

  setMetaFlags(ref: number, bits: number): void {
    this.u8[ref * 8 + B_META] = bits;
  }

  /** Gives the item CAS `cas`, or the next one from the counter when 0. */
  setCas(ref: number, cas: number): void {
    this.f64[ref + F_CAS] = cas !== 0 ? cas : this.nextCas();
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
    const e = this.realtime(exptime);
    return e === 0 ? 0 : e - this.now;
  }

  /** The item's size as memcached counts it (`me`'s size). */
  sizeOf(ref: number): number {
    return memcachedItemSize(this.u8[ref * 8 + B_NKEY]!, this.u32[ref * 2 + I_VLEN]!, this.u32[ref * 2 + I_CFLAGS]!);
  }

  // ---- time, CAS, lookup ------------------------------------------------------------------

  /** Client exptime -> server time (memcached's realtime()); 1 means "already expired". */
  private realtime(exptime: number): number {
    if (exptime === 0) return 0;
    if (exptime < 0) return 1;
    let t: number;
    if (exptime > REALTIME_MAXDELTA) {
      t = exptime - this.clock.processStarted;
      if (t <= 0) return 1;
    } else {
      t = exptime + this.now;
    }
    return t > EXPTIME_MAX ? EXPTIME_MAX : Math.floor(t);
  }

  private nextCas(): number {
    const seq = this.f64[H_CAS_SEQ]! + 1;
    this.f64[H_CAS_SEQ] = seq;
    return seq * this.casMul + this.casAdd;
  }

  /** 0 = alive, 1 = flushed, 2 = expired. */
  private dead(ref: number): number {
    // read from the buffer, not cached: another thread's Store may have flushed (see `attach`)
    const flushCas = this.f64[H_FLUSH_CAS]!;
    if (flushCas !== 0 && this.f64[ref + F_CAS]! <= flushCas) return 1;
    const w = ref * 2;
    const ft = this.f64[H_FLUSH_TIME]!;
    if (ft !== 0 && this.now >= ft && this.i32[w + I_UTIME]! < ft) return 1;
    const e = this.i32[w + I_EXPTIME]!;
    return e !== 0 && e <= this.now ? 2 : 0;
  }

  private find(key: Uint8Array, h: number): number {
    const u8 = this.u8;
    const u32 = this.u32;
    const n = key.length;
    let ref = u32[this.bk + (h & this.mask)]!;
    while (ref !== 0) {
      const b = ref * 8;
      if (u8[b + B_NKEY] === n) {
        const k = b + B_KEY;
        let i = 0;
        while (i < n && u8[k + i] === key[i]) i++;
        if (i === n) return ref;
      }
      ref = u32[ref * 2 + I_HNEXT]!;
    }
    return 0;
  }

  /**
   * Live item under key, or 0; an expired or flushed one is unlinked on the way (lazy expiry).
   * A fetch counts dead items (get_expired, get_flushed); the observer hears of every lookup.
   */
  private lookup(key: Uint8Array, h: number, isFetch: boolean): number {
    const ref = this.find(key, h);
    const d = ref === 0 ? 0 : this.dead(ref);
    // memcached's stores, deletes and arithmetic look the key up as a fetch does, and log it alike
    this.observer?.fetched(key, d === 0 ? ref : 0, ref === 0 ? Fetch.NotFound : d === 0 ? Fetch.Found : d === 1 ? Fetch.Flushed : Fetch.Expired);
    if (d === 0) return ref;
    if (isFetch) this.f64[this.cnt + (d === 1 ? C.get_flushed : C.get_expired)]!++;
    this.remove(ref);
    return 0;
  }

  private touchItem(key: Uint8Array, exptime: number): number {
    this.f64[this.cnt + C.cmd_touch]!++;
    const ref = this.lookup(key, fnv1a32(key, 0, key.length), true);
    if (ref === 0) {
      this.f64[this.cnt + C.touch_misses]!++;
      return 0;
    }
    this.f64[this.cf + this.u8[ref * 8 + B_CLSID]! * CLASS_F64_SLOTS + S.touch_hits]!++;
    this.i32[ref * 2 + I_EXPTIME] = this.realtime(exptime);
    this.bump(ref);
    return ref;
  }

  private classFor(total: number): number {
    const s = this.sizes;
    let lo = 0;
    let hi = this.nClasses - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (s[mid]! >= total) hi = mid;
      else lo = mid + 1;
    }
    return lo + 1;
  }

  /**
   * Links a new item of one chunk (flags, server exptime, value) under key, replacing `old` (its
   * live item or 0); returns it, or 0 (counted) when memory is full.
   */
  private linkSmall(key: Uint8Array, h: number, old: number, flags: number, exp: number, value: Uint8Array): number {
    const cls = this.classFor(ITEM_HEADER_BYTES + key.length + value.length);
    const ref = this.alloc(cls);
    if (ref === 0) {
      this.f64[this.cnt + C.store_no_memory]!++;
      return 0;
    }
    // allocation may have evicted `old` (then ref may be its chunk): only a linked old item goes
    if (old !== 0 && old !== ref && this.isLinked(old)) this.remove(old);
    this.u8.set(value, this.writeHeader(ref, cls, key, flags, exp, value.length));
    this.link(ref, h, cls);
    return ref;
  }

  private isLinked(ref: number): boolean {
    return (this.u8[ref * 8 + B_IFLAGS]! & IF_LINKED) !== 0;
  }

  /** Writes everything but the value; returns the value's byte offset. */
  private writeHeader(ref: number, cls: number, key: Uint8Array, flags: number, exp: number, vlen: number): number {
    const w = ref * 2;
    const b = ref * 8;
    const i32 = this.i32;
    const u32 = this.u32;
    const u8 = this.u8;
    i32[w + I_EXPTIME] = exp;
    i32[w + I_ATIME] = this.now;
    i32[w + I_UTIME] = this.now;
    u32[w + I_CFLAGS] = flags >>> 0;
    u32[w + I_VLEN] = vlen;
    u32[w + I_CHAIN] = 0;
    this.f64[ref + F_CAS] = this.nextCas();
    const n = key.length;
    u8[b + B_NKEY] = n;
    u8[b + B_CLSID] = cls;
    u8[b + B_IFLAGS] = 0;
    u8[b + B_META] = 0;
    const k = b + B_KEY;
    for (let i = 0; i < n; i++) u8[k + i] = key[i]!;
    return k + n;
  }

  // ---- index + LRU ------------------------------------------------------------------------

  private link(ref: number, h: number, cls: number): void {
    const slot = this.bk + (h & this.mask);
    this.u32[ref * 2 + I_HNEXT] = this.u32[slot]!;
    this.u32[slot] = ref;
    const b = ref * 8;
    this.u8[b + B_IFLAGS] = IF_LINKED;
    const cs = this.cu + cls * CLASS_U32_SLOTS;
    this.pushHead(cs, this.segmentForNew(ref), ref);
    this.trackSize(ref, 1);
    const size = this.itemBytes(this.u8[b + B_NKEY]!, this.u32[ref * 2 + I_VLEN]!);
    const f = this.f64;
    f[this.cnt + C.curr_items]!++;
    f[this.cnt + C.total_items]!++;
    f[this.cnt + C.bytes]! += size;
    f[this.cf + cls * CLASS_F64_SLOTS + S.mem_requested]! += size;
    this.maintain(cls);
    if (f[H_AUTOMOVE] === 1 && f[H_AUTOMOVE_SECOND] !== this.now) this.automove();
  }

  /** slab_automove=1: the slab mover's look at this second (memcached's runs once a second too). */
  private automove(): void {
    const f = this.f64;
    const u32 = this.u32;
    f[H_AUTOMOVE_SECOND] = this.now;
    const readings: ClassReading[] = [];
    for (let c = 0; c <= this.nClasses; c++) {
      const cs = this.cu + c * CLASS_U32_SLOTS;
      const sf = this.cf + c * CLASS_F64_SLOTS;
      const coldTail = u32[cs + 2 * COLD + 1]!;
      const carving = u32[cs + K_CARVE_PAGE] !== 0 ? Math.max(0, u32[cs + K_PER_PAGE]! - u32[cs + K_CARVE_NEXT]!) : 0;
      readings.push({
        evicted: f[sf + S.evicted]!,
        outofmemory: f[sf + S.outofmemory]!,
        totalPages: u32[cs + K_TOTAL_PAGES]!,
        freeChunks: u32[cs + K_FREE_COUNT]! + carving,
        perPage: u32[cs + K_PER_PAGE]!,
        coldAge: coldTail === 0 ? 0 : this.now - this.i32[coldTail * 2 + I_ATIME]!,
      });
    }
    const tick = ++f[H_AUTOMOVE_TICKS]!;
    const move = automoveStep(f, this.am, tick, readings, f[H_AUTOMOVE_RATIO]!);
    if (move !== null) this.reassign(move.src, move.dst);
  }

  /** TEMP for a short TTL when the TEMP LRU is on, else HOT (COLD in flat mode), as memcached links. */
  private segmentForNew(ref: number): number {
    const f = this.f64;
    const exp = this.i32[ref * 2 + I_EXPTIME]!;
    if (f[H_TEMP_LRU] === 1 && exp !== 0 && exp - this.now <= f[H_TEMP_TTL]!) return TEMP;
    return f[H_SEGMENTED] === 1 ? HOT : COLD;
  }

  /** `stats sizes`: counts an item linked (+1) or unlinked (-1) since tracking began. */
  private trackSize(ref: number, delta: number): void {
    const min = this.f64[H_SIZES_CAS_MIN]!;
    if (min < 0 || this.f64[ref + F_CAS]! <= min) return;
    const w = ref * 2;
    const total = memcachedItemSize(this.u8[ref * 8 + B_NKEY]!, this.u32[w + I_VLEN]!, this.u32[w + I_CFLAGS]!);
    const bucket = Math.ceil(total / SIZE_BUCKET_BYTES);
    if (bucket >= this.sizeBuckets) return;
    const i = this.sz + bucket;
    // an item's CAS can change after it was counted (meta E): never wrap below zero
    if (delta > 0 || this.u32[i]! > 0) this.u32[i]! += delta;
  }

  /**
   * Takes the item out of the index and its LRU and frees its continuation chunks; its head chunk
   * is the caller's.
   */
  private unlink(ref: number): void {
    const b = ref * 8;
    const u8 = this.u8;
    const u32 = this.u32;
    const nkey = u8[b + B_NKEY]!;
    const slot = this.bk + (fnv1a32(u8, b + B_KEY, b + B_KEY + nkey) & this.mask);
    const hnext = u32[ref * 2 + I_HNEXT]!;
    let p = u32[slot]!;
    if (p === ref) {
      u32[slot] = hnext;
    } else {
      while (p !== 0) {
        const nx = u32[p * 2 + I_HNEXT]!;
        if (nx === ref) {
          u32[p * 2 + I_HNEXT] = hnext;
          break;
        }
        p = nx;
      }
    }
    const cls = u8[b + B_CLSID]!;
    this.lruRemove(this.cu + cls * CLASS_U32_SLOTS, ref);
    this.trackSize(ref, -1);
    u8[b + B_IFLAGS] = u8[b + B_IFLAGS]! & ~IF_LINKED;
    const size = this.itemBytes(nkey, u32[ref * 2 + I_VLEN]!);
    const f = this.f64;
    f[this.cnt + C.curr_items]!--;
    f[this.cnt + C.bytes]! -= size;
    f[this.cf + cls * CLASS_F64_SLOTS + S.mem_requested]! -= size;
    let c = u32[ref * 2 + I_CHAIN]!;
    if (c !== 0) {
      u32[ref * 2 + I_CHAIN] = 0;
      const cs = this.cu + this.nClasses * CLASS_U32_SLOTS;
      let n = 0;
      while (c !== 0) {
        const next = u32[c * 2 + I_CNEXT]!;
        this.freeChunk(cs, c);
        n++;
        c = next;
      }
      u32[cs + K_CHUNKS]! -= n;
    }
  }

  /** Unlink and return the chunk(s) to the free lists. */
  private remove(ref: number): void {
    this.unlink(ref);
    this.freeChunk(this.cu + this.u8[ref * 8 + B_CLSID]! * CLASS_U32_SLOTS, ref);
  }

  /** Puts an unlinked chunk on the free list of the class whose state block is cs. */
  private freeChunk(cs: number, ref: number): void {
    this.u8[ref * 8 + B_IFLAGS] = 0;
    this.u32[ref * 2 + I_HNEXT] = this.u32[cs + K_FREE_HEAD]!;
    this.u32[cs + K_FREE_HEAD] = ref;
    this.u32[cs + K_FREE_COUNT]!++;
  }

  // ---- chained items ----------------------------------------------------------------------

  /** Continuation chunks an item needs: 0 when header + key + value fit the largest chunk. */
  private contsFor(nkey: number, vlen: number): number {
    const over = ITEM_HEADER_BYTES + nkey + vlen - this.maxChunk;
    return over <= 0 ? 0 : Math.ceil(over / this.contData);
  }

  /**
   * What an item counts in `bytes` and its class's mem_requested: header + key + value, plus a
   * chunk header per continuation chunk (all of a chained item's chunks are in the largest class,
   * so its whole size is that class's).
   */
  private itemBytes(nkey: number, vlen: number): number {
    return ITEM_HEADER_BYTES + nkey + vlen + this.contsFor(nkey, vlen) * CHUNK_HEADER_BYTES;
  }

  private scratchFor(n: number): Uint8Array {
    const s = this.scratch;
    if (s !== null && s.length >= n) return s;
    if (n > SCRATCH_KEEP) return new Uint8Array(n); // a one-off: do not keep a huge buffer alive
    return (this.scratch = new Uint8Array(Math.max(n, this.maxChunk)));
  }

  /**
   * 1 + conts chunks of the largest class; returns the head (the others wait in `held` for
   * attachChain), or 0 with nothing held when memory cannot be found.
   */
  private allocChain(conts: number): number {
    const cls = this.nClasses;
    const held = this.held;
    held.length = 0;
    if (conts + 1 > this.f64[H_PAGE_LIMIT]! * this.chunksPerPage) {
      this.f64[this.cf + cls * CLASS_F64_SLOTS + S.outofmemory]!++;
      return 0;
    }
    for (let i = 0; i <= conts; i++) {
      const r = this.alloc(cls);
      if (r === 0) {
        const cs = this.cu + cls * CLASS_U32_SLOTS;
        for (const c of held) this.freeChunk(cs, c);
        held.length = 0;
        return 0;
      }
      held.push(r);
    }
    return held[0]!;
  }

  /** Links the chunks allocChain left in `held` behind the head `ref` (= held[0]). */
  private attachChain(ref: number): void {
    const held = this.held;
    const u32 = this.u32;
    const u8 = this.u8;
    const cls = this.nClasses;
    u32[ref * 2 + I_CHAIN] = held[1]!;
    for (let i = 1; i < held.length; i++) {
      const c = held[i]!;
      u32[c * 2 + I_CNEXT] = held[i + 1] ?? 0;
      u32[c * 2 + I_CHEAD] = ref;
      u8[c * 8 + B_CLSID] = cls;
      u8[c * 8 + B_IFLAGS] = IF_CHUNK;
    }
    u32[this.cu + cls * CLASS_U32_SLOTS + K_CHUNKS]! += held.length - 1;
    held.length = 0;
  }

  /** Writes a chained item's whole value (src.length = its vlen) over its chunks. */
  private writeChained(ref: number, src: Uint8Array): void {
    const u8 = this.u8;
    const u32 = this.u32;
    const nkey = u8[ref * 8 + B_NKEY]!;
    let done = this.maxChunk - ITEM_HEADER_BYTES - nkey;
    u8.set(src.subarray(0, done), ref * 8 + B_KEY + nkey);
    const cd = this.contData;
    let c = u32[ref * 2 + I_CHAIN]!;
    while (done < src.length && c !== 0) {
      const n = Math.min(src.length - done, cd);
      u8.set(src.subarray(done, done + n), c * 8 + CHUNK_HEADER_BYTES);
      done += n;
      c = u32[c * 2 + I_CNEXT]!;
    }
  }

  private pushHead(cs: number, seg: number, ref: number): void {
    const u32 = this.u32;
    const w = ref * 2;
    const hi = cs + 2 * seg;
    const head = u32[hi]!;
    u32[w + I_PREV] = 0;
    u32[w + I_NEXT] = head;
    if (head !== 0) u32[head * 2 + I_PREV] = ref;
    else u32[hi + 1] = ref;
    u32[hi] = ref;
    u32[cs + K_COUNT + seg]!++;
    const fb = ref * 8 + B_IFLAGS;
    this.u8[fb] = (this.u8[fb]! & ~SEG_MASK) | (seg << SEG_SHIFT);
  }

  private lruRemove(cs: number, ref: number): void {
    const u32 = this.u32;
    const w = ref * 2;
    const seg = (this.u8[ref * 8 + B_IFLAGS]! & SEG_MASK) >> SEG_SHIFT;
    const hi = cs + 2 * seg;
    const prev = u32[w + I_PREV]!;
    const next = u32[w + I_NEXT]!;
    if (prev !== 0) u32[prev * 2 + I_NEXT] = next;
    else u32[hi] = next;
    if (next !== 0) u32[next * 2 + I_PREV] = prev;
    else u32[hi + 1] = prev;
    u32[cs + K_COUNT + seg]!--;
  }

  private move(cs: number, ref: number, seg: number): void {
    this.lruRemove(cs, ref);
    this.pushHead(cs, seg, ref);
  }

  /** A hit: mark ACTIVE; a second hit while in COLD promotes to WARM. */
  private bump(ref: number): void {
    const fb = ref * 8 + B_IFLAGS;
    const u8 = this.u8;
    const fl = u8[fb]!;
    const seg = (fl & SEG_MASK) >> SEG_SHIFT;
    const ai = ref * 2 + I_ATIME;
    const cls = u8[ref * 8 + B_CLSID]!;
    this.f64[this.cf + cls * CLASS_F64_SLOTS + S.hits_to_hot + seg]!++;
    if (seg === TEMP) {
      u8[fb] = fl | IF_FETCHED | IF_ACTIVE; // memcached never bumps TEMP items
    } else if (seg === COLD && this.f64[H_SEGMENTED] === 1) {
      if ((fl & IF_ACTIVE) !== 0) {
        u8[fb] = (fl | IF_FETCHED) & ~IF_ACTIVE;
        this.move(this.cu + cls * CLASS_U32_SLOTS, ref, WARM);
        this.f64[this.cf + cls * CLASS_F64_SLOTS + S.moves_to_warm]!++;
      } else {
        u8[fb] = fl | IF_FETCHED | IF_ACTIVE;
      }
    } else {
      u8[fb] = fl | IF_FETCHED | IF_ACTIVE;
      if (this.now - this.i32[ai]! >= BUMP_INTERVAL) this.move(this.cu + cls * CLASS_U32_SLOTS, ref, seg);
    }
    this.i32[ai] = this.now;
  }

  /**
   * Keeps HOT and WARM within hot_lru_pct / warm_lru_pct of the class's items, and moves down their
   * tails once idle longer than COLD's tail age times hot_max_factor / warm_max_factor (memcached's
   * LRU maintainer, done a few moves per link instead of in a thread).
   */
  private maintain(cls: number): void {
    const f = this.f64;
    if (f[H_SEGMENTED] !== 1) return;
    const u32 = this.u32;
    const u8 = this.u8;
    const cs = this.cu + cls * CLASS_U32_SLOTS;
    const sf = this.cf + cls * CLASS_F64_SLOTS;
    const total = u32[cs + K_COUNT + HOT]! + u32[cs + K_COUNT + WARM]! + u32[cs + K_COUNT + COLD]!;
    const coldTail = u32[cs + 2 * COLD + 1]!;
    // an empty or just-touched COLD gives no age to compare with (memcached's rule would then drain HOT)
    const coldAge = coldTail !== 0 ? this.now - this.i32[coldTail * 2 + I_ATIME]! || Infinity : Infinity;
    let moves = 0;
    while (moves++ < MAINTAIN_MOVES && this.overCap(cs, HOT, total, f[H_HOT_PCT]!, coldAge * f[H_HOT_FACTOR]!)) {
      const t = u32[cs + 2 * HOT + 1]!;
      const fb = t * 8 + B_IFLAGS;
      if ((u8[fb]! & IF_ACTIVE) !== 0) {
        u8[fb] = u8[fb]! & ~IF_ACTIVE;
        this.move(cs, t, WARM);
        this.f64[sf + S.moves_to_warm]!++;
      } else {
        this.move(cs, t, COLD);
        this.f64[sf + S.moves_to_cold]!++;
      }
    }
    moves = 0;
    while (moves++ < MAINTAIN_MOVES && this.overCap(cs, WARM, total, f[H_WARM_PCT]!, coldAge * f[H_WARM_FACTOR]!)) {
      const t = u32[cs + 2 * WARM + 1]!;
      const fb = t * 8 + B_IFLAGS;
      if ((u8[fb]! & IF_ACTIVE) !== 0) {
        u8[fb] = u8[fb]! & ~IF_ACTIVE;
        this.move(cs, t, WARM);
        this.f64[sf + S.moves_within_lru]!++;
      } else {
        this.move(cs, t, COLD);
        this.f64[sf + S.moves_to_cold]!++;
      }
    }
  }

  /** Segment seg holds more than pct% of the class's `total` items, or its tail is idle longer than maxAge. */
  private overCap(cs: number, seg: number, total: number, pct: number, maxAge: number): boolean {
    const u32 = this.u32;
    const n = u32[cs + K_COUNT + seg]!;
    if (n === 0) return false;
    return n > (total * pct) / 100 || this.now - this.i32[u32[cs + 2 * seg + 1]! * 2 + I_ATIME]! > maxAge;
  }

  /** Oldest item of the class (COLD tail, else WARM, else HOT), 0 if the class is empty. */
  private oldest(cs: number): number {
    return this.u32[cs + 2 * COLD + 1]! || this.u32[cs + 2 * WARM + 1]! || this.u32[cs + 2 * HOT + 1]!;
  }

  // ---- allocation -------------------------------------------------------------------------

  /** A chunk of class cls (unlinked, contents undefined), or 0. */
  private alloc(cls: number): number {
    const u32 = this.u32;
    const cs = this.cu + cls * CLASS_U32_SLOTS;
    let r = u32[cs + K_FREE_HEAD]!;
    if (r !== 0) {
      u32[cs + K_FREE_HEAD] = u32[r * 2 + I_HNEXT]!;
      u32[cs + K_FREE_COUNT]!--;
      return r;
    }
    r = this.carve(cs);
    if (r !== 0) return r;
    const f = this.f64;
    const used = f[H_PAGES_USED]!;
    if (used - f[H_FREE_PAGES]! < f[H_PAGE_LIMIT]!) {
      if (f[H_FREE_PAGES]! > 0) {
        f[H_FREE_PAGES]!--;
        this.givePage(cls, this.freePage(used));
        return this.carve(cs);
      }
      if (used < this.pages) {
        f[H_PAGES_USED] = used + 1;
        this.givePage(cls, used);
        return this.carve(cs);
      }
    }
    f[this.cnt + C.direct_reclaims]!++;
    r = this.reclaimTail(cls);
    if (r !== 0) return r;
    if (f[H_AUTOMOVE]! > 0 && this.rebalance(cls, f[H_AUTOMOVE] === 2)) return this.carve(cs);
    r = f[H_EVICT] === 1 ? this.evictTail(cls) : 0;
    if (r !== 0) return r;
    this.f64[this.cf + cls * CLASS_F64_SLOTS + S.outofmemory]!++;
    return 0;
  }

  /** A page of the free pool (below `used`, owned by no class). */
  private freePage(used: number): number {
    for (let p = 0; p < used; p++) if (this.u32[this.pt + p] === 0) return p;
    throw new Error('free page count out of step with the page table');
  }

  /** Next never-used chunk of the class's current page, or 0. */
  private carve(cs: number): number {
    const u32 = this.u32;
    const cp = u32[cs + K_CARVE_PAGE]!;
    if (cp === 0) return 0;
    const i = u32[cs + K_CARVE_NEXT]!;
    if (i >= u32[cs + K_PER_PAGE]!) return 0;
    u32[cs + K_CARVE_NEXT] = i + 1;
    const r = this.pageRef0 + (cp - 1) * this.pageRefs + i * (u32[cs + K_CHUNK_SIZE]! / 8);
    // The page may hold another class's old bytes: never let them pass for item flags.
    this.u8[r * 8 + B_IFLAGS] = 0;
    return r;
  }

  private givePage(cls: number, page: number): void {
    const cs = this.cu + cls * CLASS_U32_SLOTS;
    // a page handed over by `slabs reassign` may find the class still carving one: keep its rest
    for (let r = this.carve(cs); r !== 0; r = this.carve(cs)) this.freeChunk(cs, r);
    this.u32[this.pt + page] = cls;
    this.u32[cs + K_TOTAL_PAGES]!++;
    this.u32[cs + K_CARVE_PAGE] = page + 1;
    this.u32[cs + K_CARVE_NEXT] = 0;
  }

  /** Reuses an expired / flushed item found near the class's tails. */
  private reclaimTail(cls: number): number {
    const cs = this.cu + cls * CLASS_U32_SLOTS;
    let looked = 0;
    for (const seg of RECLAIM_ORDER) {
      if (looked >= TAIL_SEARCH) break;
      let r = this.u32[cs + 2 * seg + 1]!;
      while (r !== 0 && looked < TAIL_SEARCH) {
        if (this.dead(r) !== 0) {
          this.countReclaim(r, cls);
          this.unlink(r);
          return r;
        }
        r = this.u32[r * 2 + I_PREV]!;
        looked++;
      }
    }
    return 0;
  }

  private countReclaim(r: number, cls: number): void {
    const sf = this.cf + cls * CLASS_F64_SLOTS;
    this.f64[sf + S.reclaimed]!++;
    if ((this.u8[r * 8 + B_IFLAGS]! & IF_FETCHED) === 0) this.f64[sf + S.expired_unfetched]!++;
  }

  private countEviction(r: number, cls: number): void {
    this.observer?.evicted(r);
    const f = this.f64;
    const sf = this.cf + cls * CLASS_F64_SLOTS;
    const fl = this.u8[r * 8 + B_IFLAGS]!;
    f[sf + S.evicted]!++;
    if (this.i32[r * 2 + I_EXPTIME] !== 0) f[sf + S.evicted_nonzero]!++;
    f[sf + S.evicted_time] = this.now - this.i32[r * 2 + I_ATIME]!;
    if ((fl & IF_FETCHED) === 0) f[sf + S.evicted_unfetched]!++;
    if ((fl & IF_ACTIVE) !== 0) f[sf + S.evicted_active]!++;
  }

  /** Evicts the class's LRU item, giving ACTIVE items at the COLD tail a second chance in WARM. */
  private evictTail(cls: number): number {
    const cs = this.cu + cls * CLASS_U32_SLOTS;
    for (let tries = 0; tries < 2 * TAIL_SEARCH; tries++) {
      const r = this.oldest(cs);
      if (r === 0) return 0;
      if (this.dead(r) !== 0) {
        this.countReclaim(r, cls);
      } else {
        const fb = r * 8 + B_IFLAGS;
        const fl = this.u8[fb]!;
        if (tries < TAIL_SEARCH && (fl & IF_ACTIVE) !== 0 && (fl & SEG_MASK) >> SEG_SHIFT === COLD) {
          this.u8[fb] = fl & ~IF_ACTIVE;
          this.move(cs, r, WARM);
          this.f64[this.cf + cls * CLASS_F64_SLOTS + S.moves_to_warm]!++;
          continue;
        }
        this.countEviction(r, cls);
      }
      this.unlink(r);
      return r;
    }
    return 0;
  }

  /**
   * Immediate page moves while allocating: a class with no page at all (or nothing it could
   * evict: all its chunks held by a chained item being allocated) takes one from any class that
   * has one, else the first value sizes seen would own the memory forever (slab calcification);
   * with slab_automove=2 an evicting class also takes a page from a class keeping older data.
   * Steady-state balancing is the windowed mover's (automove()).
   */
  private rebalance(cls: number, eager: boolean): boolean {
    const u32 = this.u32;
    const cs = this.cu + cls * CLASS_U32_SLOTS;
    const mine = u32[cs + K_TOTAL_PAGES]!;
    const mineT = mine > 0 ? this.oldest(cs) : 0;
    const needy = mineT === 0;
    if (!needy && !eager) return false;
    const myAge = mineT !== 0 ? this.now - this.i32[mineT * 2 + I_ATIME]! : 0;
    let best = 0;
    let bestRich = false;
    let bestAge = -1;
    for (let v = 1; v <= this.nClasses; v++) {
      if (v === cls) continue;
      const vs = this.cu + v * CLASS_U32_SLOTS;
      const vp = u32[vs + K_TOTAL_PAGES]!;
      if (vp === 0 || (vp < 2 && !needy)) continue;
      const t = this.oldest(vs);
      const age = t === 0 ? Infinity : this.now - this.i32[t * 2 + I_ATIME]!;
      const rich = vp >= 2;
      if (!needy && !(age > myAge)) continue;
      // Prefer classes that keep a page afterwards, then the oldest data.
      if (best === 0 || (rich && !bestRich) || (rich === bestRich && age > bestAge)) {
        best = v;
        bestRich = rich;
        bestAge = age;
      }
    }
    if (best === 0) return false;
    const page = this.pageToTake(best);
    this.takePage(best, page);
    this.givePage(cls, page);
    this.f64[this.cnt + C.slabs_moved]!++;
    return true;
  }

  /** The page of class v to give up: the one holding its oldest item, else any of its pages. */
  private pageToTake(v: number): number {
    const t = this.oldest(this.cu + v * CLASS_U32_SLOTS);
    if (t !== 0) return Math.floor((t - this.pageRef0) / this.pageRefs);
    for (let p = 0; p < this.pages; p++) if (this.u32[this.pt + p] === v) return p;
    throw new Error(`class ${v} owns no page`);
  }

  /** The class with the most pages (ties: the oldest data), other than `except`; 0 if none has one. */
  private richestClass(except = -1): number {
    let best = 0;
    let bestPages = 0;
    let bestAge = -1;
    for (let v = 1; v <= this.nClasses; v++) {
      if (v === except) continue;
      const vs = this.cu + v * CLASS_U32_SLOTS;
      const pages = this.u32[vs + K_TOTAL_PAGES]!;
      if (pages === 0 || pages < bestPages) continue;
      const t = this.oldest(vs);
      const age = t === 0 ? Infinity : this.now - this.i32[t * 2 + I_ATIME]!;
      if (pages > bestPages || age > bestAge) {
        best = v;
        bestPages = pages;
        bestAge = age;
      }
    }
    return best;
  }

  /** Empties `page` of class v: evicts its live items, forgets its free chunks. */
  private takePage(v: number, page: number): void {
    const u32 = this.u32;
    const vs = this.cu + v * CLASS_U32_SLOTS;
    let carved = u32[vs + K_PER_PAGE]!;
    if (u32[vs + K_CARVE_PAGE] === page + 1) {
      carved = u32[vs + K_CARVE_NEXT]!;
      u32[vs + K_CARVE_PAGE] = 0;
      u32[vs + K_CARVE_NEXT] = 0;
    }
    const base = this.pageRef0 + page * this.pageRefs;
    const end = base + this.pageRefs;
    const step = u32[vs + K_CHUNK_SIZE]! / 8;
    const u8 = this.u8;
    for (let i = 0; i < carved; i++) {
      const r = base + i * step;
      const fl = u8[r * 8 + B_IFLAGS]!;
      let head: number;
      if ((fl & IF_LINKED) !== 0) head = r;
      else if ((fl & IF_CHUNK) !== 0) head = u32[r * 2 + I_CHEAD]!; // evict the whole chained item
      else continue;
      if (this.dead(head) !== 0) this.countReclaim(head, v);
      else this.countEviction(head, v);
      // Frees every chunk of the item, this page's too (dropped from the free list just below).
      this.remove(head);
    }
    {
      // Drop this page's chunks from v's free list.
      let prev = 0;
      let r = u32[vs + K_FREE_HEAD]!;
      while (r !== 0) {
        const next = u32[r * 2 + I_HNEXT]!;
        if (r >= base && r < end) {
          if (prev === 0) u32[vs + K_FREE_HEAD] = next;
          else u32[prev * 2 + I_HNEXT] = next;
          u32[vs + K_FREE_COUNT]!--;
        } else {
          prev = r;
        }
        r = next;
      }
    }
    u32[vs + K_TOTAL_PAGES]!--;
    this.u32[this.pt + page] = 0;
  }
}

