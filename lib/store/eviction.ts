/**
 * Finding memory for a new item the way memcached's do_item_alloc does: a free or never-used
 * chunk, else a dead item near the class's LRU tails, else a page moved from another class, else
 * (unless -M) the class's least recently used item.
 */
import type { Allocator } from './allocator.js';
import type { ChunkSource } from './chains.js';
import { COLD, C, H_AUTOMOVE, H_EVICT, HOT, IF_ACTIVE, S, TEMP, WARM } from './layout.js';
import { Liveness, type Lifetime } from './lifetime.js';
import type { Items } from './items.js';
import type { ItemLinks } from './links.js';
import type { Lru } from './lru.js';
import type { ShardMemory } from './memory.js';
import type { Mover } from './mover.js';

/** Tails looked at for a dead item to reuse: TEMP's first, its items are never evicted. */
const RECLAIM_ORDER = [TEMP, COLD, WARM, HOT] as const;
/** How many tail items allocation inspects for an expired one before evicting. */
const TAIL_SEARCH = 5;

export class Evictor implements ChunkSource {
  constructor(
    private readonly m: ShardMemory,
    private readonly items: Items,
    private readonly allocator: Allocator,
    private readonly lru: Lru,
    private readonly links: ItemLinks,
    private readonly lifetime: Lifetime,
    private readonly mover: Mover,
  ) {}

  /** A chunk of class cls (unlinked, contents undefined), or 0 (counted as outofmemory). */
  chunkFor(cls: number): number {
    const f64 = this.m.f64;
    let r = this.allocator.take(cls);
    if (r !== 0) return r;
    f64[this.m.counters + C.direct_reclaims]!++;
    r = this.reclaimTail(cls);
    if (r !== 0) return r;
    if (f64[H_AUTOMOVE]! > 0 && this.mover.rebalance(cls, f64[H_AUTOMOVE] === 2)) return this.allocator.carve(cls);
    r = f64[H_EVICT] === 1 ? this.evictTail(cls) : 0;
    if (r !== 0) return r;
    f64[this.m.classStats(cls) + S.outofmemory]!++;
    return 0;
  }

  /** Reuses an expired / flushed item found near the class's tails. */
  private reclaimTail(cls: number): number {
    let looked = 0;
    for (const seg of RECLAIM_ORDER) {
      if (looked >= TAIL_SEARCH) break;
      let r = this.lru.tail(cls, seg);
      while (r !== 0 && looked < TAIL_SEARCH) {
        if (this.lifetime.liveness(r) !== Liveness.Alive) {
          this.links.countReclaim(r, cls);
          this.links.unlink(r);
          return r;
        }
        r = this.lru.prev(r);
        looked++;
      }
    }
    return 0;
  }

  /** Evicts the class's LRU item, giving ACTIVE items at the COLD tail a second chance in WARM. */
  private evictTail(cls: number): number {
    for (let tries = 0; tries < 2 * TAIL_SEARCH; tries++) {
      const r = this.lru.oldest(cls);
      if (r === 0) return 0;
      if (this.lifetime.liveness(r) !== Liveness.Alive) {
        this.links.countReclaim(r, cls);
      } else {
        if (tries < TAIL_SEARCH && (this.items.itemFlags(r) & IF_ACTIVE) !== 0 && this.lru.segmentOf(r) === COLD) {
          this.lru.rescue(r, cls);
          continue;
        }
        this.links.countEviction(r, cls);
      }
      this.links.unlink(r);
      return r;
    }
    return 0;
  }
}
