/**
 * Fast non-cryptographic hashes over key bytes. Two different functions so that the shard a key
 * is routed to (ring) and its bucket inside the shard's index are independent of each other.
 */

/** FNV-1a, 32 bit: used for the per-shard hash index. */
export function fnv1a32(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** MurmurHash3 x86 32-bit: used for the consistent-hash ring (keys and virtual nodes). */
export function murmur3(bytes: Uint8Array, start: number, end: number, seed = 0): number {
  let h = seed >>> 0;
  const len = end - start;
  const blocksEnd = start + (len & ~3);
  let i = start;
  for (; i < blocksEnd; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  switch (len & 3) {
    case 3: k ^= bytes[i + 2]! << 16; // falls through
    case 2: k ^= bytes[i + 1]! << 8; // falls through
    case 1:
      k ^= bytes[i]!;
      k = Math.imul(k, 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, 0x1b873593);
      h ^= k;
  }
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
