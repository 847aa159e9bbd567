/**
 * memcached's item dumps: `lru_crawler metadump <all|hash|classes>`, one line per live item (what
 * memcached-tool's dump and keys read), and `stats cachedump <class> <limit>` (what libmemcached's
 * memcdump reads). Both walk each shard in slices of hash buckets under the shard's lock, so a
 * command of another thread on that shard waits for one slice at most.
 */
import { MF_KEY_BINARY } from '../store/layout.js';
import type { Store } from '../store/store.js';

const BUCKETS_PER_SLICE = 4096;
/** memcached stops a cachedump at 2 MB of output. */
const CACHEDUMP_MAX_BYTES = 2 * 1024 * 1024;
/** memcached's slab class ids are below this (MAX_NUMBER_OF_SLAB_CLASSES). */
export const SLAB_CLASS_LIMIT = 64;

/** Runs fn on a shard's store under its lock. */
export type UnderLock = <T>(shard: number, fn: (store: Store) => T) => T;

export interface Dumping {
  shards: number;
  withShard: UnderLock;
  /** Unix time of server time 0. */
  processStarted: number;
}

/** Visit every live item, shard by shard, until visit answers false. */
function eachLive(d: Dumping, visit: (store: Store, ref: number) => boolean): void {
  let more = true;
  for (let shard = 0; shard < d.shards && more; shard++) {
    for (let from = 0; from >= 0 && more; ) {
      from = d.withShard(shard, (store) =>
        store.forEachLive(from, BUCKETS_PER_SLICE, (ref) => {
          if (more) more = visit(store, ref);
        }),
      );
    }
  }
}

/** memcached's uriencode: letters, digits and `-._~` as they are, every other byte as %XX. */
export function uriEncode(key: Uint8Array): string {
  let out = '';
  for (const b of key) out += URI_BYTE[b]!;
  return out;
}

/** What uriEncode writes for each byte value. */
const URI_BYTE = Array.from({ length: 256 }, (_, b) => {
  const c = String.fromCharCode(b);
  return /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
});

/** `lru_crawler metadump`: classes null = every class (memcached's class ids, as `me` shows). */
export function metadump(d: Dumping, classes: ReadonlySet<number> | null): string {
  const lines: string[] = [];
  eachLive(d, (store, ref) => {
    const cls = store.memcachedClassOf(ref);
    if (classes !== null && !classes.has(cls)) return true;
    const exp = store.exptimeOf(ref);
    lines.push(
      `key=${uriEncode(store.keyOf(ref))} exp=${exp === 0 ? -1 : exp + d.processStarted} la=${store.lastAccessOf(ref) + d.processStarted} ` +
        `cas=${store.casOf(ref)} fetch=${store.fetched(ref) ? 'yes' : 'no'} cls=${cls} size=${store.sizeOf(ref)}\n`,
    );
    return true;
  });
  return `${lines.join('')}END\r\n`;
}

/**
 * `lru_crawler mgdump` (memcached 1.6.45): an `mg` line per live key (base64 with ` b` for keys
 * stored in binary), ready to be sent back as requests; `EN` ends it.
 */
export function mgdump(d: Dumping, classes: ReadonlySet<number> | null): string {
  const lines: string[] = [];
  eachLive(d, (store, ref) => {
    if (classes !== null && !classes.has(store.memcachedClassOf(ref))) return true;
    const key = Buffer.from(store.keyOf(ref));
    lines.push((store.metaFlags(ref) & MF_KEY_BINARY) !== 0 ? `mg ${key.toString('base64')} b\r\n` : `mg ${key.toString('latin1')}\r\n`);
    return true;
  });
  return `${lines.join('')}EN\r\n`;
}

/** `stats cachedump`: up to `limit` items (0: no limit) of memshard's slab class `cls`. */
export function cachedump(d: Dumping, cls: number, limit: number): string {
  const lines: string[] = [];
  let bytes = 0;
  eachLive(d, (store, ref) => {
    if (store.classOf(ref) !== cls) return true;
    const exp = store.exptimeOf(ref);
    const line = `ITEM ${Buffer.from(store.keyOf(ref)).toString('latin1')} [${store.valueLength(ref)} b; ${exp === 0 ? 0 : exp + d.processStarted} s]\r\n`;
    if (bytes + line.length > CACHEDUMP_MAX_BYTES) return false;
    lines.push(line);
    bytes += line.length;
    return limit === 0 || lines.length < limit;
  });
  return `${lines.join('')}END\r\n`;
}
