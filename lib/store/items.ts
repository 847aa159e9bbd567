/**
 * Item headers: reading and writing the fields of one item (key, value length, client flags,
 * exptime, access and update times, CAS, class, flag bits) at its ref. Nothing here links,
 * allocates or counts; the other modules name fields through these accessors.
 */
import { memcachedItemSize } from '../protocol/command.js';
import {
  B_CLSID, B_IFLAGS, B_KEY, B_META, B_NKEY, F_CAS, IF_FETCHED, IF_LINKED, I_ATIME, I_CFLAGS, I_CHAIN,
  I_EXPTIME, I_UTIME, I_VLEN,
} from './layout.js';
import type { ShardMemory } from './memory.js';

export class Items {
  constructor(private readonly m: ShardMemory) {}

  classOf(ref: number): number {
    return this.m.u8[ref * 8 + B_CLSID]!;
  }

  keyLength(ref: number): number {
    return this.m.u8[ref * 8 + B_NKEY]!;
  }

  keyOf(ref: number): Uint8Array {
    const b = ref * 8 + B_KEY;
    return this.m.u8.subarray(b, b + this.m.u8[ref * 8 + B_NKEY]!);
  }

  /** Byte offset of the item's (first) value bytes, right after its key. */
  valueStart(ref: number): number {
    return ref * 8 + B_KEY + this.m.u8[ref * 8 + B_NKEY]!;
  }

  valueLength(ref: number): number {
    return this.m.u32[ref * 2 + I_VLEN]!;
  }

  flagsOf(ref: number): number {
    return this.m.u32[ref * 2 + I_CFLAGS]!;
  }

  /** Server time the item expires at, 0 = never. */
  exptimeOf(ref: number): number {
    return this.m.i32[ref * 2 + I_EXPTIME]!;
  }

  setExptime(ref: number, serverTime: number): void {
    this.m.i32[ref * 2 + I_EXPTIME] = serverTime;
  }

  lastAccessOf(ref: number): number {
    return this.m.i32[ref * 2 + I_ATIME]!;
  }

  setLastAccess(ref: number, serverTime: number): void {
    this.m.i32[ref * 2 + I_ATIME] = serverTime;
  }

  /** Server time of the last store or incr: a delayed flush_all compares it. */
  setUpdatedAt(ref: number, serverTime: number): void {
    this.m.i32[ref * 2 + I_UTIME] = serverTime;
  }

  casOf(ref: number): number {
    return this.m.f64[ref + F_CAS]!;
  }

  setCas(ref: number, cas: number): void {
    this.m.f64[ref + F_CAS] = cas;
  }

  /** The IF_* bits and the LRU segment (SEG_MASK). */
  itemFlags(ref: number): number {
    return this.m.u8[ref * 8 + B_IFLAGS]!;
  }

  setItemFlags(ref: number, bits: number): void {
    this.m.u8[ref * 8 + B_IFLAGS] = bits;
  }

  isLinked(ref: number): boolean {
    return (this.m.u8[ref * 8 + B_IFLAGS]! & IF_LINKED) !== 0;
  }

  fetched(ref: number): boolean {
    return (this.m.u8[ref * 8 + B_IFLAGS]! & IF_FETCHED) !== 0;
  }

  /** The item's MF_* bits (meta protocol state). */
  metaFlags(ref: number): number {
    return this.m.u8[ref * 8 + B_META]!;
  }

  setMetaFlags(ref: number, bits: number): void {
    this.m.u8[ref * 8 + B_META] = bits;
  }

  /** First continuation chunk of a chained item, 0 for an item of one chunk. */
  chainOf(ref: number): number {
    return this.m.u32[ref * 2 + I_CHAIN]!;
  }

  setChain(ref: number, chunk: number): void {
    this.m.u32[ref * 2 + I_CHAIN] = chunk;
  }

  /** The item's size as memcached counts it (`me`'s size, `stats sizes`, incr's chunk limit). */
  memcachedSize(ref: number): number {
    return memcachedItemSize(this.keyLength(ref), this.valueLength(ref), this.flagsOf(ref));
  }

  /**
   * Writes a new item's header and key (accessed and updated now, unlinked, no chain, no meta
   * bits); returns the byte offset its value goes to.
   */
  writeHeader(ref: number, cls: number, key: Uint8Array, flags: number, exp: number, vlen: number, cas: number): number {
    const { u8, u32, i32, f64, now } = this.m;
    const w = ref * 2;
    const b = ref * 8;
    i32[w + I_EXPTIME] = exp;
    i32[w + I_ATIME] = now;
    i32[w + I_UTIME] = now;
    u32[w + I_CFLAGS] = flags >>> 0;
    u32[w + I_VLEN] = vlen;
    u32[w + I_CHAIN] = 0;
    f64[ref + F_CAS] = cas;
    const n = key.length;
    u8[b + B_NKEY] = n;
    u8[b + B_CLSID] = cls;
    u8[b + B_IFLAGS] = 0;
    u8[b + B_META] = 0;
    const k = b + B_KEY;
    for (let i = 0; i < n; i++) u8[k + i] = key[i]!;
    return k + n;
  }
}
