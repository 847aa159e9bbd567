/**
 * A shard's SharedArrayBuffer as the store's modules see it: the typed views over it, where each
 * table of layout.ts starts, and the server time of the command being run. Every module of the
 * store (index, LRU, allocator, ...) reads and writes the buffer through one ShardMemory, so they
 * share the state without holding any of it themselves.
 */
import { CLASS_F64_SLOTS, CLASS_U32_SLOTS, type Layout } from './layout.js';

/**
 * Copy shared[start, end) to dest at pos. TypedArray#set out of a SharedArrayBuffer copies with
 * relaxed atomics, about 4 bytes a nanosecond (2.2 us for 8 KB); Buffer#copy is a plain memmove
 * on Node 22+ (0.1 us for 8 KB) and no slower on Node 20. Copies into the buffer are fast either way.
 */
export function copyOut(shared: Uint8Array, start: number, end: number, dest: Uint8Array, pos: number): void {
  Buffer.prototype.copy.call(shared, dest, pos, start, end);
}

export class ShardMemory {
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  /** Pages the address space holds. */
  readonly pages: number;
  readonly pageSize: number;
  /** Ref of page 0's first byte (a ref is a byte offset / 8). */
  readonly pageRef0: number;
  /** Page size in refs. */
  readonly pageRefs: number;
  /** Float64 index of counter 0. */
  readonly counters: number;
  /** Float64 index of class 0's slab mover block. */
  readonly automoveF64: number;
  /** Uint32 index of the page table (owner class per page, 0 = none). */
  readonly pageTable: number;
  /** Uint32 index of the `stats sizes` histogram, and its length. */
  readonly sizesU32: number;
  readonly sizeBuckets: number;
  /** Uint32 index of hash bucket 0. */
  readonly buckets: number;
  readonly bucketCount: number;
  /** Chunk size of class id i + 1. */
  readonly chunkSizes: Uint32Array;
  /** Class ids run 1..classCount; the last class has the largest chunk (slab_chunk_max). */
  readonly classCount: number;
  readonly maxChunk: number;
  /**
   * Server time of the current command. The facade reads the clock once per call and sets it here,
   * so every module of one command sees the same second.
   */
  now = 0;
  private readonly classF64: number;
  private readonly classU32: number;

  constructor(sab: SharedArrayBuffer, layout: Layout) {
    const len = layout.byteLength;
    if (sab.byteLength < len) throw new RangeError(`SharedArrayBuffer too small: ${sab.byteLength} < ${len}`);
    this.u8 = new Uint8Array(sab, 0, len);
    this.u32 = new Uint32Array(sab, 0, len / 4);
    this.i32 = new Int32Array(sab, 0, len / 4);
    this.f64 = new Float64Array(sab, 0, len / 8);
    this.pages = layout.pages;
    this.pageSize = layout.pageSize;
    this.pageRef0 = layout.pageAreaByte / 8;
    this.pageRefs = layout.pageSize / 8;
    this.counters = layout.countersF64;
    this.classF64 = layout.classF64;
    this.automoveF64 = layout.automoveF64;
    this.classU32 = layout.classU32;
    this.pageTable = layout.pageTableU32;
    this.sizesU32 = layout.sizesU32;
    this.sizeBuckets = layout.sizeBuckets;
    this.buckets = layout.bucketsU32;
    this.bucketCount = layout.bucketCount;
    this.chunkSizes = Uint32Array.from(layout.classSizes);
    this.classCount = layout.classSizes.length;
    this.maxChunk = layout.classSizes[layout.classSizes.length - 1]!;
  }

  /** Float64 index of class cls's statistics block (S.* are relative to it). */
  classStats(cls: number): number {
    return this.classF64 + cls * CLASS_F64_SLOTS;
  }

  /** Uint32 index of class cls's allocator / LRU state block (K_* are relative to it). */
  classState(cls: number): number {
    return this.classU32 + cls * CLASS_U32_SLOTS;
  }
}
