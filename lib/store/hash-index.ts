/**
 * The hash index (memcached's assoc.c): a power-of-two table of buckets in the shard's buffer,
 * each the head of a chain of items linked through their I_HNEXT field. It only finds, links and
 * unlinks; whether an item it finds is alive is the caller's business.
 */
import { fnv1a32 } from '../hash.js';
import { B_KEY, B_NKEY, I_HNEXT } from './layout.js';
import type { ShardMemory } from './memory.js';

export class HashIndex {
  private readonly mask: number;

  constructor(private readonly m: ShardMemory) {
    this.mask = m.bucketCount - 1;
  }

  get bucketCount(): number {
    return this.m.bucketCount;
  }

  hash(key: Uint8Array): number {
    return fnv1a32(key, 0, key.length);
  }

  /** The item under key (h = hash(key)), alive or not, or 0. */
  find(key: Uint8Array, h: number): number {
    const { u8, u32 } = this.m;
    const n = key.length;
    let ref = u32[this.m.buckets + (h & this.mask)]!;
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
    const u32 = this.m.u32;
    const slot = this.m.buckets + (h & this.mask);
    u32[ref * 2 + I_HNEXT] = u32[slot]!;
    u32[slot] = ref;
  }

  /** Takes the item out of its bucket's chain (found again by hashing its stored key). */
  remove(ref: number): void {
    const { u8, u32 } = this.m;
    const b = ref * 8;
    const slot = this.m.buckets + (fnv1a32(u8, b + B_KEY, b + B_KEY + u8[b + B_NKEY]!) & this.mask);
    const hnext = u32[ref * 2 + I_HNEXT]!;
    let p = u32[slot]!;
    if (p === ref) {
      u32[slot] = hnext;
      return;
    }
    while (p !== 0) {
      const nx = u32[p * 2 + I_HNEXT]!;
      if (nx === ref) {
        u32[p * 2 + I_HNEXT] = hnext;
        return;
      }
      p = nx;
    }
  }

  /** First item of bucket b's chain, 0 if empty. */
  first(bucket: number): number {
    return this.m.u32[this.m.buckets + bucket]!;
  }

  /** The item after ref on its chain, 0 at the end. */
  next(ref: number): number {
    return this.m.u32[ref * 2 + I_HNEXT]!;
  }
}
