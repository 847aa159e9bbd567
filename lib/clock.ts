import type { Clock } from './store/store.js';

/** Unix seconds at server time 0; memcached starts its clock 2 s in the past, so do we. */
export function processStartedNow(): number {
  return Math.floor(Date.now() / 1000) - 2;
}

/** How often the clock is read from the system: often enough to keep TTLs within 0.1 s. */
const TICK_MS = 100;
/** Unix seconds, in shared memory: the thread that ticks writes it, every thread reads the same. */
let unixSeconds: Int32Array | null = null;

/** Start ticking in this thread (the main thread); returns the cell to hand to other threads. */
export function tickingClockCell(): Int32Array {
  if (unixSeconds === null) {
    const cell = new Int32Array(new SharedArrayBuffer(4));
    cell[0] = Math.floor(Date.now() / 1000);
    setInterval(() => Atomics.store(cell, 0, Math.floor(Date.now() / 1000)), TICK_MS).unref();
    unixSeconds = cell;
  }
  return unixSeconds;
}

/** In a thread that does not tick: read the ticking thread's cell. */
export function useClockCell(cell: Int32Array): void {
  unixSeconds = cell;
}

/**
 * The server clock: whole seconds since the server started, the same in every thread (one
 * shared cell). Like memcached's, it is a variable a timer refreshes, so a command does not pay
 * for a system call.
 */
export function serverClock(processStarted: number): Clock {
  const cell = unixSeconds ?? tickingClockCell();
  return { processStarted, now: () => Atomics.load(cell, 0) - processStarted };
}
