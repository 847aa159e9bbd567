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

export class SpaceSaving {
  private readonly keys: string[] = [];
  private readonly counts: number[] = [];
  private readonly errors: number[] = [];
  /** key -> its position in the heap arrays. */
  private readonly index = new Map<string, number>();
  private seen = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  }

  get total(): number {
    return this.seen;
  }

  get size(): number {
    return this.keys.length;
  }

  /** Count one occurrence (or n) of key. */
  add(key: string, n = 1): void {
    this.seen += n;
    const at = this.index.get(key);
    if (at !== undefined) {
      this.counts[at]! += n;
      this.siftDown(at);
      return;
    }
    if (this.keys.length < this.capacity) {
      const i = this.keys.length;
      this.keys.push(key);
      this.counts.push(n);
      this.errors.push(0);
      this.index.set(key, i);
      this.siftUp(i);
      return;
    }
    // replace the least counted key: the newcomer may have occurred up to `min` times unseen
    const min = this.counts[0]!;
    this.index.delete(this.keys[0]!);
    this.keys[0] = key;
    this.counts[0] = min + n;
    this.errors[0] = min;
    this.index.set(key, 0);
    this.siftDown(0);
  }

  /** The smallest count when every counter is in use (a bound for untracked keys), else 0. */
  get floor(): number {
    return this.keys.length < this.capacity ? 0 : this.counts[0]!;
  }

  /** Estimate for one key: [count, error], or null when untracked (true count <= floor). */
  estimate(key: string): [number, number] | null {
    const at = this.index.get(key);
    return at === undefined ? null : [this.counts[at]!, this.errors[at]!];
  }

  /** The top `limit` entries; the keys left out are covered by `floor`. */
  summary(limit = this.capacity): SketchSummary {
    const order = this.keys.map((_, i) => i).sort((a, b) => this.counts[b]! - this.counts[a]! || (this.keys[a]! < this.keys[b]! ? -1 : 1));
    const kept = order.slice(0, limit);
    const entries = kept.map((i): SketchEntry => [this.keys[i]!, this.counts[i]!, this.errors[i]!]);
    // a key cut from the list has at most the count of the first one cut
    const cut = order[limit];
    const floor = Math.max(this.floor, cut === undefined ? 0 : this.counts[cut]!);
    return { total: this.seen, entries, floor };
  }

  clear(): void {
    this.keys.length = 0;
    this.counts.length = 0;
    this.errors.length = 0;
    this.index.clear();
    this.seen = 0;
  }

  private swap(a: number, b: number): void {
    const k = this.keys[a]!;
    const c = this.counts[a]!;
    const e = this.errors[a]!;
    this.keys[a] = this.keys[b]!;
    this.counts[a] = this.counts[b]!;
    this.errors[a] = this.errors[b]!;
    this.keys[b] = k;
    this.counts[b] = c;
    this.errors[b] = e;
    this.index.set(this.keys[a]!, a);
    this.index.set(k, b);
  }

  private siftUp(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.counts[parent]! <= this.counts[i]!) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(i: number): void {
    const n = this.keys.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) return;
      const r = l + 1;
      const child = r < n && this.counts[r]! < this.counts[l]! ? r : l;
      if (this.counts[child]! >= this.counts[i]!) return;
      this.swap(i, child);
      i = child;
    }
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
