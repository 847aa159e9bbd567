/**
 * Linking an item in and out of the shard (memcached's do_item_link / do_item_unlink): the hash
 * index, its class's LRU, and the accounting that follows an item (curr_items, bytes,
 * mem_requested, `stats sizes`, reclaim and eviction counters).
 */
import {
  C, IF_ACTIVE, IF_FETCHED, IF_LINKED, H_SIZES_CAS_MIN, S, SIZE_BUCKET_BYTES,
} from './layout.js';
import type { Allocator } from './allocator.js';
import type { Chains } from './chains.js';
import type { HashIndex } from './hash-index.js';
import type { Items } from './items.js';
import type { Lifetime } from './lifetime.js';
import type { Lru } from './lru.js';
import type { ShardMemory } from './memory.js';

export interface EvictionObserver {
  /** Called before the item goes. */
  evicted(ref: number): void;
}

export class ItemLinks {
  observer: EvictionObserver | null = null;

  constructor(
    private readonly m: ShardMemory,
    private readonly items: Items,
    private readonly index: HashIndex,
    private readonly lru: Lru,
    private readonly chains: Chains,
    private readonly allocator: Allocator,
    private readonly lifetime: Lifetime,
  ) {}

  /** Links a written item (key hash h, class cls) into the index and its LRU, and counts it. */
  link(ref: number, h: number, cls: number): void {
    const f64 = this.m.f64;
    this.index.insert(ref, h);
    this.items.setItemFlags(ref, IF_LINKED);
    this.lru.insert(ref, cls);
    this.trackSize(ref, 1);
    const size = this.chains.itemBytes(this.items.keyLength(ref), this.items.valueLength(ref));
    f64[this.m.counters + C.curr_items]!++;
    f64[this.m.counters + C.total_items]!++;
    f64[this.m.counters + C.bytes]! += size;
    f64[this.m.classStats(cls) + S.mem_requested]! += size;
    this.lru.maintain(cls);
  }

  /**
   * Takes the item out of the index and its LRU and frees its continuation chunks; its head chunk
   * is the caller's.
   */
  unlink(ref: number): void {
    const f64 = this.m.f64;
    const items = this.items;
    const cls = items.classOf(ref);
    this.index.remove(ref);
    this.lru.remove(ref, cls);
    this.trackSize(ref, -1);
    items.setItemFlags(ref, items.itemFlags(ref) & ~IF_LINKED);
    const size = this.chains.itemBytes(items.keyLength(ref), items.valueLength(ref));
    f64[this.m.counters + C.curr_items]!--;
    f64[this.m.counters + C.bytes]! -= size;
    f64[this.m.classStats(cls) + S.mem_requested]! -= size;
    this.chains.free(ref);
  }

  /** Unlinks the item and returns its chunk(s) to the free lists. */
  remove(ref: number): void {
    this.unlink(ref);
    this.allocator.freeChunk(this.items.classOf(ref), ref);
  }

  /** Counts a dead item taken back to reuse its memory (memcached's reclaimed). */
  countReclaim(ref: number, cls: number): void {
    const sf = this.m.classStats(cls);
    this.m.f64[sf + S.reclaimed]!++;
    if (!this.items.fetched(ref)) this.m.f64[sf + S.expired_unfetched]!++;
  }

  /** Counts (and reports) a live item about to be evicted. */
  countEviction(ref: number, cls: number): void {
    this.observer?.evicted(ref);
    const { f64, now } = this.m;
    const sf = this.m.classStats(cls);
    const fl = this.items.itemFlags(ref);
    f64[sf + S.evicted]!++;
    if (this.items.exptimeOf(ref) !== 0) f64[sf + S.evicted_nonzero]!++;
    f64[sf + S.evicted_time] = now - this.items.lastAccessOf(ref);
    if ((fl & IF_FETCHED) === 0) f64[sf + S.evicted_unfetched]!++;
    if ((fl & IF_ACTIVE) !== 0) f64[sf + S.evicted_active]!++;
  }

  /** `stats sizes_enable` / track_sizes: count items linked from now on, by 32-byte size bucket. */
  setSizeTracking(on: boolean): void {
    this.m.u32.fill(0, this.m.sizesU32, this.m.sizesU32 + this.m.sizeBuckets);
    this.m.f64[H_SIZES_CAS_MIN] = on ? this.lifetime.lastCas() : -1;
  }

  get tracksSizes(): boolean {
    return this.m.f64[H_SIZES_CAS_MIN] !== -1;
  }

  /** Count per size bucket (bucket i holds items of memcached size (32(i-1), 32i]). */
  sizeHistogram(): Uint32Array {
    return this.m.u32.subarray(this.m.sizesU32, this.m.sizesU32 + this.m.sizeBuckets);
  }

  /** `stats sizes`: counts an item linked (+1) or unlinked (-1) since tracking began. */
  private trackSize(ref: number, delta: number): void {
    const min = this.m.f64[H_SIZES_CAS_MIN]!;
    if (min < 0 || this.items.casOf(ref) <= min) return;
    const bucket = Math.ceil(this.items.memcachedSize(ref) / SIZE_BUCKET_BYTES);
    if (bucket >= this.m.sizeBuckets) return;
    const u32 = this.m.u32;
    const i = this.m.sizesU32 + bucket;
    // an item's CAS can change after it was counted (meta E): never wrap below zero
    if (delta > 0 || u32[i]! > 0) u32[i]! += delta;
  }
}
