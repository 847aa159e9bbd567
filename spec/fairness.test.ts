/**
 * One connection cannot hold a thread: after -R requests it gives way (memcached's conn_yields),
 * and a connection that sends nothing for -o idle_timeout seconds is closed (idle_kicks).
 */
import net from 'node:net';
import t from 'tap';
import { rawClient, startDaemon } from './helpers/daemon.js';

const stat = (stats: string, name: string) => Number(new RegExp(`STAT ${name} (\\d+)\\r\\n`).exec(stats)?.[1]);

t.test('-R: a greedy pipelining client gives way to another on the same thread', async (t) => {
  const d = await startDaemon(['-t', '1', '-R', '20']);
  t.teardown(() => d.stop());
  const victim = await rawClient(d.port);
  victim.send('set k 0 0 1\r\nv\r\n');
  t.equal(await victim.readUntil('\r\n'), 'STORED\r\n');
  const requests = 200_000;
  const reply = 'VALUE k 0 1\r\nv\r\nEND\r\n';
  const greedy = net.connect({ port: d.port, host: '127.0.0.1' });
  await new Promise((r) => greedy.once('connect', r));
  let received = 0;
  let greedyDoneAt = 0;
  const greedyDone = new Promise<void>((resolve) => {
    greedy.on('data', (b: Buffer) => {
      received += b.length;
      if (received >= requests * reply.length) {
        greedyDoneAt = performance.now();
        resolve();
      }
    });
  });
  greedy.write('get k\r\n'.repeat(requests));
  // as soon as the server has started on the greedy client's burst
  while (received === 0) await new Promise((r) => setImmediate(r));
  victim.send('version\r\n');
  t.match(await victim.readUntil('\r\n', 10_000), /^VERSION /);
  const victimAnsweredAt = performance.now();
  await greedyDone;
  t.equal(received, requests * reply.length, 'every greedy reply arrived');
  t.ok(victimAnsweredAt < greedyDoneAt, 'the other client was answered before the burst was through');
  victim.send('stats\r\nstats settings\r\n');
  const stats = (await victim.readUntil((b) => b.toString().split("END\r\n").length === 3)).toString();
  t.ok(stat(stats, 'conn_yields') >= requests / 20 - 1, `conn_yields ${stat(stats, 'conn_yields')}`);
  t.match(stats, /STAT reqs_per_event 20\r\n/);
  greedy.destroy();
  await victim.close();
});

t.test('-o idle_timeout: an idle connection is closed, a busy one is not', async (t) => {
  const d = await startDaemon(['-t', '2', '-o', 'idle_timeout=1']);
  t.teardown(() => d.stop());
  const idle = await rawClient(d.port);
  const busy = await rawClient(d.port);
  const started = Date.now();
  const talking = (async () => {
    while (Date.now() - started < 3500) {
      busy.send('version\r\n');
      await busy.readUntil('\r\n');
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  await idle.waitForClose(5000);
  t.pass('the idle connection was closed');
  await talking;
  busy.send('stats\r\nstats settings\r\n');
  const stats = (await busy.readUntil((b) => b.toString().split("END\r\n").length === 3)).toString();
  t.equal(stat(stats, 'idle_kicks'), 1, 'idle_kicks');
  t.match(stats, /STAT idle_timeout 1\r\n/);
  await busy.close();
});

t.test('-R, -b and idle_timeout are checked', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const { cliPath } = await import('./helpers/daemon.js');
  for (const [args, message] of [
    [['-R', '0'], /-R\/--max-reqs-per-event/],
    [['-b', 'x'], /-b\/--listen-backlog/],
    [['-o', 'idle_timeout=soon'], /-o idle_timeout/],
  ] as const) {
    const r = spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', timeout: 10_000 });
    t.equal(r.status, 64, `${args.join(' ')}: EX_USAGE`);
    t.match(r.stderr, message);
  }
  const d = await startDaemon(['-b', '77']);
  t.teardown(() => d.stop());
  const c = await rawClient(d.port);
  c.send('stats settings\r\n');
  t.match(await c.readUntil('END\r\n'), /STAT tcp_backlog 77\r\n/);
  await c.close();
});

t.test('-o read_buf_mem_limit: a server-wide cap on the replies all connections hold unsent', async (t) => {
  const d = await startDaemon(['-t', '2', '-o', 'read_buf_mem_limit=8']);
  t.teardown(() => d.stop());
  const size = 512 * 1024;
  const admin = await rawClient(d.port);
  admin.send(Buffer.concat([Buffer.from(`set big 0 0 ${size}\r\n`), Buffer.alloc(size, 0x62), Buffer.from('\r\n')]));
  t.equal(await admin.readUntil('\r\n'), 'STORED\r\n');
  const readers = 6;
  const gets = 100;
  const slow = await Promise.all(
    Array.from({ length: readers }, async () => {
      const s = net.connect({ port: d.port, host: '127.0.0.1' });
      await new Promise((r) => s.once('connect', r));
      s.pause();
      s.write(`get${' big'.repeat(gets)}\r\n`);
      return s;
    }),
  );
  await new Promise((r) => setTimeout(r, 1000));
  admin.send('stats\r\n');
  const stats = await admin.readUntil('END\r\n');
  const held = stat(stats, 'response_obj_bytes');
  // the cap, plus what each connection may still hold under it: 64 KB and the value in hand
  t.ok(held <= 8 * 1024 * 1024 + readers * (64 * 1024 + size + 1024), `${Math.round(held / 1024)} KB held for ${readers} clients that do not read`);
  t.ok(stat(stats, 'response_obj_oom') > 0, 'connections waited for the budget');
  const expected = gets * (size + 22) + 5;
  const received = await Promise.all(
    slow.map(
      (s) =>
        new Promise<number>((resolve) => {
          let n = 0;
          s.on('data', (b: Buffer) => {
            n += b.length;
            if (n >= expected) resolve(n);
          });
          s.resume();
        }),
    ),
  );
  t.same(received, slow.map(() => expected), 'every client gets its whole reply once it reads');
  for (const s of slow) s.destroy();
  await new Promise((r) => setTimeout(r, 200));
  admin.send('stats\r\n');
  t.equal(stat(await admin.readUntil('END\r\n'), 'response_obj_bytes'), 0, 'nothing counted once the replies are out');
  await admin.close();
});
