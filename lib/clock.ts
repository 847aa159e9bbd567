import type { Clock } from './store/store.js';

/** Unix seconds at server time 0; memcached starts its clock 2 s in the past, so do we. */
export function processStartedNow(): number {
  return Math.floor(Date.now() / 1000) - 2;
}

/** How often the clock is read from the system: often enough to keep TTLs within 0.1 s. */
const TICK_MS = 100;
let nowSeconds = Math.floor(Date.now() / 1000);
let ticking = false;

/**
 * The server clock: whole seconds since the server started, the same in every thread. Like
 * memcached's, it is a variable a timer refreshes, so a command does not pay for a system call.
 */
export function serverClock(processStarted: number): Clock {
  if (!ticking) {
    ticking = true;
    setInterval(() => {
      nowSeconds = Math.floor(Date.now() / 1000);
    }, TICK_MS).unref();
  }
  return { processStarted, now: () => nowSeconds - processStarted };
}
