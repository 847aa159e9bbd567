/**
 * Heavy hitters in bounded memory: the Space-Saving algorithm (Metwally, Agrawal, El Abbadi,
 * "Efficient computation of frequent and top-k elements in data streams", ICDT 2005) over a
 * min-heap of `capacity` counters.
 *
 * Guarantees, for a stream of N items: every tracked key's `count` overestimates its true count
 * by at most its `error` (count - error <= true <= count), every error is at most the smallest
 * count (<= N / capacity), and every key whose true count is above N / capacity is tracked.
 *
 * Summaries from several sketches (threads, epochs) merge with the same kind of bound
 * (mergeSummaries): pure code, no I/O, testable on its own.
 */

/** One tracked key: [key, count, error]. */
export type SketchEntry = [string, number, number];

/** What a sketch says about its stream, possibly cut to its top entries (see summary()). */
export interface SketchSummary {
  /** Items the sketch saw. */
  total: number;
  /** The tracked keys, highest count first. */
  entries: SketchEntry[];
  /** An upper bound of the true count of any key not in `entries` (0: none was seen). */
  floor: number;
}

/**
 * A 53-bit fingerprint of key bytes, the sketch's identity of a key: two 32-bit multiplicative
 * hashes in one pass (FNV-1a, and one with murmur's multiplier), each finished with murmur3's mix.
 */
export function fingerprint(key: Uint8Array): number {
  let a = 0x811c9dc5;
  let b = 0x9747b28c ^ key.length;
  for (let i = 0; i < key.length; i++) {
    const c = key[i]!;
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return (fmix(a) >>> 0) * 2 ** 21 + (fmix(b) >>> 11);
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * The sketch's counters live in typed arrays, in a min-heap by count; keys are known by their
 * fingerprint (a hash table from fingerprint to counter), and a key's name is copied out of its bytes
 * only when a counter gets it while some is free, or when it is counted a second time: a stream
 * of distinct keys (every one replacing the least counted) costs a hash, a probe of a typed-array
 * hash table and a heap step per item, and no string and no allocation. A counter without a name is not listed; its count is covered by
 * the summary's floor. Two keys with the same 53-bit fingerprint would share a counter (an
 * overcount, never an undercount; about one chance in 10^9 per epoch at 10^6 distinct keys).
 */
export class SpaceSaving {
  private readonly counts: Float64Array;
  private readonly errors: Float64Array;
  private readonly ids: Float64Array;
  private readonly names: Array<string | undefined>;
  /** heap[i] = counter at heap position i; pos[counter] = its heap position. */
  private readonly heap: Int32Array;
  private readonly pos: Int32Array;
  /** fingerprint -> counter + 1 (0: empty), open addressing with linear probing, a quarter full at most. */
  private readonly slots: Int32Array;
  private readonly mask: number;
  private used = 0;
  private seen = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.counts = new Float64Array(capacity);
    this.errors = new Float64Array(capacity);
    this.ids = new Float64Array(capacity);
    this.names = new Array<string | undefined>(capacity).fill(undefined);
    this.heap = new Int32Array(capacity);
    this.pos = new Int32Array(capacity);
    let size = 16;
    while (size < 4 * capacity) size *= 2;
    this.slots = new Int32Array(size);
    this.mask = size - 1;
  }

  /** The counter of fingerprint id, or -1. */
  private find(id: number): number {
    const { slots, mask, ids } = this;
    for (let i = (id >>> 0) & mask; slots[i] !== 0; i = (i + 1) & mask) {
      const c = slots[i]! - 1;
      if (ids[c] === id) return c;
    }
    return -1;
  }

  private insert(id: number, c: number): void {
    const { slots, mask } = this;
    let i = (id >>> 0) & mask;
    while (slots[i] !== 0) i = (i + 1) & mask;
    slots[i] = c + 1;
  }

  /** Take fingerprint id out of the table, moving back the entries its slot kept from their home (Knuth's algorithm R). */
  private remove(id: number): void {
    const { slots, mask, ids } = this;
    let i = (id >>> 0) & mask;
    while (slots[i] !== 0 && ids[slots[i]! - 1] !== id) i = (i + 1) & mask;
    if (slots[i] === 0) return;
    slots[i] = 0;
    for (let j = (i + 1) & mask; slots[j] !== 0; j = (j + 1) & mask) {
      const home = (ids[slots[j]! - 1]! >>> 0) & mask;
      // the entry at j may move to the hole at i unless its home lies cyclically in (i, j]
      const stays = i <= j ? home > i && home <= j : home > i || home <= j;
      if (!stays) {
        slots[i] = slots[j]!;
        slots[j] = 0;
        i = j;
      }
    }
  }

  get total(): number {
    return this.seen;
  }

  get size(): number {
    return this.used;
  }

  /** Count one occurrence (or n) of a key given as a string (one char per byte, latin1). */
  add(key: string, n = 1): void {
    this.addBytes(Buffer.from(key, 'latin1'), n);
  }

  /** Count one occurrence (or n) of the key with these bytes. */
  addBytes(key: Uint8Array, n = 1): void {
    this.seen += n;
    const id = fingerprint(key);
    const at = this.find(id);
    if (at >= 0) {
      this.counts[at]! += n;
      this.names[at] ??= Buffer.prototype.latin1Slice.call(key, 0, key.length);
      this.siftDown(this.pos[at]!);
      return;
    }
    if (this.used < this.capacity) {
      const c = this.used++;
      this.counts[c] = n;
      this.errors[c] = 0;
      this.ids[c] = id;
      this.names[c] = Buffer.prototype.latin1Slice.call(key, 0, key.length);
      this.insert(id, c);
      this.heap[c] = c;
      this.pos[c] = c;
      this.siftUp(c);
      return;
    }
    // replace the least counted key: the newcomer may have occurred up to `min` times unseen
    const c = this.heap[0]!;
    const min = this.counts[c]!;
    this.remove(this.ids[c]!);
    this.ids[c] = id;
    this.insert(id, c);
    this.names[c] = undefined;
    this.counts[c] = min + n;
    this.errors[c] = min;
    this.siftDown(0);
  }

  /** The smallest count when every counter is in use (a bound for untracked keys), else 0. */
  get floor(): number {
    return this.used < this.capacity ? 0 : this.counts[this.heap[0]!]!;
  }

  /** Estimate for one key: [count, error], or null when untracked (true count <= floor). */
  estimate(key: string): [number, number] | null {
    const at = this.find(fingerprint(Buffer.from(key, 'latin1')));
    return at < 0 ? null : [this.counts[at]!, this.errors[at]!];
  }

  /** The top `limit` named entries; the keys left out (cut, or without a name) are covered by `floor`. */
  summary(limit = this.capacity): SketchSummary {
    const order = Array.from({ length: this.used }, (_, i) => i).sort((a, b) => this.counts[b]! - this.counts[a]!);
    let floor = this.floor;
    const entries: SketchEntry[] = [];
    for (const c of order) {
      const name = this.names[c];
      // a key cut from the list, or not named, has at most its count
      if (name === undefined || entries.length >= limit) floor = Math.max(floor, this.counts[c]!);
      else entries.push([name, this.counts[c]!, this.errors[c]!]);
    }
    entries.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return { total: this.seen, entries, floor };
  }

  clear(): void {
    this.slots.fill(0);
    this.names.fill(undefined);
    this.used = 0;
    this.seen = 0;
  }

  private siftUp(i: number): void {
    const { heap, pos, counts } = this;
    const c = heap[i]!;
    const count = counts[c]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (counts[p]! <= count) break;
      heap[i] = p;
      pos[p] = i;
      i = parent;
    }
    heap[i] = c;
    pos[c] = i;
  }

  private siftDown(i: number): void {
    const { heap, pos, counts } = this;
    const n = this.used;
    const c = heap[i]!;
    const count = counts[c]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const child = r < n && counts[heap[r]!]! < counts[heap[l]!]! ? r : l;
      const ch = heap[child]!;
      if (counts[ch]! >= count) break;
      heap[i] = ch;
      pos[ch] = i;
      i = child;
    }
    heap[i] = c;
    pos[c] = i;
  }
}

/** A key's merged estimate: the true count is in [count - error, count]. */
export interface HotKey {
  key: string;
  count: number;
  error: number;
}

/**
 * Merge summaries of disjoint streams (threads, epochs) into one top list. For each key: the upper
 * bound is the sum over summaries of its count where listed and of the summary's floor where not;
 * the lower bound is the sum of (count - error) where listed. The result's `count` is the upper
 * bound and `error` the difference, so count - error <= true <= count holds for every row.
 * Rows are ordered by count, then by the lower bound, then by key (a stable order).
 */
export function mergeSummaries(summaries: readonly SketchSummary[], top: number): { total: number; errorBound: number; keys: HotKey[] } {
  const lower = new Map<string, number>();
  const listed = new Map<string, number>();
  let floors = 0;
  let total = 0;
  for (const s of summaries) {
    total += s.total;
    floors += s.floor;
    for (const [key, count, error] of s.entries) {
      lower.set(key, (lower.get(key) ?? 0) + count - error);
      // where listed, count replaces the floor the key would otherwise get from this summary
      listed.set(key, (listed.get(key) ?? 0) + count - s.floor);
    }
  }
  const keys = [...listed].map(([key, delta]): HotKey => {
    const count = floors + delta;
    return { key, count, error: count - lower.get(key)! };
  });
  keys.sort((a, b) => b.count - a.count || b.count - b.error - (a.count - a.error) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { total, errorBound: floors, keys: keys.slice(0, top) };
}
