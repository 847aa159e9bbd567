/**
 * A shard's lock, one Int32 in shared memory: the worker holds it while it runs a batch or a
 * crawl, the front end while it serves a get straight from the shard's memory. Holders keep it
 * for microseconds, so the worker spins and the front end never waits (it queues the get instead).
 */
export function newShardLock(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4));
}

export function tryLock(lock: Int32Array): boolean {
  return Atomics.compareExchange(lock, 0, 0, 1) === 0;
}

export function lock(lock: Int32Array): void {
  while (Atomics.compareExchange(lock, 0, 0, 1) !== 0) {
    // spin: the front end holds the lock for one lookup only
  }
}

export function unlock(lock: Int32Array): void {
  Atomics.store(lock, 0, 0);
}
