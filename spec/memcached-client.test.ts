/**
 * The `memcached` npm client (text protocol, ketama) used unchanged against memshard.
 */
import Memcached from 'memcached';
import t from 'tap';
import { startDaemon, type Daemon } from './helpers/daemon.js';

let daemon: Daemon;
let client: Memcached;

t.before(async () => {
  daemon = await startDaemon(['-t', '4']);
  client = new Memcached(`127.0.0.1:${daemon.port}`, { retries: 0, timeout: 2000, idle: 1000 });
});
t.teardown(async () => {
  client?.end();
  await daemon?.stop();
});

/** Promise wrapper for the client's callback API. */
function call<T>(fn: (cb: (err: unknown, result: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, result) => (err ? reject(err) : resolve(result))));
}

t.test('set, get, getMulti, replace, add, append, prepend, del', async (t) => {
  t.equal(await call<boolean>((cb) => client.set('npm:a', 'alpha', 0, cb)), true);
  t.equal(await call<unknown>((cb) => client.get('npm:a', cb)), 'alpha');
  t.same(await call<Record<string, unknown>>((cb) => client.set('npm:b', { n: 1 }, 0, () => client.getMulti(['npm:a', 'npm:b', 'npm:zz'], cb))), {
    'npm:a': 'alpha',
    'npm:b': { n: 1 },
  });
  t.equal(await call<boolean>((cb) => client.replace('npm:a', 'beta', 0, cb)), true);
  await t.rejects(call((cb) => client.add('npm:a', 'gamma', 0, cb)), 'add of an existing key fails');
  t.equal(await call<boolean>((cb) => client.append('npm:a', '>', cb)), true);
  t.equal(await call<boolean>((cb) => client.prepend('npm:a', '<', cb)), true);
  t.equal(await call<unknown>((cb) => client.get('npm:a', cb)), '<beta>');
  t.equal(await call<boolean>((cb) => client.del('npm:a', cb)), true);
  t.equal(await call<unknown>((cb) => client.get('npm:a', cb)), undefined);
});

t.test('gets and cas', async (t) => {
  await call((cb) => client.set('npm:c', 'one', 0, cb));
  const got = await call<{ [key: string]: unknown; cas: string }>((cb) => client.gets('npm:c', cb));
  t.equal(got['npm:c'], 'one');
  t.match(got.cas, /^\d+$/);
  t.equal(await call<boolean>((cb) => client.cas('npm:c', 'two', got.cas, 0, cb)), true);
  t.equal(await call<boolean>((cb) => client.cas('npm:c', 'three', got.cas, 0, cb)), false, 'stale CAS is refused');
  t.equal(await call<unknown>((cb) => client.get('npm:c', cb)), 'two');
});

t.test('incr, decr, touch, large values, flush', async (t) => {
  await call((cb) => client.set('npm:n', 10, 0, cb));
  t.equal(await call<number | boolean>((cb) => client.incr('npm:n', 5, cb)), 15);
  t.equal(await call<number | boolean>((cb) => client.decr('npm:n', 20, cb)), 0);
  t.equal(await call<number | boolean>((cb) => client.incr('npm:missing', 1, cb)), false);
  await t.resolves(call((cb) => client.touch('npm:n', 100, (err) => cb(err, undefined))), 'touch succeeds');
  const big = 'x'.repeat(900 * 1024);
  t.equal(await call<boolean>((cb) => client.set('npm:big', big, 0, cb)), true);
  t.equal(await call<unknown>((cb) => client.get('npm:big', cb)), big);
  t.same(await call<boolean[]>((cb) => client.flush(cb)), [true]);
  t.equal(await call<unknown>((cb) => client.get('npm:n', cb)), undefined);
});

t.test('version and stats parse', async (t) => {
  const versions = await call<Array<{ version: string }>>((cb) => client.version(cb));
  t.match(versions[0]!.version, /^1\.6\.\d+$/);
  const stats = await call<Array<Record<string, unknown>>>((cb) => client.stats(cb));
  t.ok(Number(stats[0]!['cmd_get']) > 0, 'cmd_get counted');
});
