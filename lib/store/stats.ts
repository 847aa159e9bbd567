/**
 * Reads a shard's statistics straight from its SharedArrayBuffer. Pure and lock-free: safe to call
 * from the main thread while the shard's worker mutates the buffer (values may be a few
 * operations apart from each other, never torn: every counter is one aligned Float64).
 */
import {
  B_KEY, CLASS_F64_SLOTS, CLASS_STAT_NAMES, CLASS_U32_SLOTS, COLD, COUNTER_NAMES, HOT, H_NUM_CLASSES,
  H_PAGES_USED, I_ATIME, K_CARVE_NEXT, K_CARVE_PAGE, K_CHUNKS, K_CHUNK_SIZE, K_COUNT, K_FREE_COUNT, K_PER_PAGE,
  K_TOTAL_PAGES, S, TEMP, WARM, computeLayout, H_INDEX_BASE,
} from './layout.js';
import { bucketsInUse } from './hash-index.js';
import type { LayoutConfig } from './layout.js';

export interface ClassStats {
  id: number;
  chunk_size: number;
  chunks_per_page: number;
  total_pages: number;
  total_chunks: number;
  used_chunks: number;
  free_chunks: number;
  free_chunks_end: number;
  mem_requested: number;
  number: number;
  number_hot: number;
  number_warm: number;
  number_cold: number;
  number_temp: number;
  age_hot: number;
  age_warm: number;
  age: number;
  evicted: number;
  evicted_nonzero: number;
  evicted_time: number;
  outofmemory: number;
  reclaimed: number;
  expired_unfetched: number;
  evicted_unfetched: number;
  evicted_active: number;
  crawler_reclaimed: number;
  moves_to_cold: number;
  moves_to_warm: number;
  moves_within_lru: number;
  get_hits: number;
  cmd_set: number;
  delete_hits: number;
  incr_hits: number;
  decr_hits: number;
  cas_hits: number;
  cas_badval: number;
  touch_hits: number;
  hits_to_hot: number;
  hits_to_warm: number;
  hits_to_cold: number;
  hits_to_temp: number;
}

export interface ShardStats {
  counters: Record<string, number>;
  classes: ClassStats[];
  /** The hash index's buckets before the splits of its current doubling (a power of two). */
  hashBaseBuckets: number;
  /** Bytes of the hash index's buckets in use. */
  hashBytes: number;
}

/** Global counters that are sums of the per-class ones (name in `stats` -> class stat). */
const SUMMED: ReadonlyArray<readonly [string, keyof typeof S]> = [
  ['get_hits', 'get_hits'], ['delete_hits', 'delete_hits'], ['incr_hits', 'incr_hits'],
  ['decr_hits', 'decr_hits'], ['cas_hits', 'cas_hits'], ['cas_badval', 'cas_badval'],
  ['touch_hits', 'touch_hits'], ['expired_unfetched', 'expired_unfetched'],
  ['evicted_unfetched', 'evicted_unfetched'], ['evicted_active', 'evicted_active'],
  ['evictions', 'evicted'], ['reclaimed', 'reclaimed'], ['crawler_reclaimed', 'crawler_reclaimed'],
  ['moves_to_cold', 'moves_to_cold'], ['moves_to_warm', 'moves_to_warm'],
  ['moves_within_lru', 'moves_within_lru'],
];

/** `now` is the server time (seconds since start) used for the age_* fields. */
export function readShardStats(sab: SharedArrayBuffer, cfg: LayoutConfig, now: number): ShardStats {
  const L = computeLayout(cfg);
  const f64 = new Float64Array(sab, 0, L.byteLength / 8);
  const u32 = new Uint32Array(sab, 0, L.byteLength / 4);
  const i32 = new Int32Array(sab, 0, L.byteLength / 4);
  const counters: Record<string, number> = {};
  COUNTER_NAMES.forEach((name, i) => {
    counters[name] = f64[L.countersF64 + i]!;
  });
  for (const [name] of SUMMED) counters[name] = 0;
  counters.total_malloced = f64[H_PAGES_USED]! * L.pageSize;

  const pageRefMin = L.pageAreaByte / 8;
  const pageRefEnd = L.byteLength / 8;
  // The tail may change under us: only dereference refs that point into the page area.
  const ageOf = (ref: number): number =>
    ref >= pageRefMin && ref + B_KEY / 8 <= pageRefEnd ? Math.max(0, now - i32[ref * 2 + I_ATIME]!) : 0;

  const classes: ClassStats[] = [];
  const nClasses = f64[H_NUM_CLASSES]! || L.classSizes.length;
  for (let id = 1; id <= nClasses; id++) {
    const cs = L.classU32 + id * CLASS_U32_SLOTS;
    const sf = L.classF64 + id * CLASS_F64_SLOTS;
    const st = {} as Record<(typeof CLASS_STAT_NAMES)[number], number>;
    let any = false;
    for (const name of CLASS_STAT_NAMES) {
      const v = f64[sf + S[name]]!;
      st[name] = v;
      if (v !== 0) any = true;
    }
    for (const [name, cname] of SUMMED) counters[name]! += st[cname];
    const pages = u32[cs + K_TOTAL_PAGES]!;
    if (pages === 0 && !any) continue;
    const perPage = u32[cs + K_PER_PAGE]!;
    const nHot = u32[cs + K_COUNT + HOT]!;
    const nWarm = u32[cs + K_COUNT + WARM]!;
    const nCold = u32[cs + K_COUNT + COLD]!;
    const nTemp = u32[cs + K_COUNT + TEMP]!;
    const number = nHot + nWarm + nCold + nTemp;
    const freeEnd = u32[cs + K_CARVE_PAGE] !== 0 ? Math.max(0, perPage - u32[cs + K_CARVE_NEXT]!) : 0;
    classes.push({
      id,
      chunk_size: u32[cs + K_CHUNK_SIZE]!,
      chunks_per_page: perPage,
      total_pages: pages,
      total_chunks: pages * perPage,
      // chained items' continuation chunks are in use without being items of their own
      used_chunks: number + u32[cs + K_CHUNKS]!,
      free_chunks: u32[cs + K_FREE_COUNT]! + freeEnd,
      free_chunks_end: freeEnd,
      mem_requested: st.mem_requested,
      number,
      number_hot: nHot,
      number_warm: nWarm,
      number_cold: nCold,
      number_temp: nTemp,
      age_hot: ageOf(u32[cs + 2 * HOT + 1]!),
      age_warm: ageOf(u32[cs + 2 * WARM + 1]!),
      age: ageOf(u32[cs + 2 * COLD + 1]!),
      evicted: st.evicted,
      evicted_nonzero: st.evicted_nonzero,
      evicted_time: st.evicted_time,
      outofmemory: st.outofmemory,
      reclaimed: st.reclaimed,
      expired_unfetched: st.expired_unfetched,
      evicted_unfetched: st.evicted_unfetched,
      evicted_active: st.evicted_active,
      crawler_reclaimed: st.crawler_reclaimed,
      moves_to_cold: st.moves_to_cold,
      moves_to_warm: st.moves_to_warm,
      moves_within_lru: st.moves_within_lru,
      get_hits: st.get_hits,
      cmd_set: st.cmd_set,
      delete_hits: st.delete_hits,
      incr_hits: st.incr_hits,
      decr_hits: st.decr_hits,
      cas_hits: st.cas_hits,
      cas_badval: st.cas_badval,
      touch_hits: st.touch_hits,
      hits_to_hot: st.hits_to_hot,
      hits_to_warm: st.hits_to_warm,
      hits_to_cold: st.hits_to_cold,
      hits_to_temp: st.hits_to_temp,
    });
  }
  return { counters, classes, hashBaseBuckets: f64[H_INDEX_BASE]!, hashBytes: bucketsInUse(f64) * 4 };
}
