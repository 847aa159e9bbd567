/**
 * The hash index (memcached's assoc.c): a table of buckets in the shard's buffer, each the head of
 * a chain of items linked through their I_HNEXT field. It only finds, links and unlinks; whether an
 * item it finds is alive is the caller's business.
 *
 * The table grows with the items, as memcached's does (past 1.5 items per bucket), so that its RSS
 * follows what the shard holds rather than what -m could hold: the layout reserves the largest
 * table, and only the buckets in use are ever written. It grows by linear hashing, one bucket per
 * insert while over the load: bucket `split` of the `base` buckets is cut into itself and
 * `split + base`, so there is never a pause to rehash the whole table.
 */
import { fnv1a32 } from '../hash.js';
import { B_KEY, B_NKEY, H_INDEX_BASE, H_INDEX_GROWS, H_INDEX_ITEMS, H_INDEX_SPLIT, I_HNEXT } from './layout.js';
import type { ShardMemory } from './memory.js';

/**
 * Buckets of a fresh index, and the number of walk groups: every size the table reaches is this
 * times a power of two plus the buckets split so far, and an item only ever moves between buckets
 * of the same group (bucket number modulo this).
 */
export const INDEX_START_BUCKETS = 1024;
/** memcached's assoc_insert expands past 1.5 items per bucket. */
const GROW_LOAD = 1.5;

/** Buckets in use by the index whose shard header is f64 (for readers outside the lock). */
export function bucketsInUse(f64: Float64Array): number {
  return f64[H_INDEX_BASE]! + f64[H_INDEX_SPLIT]!;
}

export class HashIndex {
  constructor(private readonly m: ShardMemory) {}

  /** Buckets the layout reserves: the index grows no further. */
  get capacity(): number {
    return this.m.bucketCount;
  }

  /** Buckets in use. */
  get size(): number {
    return bucketsInUse(this.m.f64);
  }

  hash(key: Uint8Array): number {
    return fnv1a32(key, 0, key.length);
  }

  /** Zeroes the buckets in use (the others were never written since the last reset). */
  clear(): void {
    const used = this.size;
    const end = Number.isInteger(used) && used >= 0 && used <= this.capacity ? used : this.capacity;
    this.m.u32.fill(0, this.m.buckets, this.m.buckets + end);
  }

  /**
   * A fresh, empty index of `startBuckets` (rounded down to a power of two within
   * INDEX_START_BUCKETS and the capacity) that grows or not.
   */
  reset(startBuckets: number, grows: boolean): void {
    const f64 = this.m.f64;
    this.clear();
    let base = INDEX_START_BUCKETS;
    while (base * 2 <= Math.min(startBuckets, this.capacity)) base *= 2;
    f64[H_INDEX_BASE] = base;
    f64[H_INDEX_SPLIT] = 0;
    f64[H_INDEX_ITEMS] = 0;
    f64[H_INDEX_GROWS] = grows ? 1 : 0;
  }

  /** The item under key (h = hash(key)), alive or not, or 0. */
  find(key: Uint8Array, h: number): number {
    const { u8, u32 } = this.m;
    const n = key.length;
    let ref = u32[this.m.buckets + this.bucketOf(h)]!;
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

  /** Puts the item (whose key hashes to h) at the head of its bucket's chain. */
  insert(ref: number, h: number): void {
    const { f64, u32 } = this.m;
    const slot = this.m.buckets + this.bucketOf(h);
    u32[ref * 2 + I_HNEXT] = u32[slot]!;
    u32[slot] = ref;
    const items = ++f64[H_INDEX_ITEMS]!;
    const size = this.size;
    if (items > GROW_LOAD * size && size < this.capacity && f64[H_INDEX_GROWS] === 1) this.splitNext();
  }

  /** Takes the item out of its bucket's chain (found again by hashing its stored key). */
  remove(ref: number): void {
    const u32 = this.m.u32;
    const slot = this.m.buckets + this.bucketOf(this.storedHash(ref));
    const hnext = u32[ref * 2 + I_HNEXT]!;
    let p = u32[slot]!;
    if (p === ref) {
      u32[slot] = hnext;
      this.m.f64[H_INDEX_ITEMS]!--;
      return;
    }
    while (p !== 0) {
      const nx = u32[p * 2 + I_HNEXT]!;
      if (nx === ref) {
        u32[p * 2 + I_HNEXT] = hnext;
        this.m.f64[H_INDEX_ITEMS]!--;
        return;
      }
      p = nx;
    }
  }

  /**
   * Visits every item of walk group g (buckets g, g + INDEX_START_BUCKETS, ... in use), newest
   * first within a bucket; visit may remove the item it is given. Under the shard's lock a group is
   * seen whole, so a walk group by group meets each item once even while inserts grow the table
   * between groups. Returns the number of buckets looked at.
   */
  visitGroup(g: number, visit: (ref: number) => void): number {
    const u32 = this.m.u32;
    const size = this.size;
    let buckets = 0;
    for (let b = g; b < size; b += INDEX_START_BUCKETS, buckets++) {
      for (let r = u32[this.m.buckets + b]!; r !== 0; ) {
        const next = u32[r * 2 + I_HNEXT]!;
        visit(r);
        r = next;
      }
    }
    return buckets;
  }

  private bucketOf(h: number): number {
    const f64 = this.m.f64;
    const base = f64[H_INDEX_BASE]!;
    const b = h & (base - 1);
    return b < f64[H_INDEX_SPLIT]! ? h & (2 * base - 1) : b;
  }

  private storedHash(ref: number): number {
    const b = ref * 8;
    return fnv1a32(this.m.u8, b + B_KEY, b + B_KEY + this.m.u8[b + B_NKEY]!);
  }

  /** Cuts bucket `split` into itself and `split + base`, keeping each chain's order. */
  private splitNext(): void {
    const { f64, u32 } = this.m;
    const base = f64[H_INDEX_BASE]!;
    const from = f64[H_INDEX_SPLIT]!;
    const to = from + base;
    const wide = 2 * base - 1;
    let stay = 0;
    let stayTail = 0;
    let move = 0;
    let moveTail = 0;
    for (let r = u32[this.m.buckets + from]!; r !== 0; ) {
      const next = u32[r * 2 + I_HNEXT]!;
      u32[r * 2 + I_HNEXT] = 0;
      if ((this.storedHash(r) & wide) === to) {
        if (moveTail === 0) move = r;
        else u32[moveTail * 2 + I_HNEXT] = r;
        moveTail = r;
      } else {
        if (stayTail === 0) stay = r;
        else u32[stayTail * 2 + I_HNEXT] = r;
        stayTail = r;
      }
      r = next;
    }
    u32[this.m.buckets + from] = stay;
    u32[this.m.buckets + to] = move;
    if (from + 1 === base) {
      f64[H_INDEX_BASE] = 2 * base;
      f64[H_INDEX_SPLIT] = 0;
    } else {
      f64[H_INDEX_SPLIT] = from + 1;
    }
  }
}
