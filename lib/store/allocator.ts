/**
 * The slab allocator (memcached's slabs.c): pages handed to classes on demand (first from the
 * pool of pages no class owns, then never-used ones), carved into the class's chunk size, and
 * per-class free lists linked through I_HNEXT. It never evicts: when `take` finds nothing, making
 * room is the caller's (see eviction.ts).
 */
import {
  B_IFLAGS, H_FREE_PAGES, H_PAGES_USED, H_PAGE_LIMIT, I_HNEXT, K_CARVE_NEXT, K_CARVE_PAGE, K_CHUNK_SIZE,
  K_FREE_COUNT, K_FREE_HEAD, K_PER_PAGE, K_TOTAL_PAGES,
} from './layout.js';
import type { ShardMemory } from './memory.js';

export class Allocator {
  constructor(private readonly m: ShardMemory) {}

  /** Writes each class's chunk size and chunks per page into its state block (at init). */
  initClasses(): void {
    const { u32, chunkSizes, pageSize } = this.m;
    for (let id = 1; id <= this.m.classCount; id++) {
      const cs = this.m.classState(id);
      const size = chunkSizes[id - 1]!;
      u32[cs + K_CHUNK_SIZE] = size;
      u32[cs + K_PER_PAGE] = Math.floor(pageSize / size);
    }
  }

  /** The smallest class whose chunk holds `total` bytes (header + key + value); the largest if none does. */
  classFor(total: number): number {
    const s = this.m.chunkSizes;
    let lo = 0;
    let hi = this.m.classCount - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (s[mid]! >= total) hi = mid;
      else lo = mid + 1;
    }
    return lo + 1;
  }

  /** A chunk of class cls (unlinked, contents undefined) without evicting anything, or 0. */
  take(cls: number): number {
    const { u32, f64 } = this.m;
    const cs = this.m.classState(cls);
    let r = u32[cs + K_FREE_HEAD]!;
    if (r !== 0) {
      u32[cs + K_FREE_HEAD] = u32[r * 2 + I_HNEXT]!;
      u32[cs + K_FREE_COUNT]!--;
      return r;
    }
    r = this.carve(cls);
    if (r !== 0) return r;
    const used = f64[H_PAGES_USED]!;
    if (used - f64[H_FREE_PAGES]! < f64[H_PAGE_LIMIT]!) {
      if (f64[H_FREE_PAGES]! > 0) {
        this.givePage(cls, this.takeFromPool());
        return this.carve(cls);
      }
      if (used < this.m.pages) {
        f64[H_PAGES_USED] = used + 1;
        this.givePage(cls, used);
        return this.carve(cls);
      }
    }
    return 0;
  }

  /** Next never-used chunk of the class's current page, or 0. */
  carve(cls: number): number {
    const u32 = this.m.u32;
    const cs = this.m.classState(cls);
    const cp = u32[cs + K_CARVE_PAGE]!;
    if (cp === 0) return 0;
    const i = u32[cs + K_CARVE_NEXT]!;
    if (i >= u32[cs + K_PER_PAGE]!) return 0;
    u32[cs + K_CARVE_NEXT] = i + 1;
    const r = this.m.pageRef0 + (cp - 1) * this.m.pageRefs + i * (u32[cs + K_CHUNK_SIZE]! / 8);
    // The page may hold another class's old bytes: never let them pass for item flags.
    this.m.u8[r * 8 + B_IFLAGS] = 0;
    return r;
  }

  /** Puts an unlinked chunk on class cls's free list. */
  freeChunk(cls: number, ref: number): void {
    const u32 = this.m.u32;
    const cs = this.m.classState(cls);
    this.m.u8[ref * 8 + B_IFLAGS] = 0;
    u32[ref * 2 + I_HNEXT] = u32[cs + K_FREE_HEAD]!;
    u32[cs + K_FREE_HEAD] = ref;
    u32[cs + K_FREE_COUNT]!++;
  }

  /** Makes `page` (owned by no class) class cls's, to carve next. */
  givePage(cls: number, page: number): void {
    const u32 = this.m.u32;
    const cs = this.m.classState(cls);
    // a page handed over by `slabs reassign` may find the class still carving one: keep its rest
    for (let r = this.carve(cls); r !== 0; r = this.carve(cls)) this.freeChunk(cls, r);
    u32[this.m.pageTable + page] = cls;
    u32[cs + K_TOTAL_PAGES]!++;
    u32[cs + K_CARVE_PAGE] = page + 1;
    u32[cs + K_CARVE_NEXT] = 0;
  }

  /**
   * First step of taking `page` from class cls: stops carving it if it is the class's current
   * page; returns how many of its chunks were ever handed out (the ones that may hold items).
   */
  stopCarving(cls: number, page: number): number {
    const u32 = this.m.u32;
    const cs = this.m.classState(cls);
    if (u32[cs + K_CARVE_PAGE] !== page + 1) return u32[cs + K_PER_PAGE]!;
    const carved = u32[cs + K_CARVE_NEXT]!;
    u32[cs + K_CARVE_PAGE] = 0;
    u32[cs + K_CARVE_NEXT] = 0;
    return carved;
  }

  /** Chunk i of `page`, a page of class cls. */
  chunkAt(cls: number, page: number, i: number): number {
    return this.m.pageRef0 + page * this.m.pageRefs + i * (this.m.u32[this.m.classState(cls) + K_CHUNK_SIZE]! / 8);
  }

  /**
   * Last step of taking `page` from class cls, once it holds no item: drops its chunks from the
   * free list and leaves the page owned by no class (givePage it, or addToPool).
   */
  releasePage(cls: number, page: number): void {
    const u32 = this.m.u32;
    const cs = this.m.classState(cls);
    const base = this.m.pageRef0 + page * this.m.pageRefs;
    const end = base + this.m.pageRefs;
    let prev = 0;
    let r = u32[cs + K_FREE_HEAD]!;
    while (r !== 0) {
      const next = u32[r * 2 + I_HNEXT]!;
      if (r >= base && r < end) {
        if (prev === 0) u32[cs + K_FREE_HEAD] = next;
        else u32[prev * 2 + I_HNEXT] = next;
        u32[cs + K_FREE_COUNT]!--;
      } else {
        prev = r;
      }
      r = next;
    }
    u32[cs + K_TOTAL_PAGES]!--;
    u32[this.m.pageTable + page] = 0;
  }

  /** A page of the pool (pages below H_PAGES_USED that no class owns), taken out of it. */
  takeFromPool(): number {
    const { u32, f64 } = this.m;
    const used = f64[H_PAGES_USED]!;
    for (let p = 0; p < used; p++) {
      if (u32[this.m.pageTable + p] === 0) {
        f64[H_FREE_PAGES]!--;
        return p;
      }
    }
    throw new Error('free page count out of step with the page table');
  }

  /** Counts a released page as the pool's. */
  addToPool(): void {
    this.m.f64[H_FREE_PAGES]!++;
  }

  poolPages(): number {
    return this.m.f64[H_FREE_PAGES]!;
  }

  /** Pages the classes own. */
  pagesInUse(): number {
    return this.m.f64[H_PAGES_USED]! - this.m.f64[H_FREE_PAGES]!;
  }

  /** Pages the shard may use (-m's share, changed by cache_memlimit). */
  get pageLimit(): number {
    return this.m.f64[H_PAGE_LIMIT]!;
  }

  set pageLimit(pages: number) {
    this.m.f64[H_PAGE_LIMIT] = pages;
  }

  pagesOf(cls: number): number {
    return this.m.u32[this.m.classState(cls) + K_TOTAL_PAGES]!;
  }

  /** The page a chunk is in. */
  pageOf(ref: number): number {
    return Math.floor((ref - this.m.pageRef0) / this.m.pageRefs);
  }

  /** The lowest page class cls owns. */
  firstPageOf(cls: number): number {
    for (let p = 0; p < this.m.pages; p++) if (this.m.u32[this.m.pageTable + p] === cls) return p;
    throw new Error(`class ${cls} owns no page`);
  }

  perPage(cls: number): number {
    return this.m.u32[this.m.classState(cls) + K_PER_PAGE]!;
  }

  /** Chunks the class can hand out without a new page: its free list and the rest of the page it carves. */
  spareChunks(cls: number): number {
    const u32 = this.m.u32;
    const cs = this.m.classState(cls);
    const carving = u32[cs + K_CARVE_PAGE] !== 0 ? Math.max(0, u32[cs + K_PER_PAGE]! - u32[cs + K_CARVE_NEXT]!) : 0;
    return u32[cs + K_FREE_COUNT]! + carving;
  }

  /** -L: writes the page memory the page limit allows, so the OS commits it now. */
  commitPages(): void {
    const start = this.m.pageRef0 * 8;
    this.m.u8.fill(0, start, start + this.pageLimit * this.m.pageSize);
  }
}
