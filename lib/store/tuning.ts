/**
 * memcached's runtime LRU and slab settings, as a shard's store applies them. They live in each
 * shard's header (so every thread sees a change at once) and are set at start from the command
 * line (`-o hot_lru_pct=...`, `-M`...), then by `lru tune|mode|temp_ttl` and `slabs automove`.
 */
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
};
