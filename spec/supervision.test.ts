/**
 * A serving thread that dies is replaced: it loses only its own connections, the port keeps
 * accepting, and every shard keeps its data unless the dead thread held that shard's lock (then
 * that one shard is emptied). Uses the fault-injection hook (MEMSHARD_FAULT_INJECTION=1).
 */
import t from 'tap';
import { rawClient, startDaemon, type Daemon } from './helpers/daemon.js';

/** A -t 4 daemon with the fault-injection hook switched on. */
async function startWithFaults(): Promise<Daemon> {
  process.env['MEMSHARD_FAULT_INJECTION'] = '1';
  try {
    return await startDaemon(['-t', '4', '-v']);
  } finally {
    delete process.env['MEMSHARD_FAULT_INJECTION'];
  }
}

async function restartsOf(c: Awaited<ReturnType<typeof rawClient>>, want: number): Promise<string> {
  let stats = '';
  for (let i = 0; i < 50; i++) {
    c.send('stats\r\n');
    stats = await c.readUntil('END\r\n');
    if (Number(/STAT memshard_worker_restarts (\d+)/.exec(stats)?.[1]) >= want) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return stats;
}

/** A connection served by thread `thread` (connection ids are thread + threads * n). */
async function clientOn(port: number, thread: number, threads: number): Promise<Awaited<ReturnType<typeof rawClient>>> {
  for (let i = 0; i < 200; i++) {
    const c = await rawClient(port);
    c.send('stats conns\r\n');
    const rows = await c.readUntil('END\r\n');
    const own = [...rows.matchAll(/STAT (\d+):addr tcp:127\.0\.0\.1:(\d+)/g)].find((m) => Number(m[2]) === c.socket.localPort);
    if (own !== undefined && Number(own[1]) % threads === thread) return c;
    await c.close();
  }
  throw new Error(`no connection landed on thread ${thread}`);
}

t.test('a thread that dies holding no lock: every shard keeps its items', async (t) => {
  const d = await startWithFaults();
  t.teardown(() => d.stop());
  const victim = await clientOn(d.port, 2, 4);
  const c = await clientOn(d.port, 0, 4);
  const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
  c.send(keys.map((k) => `set ${k} 0 0 ${k.length}\r\n${k}\r\n`).join(''));
  await c.readUntil((b) => b.toString().split('STORED\r\n').length - 1 === keys.length);
  c.send('debug crash_thread 2\r\n');
  t.equal(await c.readUntil('\r\n'), 'OK\r\n');
  t.match(await restartsOf(c, 1), /STAT memshard_worker_restarts 1\r\n/, 'the thread was replaced');
  await victim.waitForClose(5000);
  t.pass('the dead thread\'s connection was closed');
  c.send(`get ${keys.join(' ')}\r\n`);
  const reply = await c.readUntil('END\r\n', 5000);
  t.equal(reply.split('\r\n').filter((l) => l.startsWith('VALUE ')).length, keys.length, 'no shard lost an item');
  const fresh = await rawClient(d.port);
  fresh.send('get k1\r\n');
  t.equal(await fresh.readUntil('END\r\n'), 'VALUE k1 0 2\r\nk1\r\nEND\r\n', 'the port still accepts');
  await fresh.close();
  await c.close();
});

t.test('a thread that dies holding a shard lock: only that shard is emptied', async (t) => {
  const d = await startWithFaults();
  t.teardown(() => d.stop());
  // thread 1 dies below: talk through a connection another thread serves
  const c = await clientOn(d.port, 0, 4);
  const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
  c.send(keys.map((k) => `set ${k} 0 0 ${k.length}\r\n${k}\r\n`).join(''));
  await c.readUntil((b) => b.toString().split('STORED\r\n').length - 1 === keys.length);

  c.send('debug crash_thread 1 locked\r\n');
  t.equal(await c.readUntil('\r\n'), 'OK\r\n');
  const stats = await restartsOf(c, 1);
  t.match(stats, /STAT memshard_worker_restarts 1\r\n/, 'one thread was replaced');
  t.match(stats, /STAT memshard_shard_resets 1\r\n/, 'one shard was emptied');

  c.send(`get ${keys.join(' ')}\r\n`);
  const reply = await c.readUntil('END\r\n', 5000);
  const hits = reply.split('\r\n').filter((l) => l.startsWith('VALUE ')).length;
  t.ok(hits > 100 && hits < keys.length, `the other shards kept their items (${hits} of ${keys.length} left)`);
  t.notMatch(reply, /SERVER_ERROR/, 'no error once the shard is back');
  c.send('set after 0 0 2\r\nok\r\nget after\r\n');
  t.equal(await c.readUntil('END\r\n'), 'STORED\r\nVALUE after 0 2\r\nok\r\nEND\r\n');
  t.match(d.stderr(), /shard 1: thread 1 died holding its lock, shard emptied/);
  await c.close();
});

t.test('without the environment switch the debug command does not exist', async (t) => {
  const d = await startDaemon(['-t', '2']);
  t.teardown(() => d.stop());
  const c = await rawClient(d.port);
  c.send('debug crash_thread 0\r\nget x\r\n');
  t.equal(await c.readUntil('END\r\n'), 'ERROR\r\nEND\r\n');
  await c.close();
});
