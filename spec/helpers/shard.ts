// Test helper: a small shard buffer (4 KiB pages, classes 96 192 384 768 2048, 4 pages) and the
// store's modules wired over it the way lib/store/store.ts wires them, for unit tests of one module.
import { Allocator } from '../../lib/store/allocator.js';
import { Chains } from '../../lib/store/chains.js';
import { Crawler } from '../../lib/store/crawler.js';
import { Evictor } from '../../lib/store/eviction.js';
import { HashIndex } from '../../lib/store/hash-index.js';
import { Items } from '../../lib/store/items.js';
import { C, computeLayout, S, type Layout } from '../../lib/store/layout.js';
import { Lifetime } from '../../lib/store/lifetime.js';
import { ItemLinks } from '../../lib/store/links.js';
import { Lru } from '../../lib/store/lru.js';
import { ShardMemory } from '../../lib/store/memory.js';
import { Mover } from '../../lib/store/mover.js';
import { Store, type StoreConfig } from '../../lib/store/store.js';
import type { StoreTuning } from '../../lib/store/tuning.js';

export const PROCESS_STARTED = 1_700_000_000;

export function smallConfig(over: Partial<StoreConfig> = {}): StoreConfig {
  return {
    memoryBytes: 16 * 1024, pageSize: 4096, itemSizeMax: 16 * 1024, growthFactor: 2, minChunk: 48,
    shardIndex: 0, shardCount: 1, ...over,
  };
}

export interface Shard {
  sab: SharedArrayBuffer;
  layout: Layout;
  m: ShardMemory;
  items: Items;
  lifetime: Lifetime;
  index: HashIndex;
  lru: Lru;
  allocator: Allocator;
  chains: Chains;
  links: ItemLinks;
  mover: Mover;
  evictor: Evictor;
  crawler: Crawler;
}

/**
 * A formatted buffer (a Store initialises its header, class table and tuning, then is dropped)
 * and fresh modules over it; m.now starts at 10.
 */
export function smallShard(over: Partial<StoreConfig> = {}, tuning: Partial<StoreTuning> = {}): Shard {
  const cfg = smallConfig(over);
  const layout = computeLayout(cfg);
  const sab = new SharedArrayBuffer(layout.byteLength);
  new Store(sab, cfg, { now: () => 10, processStarted: PROCESS_STARTED }).tune(tuning);
  const m = new ShardMemory(sab, layout);
  m.now = 10;
  const items = new Items(m);
  const lifetime = new Lifetime(m, PROCESS_STARTED, cfg.shardIndex, cfg.shardCount);
  const index = new HashIndex(m);
  const lru = new Lru(m);
  const allocator = new Allocator(m);
  const chains = new Chains(m, items, allocator);
  const links = new ItemLinks(m, items, index, lru, chains, allocator, lifetime);
  const mover = new Mover(m, items, allocator, lru, chains, links, lifetime);
  const evictor = new Evictor(m, items, allocator, lru, links, lifetime, mover);
  const crawler = new Crawler(m, items, index, links, lifetime);
  return { sab, layout, m, items, lifetime, index, lru, allocator, chains, links, mover, evictor, crawler };
}

export const key = (s: string): Buffer => Buffer.from(s, 'latin1');

/**
 * Writes and links a one-chunk item with `value` under `k` (class by size), using a chunk the
 * allocator hands out without evicting; returns its ref (0 if none was free).
 */
export function putItem(s: Shard, k: string, value = 'v', exp = 0): number {
  const kb = key(k);
  const cls = s.allocator.classFor(48 + kb.length + value.length);
  const ref = s.allocator.take(cls);
  if (ref === 0) return 0;
  const at = s.items.writeHeader(ref, cls, kb, 0, exp, value.length, s.lifetime.nextCas());
  s.m.u8.set(key(value), at);
  s.links.link(ref, s.index.hash(kb), cls);
  return ref;
}

/** A small shard whose 4 pages hold 8 items of the largest class (class 5, 2 a page), k0 the oldest. */
export function fullShard(tuning: Partial<StoreTuning> = {}) {
  const s = smallShard({}, tuning);
  const refs: number[] = [];
  for (let i = 0; i < 8; i++) {
    refs.push(putItem(s, `k${i}`, 'x'.repeat(1900)));
    s.m.now++;
  }
  const find = (k: string): number => s.index.find(key(k), s.index.hash(key(k)));
  const counter = (name: keyof typeof C): number => s.m.f64[s.m.counters + C[name]]!;
  const stat = (cls: number, name: keyof typeof S): number => s.m.f64[s.m.classStats(cls) + S[name]]!;
  return { ...s, refs, find, counter, stat };
}
