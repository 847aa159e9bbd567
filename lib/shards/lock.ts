/**
 * Shard locks, one Int32 per shard in one SharedArrayBuffer: 0 = free, otherwise the holder's
 * thread number + 1. Holders keep a lock for one command (microseconds), so a waiter spins a
 * little and then sleeps in short slices. The holder is recorded so that the supervisor can tell,
 * when a thread dies, which shard it may have left half-changed (see Supervisor.onThreadExit).
 */
const SPINS_BEFORE_SLEEP = 256;
/** A sleeping waiter re-checks at least this often (ms): unlock does not notify, to stay cheap. */
const SLEEP_MS = 0.05;

export function newShardLocks(shards: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4 * shards));
}

/** Take shard `shard`'s lock for thread `thread` (worker threads only: it may Atomics.wait). */
export function lock(locks: Int32Array, shard: number, thread: number): void {
  const mine = thread + 1;
  for (let spins = 0; ; spins++) {
    const held = Atomics.compareExchange(locks, shard, 0, mine);
    if (held === 0) return;
    if (spins >= SPINS_BEFORE_SLEEP) Atomics.wait(locks, shard, held, SLEEP_MS);
  }
}

export function unlock(locks: Int32Array, shard: number): void {
  Atomics.store(locks, shard, 0);
}

/**
 * Take the lock of a dead holder `thread`, for the supervisor to repair the shard; false when
 * that thread does not hold it (any more). Never waits: the supervisor is the main thread.
 */
export function takeOver(locks: Int32Array, shard: number, thread: number, by: number): boolean {
  return Atomics.compareExchange(locks, shard, thread + 1, by + 1) === thread + 1;
}
