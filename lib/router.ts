/**
 * Consistent-hash ring over the shard workers: each shard owns many virtual points on a 32-bit
 * circle and a key belongs to the first point at or after its hash, so changing the number of
 * shards moves only about 1/N of the keys.
 */
import { murmur3 } from './hash.js';

/** Enough points per shard to keep every shard within a few percent of its fair share. */
export const VIRTUAL_NODES = 1024;

export class HashRing {
  private readonly points: Uint32Array;
  private readonly owners: Uint16Array;

  constructor(readonly shardCount: number, vnodes = VIRTUAL_NODES) {
    const entries: Array<[number, number]> = [];
    for (let shard = 0; shard < shardCount; shard++) {
      for (let v = 0; v < vnodes; v++) {
        const label = Buffer.from(`shard-${shard}-${v}`, 'latin1');
        entries.push([murmur3(label, 0, label.length, 0x9747b28c), shard]);
      }
    }
    entries.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    this.points = Uint32Array.from(entries, (e) => e[0]);
    this.owners = Uint16Array.from(entries, (e) => e[1]);
  }

  shardOf(key: Uint8Array): number {
    if (this.shardCount === 1) return 0;
    const h = murmur3(key, 0, key.length, 0);
    const points = this.points;
    // first point >= h, wrapping to the start of the circle
    let lo = 0;
    let hi = points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    return this.owners[lo === points.length ? 0 : lo]!;
  }
}
