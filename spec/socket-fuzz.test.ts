/**
 * The socket fuzzer (scripts/fuzz.ts) in a CI-sized slice: mutated text, meta and binary frames
 * over many connections, while a canary connection reads values stored before the run. No value
 * may change, the server must stay up and in sync. `npm run fuzz -- --frames 1000000` runs long.
 */
import t from 'tap';
import { Canary, fuzzWithCanary } from '../scripts/fuzz.js';
import { rawClient, startDaemon } from './helpers/daemon.js';

const FRAMES_PER_PROTOCOL = 60_000;

t.test('mutated frames of every protocol never change stored values', async (t) => {
  const d = await startDaemon(['-t', '4', '-m', '64']);
  t.teardown(() => d.stop());
  const result = await fuzzWithCanary(
    d.port,
    [
      { protocol: 'text', frames: FRAMES_PER_PROTOCOL, seed: 11 },
      { protocol: 'meta', frames: FRAMES_PER_PROTOCOL, seed: 12 },
      { protocol: 'binary', frames: FRAMES_PER_PROTOCOL, seed: 13 },
    ],
    20,
  );
  t.same(result.wrong, [], `no canary value changed (read ${result.checks} times during the run)`);
  t.ok(result.checks > 3, 'the canary was read while the fuzzer ran');
  const admin = await rawClient(d.port);
  admin.send('stats\r\n');
  const stats = await admin.readUntil('END\r\n');
  const stat = (name: string) => Number(new RegExp(`STAT ${name} (\\d+)\\r\\n`).exec(stats)?.[1]);
  // a mutation can make a flush (the generators never do), and the fuzzer's sets can evict
  if (stat('cmd_flush') === 0 && stat('evictions') === 0) t.equal(result.missing, 0, 'no canary value went missing');
  else t.comment(`canary misses allowed: ${stat('cmd_flush')} flushes, ${stat('evictions')} evictions; ${result.missing} missing`);
  t.ok(stat('total_connections') > 100, `the fuzzer connected ${stat('total_connections')} times`);
  t.ok(stat('cmd_get') + stat('cmd_set') > 10_000, 'the server took the fuzzer\'s valid commands');
  admin.send('version\r\n');
  t.match(await admin.readUntil('\r\n'), /^VERSION /, 'a connection is still in sync');
  t.equal(d.exitStatus(), null, 'the server is still running');
  await admin.close();
});

t.test('the canary notices a changed and a missing value', async (t) => {
  const d = await startDaemon(['-t', '2']);
  t.teardown(() => d.stop());
  const canary = await Canary.plant(d.port, 10);
  t.same(await canary.check(), { wrong: [], missing: 0 });
  const other = await rawClient(d.port);
  other.send('set canary:3 7 0 1\r\nx\r\ndelete canary:5\r\n');
  t.equal(await other.readUntil('DELETED\r\n'), 'STORED\r\nDELETED\r\n');
  const after = await canary.check();
  t.same(after.wrong, ['canary:3: flags 7, 1 bytes']);
  t.equal(after.missing, 1);
  canary.close();
  await other.close();
});
