/**
 * A serving thread's way into every shard: a Store view over each shard's SharedArrayBuffer and
 * an executor per shard, each used only under that shard's lock. This is where "a command runs
 * on the thread that read it, on whichever shard its key hashes to" happens; nothing else runs
 * commands. The lock makes each command atomic on its shard; a connection's commands run in the
 * order they arrive because they run synchronously, one after the other.
 */
import type { Clock, StoreConfig, StoreObserver } from '../store/store.js';
import { Store } from '../store/store.js';
import type { KeyCommand } from '../protocol/command.js';
import { CommandExecutor } from './execute.js';
import { lock, unlock } from './lock.js';

export interface ShardMemory {
  sab: SharedArrayBuffer;
  config: StoreConfig;
}

export class ShardAccess {
  private readonly stores: Store[];
  private readonly executors: CommandExecutor[];

  constructor(
    shards: readonly ShardMemory[],
    private readonly locks: Int32Array,
    /** This thread's number, recorded in the locks it holds. */
    private readonly thread: number,
    clock: Clock,
  ) {
    // attach: the supervisor initialised every shard before any thread started
    this.stores = shards.map((s) => new Store(s.sab, s.config, clock, true));
    this.executors = this.stores.map((s) => new CommandExecutor(s));
  }

  /** Give each of this thread's stores an observer (`watch`). */
  observe(make: (store: Store) => StoreObserver): void {
    for (const store of this.stores) store.observer = make(store);
  }

  get count(): number {
    return this.stores.length;
  }

  /** Run one command on `shard`; its reply bytes (empty for noreply). */
  run(shard: number, cmd: KeyCommand): Buffer {
    lock(this.locks, shard, this.thread);
    try {
      return this.executors[shard]!.runOne(cmd);
    } finally {
      unlock(this.locks, shard);
    }
  }

  /** Run `fn` on one shard's store under its lock (crawler, flush, stats reset). */
  with<T>(shard: number, fn: (store: Store) => T): T {
    lock(this.locks, shard, this.thread);
    try {
      return fn(this.stores[shard]!);
    } finally {
      unlock(this.locks, shard);
    }
  }

  /** flush_all on every shard, one after the other (memcached's flush is not atomic across threads either). */
  flushAll(delay: number): void {
    for (let s = 0; s < this.stores.length; s++) this.with(s, (store) => store.flushAll(delay));
  }

  resetStats(): void {
    for (let s = 0; s < this.stores.length; s++) this.with(s, (store) => store.resetStats());
  }
}
