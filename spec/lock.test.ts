/**
 * The shard lock (lib/shards/lock.ts): mutual exclusion between worker threads (a plain,
 * non-atomic read-modify-write under the lock adds up exactly), and the supervisor's takeover of
 * a dead holder's lock, with and without sleepers on it.
 */
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { lock, newShardLocks, takeOver, unlock } from '../lib/shards/lock.js';

const LOCK_URL = new URL('../lib/shards/lock.js', import.meta.url).href;

/** Each worker adds 1 to counter[0], `rounds` times, under shard 0's lock, reading and writing in two steps. */
const WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
import(workerData.lockUrl).then(({ lock, unlock }) => {
  const { locks, counter, thread, rounds } = workerData;
  for (let i = 0; i < rounds; i++) {
    lock(locks, 0, thread);
    const seen = counter[0];
    for (let spin = 0; spin < 20; spin++) counter[1] ^= spin; // widen the window between read and write
    counter[0] = seen + 1;
    unlock(locks, 0);
  }
  parentPort.postMessage('done');
});
`;

t.test('threads contending for one lock never overlap', async (t) => {
  const locks = newShardLocks(1);
  const counter = new Int32Array(new SharedArrayBuffer(8));
  const threads = 4;
  const rounds = 20_000;
  await Promise.all(
    Array.from({ length: threads }, (_, thread) => {
      const w = new Worker(WORKER, { eval: true, workerData: { locks, counter, thread, rounds, lockUrl: LOCK_URL } });
      return new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      }).finally(() => w.terminate());
    }),
  );
  t.equal(counter[0], threads * rounds, 'every increment counted once');
  t.equal(Atomics.load(locks, 0), 0, 'the lock is free at the end');
});

t.test("the supervisor takes over a dead holder's lock, sleepers or not", async (t) => {
  const locks = newShardLocks(2);
  lock(locks, 0, 2);
  t.notOk(takeOver(locks, 0, 1, 9), 'not when another thread holds it');
  t.ok(takeOver(locks, 0, 2, 9), 'the holder it names');
  unlock(locks, 0);
  t.equal(Atomics.load(locks, 0), 0);
  t.notOk(takeOver(locks, 1, 2, 9), 'not a free lock');
  // a holder with a sleeper recorded: the takeover keeps the mark, so its unlock wakes the sleeper
  Atomics.store(locks, 1, 3 | (1 << 30));
  t.ok(takeOver(locks, 1, 2, 9));
  t.equal(Atomics.load(locks, 1), 10 | (1 << 30));
  unlock(locks, 1);
  t.equal(Atomics.load(locks, 1), 0);
});
