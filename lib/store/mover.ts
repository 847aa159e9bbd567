/**
 * Moving slab pages between classes (memcached's slabs_mover.c): `slabs reassign`, the windowed
 * slab mover (slab_automove=1, its decisions in automove.ts), the immediate moves allocation
 * makes (a class with no page, slab_automove=2), and cache_memlimit shrinking. Taking a page
 * evicts the items in it.
 */
import type { Allocator } from './allocator.js';
import { automoveStep, type ClassReading } from './automove.js';
import type { Chains } from './chains.js';
import { C, COLD, H_AUTOMOVE, H_AUTOMOVE_RATIO, H_AUTOMOVE_SECOND, H_AUTOMOVE_TICKS, IF_CHUNK, IF_LINKED, S } from './layout.js';
import { Liveness, type Lifetime } from './lifetime.js';
import type { Items } from './items.js';
import type { ItemLinks } from './links.js';
import type { Lru } from './lru.js';
import type { ShardMemory } from './memory.js';

export type ReassignResult = 'ok' | 'badclass' | 'nospare' | 'same';

export class Mover {
  constructor(
    private readonly m: ShardMemory,
    private readonly items: Items,
    private readonly allocator: Allocator,
    private readonly lru: Lru,
    private readonly chains: Chains,
    private readonly links: ItemLinks,
    private readonly lifetime: Lifetime,
  ) {}

  /**
   * `slabs reassign src dst`: moves one page of class src (evicting its items) to class dst, or to
   * the free pool when dst is 0; src -1 picks the class with the most pages, among those with a
   * page to spare (none: BADCLASS, as memcached's pick-any answers; never the free pool).
   */
  reassign(src: number, dst: number): ReassignResult {
    if (src === dst) return 'same';
    const from = src === -1 ? this.spareClass(dst) : src;
    const valid = (c: number): boolean => Number.isInteger(c) && c >= 0 && c <= this.m.classCount;
    if (!valid(from) || !valid(dst)) return 'badclass';
    const allocator = this.allocator;
    // class 0 is memcached's global page pool; like any class it must keep a page
    const spare = from === 0 ? allocator.poolPages() : allocator.pagesOf(from);
    if (spare < 2) return 'nospare';
    let page: number;
    if (from === 0) {
      page = allocator.takeFromPool();
    } else {
      page = this.pageToTake(from);
      this.takePage(from, page);
    }
    if (dst === 0) allocator.addToPool();
    else allocator.givePage(dst, page);
    this.m.f64[this.m.counters + C.slabs_moved]!++;
    return 'ok';
  }

  /**
   * cache_memlimit: the shard may use `pages` pages. Shrinking empties the pages beyond it at once
   * (evicting their items, oldest data first) into the free pool; false if beyond the capacity.
   */
  setPageLimit(pages: number): boolean {
    if (!(pages >= 1 && pages <= this.m.pages)) return false;
    const allocator = this.allocator;
    allocator.pageLimit = pages;
    while (allocator.pagesInUse() > pages) {
      const v = this.richestClass();
      if (v === 0) break;
      this.takePage(v, this.pageToTake(v));
      allocator.addToPool();
    }
    return true;
  }

  /** After a link: with slab_automove=1, the slab mover's look once a second (memcached's runs once a second too). */
  tick(): void {
    const f64 = this.m.f64;
    if (f64[H_AUTOMOVE] === 1 && f64[H_AUTOMOVE_SECOND] !== this.m.now) this.automove();
  }

  /**
   * Immediate page moves while allocating: a class with no page at all (or nothing it could
   * evict: all its chunks held by a chained item being allocated) takes one from any class that
   * has one, else the first value sizes seen would own the memory forever (slab calcification);
   * with slab_automove=2 (eager) an evicting class also takes a page from a class keeping older
   * data. Steady-state balancing is the windowed mover's (tick).
   */
  rebalance(cls: number, eager: boolean): boolean {
    const { allocator, lru, m } = this;
    const mineT = allocator.pagesOf(cls) > 0 ? lru.oldest(cls) : 0;
    const needy = mineT === 0;
    if (!needy && !eager) return false;
    const myAge = mineT !== 0 ? m.now - this.items.lastAccessOf(mineT) : 0;
    let best = 0;
    let bestRich = false;
    let bestAge = -1;
    for (let v = 1; v <= m.classCount; v++) {
      if (v === cls) continue;
      const vp = allocator.pagesOf(v);
      if (vp === 0 || (vp < 2 && !needy)) continue;
      const age = lru.oldestAge(v);
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
    allocator.givePage(cls, page);
    m.f64[m.counters + C.slabs_moved]!++;
    return true;
  }

  private automove(): void {
    const { f64, now } = this.m;
    f64[H_AUTOMOVE_SECOND] = now;
    const readings: ClassReading[] = [];
    for (let c = 0; c <= this.m.classCount; c++) {
      const sf = this.m.classStats(c);
      const coldTail = this.lru.tail(c, COLD);
      readings.push({
        evicted: f64[sf + S.evicted]!,
        outofmemory: f64[sf + S.outofmemory]!,
        totalPages: this.allocator.pagesOf(c),
        freeChunks: this.allocator.spareChunks(c),
        perPage: this.allocator.perPage(c),
        coldAge: coldTail === 0 ? 0 : now - this.items.lastAccessOf(coldTail),
      });
    }
    const tick = ++f64[H_AUTOMOVE_TICKS]!;
    const move = automoveStep(f64, this.m.automoveF64, tick, readings, f64[H_AUTOMOVE_RATIO]!);
    if (move !== null) this.reassign(move.src, move.dst);
  }

  /** The page of class v to give up: the one holding its oldest item, else any of its pages. */
  private pageToTake(v: number): number {
    const t = this.lru.oldest(v);
    return t !== 0 ? this.allocator.pageOf(t) : this.allocator.firstPageOf(v);
  }

  /** The class with the most pages other than `except`, if it has a page to spare; else -1. */
  private spareClass(except: number): number {
    const v = this.richestClass(except);
    return v !== 0 && this.allocator.pagesOf(v) >= 2 ? v : -1;
  }

  /** The class with the most pages (ties: the oldest data), other than `except`; 0 if none has one. */
  private richestClass(except = -1): number {
    let best = 0;
    let bestPages = 0;
    let bestAge = -1;
    for (let v = 1; v <= this.m.classCount; v++) {
      if (v === except) continue;
      const pages = this.allocator.pagesOf(v);
      if (pages === 0 || pages < bestPages) continue;
      const age = this.lru.oldestAge(v);
      if (pages > bestPages || age > bestAge) {
        best = v;
        bestPages = pages;
        bestAge = age;
      }
    }
    return best;
  }

  /** Empties `page` of class v (evicting its live items, reclaiming its dead ones) and releases it. */
  private takePage(v: number, page: number): void {
    const carved = this.allocator.stopCarving(v, page);
    for (let i = 0; i < carved; i++) {
      const r = this.allocator.chunkAt(v, page, i);
      const fl = this.items.itemFlags(r);
      let head: number;
      if ((fl & IF_LINKED) !== 0) head = r;
      else if ((fl & IF_CHUNK) !== 0) head = this.chains.headOf(r); // evict the whole chained item
      else continue;
      if (this.lifetime.liveness(head) !== Liveness.Alive) this.links.countReclaim(head, v);
      else this.links.countEviction(head, v);
      // Frees every chunk of the item, this page's too (dropped from the free list by releasePage).
      this.links.remove(head);
    }
    this.allocator.releasePage(v, page);
  }
}
