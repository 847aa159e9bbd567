/**
 * Chained ("chunked") items, for values larger than the largest chunk: a head chunk (an ordinary
 * item: header, key, first value bytes) and continuation chunks of the largest class, linked
 * through I_CHAIN / I_CNEXT (layout.ts). Only the head is indexed and on an LRU. This module
 * knows the chain's geometry, allocates and frees chains, and copies values in and out of them.
 */
import {
  B_CLSID, B_IFLAGS, CHUNK_HEADER_BYTES, H_PAGE_LIMIT, IF_CHUNK, ITEM_HEADER_BYTES, I_CHEAD, I_CNEXT, K_CHUNKS, S,
} from './layout.js';
import type { Allocator } from './allocator.js';
import type { Items } from './items.js';
import { copyOut, type ShardMemory } from './memory.js';

/** Where chunks come from: allocation that may evict to make room (eviction.ts). */
export interface ChunkSource {
  chunkFor(cls: number): number;
}

export class Chains {
  /** Value bytes a continuation chunk holds. */
  private readonly contData: number;
  /** Largest-class chunks one page holds (a chained item may use at most a page limit of them). */
  private readonly chunksPerPage: number;
  /** The largest class: every chunk of a chain is one of its. */
  private readonly cls: number;
  /**
   * Chunks of a chained item being allocated (between allocate and attach, within one store
   * call). They are invisible to eviction and page moves while held: neither linked nor IF_CHUNK,
   * and only the largest class, which never gives up a page to itself, holds them.
   */
  private readonly held: number[] = [];

  constructor(
    private readonly m: ShardMemory,
    private readonly items: Items,
    private readonly allocator: Allocator,
  ) {
    this.cls = m.classCount;
    this.contData = m.maxChunk - CHUNK_HEADER_BYTES;
    this.chunksPerPage = Math.floor(m.pageSize / m.maxChunk);
  }

  /** Continuation chunks an item needs: 0 when header + key + value fit the largest chunk. */
  contsFor(nkey: number, vlen: number): number {
    const over = ITEM_HEADER_BYTES + nkey + vlen - this.m.maxChunk;
    return over <= 0 ? 0 : Math.ceil(over / this.contData);
  }

  /**
   * What an item counts in `bytes` and its class's mem_requested: header + key + value, plus a
   * chunk header per continuation chunk (all of a chained item's chunks are in the largest class,
   * so its whole size is that class's).
   */
  itemBytes(nkey: number, vlen: number): number {
    return ITEM_HEADER_BYTES + nkey + vlen + this.contsFor(nkey, vlen) * CHUNK_HEADER_BYTES;
  }

  /**
   * 1 + conts chunks of the largest class; returns the head (the others are held for attach), or
   * 0 with nothing held when memory cannot be found.
   */
  allocate(conts: number, source: ChunkSource): number {
    const held = this.held;
    held.length = 0;
    if (conts + 1 > this.m.f64[H_PAGE_LIMIT]! * this.chunksPerPage) {
      this.m.f64[this.m.classStats(this.cls) + S.outofmemory]!++;
      return 0;
    }
    for (let i = 0; i <= conts; i++) {
      const r = source.chunkFor(this.cls);
      if (r === 0) {
        for (const c of held) this.allocator.freeChunk(this.cls, c);
        held.length = 0;
        return 0;
      }
      held.push(r);
    }
    return held[0]!;
  }

  /** Links the chunks `allocate` held behind their head `ref`, once its header is written. */
  attach(ref: number): void {
    const { u32, u8 } = this.m;
    const held = this.held;
    this.items.setChain(ref, held[1]!);
    for (let i = 1; i < held.length; i++) {
      const c = held[i]!;
      u32[c * 2 + I_CNEXT] = held[i + 1] ?? 0;
      u32[c * 2 + I_CHEAD] = ref;
      u8[c * 8 + B_CLSID] = this.cls;
      u8[c * 8 + B_IFLAGS] = IF_CHUNK;
    }
    u32[this.m.classState(this.cls) + K_CHUNKS]! += held.length - 1;
    held.length = 0;
  }

  /** Frees a chained item's continuation chunks (its head is the caller's); nothing for a one-chunk item. */
  free(ref: number): void {
    const u32 = this.m.u32;
    let c = this.items.chainOf(ref);
    if (c === 0) return;
    this.items.setChain(ref, 0);
    let n = 0;
    while (c !== 0) {
      const next = u32[c * 2 + I_CNEXT]!;
      this.allocator.freeChunk(this.cls, c);
      n++;
      c = next;
    }
    u32[this.m.classState(this.cls) + K_CHUNKS]! -= n;
  }

  /** The head item of a continuation chunk. */
  headOf(chunk: number): number {
    return this.m.u32[chunk * 2 + I_CHEAD]!;
  }

  /** Writes a chained item's whole value (src.length = its vlen) over its chunks. */
  write(ref: number, src: Uint8Array): void {
    const { u8, u32 } = this.m;
    let done = this.m.maxChunk - ITEM_HEADER_BYTES - this.items.keyLength(ref);
    u8.set(src.subarray(0, done), this.items.valueStart(ref));
    const cd = this.contData;
    let c = this.items.chainOf(ref);
    while (done < src.length && c !== 0) {
      const n = Math.min(src.length - done, cd);
      u8.set(src.subarray(done, done + n), c * 8 + CHUNK_HEADER_BYTES);
      done += n;
      c = u32[c * 2 + I_CNEXT]!;
    }
  }

  /** Copies the item's value (valueLength bytes, chained or not) into dest at pos. */
  copyValue(ref: number, dest: Uint8Array, pos: number): void {
    const { u8, u32 } = this.m;
    const vlen = this.items.valueLength(ref);
    const b = this.items.valueStart(ref);
    let c = this.items.chainOf(ref);
    if (c === 0) {
      copyOut(u8, b, b + vlen, dest, pos);
      return;
    }
    let done = this.m.maxChunk - ITEM_HEADER_BYTES - this.items.keyLength(ref);
    copyOut(u8, b, b + done, dest, pos);
    const cd = this.contData;
    while (done < vlen && c !== 0) {
      const n = Math.min(vlen - done, cd);
      const s = c * 8 + CHUNK_HEADER_BYTES;
      copyOut(u8, s, s + n, dest, pos + done);
      done += n;
      c = u32[c * 2 + I_CNEXT]!;
    }
  }
}
