/**
 * Walking the hash index (memcached's crawler.c): the background expiry crawl, `lru_crawler
 * crawl` over chosen classes, and the walk over live items that metadump and key dumps use.
 */
import { C, H_CRAWL_POS, S } from './layout.js';
import type { HashIndex } from './hash-index.js';
import type { Items } from './items.js';
import { Liveness, type Lifetime } from './lifetime.js';
import type { ItemLinks } from './links.js';
import type { ShardMemory } from './memory.js';

/** What one step of the background crawl did. */
export interface CrawlStep {
  /** items looked at */
  checked: number;
  /** dead items removed */
  reclaimed: number;
  /** the step reached the end of the index: the next one starts a new pass */
  passEnded: boolean;
}

export class Crawler {
  constructor(
    private readonly m: ShardMemory,
    private readonly items: Items,
    private readonly index: HashIndex,
    private readonly links: ItemLinks,
    private readonly lifetime: Lifetime,
  ) {}

  /**
   * The background crawl: from where it stopped last, removes the dead items among about
   * `maxItems` (whole buckets, at most max(1024, 16 x maxItems) of them), stopping early where a
   * pass over the whole index ends.
   */
  crawl(maxItems: number): CrawlStep {
    const { f64 } = this.m;
    const index = this.index;
    const mask = index.bucketCount - 1;
    const maxBuckets = Math.min(index.bucketCount, Math.max(1024, maxItems * 16));
    let pos = f64[H_CRAWL_POS]! & mask;
    let checked = 0;
    let reclaimed = 0;
    let passEnded = false;
    for (let visited = 0; checked < maxItems && visited < maxBuckets && !passEnded; visited++) {
      for (let r = index.first(pos); r !== 0; ) {
        const next = index.next(r);
        checked++;
        if (this.lifetime.liveness(r) !== Liveness.Alive) {
          this.reclaim(r);
          reclaimed++;
        }
        r = next;
      }
      pos = (pos + 1) & mask;
      passEnded = pos === 0;
    }
    f64[H_CRAWL_POS] = pos;
    f64[this.m.counters + C.crawler_items_checked]! += checked;
    return { checked, reclaimed, passEnded };
  }

  /**
   * `lru_crawler crawl`: over `count` hash buckets from `from`, removes the dead items of the
   * classes (null = all), at most `perClass` looked at per class (0 = no limit; `seen` counts them
   * over calls). The next bucket, or -1 after the last.
   */
  reclaimDead(from: number, count: number, classes: ReadonlySet<number> | null, perClass: number, seen: Map<number, number>): number {
    const index = this.index;
    const end = Math.min(index.bucketCount, from + count);
    let checked = 0;
    for (let b = from; b < end; b++) {
      for (let r = index.first(b); r !== 0; ) {
        const next = index.next(r);
        const cls = this.items.classOf(r);
        const n = seen.get(cls) ?? 0;
        if ((classes === null || classes.has(cls)) && (perClass === 0 || n < perClass)) {
          seen.set(cls, n + 1);
          checked++;
          if (this.lifetime.liveness(r) !== Liveness.Alive) this.reclaim(r);
        }
        r = next;
      }
    }
    this.m.f64[this.m.counters + C.crawler_items_checked]! += checked;
    return end >= index.bucketCount ? -1 : end;
  }

  /**
   * Visit the live items of `count` hash buckets from bucket `from`, in bucket order (dead ones are
   * skipped, not reclaimed); the next bucket to visit, or -1 after the last.
   */
  forEachLive(from: number, count: number, visit: (ref: number) => void): number {
    const index = this.index;
    const end = Math.min(index.bucketCount, from + count);
    for (let b = from; b < end; b++) {
      for (let r = index.first(b); r !== 0; r = index.next(r)) if (this.lifetime.liveness(r) === Liveness.Alive) visit(r);
    }
    return end < index.bucketCount ? end : -1;
  }

  private reclaim(r: number): void {
    const cls = this.items.classOf(r);
    this.m.f64[this.m.classStats(cls) + S.crawler_reclaimed]!++;
    this.links.countReclaim(r, cls);
    this.links.remove(r);
  }
}
