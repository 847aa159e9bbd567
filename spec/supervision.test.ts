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

t.test('a thread killed mid-traffic: only its own connections notice, no value changes', async (t) => {
  const d = await startWithFaults();
  t.teardown(() => d.stop());
  const admin = await clientOn(d.port, 0, 4);
  const keys = Array.from({ length: 400 }, (_, i) => `v${i}`);
  const valueOf = (k: string) => `${k}-value`;
  admin.send(keys.map((k) => `set ${k} 0 0 ${valueOf(k).length}\r\n${valueOf(k)}\r\n`).join(''));
  await admin.readUntil((b) => b.toString().split('STORED\r\n').length - 1 === keys.length);

  const VICTIM = 2;
  const load = await Promise.all(Array.from({ length: 14 }, () => rawClient(d.port)));
  // whatever the kernel's spread: load on the victim and on another serving thread
  load.push(await clientOn(d.port, VICTIM, 4), await clientOn(d.port, 1, 4));
  admin.send('stats conns\r\n');
  const rows = await admin.readUntil('END\r\n');
  const threadOf = new Map([...rows.matchAll(/STAT (\d+):addr tcp:127\.0\.0\.1:(\d+)/g)].map((m) => [Number(m[2]), Number(m[1]) % 4]));
  let stop = false;
  const outcomes = await Promise.all([
    ...load.map(async (c, n) => {
      const outcome = { thread: threadOf.get(c.socket.localPort!), requests: 0, wrong: 0, closed: false };
      for (let i = 0; !stop; i++) {
        const k = keys[(n * 31 + i * 7) % keys.length]!;
        try {
          c.send(`get ${k}\r\n`);
          const reply = await c.readUntil('END\r\n', 5000);
          if (reply !== `VALUE ${k} 0 ${valueOf(k).length}\r\n${valueOf(k)}\r\nEND\r\n`) outcome.wrong++;
          outcome.requests++;
        } catch {
          outcome.closed = true;
          break;
        }
      }
      return outcome;
    }),
    (async () => {
      await new Promise((r) => setTimeout(r, 300));
      admin.send(`debug crash_thread ${VICTIM}\r\n`);
      t.equal(await admin.readUntil('\r\n'), 'OK\r\n');
      await restartsOf(admin, 1);
      await new Promise((r) => setTimeout(r, 300));
      stop = true;
      return null;
    })(),
  ]);
  const clients = outcomes.filter((o) => o !== null);
  t.ok(clients.some((o) => o.thread === VICTIM) && clients.some((o) => o.thread !== VICTIM), 'load on the victim and on other threads');
  for (const o of clients) {
    t.equal(o.wrong, 0, `thread ${o.thread}: no wrong value in ${o.requests} gets`);
    t.equal(o.closed, o.thread === VICTIM, `thread ${o.thread}: ${o.thread === VICTIM ? 'closed with its thread' : 'never interrupted'}`);
  }
  admin.send(`get ${keys.join(' ')}\r\n`);
  const all = await admin.readUntil('END\r\n', 5000);
  t.equal(all.split('\r\n').filter((l) => l.startsWith('VALUE ')).length, keys.length, 'every value is still there');
  await Promise.all([admin, ...load].map((c) => c.close()));
});

t.test('without the environment switch the debug command does not exist', async (t) => {
  const d = await startDaemon(['-t', '2']);
  t.teardown(() => d.stop());
  const c = await rawClient(d.port);
  c.send('debug crash_thread 0\r\nget x\r\n');
  t.equal(await c.readUntil('END\r\n'), 'ERROR\r\nEND\r\n');
  await c.close();
});
