/**
 * memcached's background slab mover (slab_automove=1, slab_automove.c), as a pure decision over
 * one shard's readings. Once a second it records, per class, the COLD tail's age and whether the
 * class evicted, ran out of memory or gained pages; over the last `window` seconds it then moves a
 * page from the class with the oldest data to the class that keeps evicting young data, when the
 * young age is below `ratio` times the old one, or returns a page to the free pool from a class
 * sitting on 2.5 pages of free chunks that nothing has disturbed for the whole window.
 *
 * Deciding rarely and on a window is what keeps a steady mixed-size load from churning pages:
 * every page moved evicts the items in it.
 *
 * State (in the shard's buffer, so any thread's Store object continues it), per class:
 *   [evicted before][outofmemory before][pages before] then `window` samples of
 *   [age][dirty][evicted share][evicted seen]
 */

/** memcached's slab_automove_window and slab_automove_ratio defaults. */
export const AUTOMOVE_WINDOW = 30;
export const AUTOMOVE_RATIO = 0.8;
/** A source class keeps at least this many pages; a class this many pages of free chunks gives one back. */
const MIN_PAGES_FOR_SOURCE = 2;
const MIN_PAGES_FOR_RECLAIM = 2.5;

const BEFORE_EVICTED = 0;
const BEFORE_OOM = 1;
const BEFORE_PAGES = 2;
const SAMPLES = 3;
const AGE = 0;
const DIRTY = 1;
const EVICTED_SHARE = 2;
const EVICTED_SEEN = 3;
const SAMPLE_SLOTS = 4;
export const AUTOMOVE_CLASS_SLOTS = SAMPLES + SAMPLE_SLOTS * AUTOMOVE_WINDOW;

/** What one class looks like this second (counters are running totals). */
export interface ClassReading {
  evicted: number;
  outofmemory: number;
  totalPages: number;
  freeChunks: number;
  perPage: number;
  /** Seconds since the COLD tail was last touched; 0 when COLD is empty. */
  coldAge: number;
}

/** A page move: dst 0 is the free pool. */
export interface PageMove {
  src: number;
  dst: number;
}

/**
 * One second of the mover over classes 1..readings.length-1 (readings[0] is unused).
 * `tick` is the mover's running second count, kept by the caller.
 */
export function automoveStep(
  f64: Float64Array,
  base: number,
  tick: number,
  readings: readonly ClassReading[],
  ratio = AUTOMOVE_RATIO,
): PageMove | null {
  const w = AUTOMOVE_WINDOW;
  let evictedTotal = 0;
  for (let c = 1; c < readings.length; c++) evictedTotal += Math.max(0, readings[c]!.evicted - f64[base + c * AUTOMOVE_CLASS_SLOTS + BEFORE_EVICTED]!);
  let oldest = -1;
  let oldestAge = 0;
  let youngest = -1;
  let youngestAge = Infinity;
  let youngestEvicting = false;
  let reclaim: PageMove | null = null;
  for (let c = 1; c < readings.length; c++) {
    const r = readings[c]!;
    const cb = base + c * AUTOMOVE_CLASS_SLOTS;
    const slot = cb + SAMPLES + (tick % w) * SAMPLE_SLOTS;
    const evicted = r.evicted - f64[cb + BEFORE_EVICTED]!;
    f64[slot + EVICTED_SEEN] = evicted > 0 ? 1 : 0;
    f64[slot + EVICTED_SHARE] = evicted > 0 ? evicted / evictedTotal : 0;
    f64[slot + DIRTY] = evicted > 0 || r.outofmemory > f64[cb + BEFORE_OOM]! || r.totalPages > f64[cb + BEFORE_PAGES]! ? 1 : 0;
    f64[slot + AGE] = r.coldAge;
    f64[cb + BEFORE_EVICTED] = r.evicted;
    f64[cb + BEFORE_OOM] = r.outofmemory;
    f64[cb + BEFORE_PAGES] = r.totalPages;
    if (reclaim !== null) continue; // memcached stops looking here; the before-readings still advance
    let age = 0;
    let dirty = 0;
    let share = 0;
    let seen = 0;
    for (let i = 0; i < w; i++) {
      const s = cb + SAMPLES + i * SAMPLE_SLOTS;
      age += f64[s + AGE]!;
      dirty += f64[s + DIRTY]!;
      share += f64[s + EVICTED_SHARE]!;
      seen += f64[s + EVICTED_SEEN]!;
    }
    age = Math.floor(age / w);
    if (r.freeChunks > r.perPage * MIN_PAGES_FOR_RECLAIM && dirty === 0) {
      reclaim = { src: c, dst: 0 };
      continue;
    }
    if (age > oldestAge && r.totalPages > MIN_PAGES_FOR_SOURCE) {
      oldest = c;
      oldestAge = age;
    }
    if (age < youngestAge && (seen > w / 2 || share / w > 0.25)) {
      youngest = c;
      youngestAge = age;
      youngestEvicting = f64[slot + EVICTED_SEEN] === 1;
    }
  }
  if (reclaim !== null) return reclaim;
  // decisions only once the window has filled
  if (youngest !== -1 && oldest !== -1 && tick > w && youngestEvicting && youngestAge < oldestAge * ratio) {
    return { src: oldest, dst: youngest };
  }
  return null;
}
