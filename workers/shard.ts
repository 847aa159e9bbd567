/**
 * Shard worker: hosts one Store over the shard's SharedArrayBuffer and answers packed batches on
 * the MessagePort handed over by the first (and only) piscina task. Runs an expiry crawler.
 */
import type { ShardInit } from '../lib/shards/shard-set.js';
import { CommandExecutor } from '../lib/shards/execute.js';
import { GarbageBound } from '../lib/gc.js';
import { lock, unlock } from '../lib/shards/lock.js';
import { serverClock } from '../lib/clock.js';
import { Store } from '../lib/store/store.js';

/** Items the background crawler inspects per tick; a tick every 100 ms keeps it off the hot path. */
const CRAWL_PER_TICK = 2000;
const CRAWL_INTERVAL_MS = 100;

export default function startShard(init: ShardInit): string {
  const store = new Store(init.sab, init.store, serverClock(init.processStarted));
  const executor = new CommandExecutor(store);
  /** The front end reads the store between batches (see Shard.tryDirect): hold the lock while using it. */
  const locked = <T>(fn: () => T): T => {
    lock(init.lock);
    try {
      return fn();
    } finally {
      unlock(init.lock);
    }
  };
  const garbage = new GarbageBound();
  init.port.on('message', (batch: ArrayBuffer) => {
    garbage.allocated(batch.byteLength);
    const reply = locked(() => executor.run(batch));
    init.port.postMessage(reply, [reply]);
  });
  setInterval(() => locked(() => store.crawl(CRAWL_PER_TICK)), CRAWL_INTERVAL_MS);
  return 'ready';
}
