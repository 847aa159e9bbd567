/**
 * Shard locks, one Int32 per shard in one SharedArrayBuffer: 0 = free, otherwise the holder's
 * thread number + 1, with WAITERS set once a thread sleeps on it. Holders keep a lock for one
 * command (microseconds), so a waiter spins a little, then sleeps until the holder's unlock wakes
 * it (a futex mutex: unlock only makes the wake call when someone sleeps). The holder is recorded
 * so that the supervisor can tell, when a thread dies, which shard it may have left half-changed
 * (see Server.forget).
 */
const SPINS_BEFORE_SLEEP = 64;
/** Someone sleeps on the lock: its unlock must wake one. */
const WAITERS = 1 << 30;
/** A sleeper re-checks this often anyway (ms), as a safety net only: unlock wakes it. */
const SLEEP_MS = 50;

export function newShardLocks(shards: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4 * shards));
}

/** Take shard `shard`'s lock for thread `thread` (worker threads only: it may Atomics.wait). */
export function lock(locks: Int32Array, shard: number, thread: number): void {
  const mine = thread + 1;
  for (let spins = 0; spins < SPINS_BEFORE_SLEEP; spins++) {
    if (Atomics.compareExchange(locks, shard, 0, mine) === 0) return;
  }
  for (;;) {
    const held = Atomics.load(locks, shard);
    if (held === 0) {
      // taken as contended: other sleepers may still be there, and the unlock must wake them
      if (Atomics.compareExchange(locks, shard, 0, mine | WAITERS) === 0) return;
      continue;
    }
    if ((held & WAITERS) === 0 && Atomics.compareExchange(locks, shard, held, held | WAITERS) !== held) continue;
    Atomics.wait(locks, shard, held | WAITERS, SLEEP_MS);
  }
}

export function unlock(locks: Int32Array, shard: number): void {
  if ((Atomics.exchange(locks, shard, 0) & WAITERS) !== 0) Atomics.notify(locks, shard, 1);
}

/**
 * Take the lock of a dead holder `thread`, for the supervisor to repair the shard; false when
 * that thread does not hold it (any more). Never waits: the supervisor is the main thread.
 */
export function takeOver(locks: Int32Array, shard: number, thread: number, by: number): boolean {
  const held = Atomics.load(locks, shard);
  if ((held & ~WAITERS) !== thread + 1) return false;
  return Atomics.compareExchange(locks, shard, held, (by + 1) | (held & WAITERS)) === held;
}
