/**
 * Walking the hash index (memcached's crawler.c): the background expiry crawl, `lru_crawler
 * crawl` over chosen classes, and the walk over live items that metadump and key dumps use.
 */
import { C, H_CRAWL_POS, S } from './layout.js';
import { INDEX_START_BUCKETS, type HashIndex } from './hash-index.js';
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
   * The background crawl: from the walk group where it stopped last, removes the dead items among
   * about `maxItems` (whole groups, at most max(1024, 16 x maxItems) buckets of them), stopping
   * early where a pass over the whole index ends.
   */
  crawl(maxItems: number): CrawlStep {
    const { f64 } = this.m;
    const maxBuckets = Math.max(1024, maxItems * 16);
    let group = f64[H_CRAWL_POS]! % INDEX_START_BUCKETS;
    let checked = 0;
    let reclaimed = 0;
    let passEnded = false;
    for (let visited = 0; checked < maxItems && visited < maxBuckets && !passEnded; ) {
      visited += this.index.visitGroup(group, (r) => {
        checked++;
        if (this.lifetime.liveness(r) !== Liveness.Alive) {
          this.reclaim(r);
          reclaimed++;
        }
      });
      group = (group + 1) % INDEX_START_BUCKETS;
      passEnded = group === 0;
    }
    f64[H_CRAWL_POS] = group;
    f64[this.m.counters + C.crawler_items_checked]! += checked;
    return { checked, reclaimed, passEnded };
  }

  /**
   * `lru_crawler crawl`: over walk groups from `from` until `buckets` buckets are looked at,
   * removes the dead items of the classes (null = all), at most `perClass` looked at per class
   * (0 = no limit; `seen` counts them over calls). The next group, or -1 after the last.
   */
  reclaimDead(from: number, buckets: number, classes: ReadonlySet<number> | null, perClass: number, seen: Map<number, number>): number {
    let checked = 0;
    const next = this.walk(from, buckets, (r) => {
      const cls = this.items.classOf(r);
      const n = seen.get(cls) ?? 0;
      if ((classes === null || classes.has(cls)) && (perClass === 0 || n < perClass)) {
        seen.set(cls, n + 1);
        checked++;
        if (this.lifetime.liveness(r) !== Liveness.Alive) this.reclaim(r);
      }
    });
    this.m.f64[this.m.counters + C.crawler_items_checked]! += checked;
    return next;
  }

  /**
   * Visit the live items of walk groups from `from` until `buckets` buckets are looked at (dead
   * ones are skipped, not reclaimed); the next group to visit, or -1 after the last. A walk over
   * calls meets each item that stays alive exactly once (HashIndex.visitGroup).
   */
  forEachLive(from: number, buckets: number, visit: (ref: number) => void): number {
    return this.walk(from, buckets, (r) => {
      if (this.lifetime.liveness(r) === Liveness.Alive) visit(r);
    });
  }

  /** Whole walk groups from `from` until `buckets` buckets are looked at: the next group, or -1. */
  private walk(from: number, buckets: number, visit: (ref: number) => void): number {
    let group = from;
    for (let visited = 0; group < INDEX_START_BUCKETS && visited < buckets; group++) {
      visited += this.index.visitGroup(group, visit);
    }
    return group < INDEX_START_BUCKETS ? group : -1;
  }

  private reclaim(r: number): void {
    const cls = this.items.classOf(r);
    this.m.f64[this.m.classStats(cls) + S.crawler_reclaimed]!++;
    this.links.countReclaim(r, cls);
    this.links.remove(r);
  }
}
