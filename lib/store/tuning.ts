/**
 * memcached's runtime LRU and slab settings, as a shard's store applies them. They live in each
 * shard's header (so every thread sees a change at once) and are set at start from the command
 * line (`-o hot_lru_pct=...`, `-M`...), then by `lru tune|mode|temp_ttl` and `slabs automove`.
 */

/**
 * `-o lru_policy`, memshard's own: how hits count in the segmented LRU. The index is the value
 * kept in the shard header.
 * - 'one_hit' (the default, memshard's behaviour so far): an item's first hit marks it ACTIVE
 *   (what promotes it to WARM and spares it at COLD's tail).
 * - 'two_hit': its second does, the first only sets FETCHED, as memcached's do_item_bump counts
 *   (which then also moves a COLD item to WARM on that hit; here it still needs one more, or the
 *   eviction's rescue). An item hit once leaves HOT for COLD, and COLD's tail evicts it.
 * - 'frequency': as one_hit, and an item also counts its hits (up to 3); at WARM's tail an
 *   inactive item spends one to stay in WARM instead of going down to COLD (a GCLOCK).
 */
export const LRU_POLICIES = ['one_hit', 'two_hit', 'frequency'] as const;
export type LruPolicy = (typeof LRU_POLICIES)[number];

export interface StoreTuning {
  /**
   * slab_automove: 0 = pages move only on `slabs reassign` (or to a class that has none), 1 =
   * memcached's windowed mover (lib/store/automove.ts), 2 = to an evicting class at once.
   */
  automove: number;
  /** slab_automove_ratio: a class gets a page when its data is younger than this share of the oldest class's. */
  automoveRatio: number;
  /** HOT and WARM caps, percent of a class's items. */
  hotPct: number;
  warmPct: number;
  /** An item idle longer than COLD's tail age times this leaves HOT (WARM). */
  hotMaxFactor: number;
  warmMaxFactor: number;
  /** With tempLru, items whose TTL is at most temporaryTtl go to the TEMP LRU (never evicted, only reclaimed). */
  tempLru: boolean;
  temporaryTtl: number;
  /** false = memcached's `lru mode flat`: one LRU per class. */
  segmented: boolean;
  /** false = -M: a full cache answers out of memory instead of evicting. */
  evict: boolean;
  /** How hits count (LRU_POLICIES). */
  lruPolicy: LruPolicy;
}

/** memcached 1.6's defaults (settings_init). */
export const DEFAULT_TUNING: StoreTuning = {
  automove: 1,
  automoveRatio: 0.8,
  hotPct: 20,
  warmPct: 40,
  hotMaxFactor: 0.2,
  warmMaxFactor: 2.0,
  tempLru: false,
  temporaryTtl: 61,
  segmented: true,
  evict: true,
  lruPolicy: 'one_hit',
};
