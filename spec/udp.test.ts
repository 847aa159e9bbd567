/**
 * memcached's UDP protocol (-U): the same requests sent to memshard and to memcached 1.6.18 get
 * the same datagrams back, byte for byte (headers, how replies are split, which ones are sent at
 * all); bad and short datagrams are dropped as memcached drops them; TCP keeps working beside it.
 * Loopback only; every wait is bounded; every daemon is stopped by its test.
 */
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { cliPath, rawClient, startDaemon, startMemcached, type Daemon, type RawClient } from './helpers/daemon.js';
import { udpHeader } from './helpers/udp.js';

/** A UDP port that was free a moment ago. */
function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

const header = udpHeader;

const text = (s: string) => Buffer.from(s, 'latin1');

/** A raw UDP client on 127.0.0.1 that keeps the datagrams of the request it waits for. */
class UdpClient {
  private inbox: Buffer[] = [];
  private nextId = 1;

  private constructor(private readonly socket: dgram.Socket) {
    socket.on('message', (m) => {
      this.inbox.push(m);
    });
  }

  static open(recvBufferSize?: number): Promise<UdpClient> {
    return new Promise((resolve, reject) => {
      const s = dgram.createSocket({ type: 'udp4', ...(recvBufferSize === undefined ? {} : { recvBufferSize }) });
      s.once('error', reject);
      s.bind(0, '127.0.0.1', () => resolve(new UdpClient(s)));
    });
  }

  /** A request id not used before by this client. */
  id(): number {
    return this.nextId++ & 0xffff;
  }

  /** Send a raw datagram to port. */
  send(port: number, datagram: Buffer): void {
    this.socket.send(datagram, port, '127.0.0.1');
  }

  /**
   * Send a request (payload framed with a fresh request id, unless `raw`) and collect the
   * datagrams carrying its request id until none came for quietMs (or timeoutMs passed).
   */
  async request(port: number, payload: Buffer, opts: { raw?: boolean; id?: number; quietMs?: number; timeoutMs?: number } = {}): Promise<Buffer[]> {
    const id = opts.id ?? this.id();
    const quietMs = opts.quietMs ?? 150;
    const deadline = Date.now() + (opts.timeoutMs ?? 5000);
    this.inbox = [];
    this.send(port, opts.raw ? payload : Buffer.concat([header(id), payload]));
    let count = 0;
    let last = Date.now();
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      if (this.inbox.length !== count) {
        count = this.inbox.length;
        last = Date.now();
      }
      if (Date.now() - last >= quietMs || Date.now() >= deadline) break;
    }
    return this.inbox.filter((d) => opts.raw || (d.length >= 2 && d.readUInt16BE(0) === id));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** Datagrams as comparable rows: the header in hex, then the payload (binary CAS and the version blanked). */
function rows(datagrams: Buffer[]): string[] {
  return datagrams.map((d) => {
    const payload = Buffer.from(d.subarray(8));
    // a binary response's CAS (bytes 16-23) is the servers' own
    if (payload.length >= 24 && payload[0] === 0x81) payload.fill(0, 16, 24);
    const shown = payload.toString('latin1').replace(/^VERSION [^\r]*/, 'VERSION x');
    return `${d.subarray(0, 8).toString('hex')} ${d.length} ${JSON.stringify(shown)}`;
  });
}

/** A binary request. */
function bin(opcode: number, key = '', extras: Buffer = Buffer.alloc(0), value = ''): Buffer {
  const k = text(key);
  const v = text(value);
  const h = Buffer.alloc(24);
  h[0] = 0x80;
  h[1] = opcode;
  h.writeUInt16BE(k.length, 2);
  h[4] = extras.length;
  h.writeUInt32BE(extras.length + k.length + v.length, 8);
  h.writeUInt32BE(0x01020304, 12);
  return Buffer.concat([h, extras, k, v]);
}

const digits = (n: number) => Array.from({ length: n }, (_, i) => String(i % 10)).join('');
const BIG = digits(5000);
/** Values whose whole get reply (`VALUE e 0 N\r\n` + N + `\r\nEND\r\n`) is 1392 / 1393 bytes. */
const FITS = digits(1392 - 'VALUE e 0 1369\r\n\r\nEND\r\n'.length);
const SPILLS = digits(1393 - 'VALUE f 0 1370\r\n\r\nEND\r\n'.length);
const MISSES = Array.from({ length: 29 }, (_, i) => `miss${i}`).join(' ');

/** Requests run in this order on a fresh memcached and a fresh memshard: [what, datagram]. */
const SCRIPT: Array<[string, Buffer, boolean?]> = [
  ['set', text('set a 5 0 3\r\nabc\r\n')],
  ['get a hit', text('get a\r\n')],
  ['get a miss', text('get nope\r\n')],
  ['version', text('version\r\n')],
  ['set a 5000-byte value', text(`set big 0 0 5000\r\n${BIG}\r\n`)],
  ['get it: four datagrams', text('get big\r\n')],
  ['multi-get big a big: a message per key', text('get big a big\r\n')],
  ['multi-get whose first keys miss: a lone header', text('get b c a\r\n')],
  ['multi-get whose later keys miss', text('get a b c\r\n')],
  ['multi-get of 30 keys over tokenizer batches', text(`get ${MISSES} a\r\n`)],
  ['a reply of exactly 1392 bytes', text(`set e 0 0 ${FITS.length}\r\n${FITS}\r\nget e\r\n`)],
  ['and 1393 bytes', text(`set f 0 0 ${SPILLS.length}\r\n${SPILLS}\r\nget f\r\n`)],
  ['several commands in a datagram', text('set b 0 0 1\r\n1\r\nget b\r\nincr b 5\r\ndecr b 2\r\ndelete b\r\ndelete b\r\nincr b 1\r\n')],
  ['noreply: nothing at all', text('set c 0 0 1 noreply\r\nx\r\n')],
  ['noreply then get', text('set c 0 0 1 noreply\r\nx\r\nget c\r\n')],
  ['noreply then a multi-get that misses first', text('set z 0 0 1 noreply\r\nZ\r\nget nope1 nope2\r\n')],
  ['version then such a multi-get', text('version\r\nget nope1 c\r\n')],
  ['get then such a multi-get', text('get a\r\nget nope1 c\r\n')],
  ['mn then such a multi-get', text('mn\r\nget nope1 c\r\n')],
  ['21 commands then such a multi-get (-R 20 flushes)', text(`${'version\r\n'.repeat(21)}get nope1 c\r\n`)],
  ['22 commands then such a multi-get', text(`${'version\r\n'.repeat(22)}get nope1 c\r\n`)],
  ['41 commands then such a multi-get', text(`${'version\r\n'.repeat(41)}get nope1 c\r\n`)],
  ['gat and touch', text('gat 0 a\r\ntouch a 0\r\ntouch nope 0\r\n')],
  ['append, then get', text('append a 0 0 2\r\nde\r\nget a\r\n')],
  ['meta commands', text('mg a v f\r\nmg nope v\r\nmg nope v q\r\nms m 2\r\nhi\r\nmd m q\r\nmn\r\n')],
  ['errors', text('bogus\r\n\r\nincr a 1\r\nget\r\n')],
  ['binary: getq misses then noop', Buffer.concat([bin(0x09, 'b'), bin(0x09, 'c'), bin(0x0a)])],
  ['binary: getq hit, getq miss, noop', Buffer.concat([bin(0x09, 'a'), bin(0x09, 'c2'), bin(0x0a)])],
  ['binary: get miss, getq miss, noop', Buffer.concat([bin(0x00, 'b'), bin(0x09, 'c2'), bin(0x0a)])],
  ['binary: getk miss, getq miss, noop', Buffer.concat([bin(0x0c, 'b'), bin(0x09, 'c2'), bin(0x0a)])],
  ['binary: setq then noop', Buffer.concat([bin(0x11, 'x', Buffer.alloc(8), 'X'), bin(0x0a)])],
  ['binary: getq alone', bin(0x09, 'nope')],
  ['binary: get of the 5000-byte value', bin(0x00, 'big')],
  ['7 bytes: dropped', Buffer.alloc(7), true],
  ['a bare header: dropped', header(900), true],
  ['total 2: a multi-datagram request, dropped', Buffer.concat([header(901, 0, 2), text('version\r\n')]), true],
  ['total 0: dropped', Buffer.concat([header(902, 0, 0), text('version\r\n')]), true],
  ['sequence 5 and reserved 7: served', Buffer.concat([header(903, 5, 1, 7), text('get a\r\n')]), true],
  ['a line cut at the end of the datagram: nothing', text('get a')],
  ['flush_all, then get', text('flush_all\r\nget a b\r\n')],
  // last: after a quit memcached's thread keeps close_after_write, and every later datagram it
  // serves stops at its first flush
  ['get, quit: an empty response after the flush; the rest is not read', text('get nope\r\nquit\r\nversion\r\n')],
];

async function runScript(port: number): Promise<Map<string, string[]>> {
  const client = await UdpClient.open();
  const out = new Map<string, string[]>();
  try {
    for (const [what, datagram, raw] of SCRIPT) out.set(what, rows(await client.request(port, datagram, { raw: raw === true })));
  } finally {
    await client.close();
  }
  return out;
}

/**
 * The helpers wait for TCP; the UDP socket is bound by its thread as it starts, maybe a moment
 * after another thread already accepts: ask over UDP until it answers.
 */
async function udpReady(port: number): Promise<void> {
  const client = await UdpClient.open();
  try {
    for (let i = 0; i < 50; i++) {
      const id = 0xff00 + i;
      if ((await client.request(port, text('version\r\n'), { id, quietMs: 100 })).length > 0) return;
    }
    throw new Error(`nothing answers on UDP port ${port}`);
  } finally {
    await client.close();
  }
}

async function withUdp(start: (args: string[]) => Promise<Daemon>, args: string[] = []): Promise<{ daemon: Daemon; udp: number }> {
  for (let attempt = 0; ; attempt++) {
    const udp = await freeUdpPort();
    try {
      const daemon = await start(['-U', String(udp), ...args]);
      await udpReady(udp);
      return { daemon, udp };
    } catch (e) {
      // the free port can be taken between the probe and the bind
      if (attempt < 2 && /EADDRINUSE|in use/i.test(String(e))) continue;
      throw e;
    }
  }
}

t.test('the same requests get the same datagrams from memshard as from memcached, byte for byte', async (t) => {
  const [mc, ms] = await Promise.all([withUdp(startMemcached), withUdp(startDaemon, ['-t', '2'])]);
  t.teardown(() => Promise.all([mc.daemon.stop(), ms.daemon.stop()]));
  const [theirs, ours] = await Promise.all([runScript(mc.udp), runScript(ms.udp)]);
  for (const [what] of SCRIPT) t.same(ours.get(what), theirs.get(what), what);
  // the shapes the comparison covers, as memcached makes them
  const shapes = (what: string) =>
    theirs.get(what)!.map((r) => {
      const [hex, size] = r.split(' ');
      return `${hex!.slice(4)} ${size}`;
    });
  t.same(shapes('get it: four datagrams'), ['000000040000 1400', '000100040000 1400', '000200040000 1400', '000300040000 857']);
  t.same(shapes('multi-get whose first keys miss: a lone header'), ['000000000000 8', '000000010000 31']);
  t.same(shapes('a reply of exactly 1392 bytes'), ['000000010000 16', '000000010000 1400']);
  t.same(shapes('and 1393 bytes'), ['000000010000 16', '000000020000 1400', '000100020000 9']);
  t.same(theirs.get('noreply: nothing at all'), []);
  t.same(theirs.get('total 2: a multi-datagram request, dropped'), []);
  t.same(shapes('get, quit: an empty response after the flush; the rest is not read'), ['000000010000 13', '000000000000 8']);
});

t.test('text commands over UDP, TCP beside them', async (t) => {
  const { daemon, udp } = await withUdp(startDaemon);
  t.teardown(() => daemon.stop());
  const client = await UdpClient.open();
  t.teardown(() => client.close());
  const one = async (req: string) => {
    const ds = await client.request(udp, text(req));
    return Buffer.concat(ds.map((d) => d.subarray(8))).toString('latin1');
  };
  t.match(await one('version\r\n'), /^VERSION 1\.6\.\d+\r\n$/);
  t.equal(await one('set k 7 0 5\r\nhello\r\n'), 'STORED\r\n');
  t.equal(await one('get k\r\n'), 'VALUE k 7 5\r\nhello\r\nEND\r\n');
  t.match(await one('gets k\r\n'), /^VALUE k 7 5 \d+\r\nhello\r\nEND\r\n$/);
  t.equal(await one('set n 0 0 2\r\n10\r\n'), 'STORED\r\n');
  t.equal(await one('incr n 5\r\n'), '15\r\n');
  t.equal(await one('decr n 20\r\n'), '0\r\n');
  t.equal(await one('delete n\r\n'), 'DELETED\r\n');
  t.equal(await one('delete n\r\n'), 'NOT_FOUND\r\n');

  // TCP sees what UDP set, and the other way round
  const c: RawClient = await rawClient(daemon.port);
  t.teardown(() => c.close());
  c.send('get k\r\nset t 0 0 3\r\ntcp\r\n');
  t.equal(await c.readUntil('STORED\r\n'), 'VALUE k 7 5\r\nhello\r\nEND\r\nSTORED\r\n');
  t.equal(await one('get t\r\n'), 'VALUE t 0 3\r\ntcp\r\nEND\r\n');

  // stats: one message over several datagrams, numbered, each full but the last
  const ds = await client.request(udp, text('stats\r\n'));
  t.ok(ds.length >= 2, `stats spans ${ds.length} datagrams`);
  const id = ds[0]!.readUInt16BE(0);
  ds.forEach((d, i) => {
    t.same([d.readUInt16BE(0), d.readUInt16BE(2), d.readUInt16BE(4), d.readUInt16BE(6)], [id, i, ds.length, 0], `datagram ${i}: header`);
    if (i < ds.length - 1) t.equal(d.length, 1400, `datagram ${i}: full`);
  });
  const stats = Buffer.concat(ds.map((d) => d.subarray(8))).toString('latin1');
  t.match(stats, /^STAT pid \d+\r\n/);
  t.match(stats, /\r\nEND\r\n$/);
  t.match(stats, /STAT cmd_get [1-9]/);
  t.match(await one('stats settings\r\n'), new RegExp(`STAT udpport ${udp}\r\n`));
  // stats conns is answered later (every thread is asked): the reply after it waits for it
  const later = await client.request(udp, text('stats conns\r\nversion\r\n'));
  const texts = later.map((d) => d.subarray(8).toString('latin1'));
  t.match(texts.at(-2), /END\r\n$/, 'stats conns first');
  t.match(texts.at(-1), /^VERSION /, 'then version');
  t.ok(later.every((d) => d.readUInt16BE(2) < d.readUInt16BE(4)), 'each numbered within its own message');
});

/** bytes_read and bytes_written over TCP `stats`. */
async function byteCounts(c: RawClient): Promise<{ read: number; written: number; reply: number }> {
  c.send('stats\r\n');
  const s = await c.readUntil('END\r\n');
  return { read: Number(/STAT bytes_read (\d+)/.exec(s)![1]), written: Number(/STAT bytes_written (\d+)/.exec(s)![1]), reply: s.length };
}

t.test('bytes_read and bytes_written count datagrams as memcached counts them', async (t) => {
  const [mc, ms] = await Promise.all([withUdp(startMemcached), withUdp(startDaemon)]);
  t.teardown(() => Promise.all([mc.daemon.stop(), ms.daemon.stop()]));
  const deltas = async ({ daemon, udp }: { daemon: Daemon; udp: number }) => {
    const c = await rawClient(daemon.port);
    const client = await UdpClient.open();
    try {
      const before = await byteCounts(c);
      // not counted: 8 bytes or less; counted: a multi-datagram request (then dropped), requests
      for (const d of [Buffer.alloc(3), header(1), Buffer.concat([header(2, 0, 2), text('version\r\n')])]) {
        t.same(await client.request(udp, d, { raw: true, quietMs: 100 }), [], 'no reply');
      }
      const got = await client.request(udp, text('get a b\r\n'));
      const after = await byteCounts(c);
      return { read: after.read - before.read - 'stats\r\n'.length, written: after.written - before.written - before.reply, sent: got.reduce((n, d) => n + d.length, 0) };
    } finally {
      await client.close();
      await c.close();
    }
  };
  const [theirs, ours] = await Promise.all([deltas(mc), deltas(ms)]);
  t.same(theirs, { read: 17 + 17, written: 8 + 13, sent: 8 + 13 }, 'memcached: headers included');
  t.same(ours, theirs);
});

t.test('a request cut at the end of its datagram is dropped; the next one is served', async (t) => {
  const { daemon, udp } = await withUdp(startDaemon);
  t.teardown(() => daemon.stop());
  const client = await UdpClient.open();
  t.teardown(() => client.close());
  t.same(await client.request(udp, text('get a')), [], 'a line without its end');
  // memcached would read the next datagram, header and all, as the rest of this value (and
  // answer CLIENT_ERROR bad data chunk under this request's id): memshard drops it
  t.same(await client.request(udp, text('set d 0 0 10\r\nabc')), [], 'a value cut short');
  const next = await client.request(udp, text('get d\r\nversion\r\n'));
  t.same(rows(next).map((r) => r.slice(r.indexOf('"'))), ['"END\\r\\n"', '"VERSION x\\r\\n"']);
  // binary, cut: nothing; the text after a binary request is read as binary, as by memcached
  t.same(await client.request(udp, bin(0x0b).subarray(0, 20)), []);
  // quit: its empty response object is sent as a lone header when it heads the queue
  const shape = async (req: string) => rows(await client.request(udp, text(req))).map((r) => r.slice(4, 12) + r.slice(16));
  t.same(await shape('quit\r\n'), ['00000000 8 ""']);
  t.same(await shape('version\r\nquit\r\nversion\r\n'), ['00000001 24 "VERSION x\\r\\n"'], 'after a reply: nothing of its own; the rest is not read');
});

t.test('a reply of megabytes: the output drains and all of it is sent, then the next request is served', async (t) => {
  const { daemon, udp } = await withUdp(startDaemon);
  t.teardown(() => daemon.stop());
  const value = 'x'.repeat(512 * 1024);
  const c = await rawClient(daemon.port);
  t.teardown(() => c.close());
  c.send(`set huge 0 0 ${value.length}\r\n${value}\r\n`);
  t.equal(await c.readUntil('\r\n'), 'STORED\r\n');
  const client = await UdpClient.open(4 * 1024 * 1024);
  t.teardown(() => client.close());
  const before = await byteCounts(c);
  const keys = 10;
  const started = Date.now();
  const got = await client.request(udp, text(`get${' huge'.repeat(keys)}\r\n`), { quietMs: 300, timeoutMs: 20_000 });
  const item = `VALUE huge 0 ${value.length}\r\n${value}\r\n`.length;
  const datagrams = (n: number) => Math.ceil(n / 1392);
  const expected = (keys - 1) * (item + 8 * datagrams(item)) + (item + 5 + 8 * datagrams(item + 5));
  let after = await byteCounts(c);
  for (let i = 0; i < 50 && after.written - before.written - before.reply < expected; i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = await byteCounts(c);
  }
  t.equal(after.written - before.written - before.reply, expected, `bytes_written: all ${(expected / 1e6).toFixed(1)} MB in datagrams`);
  t.ok(got.length > 0, `the client got ${got.length} of ${keys * datagrams(item)} datagrams (loopback may drop some)`);
  const totals = new Set([datagrams(item), datagrams(item + 5)]);
  t.ok(got.every((d) => d.length <= 1400 && totals.has(d.readUInt16BE(4))), 'every datagram: at most 1400 bytes, a known total');
  t.ok(Date.now() - started < 20_000);
  const v = await client.request(udp, text('version\r\n'));
  t.equal(v.length, 1, 'served after it');
});

t.test('UDP on every serving thread or on thread 0, and again after a thread is replaced', async (t) => {
  process.env['MEMSHARD_FAULT_INJECTION'] = '1';
  let ms: { daemon: Daemon; udp: number };
  try {
    ms = await withUdp(startDaemon, ['-t', '2']);
  } finally {
    delete process.env['MEMSHARD_FAULT_INJECTION'];
  }
  const { daemon, udp } = ms;
  t.teardown(() => daemon.stop());
  // many source ports: with SO_REUSEPORT the kernel spreads them over the threads
  const clients = await Promise.all(Array.from({ length: 8 }, () => UdpClient.open()));
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  const answers = await Promise.all(clients.map((c) => c.request(udp, text('version\r\n'))));
  t.ok(answers.every((a) => a.length === 1), 'every client is answered');
  for (const thread of [0, 1]) {
    const admin = await rawClient(daemon.port);
    admin.send(`debug crash_thread ${thread}\r\n`);
    t.equal(await admin.readUntil('\r\n'), 'OK\r\n', `thread ${thread} crashes`);
    await admin.close();
    // the replacement binds the port again; until then other threads (or nobody) answer
    const deadline = Date.now() + 10_000;
    let served = 0;
    while (Date.now() < deadline) {
      const results = await Promise.all(clients.map((c) => c.request(udp, text('version\r\n'), { quietMs: 100 })));
      served = results.filter((r) => r.length === 1).length;
      const restarts = await rawClient(daemon.port).then(async (c) => {
        c.send('stats\r\n');
        const s = await c.readUntil('END\r\n');
        await c.close();
        return Number(/STAT memshard_worker_restarts (\d+)/.exec(s)?.[1] ?? 0);
      });
      if (served === clients.length && restarts > thread) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    t.equal(served, clients.length, `after thread ${thread} was replaced every client is answered again`);
  }
});

t.test('-U: off by default, a port number, refused with authentication (as memcached)', async (t) => {
  const cli = (args: string[]) => spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', timeout: 10_000 });
  const help = cli(['--help']);
  t.match(help.stdout, /-U, --udp-port\s+UDP port to listen on \(default: 0, off\)/);
  const dir = mkdtempSync(join(tmpdir(), 'memshard-udp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pwdb = join(dir, 'users');
  writeFileSync(pwdb, 'user:pass\n');
  for (const [args, message] of [
    [['-U', '65536'], /-U\/--udp-port: must be an integer from 0 to 65535/],
    [['-U', '-1'], /-U\/--udp-port/],
    [['-U', '11311', '-S', '--sasl-pwdb', pwdb], /-U\/--udp-port: cannot enable UDP while using binary SASL/],
    [['-U', '11311', '-Y', pwdb], /-U\/--udp-port: cannot use UDP with ascii authentication/],
  ] as const) {
    const r = cli([...args, '--metrics-port', '0']);
    t.equal(r.status, 64, `${args.join(' ')}: EX_USAGE`);
    t.match(r.stderr, message);
  }
  // off by default: nothing answers on the TCP port's number over UDP
  const daemon = await startDaemon();
  t.teardown(() => daemon.stop());
  const client = await UdpClient.open();
  t.teardown(() => client.close());
  t.same(await client.request(daemon.port, text('version\r\n'), { quietMs: 300 }), []);
  const c = await rawClient(daemon.port);
  c.send('stats settings\r\n');
  t.match(await c.readUntil('END\r\n'), /STAT udpport 0\r\n/);
  await c.close();
});
