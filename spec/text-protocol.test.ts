/**
 * The classic text protocol over a real socket, byte for byte against memcached 1.6's replies.
 */
import t, { type Test } from 'tap';
import { rawClient, startDaemon, type Daemon, type RawClient } from './helpers/daemon.js';

let daemon: Daemon;

t.before(async () => {
  daemon = await startDaemon(['-t', '4', '-m', '64']);
});
t.teardown(async () => {
  await daemon?.stop();
});

/** Send `request` and expect exactly `reply` (nothing more, nothing less, in order). */
async function exchange(t: Test, c: RawClient, request: string | Buffer, reply: string): Promise<void> {
  c.send(request);
  const want = Buffer.from(reply, 'latin1');
  const got = await c.readUntil((b) => (b.length >= want.length ? want.length : false), 3000);
  t.equal(got.toString('latin1'), reply, JSON.stringify(request.toString().slice(0, 80)));
}

async function client(t: Test): Promise<RawClient> {
  const c = await rawClient(daemon.port);
  t.teardown(() => c.close());
  return c;
}

t.test('set, get, gets over many keys on every shard, answered in key order', async (t) => {
  const c = await client(t);
  const keys = Array.from({ length: 40 }, (_, i) => `order:${i}`);
  let sets = '';
  for (const k of keys) sets += `set ${k} ${k.length} 0 ${k.length + 2}\r\nv-${k}\r\n`;
  await exchange(t, c, sets, 'STORED\r\n'.repeat(keys.length));
  let expected = '';
  for (const k of [...keys, 'missing']) {
    if (k !== 'missing') expected += `VALUE ${k} ${k.length} ${k.length + 2}\r\nv-${k}\r\n`;
  }
  await exchange(t, c, `get ${[...keys, 'missing'].join(' ')}\r\n`, `${expected}END\r\n`);
  c.send('gets order:1 order:2\r\n');
  const reply = await c.readUntil('END\r\n');
  const m = /^VALUE order:1 7 9 (\d+)\r\nv-order:1\r\nVALUE order:2 7 9 (\d+)\r\nv-order:2\r\nEND\r\n$/.exec(reply);
  t.ok(m, `gets reply ${JSON.stringify(reply)}`);
  t.not(m?.[1], m?.[2], 'CAS values differ across items');
  await exchange(t, c, 'get nothing\r\n', 'END\r\n');
});

t.test('binary values, empty values, 250-byte keys, flags', async (t) => {
  const c = await client(t);
  const value = Buffer.from([0, 1, 2, 13, 10, 255, 128, 32]);
  await exchange(t, c, Buffer.concat([Buffer.from('set bin 4294967295 0 8\r\n'), value, Buffer.from('\r\n')]), 'STORED\r\n');
  await exchange(t, c, 'get bin\r\n', `VALUE bin 4294967295 8\r\n${value.toString('latin1')}\r\nEND\r\n`);
  await exchange(t, c, 'set empty 0 0 0\r\n\r\n', 'STORED\r\n');
  await exchange(t, c, 'get empty\r\n', 'VALUE empty 0 0\r\n\r\nEND\r\n');
  const key = 'k'.repeat(250);
  await exchange(t, c, `set ${key} 1 0 1\r\nx\r\n`, 'STORED\r\n');
  await exchange(t, c, `get ${key}\r\n`, `VALUE ${key} 1 1\r\nx\r\nEND\r\n`);
  // memcached runs this data block as a command (ERROR); memshard skips it (hardening issue)
  await exchange(t, c, `set ${key}k 1 0 1\r\nx\r\n`, 'CLIENT_ERROR bad command line format\r\n');
  await exchange(t, c, `get ${key}k\r\n`, 'CLIENT_ERROR bad command line format\r\n');
});

t.test('add, replace, append, prepend', async (t) => {
  const c = await client(t);
  await exchange(t, c, 'add a1 0 0 1\r\nx\r\n', 'STORED\r\n');
  await exchange(t, c, 'add a1 0 0 1\r\ny\r\n', 'NOT_STORED\r\n');
  await exchange(t, c, 'replace r1 0 0 1\r\nx\r\n', 'NOT_STORED\r\n');
  await exchange(t, c, 'replace a1 5 0 2\r\nzz\r\n', 'STORED\r\n');
  await exchange(t, c, 'append a1 9 0 2\r\n>>\r\n', 'STORED\r\n');
  await exchange(t, c, 'prepend a1 9 0 2\r\n<<\r\n', 'STORED\r\n');
  await exchange(t, c, 'get a1\r\n', 'VALUE a1 5 6\r\n<<zz>>\r\nEND\r\n');
  await exchange(t, c, 'append nope 0 0 1\r\nx\r\n', 'NOT_STORED\r\n');
  await exchange(t, c, 'prepend nope 0 0 1\r\nx\r\n', 'NOT_STORED\r\n');
});

t.test('cas', async (t) => {
  const c = await client(t);
  await exchange(t, c, 'set c1 0 0 1\r\na\r\n', 'STORED\r\n');
  c.send('gets c1\r\n');
  const cas = /VALUE c1 0 1 (\d+)/.exec(await c.readUntil('END\r\n'))![1]!;
  await exchange(t, c, `cas c1 0 0 1 ${cas}\r\nb\r\n`, 'STORED\r\n');
  await exchange(t, c, `cas c1 0 0 1 ${cas}\r\nc\r\n`, 'EXISTS\r\n');
  await exchange(t, c, `cas nope 0 0 1 ${cas}\r\nc\r\n`, 'NOT_FOUND\r\n');
  await exchange(t, c, 'get c1\r\n', 'VALUE c1 0 1\r\nb\r\nEND\r\n');
  await exchange(t, c, `cas c1 0 0 1 ${cas} noreply\r\nd\r\nget c1\r\n`, 'VALUE c1 0 1\r\nb\r\nEND\r\n');
});

t.test('incr and decr', async (t) => {
  const c = await client(t);
  await exchange(t, c, 'set n 0 0 2\r\n10\r\n', 'STORED\r\n');
  await exchange(t, c, 'incr n 5\r\n', '15\r\n');
  await exchange(t, c, 'decr n 100\r\n', '0\r\n');
  await exchange(t, c, 'set big 0 0 20\r\n18446744073709551615\r\n', 'STORED\r\n');
  await exchange(t, c, 'incr big 2\r\n', '1\r\n');
  await exchange(t, c, 'incr nope 1\r\n', 'NOT_FOUND\r\n');
  await exchange(t, c, 'set word 0 0 3\r\nabc\r\n', 'STORED\r\n');
  await exchange(t, c, 'incr word 1\r\n', 'CLIENT_ERROR cannot increment or decrement non-numeric value\r\n');
  await exchange(t, c, 'incr n abc\r\n', 'CLIENT_ERROR invalid numeric delta argument\r\n');
  await exchange(t, c, 'incr n 7 noreply\r\nget n\r\n', 'VALUE n 0 2\r\n7 \r\nEND\r\n'); // memcached pads in place
});

t.test('delete, touch, gat, gats, noreply', async (t) => {
  const c = await client(t);
  await exchange(t, c, 'set d 3 0 1\r\nx\r\n', 'STORED\r\n');
  await exchange(t, c, 'touch d 100\r\n', 'TOUCHED\r\n');
  await exchange(t, c, 'touch nope 100\r\n', 'NOT_FOUND\r\n');
  await exchange(t, c, 'gat 100 d nope\r\n', 'VALUE d 3 1\r\nx\r\nEND\r\n');
  c.send('gats 0 d\r\n');
  t.match(await c.readUntil('END\r\n'), /^VALUE d 3 1 \d+\r\nx\r\nEND\r\n$/);
  await exchange(t, c, 'delete d\r\n', 'DELETED\r\n');
  await exchange(t, c, 'delete d\r\n', 'NOT_FOUND\r\n');
  await exchange(t, c, 'delete d 0\r\n', 'NOT_FOUND\r\n');
  await exchange(t, c, 'delete d 5\r\n', 'CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n');
  await exchange(t, c, 'set q 0 0 1 noreply\r\nq\r\nadd q 0 0 1 noreply\r\nz\r\ndelete nope noreply\r\nget q\r\n', 'VALUE q 0 1\r\nq\r\nEND\r\n');
});

t.test('expiry: negative, absolute in the past, relative', async (t) => {
  const c = await client(t);
  await exchange(t, c, 'set e1 0 -1 1\r\nx\r\n', 'STORED\r\n');
  await exchange(t, c, 'get e1\r\n', 'END\r\n');
  await exchange(t, c, `set e2 0 ${Math.floor(Date.now() / 1000) - 10} 1\r\nx\r\n`, 'STORED\r\n');
  await exchange(t, c, 'get e2\r\n', 'END\r\n');
  await exchange(t, c, `set e3 0 ${Math.floor(Date.now() / 1000) + 100} 1\r\nx\r\n`, 'STORED\r\n');
  await exchange(t, c, 'set e4 0 1 1\r\nx\r\n', 'STORED\r\n');
  await exchange(t, c, 'get e3 e4\r\n', 'VALUE e3 0 1\r\nx\r\nVALUE e4 0 1\r\nx\r\nEND\r\n');
  await new Promise((r) => setTimeout(r, 2100));
  await exchange(t, c, 'get e3 e4\r\n', 'VALUE e3 0 1\r\nx\r\nEND\r\n');
});

t.test('flush_all, now and delayed', async (t) => {
  const c = await client(t);
  await exchange(t, c, 'set f1 0 0 1\r\nx\r\nset f2 0 0 1\r\ny\r\n', 'STORED\r\nSTORED\r\n');
  await exchange(t, c, 'flush_all\r\n', 'OK\r\n');
  await exchange(t, c, 'get f1 f2\r\n', 'END\r\n');
  await exchange(t, c, 'set f3 0 0 1\r\nz\r\n', 'STORED\r\n');
  await exchange(t, c, 'get f3\r\n', 'VALUE f3 0 1\r\nz\r\nEND\r\n');
  await exchange(t, c, 'flush_all 2\r\n', 'OK\r\n');
  await exchange(t, c, 'get f3\r\n', 'VALUE f3 0 1\r\nz\r\nEND\r\n');
  await new Promise((r) => setTimeout(r, 2100));
  await exchange(t, c, 'get f3\r\n', 'END\r\n');
  await exchange(t, c, 'flush_all noreply\r\nflush_all x\r\n', 'CLIENT_ERROR invalid exptime argument\r\n');
});

t.test('errors keep the connection in sync', async (t) => {
  const c = await client(t);
  await exchange(t, c, 'bogus\r\n', 'ERROR\r\n');
  await exchange(t, c, 'set x 0 0\r\n', 'ERROR\r\n');
  // the refused line's 1-byte block is skipped, never read as a command
  await exchange(t, c, 'set x abc 0 1\r\nz\r\n', 'CLIENT_ERROR bad command line format\r\n');
  await exchange(t, c, 'set x 0 0 -1\r\n', 'CLIENT_ERROR bad command line format\r\n');
  await exchange(t, c, 'set x 0 0 1\r\nabc\r\n', 'CLIENT_ERROR bad data chunk\r\nERROR\r\n');
  await exchange(t, c, 'get\r\n', 'ERROR\r\n');
  await exchange(t, c, 'get x\r\n', 'END\r\n');
});

t.test('too large values: swallowed, old item removed, connection in sync', async (t) => {
  const c = await client(t);
  await exchange(t, c, 'set big 0 0 1\r\nx\r\n', 'STORED\r\n');
  const size = 2 * 1024 * 1024;
  c.send(`set big 0 0 ${size}\r\n`);
  c.send(Buffer.alloc(size, 0x61));
  await exchange(t, c, '\r\nget big\r\n', 'SERVER_ERROR object too large for cache\r\nEND\r\n');
  // memcached -I 1m takes at most 1048514 bytes under a 3-byte key (its item header counts)
  for (const [size, reply] of [[1048515, 'SERVER_ERROR object too large for cache\r\n'], [1048514, 'STORED\r\n']] as const) {
    c.send(`set big 0 0 ${size}\r\n`);
    await exchange(t, c, Buffer.concat([Buffer.alloc(size, 0x62), Buffer.from('\r\n')]), reply);
  }
  const fits = 512 * 1024;
  c.send(`set big 0 0 ${fits}\r\n`);
  await exchange(t, c, Buffer.concat([Buffer.alloc(fits, 0x63), Buffer.from('\r\n')]), 'STORED\r\n');
  c.send('get big\r\n');
  const got = await c.readUntil('\r\nEND\r\n', 5000);
  t.equal(got, `VALUE big 0 ${fits}\r\n${'c'.repeat(fits)}\r\nEND\r\n`, 'a 512 KB value round-trips');
});

t.test('a line over 2048 bytes without a newline closes the connection; a long get does not', async (t) => {
  const c = await client(t);
  c.send('x'.repeat(3000));
  await c.waitForClose(3000);
  t.ok(c.isClosed(), 'closed');
  const g = await client(t);
  const keys = Array.from({ length: 600 }, (_, i) => `long:${i}`);
  await exchange(t, g, `get ${keys.join(' ')}\r\n`, 'END\r\n');
});

t.test('pipelined mixed requests are answered in request order', async (t) => {
  const c = await client(t);
  let req = '';
  let reply = '';
  for (let i = 0; i < 200; i++) {
    req += `set p${i} 0 0 ${String(i).length}\r\n${i}\r\nincr p${i} 1\r\nget p${i} p${i + 1000}\r\ndelete p${i}\r\nbogus\r\n`;
    reply += `STORED\r\n${i + 1}\r\nVALUE p${i} 0 ${String(i + 1).length}\r\n${i + 1}\r\nEND\r\nDELETED\r\nERROR\r\n`;
  }
  await exchange(t, c, req, reply);
});

t.test('version, verbosity, quit, shutdown', async (t) => {
  const c = await client(t);
  c.send('version\r\n');
  t.match(await c.readUntil('\r\n'), /^VERSION 1\.6\.\d+\r\n$/);
  await exchange(t, c, 'verbosity 1\r\n', 'OK\r\n');
  await exchange(t, c, 'verbosity 0 noreply\r\nverbosity\r\n', 'ERROR\r\n');
  await exchange(t, c, 'shutdown\r\n', 'SERVER_ERROR: shutdown not enabled\r\n');
  c.send('get x\r\nquit\r\nget y\r\n');
  const rest = await c.waitForClose(3000);
  t.equal(rest.toString(), 'END\r\n', 'replies before quit are sent, nothing after');
});
