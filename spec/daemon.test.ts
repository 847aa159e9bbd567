/**
 * The daemon as an operator sees it: CLI flags, connection limit, slow clients, stats, shutdown.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import t from 'tap';
import { reusePortAvailable } from '../lib/threads/listen-socket.js';
import { cliPath, rawClient, startDaemon, startMemcached } from './helpers/daemon.js';

function cli(args: string[]) {
  return spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', timeout: 10_000 });
}

t.test('CLI: --help, -V, and one clear line for a bad value', async (t) => {
  const help = cli(['--help']);
  t.equal(help.status, 0);
  for (const flag of ['--port', '--listen', '--memory-limit', '--conn-limit', '--threads', '--max-item-size', '-f', '-n', '-v', '-A', '-U', '-o']) {
    t.match(help.stdout, flag, `--help documents ${flag}`);
  }
  const version = cli(['-V']);
  t.equal(version.status, 0);
  t.match(version.stdout, /^memshard \d+\.\d+\.\d+ \(memcached 1\.6\.\d+ compatible\)\n$/);
  const bad: Array<[string[], RegExp]> = [
    [['-p', 'abc'], /-p\/--port/],
    [['-m', '0'], /-m\/--memory-limit/],
    [['-t', '0'], /-t\/--threads/],
    [['-I', '2x'], /-I\/--max-item-size/],
    [['-I', '64m'], /-I\/--max-item-size/],
    [['-f', '1'], /-f\/--slab-growth-factor/],
    [['-U', '70000'], /-U\/--udp-port/],
    [['-o', 'bogus=1'], /-o: illegal suboption 'bogus'/],
    [['--bogus-flag'], /bogus-flag/],
    [['-m', '1', '-t', '4'], /-m\/--memory-limit/],
    [['-m', '40000', '-t', '1'], /^memshard: -m\/--memory-limit: 40000 MB gives each of the 1 shards more than one shard can hold/],
  ];
  for (const [args, message] of bad) {
    const r = cli(args);
    t.equal(r.status, 64, `${args.join(' ')} exits with EX_USAGE`);
    t.match(r.stderr, message, args.join(' '));
    t.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line`);
  }
});

t.test('a shard of over 1 GB starts and serves (its cache_memlimit headroom shrinks to what a typed array can view)', async (t) => {
  const d = await startDaemon(['-t', '1', '-m', '1100']);
  t.teardown(() => d.stop());
  const c = await rawClient(d.port);
  c.send('set big 0 0 3\r\nabc\r\nget big\r\nstats settings\r\n');
  t.equal(await c.readUntil('END\r\n'), 'STORED\r\nVALUE big 0 3\r\nabc\r\nEND\r\n');
  t.match(await c.readUntil('END\r\n'), /STAT maxbytes 1153433600\r\n/);
  await c.close();
});

t.test('reusePort is used where Node has it: 22.12+, 23.1+', async (t) => {
  const linux = process.platform === 'linux';
  for (const [version, has] of [['20.20.2', false], ['22.11.0', false], ['22.12.0', true], ['23.1.0', true], ['24.22.3', true], ['26.0.0', true]] as const) {
    t.equal(reusePortAvailable(version), has && linux, version);
  }
});

t.test('a second daemon on a port in use fails to start, and the first keeps serving', async (t) => {
  const first = await startDaemon(['-t', '2']);
  t.teardown(() => first.stop());
  const second = cli(['-p', String(first.port), '-l', '127.0.0.1', '-t', '2', '--metrics-port', '0']);
  t.equal(second.status, 71, 'EX_OSERR, like memcached');
  t.match(second.stderr, /EADDRINUSE/);
  const c = await rawClient(first.port);
  c.send('version\r\n');
  t.match(await c.readUntil('\r\n'), /^VERSION /);
  await c.close();
});

t.test('-c: a connection over the limit gets memcached\'s error and is closed', async (t) => {
  const d = await startDaemon(['-c', '2']);
  t.teardown(() => d.stop());
  const a = await rawClient(d.port);
  // the start-up probe's connection closes on another thread: wait until a is the only one
  for (let i = 0; i < 50; i++) {
    a.send('stats\r\n');
    if (/STAT curr_connections 1\r\n/.test(await a.readUntil('END\r\n'))) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const b = await rawClient(d.port);
  b.send('version\r\n');
  t.match(await b.readUntil('\r\n'), /^VERSION /);
  const c = await rawClient(d.port);
  const rest = await c.waitForClose(3000);
  t.equal(rest.toString(), 'ERROR Too many open connections\r\n');
  a.send('stats\r\n');
  const stats = await a.readUntil('END\r\n');
  t.match(stats, /STAT curr_connections 2\r\n/);
  t.match(stats, /STAT rejected_connections 1\r\n/);
  // a flood of rejected clients that reset their connections must not take the server down
  await Promise.all(
    Array.from({ length: 30 }, async () => {
      const s = net.connect({ port: d.port, host: '127.0.0.1' });
      await new Promise((r) => s.once('connect', r));
      s.resetAndDestroy();
    }),
  );
  await b.close();
  await new Promise((r) => setTimeout(r, 100));
  t.equal(d.exitStatus(), null, 'still running after the flood');
  const again = await rawClient(d.port);
  again.send('version\r\n');
  t.match(await again.readUntil('\r\n'), /^VERSION /, 'a freed slot can be used again');
  await Promise.all([a.close(), again.close()]);
});

function rssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

// 400 replies of a 512 KB value (200 MB): as 400 get lines, and as one get line naming it 400 times
// (memcached streams that one too, as the client drains it)
const unreadRequests = [
  { shape: 'a get line per key', request: 'get big\r\n'.repeat(400), replyBytes: (size: number) => 400 * (size + 27) },
  { shape: 'one get line naming the key 400 times', request: `get${' big'.repeat(400)}\r\n`, replyBytes: (size: number) => 400 * (size + 22) + 5 },
];
for (const { shape, request, replyBytes } of unreadRequests) t.test(`a client that does not read is paused, and others are served meanwhile (${shape})`, async (t) => {
  const d = await startDaemon(['-t', '2']);
  t.teardown(() => d.stop());
  const size = 512 * 1024;
  const setter = await rawClient(d.port);
  setter.send(Buffer.concat([Buffer.from(`set big 0 0 ${size}\r\n`), Buffer.alloc(size, 0x7a), Buffer.from('\r\n')]));
  t.equal(await setter.readUntil('\r\n'), 'STORED\r\n');
  const rssBefore = rssKb(d.pid);
  const slow = net.connect({ port: d.port, host: '127.0.0.1' });
  await new Promise((r) => slow.once('connect', r));
  slow.pause();
  slow.write(request);
  await new Promise((r) => setTimeout(r, 500));
  setter.send('set small 0 0 2\r\nok\r\nget small\r\n');
  t.equal(await setter.readUntil('END\r\n'), 'STORED\r\nVALUE small 0 2\r\nok\r\nEND\r\n', 'others are served');
  // the unsent output is held to the 4 MB high-water mark plus a value; the rest is GC slack
  const grown = rssKb(d.pid) - rssBefore;
  t.ok(grown < 48 * 1024, `server RSS grew ${Math.round(grown / 1024)} MB for 200 MB of unread replies`);
  // now read everything: every reply arrives, in full
  const expected = replyBytes(size);
  let received = 0;
  let tail = Buffer.alloc(0);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${received} of ${expected} bytes arrived`)), 20_000);
    slow.on('data', (chunk: Buffer) => {
      received += chunk.length;
      tail = Buffer.concat([tail, chunk]).subarray(-7);
      if (received >= expected) {
        clearTimeout(timer);
        resolve();
      }
    });
    slow.resume();
  });
  t.equal(received, expected, 'every reply arrives once the client reads');
  t.equal(tail.toString(), '\r\nEND\r\n');
  slow.destroy();
  await setter.close();
});

t.test('stats settings, items, slabs, conns, reset', async (t) => {
  const d = await startDaemon(['-t', '2', '-m', '32', '-c', '100', '-f', '1.5', '-n', '64', '-I', '2m']);
  t.teardown(() => d.stop());
  const c = await rawClient(d.port);
  c.send('stats settings\r\n');
  const settings = await c.readUntil('END\r\n');
  for (const line of ['maxbytes 33554432', 'maxconns 100', `tcpport ${d.port}`, 'growth_factor 1.50', 'chunk_size 64', 'num_threads 2', 'item_size_max 2097152', 'evictions on', 'cas_enabled yes']) {
    t.match(settings, `STAT ${line}\r\n`);
  }
  c.send('set a 0 0 5\r\nhello\r\nset b 0 0 3000\r\n' + 'x'.repeat(3000) + '\r\nget a b c\r\n');
  await c.readUntil('END\r\n');
  c.send('stats\r\n');
  const general = await c.readUntil('END\r\n');
  for (const line of ['cmd_get 3', 'get_hits 2', 'get_misses 1', 'cmd_set 2', 'curr_items 2', 'total_items 2', 'threads 2', 'limit_maxbytes 33554432']) {
    t.match(general, `STAT ${line}\r\n`);
  }
  t.match(general, /STAT rusage_user \d+\.\d{6}\r\n/);
  t.match(general, /^STAT pid \d+\r\nSTAT uptime \d+\r\nSTAT time \d+\r\nSTAT version 1\.6\.\d+\r\n/);
  c.send('stats items\r\n');
  const items = await c.readUntil('END\r\n');
  t.match(items, /STAT items:\d+:number 1\r\n/);
  t.match(items, /STAT items:\d+:age \d+\r\n/);
  c.send('stats slabs\r\n');
  const slabs = await c.readUntil('END\r\n');
  t.match(slabs, /STAT \d+:chunk_size \d+\r\n/);
  t.match(slabs, /STAT active_slabs 2\r\n/);
  c.send('stats conns\r\n');
  t.match(await c.readUntil('END\r\n'), /STAT \d+:state conn_\w+\r\n/);
  c.send('stats reset\r\nstats\r\n');
  t.equal(await c.readUntil('\r\n'), 'RESET\r\n');
  const after = await c.readUntil('END\r\n');
  t.match(after, 'STAT cmd_get 0\r\n');
  t.match(after, 'STAT curr_items 2\r\n', 'reset keeps item counts');
  c.send('stats nonsense\r\n');
  t.equal(await c.readUntil('\r\n'), 'ERROR\r\n');
  await c.close();
});

t.test('shutdown with -A ends the process', async (t) => {
  const d = await startDaemon(['-A']);
  t.teardown(() => d.stop());
  const c = await rawClient(d.port);
  c.send('shutdown\r\n');
  await c.waitForClose(3000);
  for (let i = 0; i < 50 && d.exitStatus() === null; i++) await new Promise((r) => setTimeout(r, 100));
  t.same(d.exitStatus(), { code: 0, signal: null });
});

t.test("-vv logs connections, commands and replies in memcached's format", async (t) => {
  const session = 'set a 0 0 1\r\nx\r\nget a\r\nget b a\r\ndelete a\r\nbogus\r\nincr n 1\r\nmn\r\n';
  const logs: string[][] = [];
  for (const start of [() => startMemcached(['-vv']), () => startDaemon(['-vv'])]) {
    const d = await start();
    const c = await rawClient(d.port);
    c.send(session);
    await c.readUntil('MN\r\n');
    await c.close();
    await new Promise((r) => setTimeout(r, 200));
    const lines = d.stderr().split('\n');
    await d.stop();
    // the session's connection: the one that sent the set
    const id = /^<(\d+) set a 0 0 1$/m.exec(d.stderr())?.[1];
    const own = lines.filter((l) => new RegExp(`^(<|>)?${id}[ :]`).test(l)).map((l) => l.replace(new RegExp(`^(<|>)?${id}`), '$1N'));
    // memcached's ids are descriptors: the start-up probe's connection may have had the same one
    logs.push(own.slice(own.lastIndexOf('<N new auto-negotiating client connection')));
    if (logs.length === 2) t.match(d.stderr(), /listening on/);
  }
  t.ok(logs[1]!.length > 10, logs[1]!.join(' | '));
  t.same(logs[1], logs[0], 'the same lines as memcached 1.6.18');
});

t.test("stats carries memcached 1.6.18's fields, in its order", async (t) => {
  const servers = [await startMemcached(), await startDaemon(['-t', '2'])];
  t.teardown(() => Promise.all(servers.map((s) => s.stop())));
  const names = await Promise.all(
    servers.map(async (s) => {
      const c = await rawClient(s.port);
      c.send('stats\r\n');
      const rows = await c.readUntil('END\r\n');
      await c.close();
      return [...rows.matchAll(/^STAT (\S+)/gm)].map((m) => m[1]!);
    }),
  );
  const [theirs, mine] = names as [string[], string[]];
  // memshard has no read buffer or response object pools, and no global page pool to show
  const withoutMeaning = ['response_obj_count', 'read_buf_count', 'read_buf_bytes', 'read_buf_bytes_free', 'read_buf_oom', 'slab_global_page_pool'];
  t.same(theirs.filter((n) => !mine.includes(n)), withoutMeaning, 'every other field is there');
  t.same(mine.filter((n) => theirs.includes(n)), theirs.filter((n) => mine.includes(n)), "in memcached's order");
});

t.test('the daemon starts itself again with MALLOC_ARENA_MAX=2 where Node can (same PID), and keeps an operator value', async (t) => {
  const environ = (pid: number) => new Map(readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const hasExecve = typeof (process as unknown as { execve?: unknown }).execve === 'function';
  const saved = process.env['MALLOC_ARENA_MAX'];
  try {
    delete process.env['MALLOC_ARENA_MAX'];
    const d = await startDaemon(['-t', '1', '-U', '0']);
    t.teardown(() => d.stop());
    t.equal(environ(d.pid).get('MALLOC_ARENA_MAX'), hasExecve ? '2' : undefined, hasExecve ? 'set, in the process that serves' : 'left alone on a Node without process.execve');
    const c = await rawClient(d.port);
    c.send('version\r\n');
    t.match(await c.readUntil('\r\n'), /^VERSION \d+\.\d+\.\d+\r\n$/, 'and it serves');
    await c.close();
    process.env['MALLOC_ARENA_MAX'] = '8';
    const own = await startDaemon(['-t', '1', '-U', '0']);
    t.teardown(() => own.stop());
    t.equal(environ(own.pid).get('MALLOC_ARENA_MAX'), '8', "the operator's value is kept");
  } finally {
    if (saved === undefined) delete process.env['MALLOC_ARENA_MAX'];
    else process.env['MALLOC_ARENA_MAX'] = saved;
  }
});
