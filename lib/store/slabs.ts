/**
 * Slab class ladder and page size: pure, so the worker, the stats reader and the tests all derive
 * exactly the same table from the same config.
 */

/** memcached's MAX_NUMBER_OF_SLAB_CLASSES is 64 with ids 1..63. */
export const MAX_CLASSES = 63;
export const CHUNK_ALIGN = 8;

/** Largest slab page (memcached's). */
export const PAGE_SIZE_MAX = 1024 * 1024;
/** Smallest slab page pageSizeFor hands out. */
export const PAGE_SIZE_MIN = 64 * 1024;
/** Pages a shard should have at least, so every slab class (~35 for 100 B .. 100 KB) can own some. */
export const MIN_PAGES_PER_SHARD = 64;

export function align8(n: number): number {
  return (n + 7) & ~7;
}

/**
 * Page size for a shard of `memoryBytes`: the largest power of two <= 1 MiB that still gives the
 * shard at least 64 pages, but never below 64 KiB. A 64 MiB+ shard keeps memcached's 1 MiB pages;
 * smaller shards get smaller pages so that the ~35 classes of a wide value-size mix each own a
 * page or two instead of stealing 1 MiB pages (and evicting a whole page) back and forth.
 * Examples: 16 MiB -> 256 KiB, 32 MiB -> 512 KiB, >= 64 MiB -> 1 MiB, <= 4 MiB -> 64 KiB.
 */
export function pageSizeFor(memoryBytes: number): number {
  let p = PAGE_SIZE_MAX;
  while (p > PAGE_SIZE_MIN && Math.floor(memoryBytes / p) < MIN_PAGES_PER_SHARD) p /= 2;
  return p;
}

/** slab_chunk_max: the largest chunk, half a page (memcached's default). Larger items are chained. */
export function chunkMaxFor(pageSize: number): number {
  return Math.floor(pageSize / 2 / CHUNK_ALIGN) * CHUNK_ALIGN;
}

/**
 * Chunk sizes, ascending: first = align8(headerBytes + minChunk), each next = align8(floor(prev *
 * factor)) (memcached truncates to an unsigned int before aligning), as long as the unaligned size
 * stays below chunkMax / factor; the last class is exactly chunkMax = pageSize / 2 (memcached's
 * slab_chunk_max). Items larger than chunkMax are chained from chunks of that last class.
 */
export function slabLadder(headerBytes: number, minChunk: number, factor: number, pageSize: number): number[] {
  if (!(factor > 1)) throw new RangeError(`growth factor must be > 1, got ${factor}`);
  const chunkMax = chunkMaxFor(pageSize);
  const sizes: number[] = [];
  let size = headerBytes + minChunk;
  while (sizes.length < MAX_CLASSES - 1) {
    if (size >= chunkMax / factor) break;
    const aligned = align8(size);
    if (aligned >= chunkMax) break;
    // A tiny factor (e.g. 1.01) can round back to the same aligned size: keep the ladder strict.
    const prev = sizes[sizes.length - 1];
    if (prev === undefined || aligned > prev) sizes.push(aligned);
    // max(): a factor close to 1 must still make progress instead of looping on one size.
    size = Math.max(Math.floor(aligned * factor), aligned + 1);
  }
  sizes.push(chunkMax);
  return sizes;
}

/** memcached's default -f. */
export const MEMCACHED_GROWTH_FACTOR = 1.25;

/**
 * memshard's growth factor when -f is not given: the smallest (in hundredths) whose ladder reaches
 * chunkMax within memcached's 63 classes. A finer ladder wastes less of each chunk: 1.13 instead
 * of 1.25 keeps 11% more 100-2000 B items in the same -m (measured: 68,586 vs 61,638 in -m 64).
 */
export function finestGrowthFactor(headerBytes: number, minChunk: number, pageSize: number): number {
  const first = align8(headerBytes + minChunk);
  let f = Math.ceil(Math.pow(chunkMaxFor(pageSize) / first, 1 / (MAX_CLASSES - 1)) * 100) / 100;
  while (slabLadder(headerBytes, minChunk, f, pageSize).length >= MAX_CLASSES) f = Math.round(f * 100 + 1) / 100;
  return f;
}
