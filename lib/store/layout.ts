/**
 * Byte layout of one shard's SharedArrayBuffer. Everything the store owns lives in it, so that
 * another thread (stats, later lock-free gets) can read it without messages:
 *
 *   [header f64 x32][counters f64 x64][class stats f64 64x32][automove window f64 64x123]
 *   [class state u32 64x32]
 *   [page table u32 x pages][hash buckets u32 x 2^k, written as the index grows][pad to 4 KiB][pages ...]
 *
 * The page area comes last and is never written at init: a fresh SharedArrayBuffer is zero-filled
 * lazily by the OS, so RSS only grows as pages are actually carved.
 */
import { AUTOMOVE_CLASS_SLOTS } from './automove.js';
import { slabLadder } from './slabs.js';

/** Per-item header size in bytes. 48 + the default -n 48 gives memcached's first class, 96. */
export const ITEM_HEADER_BYTES = 48;

// Item header fields, as indices relative to ref * 2 in 32-bit views (ref = byte offset / 8).
export const I_HNEXT = 0; // next item in the hash chain (ref)
export const I_PREV = 1; // LRU prev (towards head)
export const I_NEXT = 2; // LRU next (towards tail)
export const I_EXPTIME = 3; // server time, 0 = never (i32)
export const I_ATIME = 4; // last access, server time
export const I_UTIME = 5; // last update (store/incr), server time: delayed flush compares this
export const I_CFLAGS = 6; // client flags u32
export const I_VLEN = 7; // value length
export const F_CAS = 4; // CAS as f64, index relative to ref in a Float64Array (byte 32)
// Byte offsets inside the header.
export const B_NKEY = 40;
export const B_CLSID = 41;
export const B_IFLAGS = 42;
/** Meta protocol state of an item (MF_* bits); a new item starts with none. */
export const B_META = 43;
export const I_CHAIN = 11; // bytes 44..47: first continuation chunk of a chained item (ref), 0 = none
export const B_KEY = ITEM_HEADER_BYTES;

/**
 * Chained ("chunked") items: an item whose ITEM_HEADER_BYTES + key + value exceeds the largest
 * chunk (slab_chunk_max = pageSize / 2) is a head chunk plus continuation chunks, all from the
 * largest class. The head is an ordinary item (header, key, first value bytes) that sits on the
 * hash chain and its class's LRU; I_CHAIN points to the first continuation chunk. A continuation
 * chunk has a CHUNK_HEADER_BYTES header using the same byte offsets for the class id and flags
 * (flags = IF_CHUNK, so a page scan tells it from an item) with:
 */
export const I_CNEXT = 0; // next continuation chunk (ref), 0 = last
export const I_CHEAD = 1; // the item's head chunk (ref)
export const CHUNK_HEADER_BYTES = 48;

// Item flag bits (B_IFLAGS). The LRU segment sits in bits 3-4.
export const IF_LINKED = 1;
export const IF_FETCHED = 2;
export const IF_ACTIVE = 4;
/** A continuation chunk of a chained item (never on a hash chain or LRU). */
export const IF_CHUNK = 32;
/** Bits 6-7, with lru_policy=frequency only: the item's hits not yet spent at WARM's tail (0-3). */
export const IF_HIT_UNIT = 64;
export const IF_HITS = 3 * IF_HIT_UNIT;
export const SEG_SHIFT = 3;
// Meta bits (B_META): marked stale (md I, ms I), a recache win handed out, key stored via base64.
export const MF_STALE = 1;
export const MF_WIN_SENT = 2;
export const MF_KEY_BINARY = 4;
export const SEG_MASK = 3 << SEG_SHIFT;
export const HOT = 0;
export const WARM = 1;
export const COLD = 2;
/** memcached's TEMP_LRU (-o temporary_ttl): short-TTL items, never bumped, only reclaimed when dead. */
export const TEMP = 3;

// Header slots (Float64 indices).
export const H_MAGIC = 0;
export const H_CAS_SEQ = 1; // survives re-initialisation
export const H_FLUSH_CAS = 2; // items with cas <= this are flushed (immediate flush_all)
export const H_FLUSH_TIME = 3; // delayed flush_all moment (server time), 0 = none
export const H_PAGES_USED = 4; // pages taken from the global pool (handed out in order)
export const H_CRAWL_POS = 5; // next bucket the crawler looks at
export const H_NUM_CLASSES = 6;
export const H_PAGES = 7;
export const H_PAGE_SIZE = 8;
// Tuning (memcached's runtime settings; written at start, changed by `lru`, `slabs automove`,
// `cache_memlimit`...; kept when the shard is re-initialised).
export const H_AUTOMOVE = 9; // slab_automove 0|1|2
export const H_HOT_PCT = 10;
export const H_WARM_PCT = 11;
export const H_HOT_FACTOR = 12; // hot_max_factor
export const H_WARM_FACTOR = 13; // warm_max_factor
export const H_TEMP_TTL = 14; // temporary_ttl (applies while H_TEMP_LRU is 1)
export const H_SEGMENTED = 15; // 1 = segmented LRU, 0 = flat
export const H_EVICT = 16; // 1 = evict to make room, 0 = -M (out of memory error)
export const H_PAGE_LIMIT = 17; // pages the shard may use (cache_memlimit)
export const H_FREE_PAGES = 18; // pages below H_PAGES_USED that no class owns (the global page pool)
export const H_SIZES_CAS_MIN = 19; // stats sizes: items with a CAS above this are counted, -1 = off
export const H_TEMP_LRU = 20; // 1 = short-TTL items go to the TEMP LRU
export const H_AUTOMOVE_RATIO = 21; // slab_automove_ratio
export const H_AUTOMOVE_SECOND = 22; // the server second the slab mover last looked at
export const H_AUTOMOVE_TICKS = 23; // seconds the slab mover has looked at (its window position)
export const H_LRU_POLICY = 24; // -o lru_policy: its index in LRU_POLICIES (tuning.ts)
// The hash index's growth (hash-index.ts): buckets in use = base + split.
export const H_INDEX_BASE = 25; // a power of two
export const H_INDEX_SPLIT = 26; // the next bucket to split, 0..base-1
export const H_INDEX_ITEMS = 27; // items on the index's chains
export const H_INDEX_GROWS = 28; // 1 = grows past the load, 0 = -o no_hashexpand
export const HEADER_F64_SLOTS = 32;
/** Tuning slots, in the order they are saved and restored over a re-initialisation. */
export const TUNING_SLOTS: readonly number[] = [
  H_AUTOMOVE, H_HOT_PCT, H_WARM_PCT, H_HOT_FACTOR, H_WARM_FACTOR, H_TEMP_TTL, H_SEGMENTED, H_EVICT,
  H_PAGE_LIMIT, H_SIZES_CAS_MIN, H_TEMP_LRU, H_AUTOMOVE_RATIO, H_LRU_POLICY,
];
/** memcached's `stats sizes` granularity (bytes). */
export const SIZE_BUCKET_BYTES = 32;
export const MAGIC = 0x6d656d73; // "mems"

/**
 * Global counters (Float64 so they are exact far beyond 2^32 and readable from another thread).
 * Counters that also exist per class (get_hits, evictions, ...) live only in the class table and
 * are summed by readShardStats: one write per event on the hot path.
 */
export const COUNTER_NAMES = [
  'cmd_get', 'cmd_set', 'cmd_flush', 'cmd_touch', 'get_misses', 'get_expired', 'get_flushed',
  'delete_misses', 'incr_misses', 'decr_misses', 'cas_misses', 'touch_misses', 'store_too_large',
  'store_no_memory', 'bytes', 'curr_items', 'total_items', 'crawler_items_checked',
  'direct_reclaims', 'slabs_moved', 'cmd_meta',
] as const;
export const C = {
  cmd_get: 0, cmd_set: 1, cmd_flush: 2, cmd_touch: 3, get_misses: 4, get_expired: 5, get_flushed: 6,
  delete_misses: 7, incr_misses: 8, decr_misses: 9, cas_misses: 10, touch_misses: 11,
  store_too_large: 12, store_no_memory: 13, bytes: 14, curr_items: 15, total_items: 16,
  crawler_items_checked: 17, direct_reclaims: 18, slabs_moved: 19, cmd_meta: 20,
} as const;
/** Counters `stats reset` leaves alone (they describe current state, not history). */
export const COUNTERS_KEPT_ON_RESET: readonly number[] = [C.bytes, C.curr_items];
export const COUNTER_SLOTS = 64;

/** Per-class statistics (Float64, indices relative to the class's block). */
export const CLASS_STAT_NAMES = [
  'mem_requested', 'evicted', 'evicted_nonzero', 'evicted_time', 'outofmemory', 'reclaimed',
  'expired_unfetched', 'evicted_unfetched', 'evicted_active', 'crawler_reclaimed', 'moves_to_cold',
  'moves_to_warm', 'moves_within_lru', 'get_hits', 'cmd_set', 'delete_hits', 'incr_hits',
  'decr_hits', 'cas_hits', 'cas_badval', 'touch_hits', 'hits_to_hot', 'hits_to_warm', 'hits_to_cold', 'hits_to_temp',
] as const;
export const S = {
  mem_requested: 0, evicted: 1, evicted_nonzero: 2, evicted_time: 3, outofmemory: 4, reclaimed: 5,
  expired_unfetched: 6, evicted_unfetched: 7, evicted_active: 8, crawler_reclaimed: 9,
  moves_to_cold: 10, moves_to_warm: 11, moves_within_lru: 12, get_hits: 13, cmd_set: 14,
  delete_hits: 15, incr_hits: 16, decr_hits: 17, cas_hits: 18, cas_badval: 19, touch_hits: 20,
  /** Hits by the segment the item was in: hits_to_hot + HOT|WARM|COLD|TEMP. */
  hits_to_hot: 21, hits_to_warm: 22, hits_to_cold: 23, hits_to_temp: 24,
} as const;
export const CLASS_F64_SLOTS = 32;
/** Class ids are 1-based like memcached; slot 0 is unused. */
export const CLASS_TABLE_ENTRIES = 64;

// Per-class allocator / LRU state (Uint32, indices relative to the class's block).
// Segment s (HOT WARM COLD TEMP) has its head at 2s, tail at 2s+1 and count at K_COUNT + s.
export const K_COUNT = 8;
export const K_FREE_HEAD = 12; // free chunk list (linked through I_HNEXT)
export const K_FREE_COUNT = 13;
export const K_CARVE_PAGE = 14; // page being carved + 1, 0 = none
export const K_CARVE_NEXT = 15; // next uncarved chunk index in that page
export const K_TOTAL_PAGES = 16;
export const K_CHUNK_SIZE = 17;
export const K_PER_PAGE = 18;
export const K_CHUNKS = 19; // continuation chunks in use (chained items' chunks beyond the head)
export const CLASS_U32_SLOTS = 32;

export interface LayoutConfig {
  /** The shard's share of -m: sizes the hash table and the first page limit. */
  memoryBytes: number;
  /** Address space reserved for the pages (>= memoryBytes): how far cache_memlimit can grow. */
  capacityBytes?: number;
  pageSize: number;
  itemSizeMax: number;
  growthFactor: number;
  minChunk: number;
}

export interface Layout {
  pages: number;
  pageSize: number;
  classSizes: number[]; // index i = class id i + 1
  countersF64: number; // Float64 index of the first counter
  classF64: number; // Float64 index of class 0's stats block
  automoveF64: number; // Float64 index of class 0's slab mover block
  classU32: number; // Uint32 index of class 0's state block
  pageTableU32: number; // Uint32 index of page 0's owner class
  sizesU32: number; // Uint32 index of the `stats sizes` histogram
  sizeBuckets: number;
  /** Pages -m gives the shard (pages is what its address space holds). */
  pageLimit: number;
  bucketsU32: number; // Uint32 index of bucket 0
  bucketCount: number; // the most buckets the index may grow to; a power of two
  pageAreaByte: number; // 4 KiB aligned
  byteLength: number;
}

function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

export function computeLayout(cfg: LayoutConfig): Layout {
  const pageSize = cfg.pageSize;
  if (!(pageSize >= 1024) || pageSize % 8 !== 0) throw new RangeError(`bad pageSize ${pageSize}`);
  const pageLimit = Math.max(1, Math.floor(cfg.memoryBytes / pageSize));
  const pages = Math.max(pageLimit, Math.floor((cfg.capacityBytes ?? 0) / pageSize));
  const classSizes = slabLadder(ITEM_HEADER_BYTES, cfg.minChunk, cfg.growthFactor, pageSize);
  // Room for a bucket per two items -m could hold at most (all in the smallest class). The index
  // grows into it with the items (hash-index.ts), and a fresh buffer's pages cost RSS only once
  // written, so the part not grown into is address space, not memory.
  const maxItems = Math.ceil((pageLimit * pageSize) / classSizes[0]!);
  let bucketCount = 1024;
  while (bucketCount * 2 < maxItems) bucketCount *= 2;

  let byte = HEADER_F64_SLOTS * 8;
  const countersF64 = byte / 8;
  byte += COUNTER_SLOTS * 8;
  const classF64 = byte / 8;
  byte += CLASS_TABLE_ENTRIES * CLASS_F64_SLOTS * 8;
  const automoveF64 = byte / 8;
  byte += CLASS_TABLE_ENTRIES * AUTOMOVE_CLASS_SLOTS * 8;
  const classU32 = byte / 4;
  byte += CLASS_TABLE_ENTRIES * CLASS_U32_SLOTS * 4;
  const pageTableU32 = byte / 4;
  byte += pages * 4;
  const sizesU32 = byte / 4;
  const sizeBuckets = Math.floor(cfg.itemSizeMax / SIZE_BUCKET_BYTES) + 1;
  byte = align(byte + sizeBuckets * 4, 8);
  const bucketsU32 = byte / 4;
  byte += bucketCount * 4;
  const pageAreaByte = align(byte, 4096);
  const byteLength = pageAreaByte + pages * pageSize;
  // Refs are byte offset / 8 in a u32: 32 GiB per shard at most.
  if (byteLength / 8 >= 2 ** 32) throw new RangeError('shard too large (max 32 GiB)');
  return {
    pages, pageSize, classSizes, countersF64, classF64, automoveF64, classU32, pageTableU32, sizesU32, sizeBuckets, pageLimit, bucketsU32,
    bucketCount, pageAreaByte, byteLength,
  };
}
