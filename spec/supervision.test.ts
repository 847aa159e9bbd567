/**
 * A shard worker that dies is replaced: its shard restarts empty, the others keep their data
 * and keep serving. Uses the fault-injection hook (MEMSHARD_FAULT_INJECTION=1).
 */
import t from 'tap';
import { rawClient, startDaemon } from './helpers/daemon.js';

t.test('a crashed shard worker is replaced and the server keeps serving', async (t) => {
  process.env['MEMSHARD_FAULT_INJECTION'] = '1';
  const d = await startDaemon(['-t', '4', '-v']);
  delete process.env['MEMSHARD_FAULT_INJECTION'];
  t.teardown(() => d.stop());
  const c = await rawClient(d.port);
  const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
  c.send(keys.map((k) => `set ${k} 0 0 ${k.length}\r\n${k}\r\n`).join(''));
  await c.readUntil((b) => b.toString().split('STORED\r\n').length - 1 === keys.length);

  c.send('debug crash_shard 1\r\n');
  t.equal(await c.readUntil('\r\n'), 'OK\r\n');
  // wait until the replacement worker serves again
  let restarts = 0;
  for (let i = 0; i < 50 && restarts === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    c.send('stats\r\n');
    restarts = Number(/STAT memshard_worker_restarts (\d+)/.exec(await c.readUntil('END\r\n'))?.[1]);
  }
  t.equal(restarts, 1, 'one worker was replaced');

  c.send(`get ${keys.join(' ')}\r\n`);
  const reply = await c.readUntil('END\r\n', 5000);
  const hits = reply.split('\r\n').filter((l) => l.startsWith('VALUE ')).length;
  t.ok(hits > 100 && hits < keys.length, `the other shards kept their items (${hits} of ${keys.length} left)`);
  t.notMatch(reply, /SERVER_ERROR/, 'no error once the shard is back');
  c.send('set after 0 0 2\r\nok\r\nget after\r\n');
  t.equal(await c.readUntil('END\r\n'), 'STORED\r\nVALUE after 0 2\r\nok\r\nEND\r\n');
  t.match(d.stderr(), /shard 1: worker exited, restarting it with an empty shard/);
  await c.close();
});

t.test('without the environment switch the debug command does not exist', async (t) => {
  const d = await startDaemon(['-t', '2']);
  t.teardown(() => d.stop());
  const c = await rawClient(d.port);
  c.send('debug crash_shard 0\r\nget x\r\n');
  t.equal(await c.readUntil('END\r\n'), 'ERROR\r\nEND\r\n');
  await c.close();
});
