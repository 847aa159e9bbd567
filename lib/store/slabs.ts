/**
 * Slab class ladder: the chunk sizes items are rounded up to. Pure, so the worker, the stats
 * reader and the tests all derive exactly the same table from the same config.
 */

/** memcached's MAX_NUMBER_OF_SLAB_CLASSES is 64 with ids 1..63. */
export const MAX_CLASSES = 63;
export const CHUNK_ALIGN = 8;

export function align8(n: number): number {
  return (n + 7) & ~7;
}

/**
 * Chunk sizes, ascending: first = align8(headerBytes + minChunk), each next = align8(floor(prev *
 * factor)) (memcached truncates to an unsigned int before aligning), as long as the unaligned size
 * stays below pageSize / factor; the last class is a whole page (we do not chain large items, so
 * the largest item a page can hold is the page itself).
 */
export function slabLadder(headerBytes: number, minChunk: number, factor: number, pageSize: number): number[] {
  if (!(factor > 1)) throw new RangeError(`growth factor must be > 1, got ${factor}`);
  const sizes: number[] = [];
  let size = headerBytes + minChunk;
  while (sizes.length < MAX_CLASSES - 1) {
    if (size >= pageSize / factor) break;
    const aligned = align8(size);
    if (aligned >= pageSize) break;
    // A tiny factor (e.g. 1.01) can round back to the same aligned size: keep the ladder strict.
    const prev = sizes[sizes.length - 1];
    if (prev === undefined || aligned > prev) sizes.push(aligned);
    // max(): a factor close to 1 must still make progress instead of looping on one size.
    size = Math.max(Math.floor(aligned * factor), aligned + 1);
  }
  sizes.push(pageSize);
  return sizes;
}
