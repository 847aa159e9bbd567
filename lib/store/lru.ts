/**
 * Each slab class's segmented LRU (memcached 1.5+'s HOT / WARM / COLD, plus TEMP for short TTLs):
 * doubly linked lists through the items' I_PREV / I_NEXT, heads, tails and counts in the class's
 * state block, and the segment in the item's flag bits. Hits mark items ACTIVE and bump them
 * lazily; `maintain` does memcached's LRU maintainer's moves, a few per link instead of in a thread.
 */
import {
  B_IFLAGS, COLD, HOT, H_HOT_FACTOR, H_HOT_PCT, H_LRU_POLICY, H_SEGMENTED, H_TEMP_LRU, H_TEMP_TTL, H_WARM_FACTOR,
  H_WARM_PCT, IF_ACTIVE, IF_FETCHED, IF_HITS, IF_HIT_UNIT, I_ATIME, I_EXPTIME, I_NEXT, I_PREV, K_COUNT, S, SEG_MASK, SEG_SHIFT,
  TEMP, WARM,
} from './layout.js';
import type { ShardMemory } from './memory.js';
import { LRU_POLICIES } from './tuning.js';

/** An item in HOT/WARM is relinked on hit at most this often (memcached's ITEM_UPDATE_INTERVAL). */
const BUMP_INTERVAL = 60;
/** Segment moves done per link: bounds the work of one store while keeping caps converging. */
const MAINTAIN_MOVES = 4;
/** H_LRU_POLICY's values for -o lru_policy=two_hit and frequency. */
const TWO_HIT = LRU_POLICIES.indexOf('two_hit');
const FREQUENCY = LRU_POLICIES.indexOf('frequency');

export class Lru {
  constructor(private readonly m: ShardMemory) {}

  segmentOf(ref: number): number {
    return (this.m.u8[ref * 8 + B_IFLAGS]! & SEG_MASK) >> SEG_SHIFT;
  }

  /** Links a new item of class cls: TEMP for a short TTL when the TEMP LRU is on, else HOT (COLD in flat mode). */
  insert(ref: number, cls: number): void {
    const { f64, i32, now } = this.m;
    const exp = i32[ref * 2 + I_EXPTIME]!;
    let seg: number;
    if (f64[H_TEMP_LRU] === 1 && exp !== 0 && exp - now <= f64[H_TEMP_TTL]!) seg = TEMP;
    else seg = f64[H_SEGMENTED] === 1 ? HOT : COLD;
    this.pushHead(this.m.classState(cls), seg, ref);
  }

  remove(ref: number, cls: number): void {
    this.unlinkFrom(this.m.classState(cls), ref);
  }

  /** The least recently used item of segment seg, 0 if empty. */
  tail(cls: number, seg: number): number {
    return this.m.u32[this.m.classState(cls) + 2 * seg + 1]!;
  }

  /** The item before ref (towards the head), 0 at the head. */
  prev(ref: number): number {
    return this.m.u32[ref * 2 + I_PREV]!;
  }

  /** Oldest item of the class (COLD tail, else WARM, else HOT), 0 if the class is empty. */
  oldest(cls: number): number {
    const u32 = this.m.u32;
    const cs = this.m.classState(cls);
    return u32[cs + 2 * COLD + 1]! || u32[cs + 2 * WARM + 1]! || u32[cs + 2 * HOT + 1]!;
  }

  /** Seconds since the class's oldest item was accessed: Infinity for an empty class. */
  oldestAge(cls: number): number {
    const t = this.oldest(cls);
    return t === 0 ? Infinity : this.m.now - this.m.i32[t * 2 + I_ATIME]!;
  }

  /**
   * A hit: mark FETCHED and ACTIVE (see afterHit); a hit while already ACTIVE in COLD promotes to
   * WARM; HOT/WARM relink at most once a BUMP_INTERVAL.
   */
  bump(ref: number, cls: number): void {
    const { u8, f64, i32, now } = this.m;
    const fb = ref * 8 + B_IFLAGS;
    const fl = u8[fb]!;
    const seg = (fl & SEG_MASK) >> SEG_SHIFT;
    const ai = ref * 2 + I_ATIME;
    const hit = this.afterHit(fl);
    f64[this.m.classStats(cls) + S.hits_to_hot + seg]!++;
    if (seg === TEMP) {
      u8[fb] = hit; // memcached never bumps TEMP items
    } else if (seg === COLD && f64[H_SEGMENTED] === 1) {
      if ((fl & IF_ACTIVE) !== 0) this.toWarm(ref, cls, hit);
      else u8[fb] = hit;
    } else {
      u8[fb] = hit;
      if (now - i32[ai]! >= BUMP_INTERVAL) this.move(this.m.classState(cls), ref, seg);
    }
    i32[ai] = now;
  }

  /**
   * An item's flag bits after a hit: FETCHED and ACTIVE; with lru_policy=two_hit ACTIVE only if it
   * was hit before, with frequency one more hit counted.
   */
  private afterHit(fl: number): number {
    const policy = this.m.f64[H_LRU_POLICY];
    if (policy === TWO_HIT && (fl & IF_FETCHED) === 0) return fl | IF_FETCHED;
    const counted = policy === FREQUENCY && (fl & IF_HITS) !== IF_HITS ? fl + IF_HIT_UNIT : fl;
    return counted | IF_FETCHED | IF_ACTIVE;
  }

  /** Eviction's second chance: an ACTIVE item at the COLD tail goes to WARM instead. */
  rescue(ref: number, cls: number): void {
    this.toWarm(ref, cls, this.m.u8[ref * 8 + B_IFLAGS]!);
  }

  /**
   * Keeps HOT and WARM within hot_lru_pct / warm_lru_pct of the class's items, and moves down their
   * tails once idle longer than COLD's tail age times hot_max_factor / warm_max_factor.
   */
  maintain(cls: number): void {
    const { f64, u32, i32, now } = this.m;
    if (f64[H_SEGMENTED] !== 1) return;
    const cs = this.m.classState(cls);
    const sf = this.m.classStats(cls);
    const total = u32[cs + K_COUNT + HOT]! + u32[cs + K_COUNT + WARM]! + u32[cs + K_COUNT + COLD]!;
    const coldTail = u32[cs + 2 * COLD + 1]!;
    // an empty or just-touched COLD gives no age to compare with (memcached's rule would then drain HOT)
    const coldAge = coldTail !== 0 ? now - i32[coldTail * 2 + I_ATIME]! || Infinity : Infinity;
    // HOT's active tail items go to WARM, WARM's stay in WARM (moved to its head); the rest to COLD
    this.moveDown(cs, sf, HOT, total, f64[H_HOT_PCT]!, coldAge * f64[H_HOT_FACTOR]!, S.moves_to_warm);
    this.moveDown(cs, sf, WARM, total, f64[H_WARM_PCT]!, coldAge * f64[H_WARM_FACTOR]!, S.moves_within_lru);
  }

  /**
   * Moves `seg`'s tail down while it is over its cap: ACTIVE items (cleared) to WARM, and items
   * with hits counted (lru_policy=frequency, spending one); the others to COLD.
   */
  private moveDown(cs: number, sf: number, seg: number, total: number, pct: number, maxAge: number, activeCounter: number): void {
    const { f64, u32, u8 } = this.m;
    for (let moves = 0; moves < MAINTAIN_MOVES && this.overCap(cs, seg, total, pct, maxAge); moves++) {
      const t = u32[cs + 2 * seg + 1]!;
      const fb = t * 8 + B_IFLAGS;
      const fl = u8[fb]!;
      if ((fl & (IF_ACTIVE | IF_HITS)) !== 0) {
        u8[fb] = (fl & IF_ACTIVE) !== 0 ? fl & ~IF_ACTIVE : fl - IF_HIT_UNIT;
        this.move(cs, t, WARM);
        f64[sf + activeCounter]!++;
      } else {
        this.move(cs, t, COLD);
        f64[sf + S.moves_to_cold]!++;
      }
    }
  }

  /** Clears ACTIVE (flags are the item's flag bits to start from) and moves the item to WARM's head. */
  private toWarm(ref: number, cls: number, flags: number): void {
    this.m.u8[ref * 8 + B_IFLAGS] = flags & ~IF_ACTIVE;
    this.move(this.m.classState(cls), ref, WARM);
    this.m.f64[this.m.classStats(cls) + S.moves_to_warm]!++;
  }

  /** Segment seg holds more than pct% of the class's `total` items, or its tail is idle longer than maxAge. */
  private overCap(cs: number, seg: number, total: number, pct: number, maxAge: number): boolean {
    const u32 = this.m.u32;
    const n = u32[cs + K_COUNT + seg]!;
    if (n === 0) return false;
    return n > (total * pct) / 100 || this.m.now - this.m.i32[u32[cs + 2 * seg + 1]! * 2 + I_ATIME]! > maxAge;
  }

  private pushHead(cs: number, seg: number, ref: number): void {
    const { u32, u8 } = this.m;
    const w = ref * 2;
    const hi = cs + 2 * seg;
    const head = u32[hi]!;
    u32[w + I_PREV] = 0;
    u32[w + I_NEXT] = head;
    if (head !== 0) u32[head * 2 + I_PREV] = ref;
    else u32[hi + 1] = ref;
    u32[hi] = ref;
    u32[cs + K_COUNT + seg]!++;
    const fb = ref * 8 + B_IFLAGS;
    u8[fb] = (u8[fb]! & ~SEG_MASK) | (seg << SEG_SHIFT);
  }

  private unlinkFrom(cs: number, ref: number): void {
    const u32 = this.m.u32;
    const w = ref * 2;
    const seg = this.segmentOf(ref);
    const hi = cs + 2 * seg;
    const prev = u32[w + I_PREV]!;
    const next = u32[w + I_NEXT]!;
    if (prev !== 0) u32[prev * 2 + I_NEXT] = next;
    else u32[hi] = next;
    if (next !== 0) u32[next * 2 + I_PREV] = prev;
    else u32[hi + 1] = prev;
    u32[cs + K_COUNT + seg]!--;
  }

  private move(cs: number, ref: number, seg: number): void {
    this.unlinkFrom(cs, ref);
    this.pushHead(cs, seg, ref);
  }
}
