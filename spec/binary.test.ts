/**
 * memcached's binary protocol over a raw socket, packet for packet against memcached 1.6.18's
 * answers (every expected status, extras, key, value and error text below was taken from what
 * /usr/bin/memcached answers). BINARY_TARGET=memcached runs the suite against memcached itself.
 */
import t, { type Test } from 'tap';
import { rawClient, startDaemon, startMemcached, type Daemon, type RawClient } from './helpers/daemon.js';
import {
  Op,
  Status,
  counterExtras,
  parseResponses,
  readResponses,
  readResponsesThrough,
  request as R,
  roundTrip,
  storeExtras,
  summary,
  u32,
  type Response,
} from './helpers/binary.js';

const start = process.env['BINARY_TARGET'] === 'memcached' ? startMemcached : startDaemon;
const ARGS = ['-t', '4', '-m', '64', '-I', '1m'];

let daemon: Daemon;

t.before(async () => {
  daemon = await start(ARGS);
});
t.teardown(async () => {
  await daemon?.stop();
});

async function client(t: Test, d: Daemon = daemon): Promise<RawClient> {
  const c = await rawClient(d.port);
  t.teardown(() => c.close());
  return c;
}

// memcached's error texts (the value of an error response)
const NOT_FOUND = 'Not found';
const EXISTS = 'Data exists for key.';
const NOT_STORED = 'Not stored.';
const TOO_LARGE = 'Too large.';
const EINVAL = 'Invalid arguments';
const NON_NUMERIC = 'Non-numeric server-side value for incr or decr';
const UNKNOWN = 'Unknown command';

interface Want {
  opcode: number;
  opaque: number;
  status?: number;
  key?: string;
  /** hex */
  extras?: string;
  value?: string;
}
const want = (w: Want) => ({
  opcode: w.opcode,
  status: w.status ?? 0,
  opaque: w.opaque,
  key: w.key ?? '',
  extras: w.extras ?? '',
  value: w.value ?? '',
});
const flagsHex = (f: number) => u32(f).toString('hex');
const u64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b.toString('latin1');
};

/** Exact comparison of every packet (magic 0x81 and data type 0 included), in order. */
function expectPackets(t: Test, got: Response[], wanted: Want[], msg: string): void {
  t.same(got.map(summary), wanted.map(want), msg);
  t.same(
    got.map((r) => [r.magic, r.dataType]),
    got.map(() => [0x81, 0]),
    `${msg}: magic 0x81, data type 0`,
  );
}

/** Error responses and miss responses carry CAS 0. */
function casZero(t: Test, rs: Response[], msg: string): void {
  t.same(
    rs.map((r) => r.cas),
    rs.map(() => 0n),
    msg,
  );
}

const set = (key: string, value: string | Buffer, opts: { flags?: number; exp?: number; opaque?: number; cas?: bigint; opcode?: number } = {}) =>
  R({ opcode: opts.opcode ?? Op.Set, key, extras: storeExtras(opts.flags ?? 0, opts.exp ?? 0), value, opaque: opts.opaque ?? 0, ...(opts.cas !== undefined ? { cas: opts.cas } : {}) });

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

t.test('Set, Get, GetK: hit and miss, flags, opaque, CAS', async (t) => {
  const c = await client(t);
  const [s] = await roundTrip(c, set('g:a', 'hello', { flags: 0xdeadbeef, opaque: 0xfeedf00d }), 1);
  expectPackets(t, [s!], [{ opcode: Op.Set, opaque: 0xfeedf00d }], 'Set answers ok, opaque echoed');
  t.not(s!.cas, 0n, 'Set returns a CAS');

  const rs = await roundTrip(
    c,
    [R({ opcode: Op.Get, key: 'g:a', opaque: 1 }), R({ opcode: Op.Get, key: 'g:none', opaque: 2 }), R({ opcode: Op.GetK, key: 'g:a', opaque: 3 }), R({ opcode: Op.GetK, key: 'g:none', opaque: 4 })],
    4,
  );
  expectPackets(
    t,
    rs,
    [
      { opcode: Op.Get, opaque: 1, extras: 'deadbeef', value: 'hello' },
      { opcode: Op.Get, opaque: 2, status: Status.KEY_ENOENT, value: NOT_FOUND },
      { opcode: Op.GetK, opaque: 3, key: 'g:a', extras: 'deadbeef', value: 'hello' },
      { opcode: Op.GetK, opaque: 4, status: Status.KEY_ENOENT, key: 'g:none' },
    ],
    'Get/GetK hit and miss',
  );
  t.same([rs[0]!.cas, rs[1]!.cas, rs[2]!.cas, rs[3]!.cas], [s!.cas, 0n, s!.cas, 0n], 'hits carry the item CAS, misses 0');

  // binary-safe value, zero-length value, 250-byte key
  const bin = Buffer.from([0, 0xff, 0x80, 13, 10, 0x20, 0]);
  const key250 = 'k'.repeat(250);
  const rs2 = await roundTrip(
    c,
    [set('g:bin', bin, { flags: 1, opaque: 5 }), set('g:empty', '', { opaque: 6 }), set(key250, 'x', { opaque: 7 }), R({ opcode: Op.Get, key: 'g:bin', opaque: 8 }), R({ opcode: Op.Get, key: 'g:empty', opaque: 9 }), R({ opcode: Op.GetK, key: key250, opaque: 10 })],
    6,
  );
  expectPackets(
    t,
    rs2,
    [
      { opcode: Op.Set, opaque: 5 },
      { opcode: Op.Set, opaque: 6 },
      { opcode: Op.Set, opaque: 7 },
      { opcode: Op.Get, opaque: 8, extras: flagsHex(1), value: bin.toString('latin1') },
      { opcode: Op.Get, opaque: 9, extras: flagsHex(0) },
      { opcode: Op.GetK, opaque: 10, key: key250, extras: flagsHex(0), value: 'x' },
    ],
    'binary value, empty value, 250-byte key',
  );
});

t.test('CAS is returned and honoured by Set and Delete', async (t) => {
  const c = await client(t);
  const [s1] = await roundTrip(c, set('cas:a', 'v1', { opaque: 1 }), 1);
  const cas1 = s1!.cas;
  t.not(cas1, 0n, 'CAS from Set');
  const [g] = await roundTrip(c, R({ opcode: Op.Get, key: 'cas:a', opaque: 2 }), 1);
  t.equal(g!.cas, cas1, 'Get returns the same CAS');

  const [ok] = await roundTrip(c, set('cas:a', 'v2', { opaque: 3, cas: cas1 }), 1);
  expectPackets(t, [ok!], [{ opcode: Op.Set, opaque: 3 }], 'Set with the current CAS succeeds');
  t.not(ok!.cas, cas1, 'a new CAS after the update');
  t.not(ok!.cas, 0n, 'new CAS is not 0');

  const rs = await roundTrip(
    c,
    [
      set('cas:a', 'v3', { opaque: 4, cas: cas1 }),
      set('cas:missing', 'v', { opaque: 5, cas: 12345n }),
      R({ opcode: Op.Delete, key: 'cas:a', opaque: 6, cas: cas1 }),
      R({ opcode: Op.Get, key: 'cas:a', opaque: 7 }),
      R({ opcode: Op.Delete, key: 'cas:a', opaque: 8, cas: ok!.cas }),
      R({ opcode: Op.Delete, key: 'cas:a', opaque: 9 }),
    ],
    6,
  );
  expectPackets(
    t,
    rs,
    [
      { opcode: Op.Set, opaque: 4, status: Status.KEY_EEXISTS, value: EXISTS },
      { opcode: Op.Set, opaque: 5, status: Status.KEY_ENOENT, value: NOT_FOUND },
      { opcode: Op.Delete, opaque: 6, status: Status.KEY_EEXISTS, value: EXISTS },
      { opcode: Op.Get, opaque: 7, extras: flagsHex(0), value: 'v2' },
      { opcode: Op.Delete, opaque: 8 },
      { opcode: Op.Delete, opaque: 9, status: Status.KEY_ENOENT, value: NOT_FOUND },
    ],
    'stale CAS -> exists, CAS on a missing key -> not found, Delete honours CAS',
  );
  casZero(t, [rs[0]!, rs[1]!, rs[2]!, rs[5]!], 'errors carry CAS 0');
  t.equal(rs[3]!.cas, ok!.cas, 'the failed updates left the item (and its CAS) alone');
});

t.test('Add, Replace, Append, Prepend', async (t) => {
  const c = await client(t);
  const rs = await roundTrip(
    c,
    [
      set('ar:a', 'mid', { opcode: Op.Add, flags: 7, opaque: 1 }),
      set('ar:a', 'x', { opcode: Op.Add, opaque: 2 }),
      set('ar:none', 'x', { opcode: Op.Replace, opaque: 3 }),
      R({ opcode: Op.Append, key: 'ar:a', value: '>>', opaque: 4 }),
      R({ opcode: Op.Prepend, key: 'ar:a', value: '<<', opaque: 5 }),
      R({ opcode: Op.Append, key: 'ar:none', value: 'x', opaque: 6 }),
      R({ opcode: Op.Prepend, key: 'ar:none', value: 'x', opaque: 7 }),
      R({ opcode: Op.Get, key: 'ar:a', opaque: 8 }),
      set('ar:a', 'new', { opcode: Op.Replace, flags: 9, opaque: 9 }),
      R({ opcode: Op.Get, key: 'ar:a', opaque: 10 }),
      R({ opcode: Op.Get, key: 'ar:none', opaque: 11 }),
    ],
    11,
  );
  expectPackets(
    t,
    rs,
    [
      { opcode: Op.Add, opaque: 1 },
      { opcode: Op.Add, opaque: 2, status: Status.KEY_EEXISTS, value: EXISTS },
      { opcode: Op.Replace, opaque: 3, status: Status.KEY_ENOENT, value: NOT_FOUND },
      { opcode: Op.Append, opaque: 4 },
      { opcode: Op.Prepend, opaque: 5 },
      { opcode: Op.Append, opaque: 6, status: Status.NOT_STORED, value: NOT_STORED },
      { opcode: Op.Prepend, opaque: 7, status: Status.NOT_STORED, value: NOT_STORED },
      { opcode: Op.Get, opaque: 8, extras: flagsHex(7), value: '<<mid>>' },
      { opcode: Op.Replace, opaque: 9 },
      { opcode: Op.Get, opaque: 10, extras: flagsHex(9), value: 'new' },
      { opcode: Op.Get, opaque: 11, status: Status.KEY_ENOENT, value: NOT_FOUND },
    ],
    'add/replace/append/prepend hit and miss',
  );
  for (const i of [0, 3, 4, 8]) t.not(rs[i]!.cas, 0n, `successful op ${rs[i]!.opcode} returns a CAS`);
  t.ok(rs[3]!.cas !== rs[0]!.cas && rs[4]!.cas !== rs[3]!.cas, 'append/prepend change the CAS');
  casZero(t, [rs[1]!, rs[2]!, rs[5]!, rs[6]!], 'errors carry CAS 0');
});

t.test('Increment and Decrement: initial value, expiration, non-numeric, wrap', async (t) => {
  const c = await client(t);
  const rs = await roundTrip(
    c,
    [
      R({ opcode: Op.Increment, key: 'n:c', extras: counterExtras(1n, 0n, 0xffffffff), opaque: 1 }),
      R({ opcode: Op.Decrement, key: 'n:c', extras: counterExtras(1n, 0n, 0xffffffff), opaque: 2 }),
      R({ opcode: Op.Increment, key: 'n:c', extras: counterExtras(1n, 10n, 0), opaque: 3 }),
      R({ opcode: Op.Increment, key: 'n:c', extras: counterExtras(5n, 10n, 0), opaque: 4 }),
      R({ opcode: Op.Decrement, key: 'n:c', extras: counterExtras(100n, 10n, 0), opaque: 5 }),
      R({ opcode: Op.Get, key: 'n:c', opaque: 6 }),
      R({ opcode: Op.Decrement, key: 'n:d', extras: counterExtras(1n, 7n, 0), opaque: 7 }),
      R({ opcode: Op.Get, key: 'n:d', opaque: 8 }),
      R({ opcode: Op.Increment, key: 'n:max', extras: counterExtras(1n, 18446744073709551615n, 0), opaque: 9 }),
      R({ opcode: Op.Increment, key: 'n:max', extras: counterExtras(1n, 0n, 0), opaque: 11 }),
      R({ opcode: Op.Get, key: 'n:max', opaque: 12 }),
      set('n:w', '18446744073709551610', { opaque: 13 }),
      R({ opcode: Op.Increment, key: 'n:w', extras: counterExtras(10n, 0n, 0), opaque: 14 }),
      R({ opcode: Op.Get, key: 'n:w', opaque: 15 }),
      set('n:word', 'abc', { opaque: 16 }),
      R({ opcode: Op.Increment, key: 'n:word', extras: counterExtras(1n, 0n, 0), opaque: 17 }),
      R({ opcode: Op.Decrement, key: 'n:word', extras: counterExtras(1n, 0n, 0), opaque: 18 }),
    ],
    17,
  );
  expectPackets(
    t,
    rs,
    [
      { opcode: Op.Increment, opaque: 1, status: Status.KEY_ENOENT, value: NOT_FOUND },
      { opcode: Op.Decrement, opaque: 2, status: Status.KEY_ENOENT, value: NOT_FOUND },
      { opcode: Op.Increment, opaque: 3, value: u64(10n) },
      { opcode: Op.Increment, opaque: 4, value: u64(15n) },
      { opcode: Op.Decrement, opaque: 5, value: u64(0n) },
      // memcached rewrites a shrinking number in place, padded with spaces
      { opcode: Op.Get, opaque: 6, extras: flagsHex(0), value: '0 ' },
      { opcode: Op.Decrement, opaque: 7, value: u64(7n) },
      { opcode: Op.Get, opaque: 8, extras: flagsHex(0), value: '7' },
      { opcode: Op.Increment, opaque: 9, value: u64(18446744073709551615n) },
      // wraps to 0, rewritten in place (padded). (Not preceded by a Get of the same key in the
      // same batch: memcached only pads when no pending response still references the item.)
      { opcode: Op.Increment, opaque: 11, value: u64(0n) },
      { opcode: Op.Get, opaque: 12, extras: flagsHex(0), value: '0'.padEnd(20, ' ') },
      { opcode: Op.Set, opaque: 13 },
      { opcode: Op.Increment, opaque: 14, value: u64(4n) },
      { opcode: Op.Get, opaque: 15, extras: flagsHex(0), value: '4'.padEnd(20, ' ') },
      { opcode: Op.Set, opaque: 16 },
      { opcode: Op.Increment, opaque: 17, status: Status.DELTA_BADVAL, value: NON_NUMERIC },
      { opcode: Op.Decrement, opaque: 18, status: Status.DELTA_BADVAL, value: NON_NUMERIC },
    ],
    'incr/decr replies',
  );
  for (const i of [2, 3, 4, 6, 8, 9, 12]) t.not(rs[i]!.cas, 0n, `counter reply ${rs[i]!.opaque} carries a CAS`);
  t.equal(rs[5]!.cas, rs[4]!.cas, 'Get after Decrement sees the Decrement CAS');
  casZero(t, [rs[0]!, rs[1]!, rs[15]!, rs[16]!], 'errors carry CAS 0');
  const [dGet] = await roundTrip(c, R({ opcode: Op.Get, key: 'n:d', opaque: 19 }), 1);
  t.equal(dGet!.cas, rs[6]!.cas, 'a seeded counter keeps the CAS its reply gave');

  // the expiration extras of a seeded counter apply to the new item
  const [seeded] = await roundTrip(c, R({ opcode: Op.Increment, key: 'n:exp', extras: counterExtras(1n, 3n, 1), opaque: 20 }), 1);
  expectPackets(t, [seeded!], [{ opcode: Op.Increment, opaque: 20, value: u64(3n) }], 'seeded with exptime 1');
  await sleep(2100);
  const [gone] = await roundTrip(c, R({ opcode: Op.Get, key: 'n:exp', opaque: 21 }), 1);
  expectPackets(t, [gone!], [{ opcode: Op.Get, opaque: 21, status: Status.KEY_ENOENT, value: NOT_FOUND }], 'seeded counter expired');
});

t.test('Touch, GAT, GATQ, GATK, GATKQ', async (t) => {
  const c = await client(t);
  const [s] = await roundTrip(c, set('t:a', 'tv', { flags: 3, opaque: 1 }), 1);
  const rs = await roundTrip(
    c,
    [
      R({ opcode: Op.Touch, key: 't:a', extras: u32(100), opaque: 2 }),
      R({ opcode: Op.Touch, key: 't:none', extras: u32(100), opaque: 3 }),
      R({ opcode: Op.GAT, key: 't:a', extras: u32(100), opaque: 4 }),
      R({ opcode: Op.GAT, key: 't:none', extras: u32(100), opaque: 5 }),
      R({ opcode: Op.GATK, key: 't:a', extras: u32(100), opaque: 6 }),
      R({ opcode: Op.GATK, key: 't:none', extras: u32(100), opaque: 7 }),
      R({ opcode: Op.GATQ, key: 't:a', extras: u32(100), opaque: 8 }),
      R({ opcode: Op.GATQ, key: 't:none', extras: u32(100), opaque: 9 }),
      R({ opcode: Op.GATKQ, key: 't:a', extras: u32(100), opaque: 10 }),
      R({ opcode: Op.GATKQ, key: 't:none', extras: u32(100), opaque: 11 }),
      R({ opcode: Op.Noop, opaque: 12 }),
    ],
    9,
  );
  expectPackets(
    t,
    rs,
    [
      { opcode: Op.Touch, opaque: 2, extras: flagsHex(3) },
      { opcode: Op.Touch, opaque: 3, status: Status.KEY_ENOENT, value: NOT_FOUND },
      { opcode: Op.GAT, opaque: 4, extras: flagsHex(3), value: 'tv' },
      { opcode: Op.GAT, opaque: 5, status: Status.KEY_ENOENT, value: NOT_FOUND },
      { opcode: Op.GATK, opaque: 6, key: 't:a', extras: flagsHex(3), value: 'tv' },
      { opcode: Op.GATK, opaque: 7, status: Status.KEY_ENOENT, key: 't:none' },
      { opcode: Op.GATQ, opaque: 8, extras: flagsHex(3), value: 'tv' },
      { opcode: Op.GATKQ, opaque: 10, key: 't:a', extras: flagsHex(3), value: 'tv' },
      { opcode: Op.Noop, opaque: 12 },
    ],
    'touch/gat family hit and miss; quiet misses are silent',
  );
  t.same(
    rs.map((r) => r.cas),
    [s!.cas, 0n, s!.cas, 0n, s!.cas, 0n, s!.cas, s!.cas, 0n],
    'hits carry the item CAS (touch does not change it)',
  );
  t.equal(c.pending().length, 0, 'nothing more');

  // expiration: Touch/GAT/GATK shorten it to 1 s, a control key keeps 100 s
  const setup = await roundTrip(
    c,
    [
      set('t:set1', 'a', { exp: 1, opaque: 20 }),
      set('t:touch', 'b', { exp: 100, opaque: 21 }),
      set('t:gat', 'c', { exp: 0, opaque: 22 }),
      set('t:gatk', 'd', { exp: 0, opaque: 23 }),
      set('t:keep', 'e', { exp: 1, opaque: 24 }),
      R({ opcode: Op.Touch, key: 't:touch', extras: u32(1), opaque: 25 }),
      R({ opcode: Op.GAT, key: 't:gat', extras: u32(1), opaque: 26 }),
      R({ opcode: Op.GATK, key: 't:gatk', extras: u32(1), opaque: 27 }),
      R({ opcode: Op.Touch, key: 't:keep', extras: u32(100), opaque: 28 }),
    ],
    9,
  );
  t.same(
    setup.map((r) => r.status),
    setup.map(() => 0),
    'setup ok',
  );
  await sleep(2100);
  const after = await roundTrip(
    c,
    ['t:set1', 't:touch', 't:gat', 't:gatk', 't:keep'].map((key, i) => R({ opcode: Op.GetK, key, opaque: 30 + i })),
    5,
  );
  expectPackets(
    t,
    after,
    [
      { opcode: Op.GetK, opaque: 30, status: Status.KEY_ENOENT, key: 't:set1' },
      { opcode: Op.GetK, opaque: 31, status: Status.KEY_ENOENT, key: 't:touch' },
      { opcode: Op.GetK, opaque: 32, status: Status.KEY_ENOENT, key: 't:gat' },
      { opcode: Op.GetK, opaque: 33, status: Status.KEY_ENOENT, key: 't:gatk' },
      { opcode: Op.GetK, opaque: 34, key: 't:keep', extras: flagsHex(0), value: 'e' },
    ],
    'expired after 2 s except the key touched to 100 s',
  );
});

t.test('Noop, Version, Stat', async (t) => {
  const c = await client(t);
  const rs = await roundTrip(c, [R({ opcode: Op.Noop, opaque: 1 }), R({ opcode: Op.Version, opaque: 2 })], 2);
  t.same(summary(rs[0]!), want({ opcode: Op.Noop, opaque: 1 }), 'Noop');
  t.equal(rs[1]!.opcode, Op.Version);
  t.equal(rs[1]!.status, 0);
  t.equal(rs[1]!.opaque, 2);
  t.equal(rs[1]!.extras.length + rs[1]!.key.length, 0, 'Version: no extras, no key');
  t.match(rs[1]!.value.toString('latin1'), /^1\.6\.\d+$/, 'Version value is 1.6.x');
  casZero(t, rs, 'Noop/Version CAS 0');

  await roundTrip(c, set('st:a', 'x', { opaque: 3 }), 1);
  c.send(R({ opcode: Op.Stat, opaque: 0xabcdef01 }));
  const stats = await readResponsesThrough(c, (r) => r.bodyLength === 0);
  const last = stats[stats.length - 1]!;
  t.same(summary(last), want({ opcode: Op.Stat, opaque: 0xabcdef01 }), 'ends with an empty Stat packet');
  const body = stats.slice(0, -1);
  t.ok(body.length >= 30, `many stat packets (${body.length})`);
  t.same(
    body.filter((r) => r.opcode !== Op.Stat || r.status !== 0 || r.opaque !== 0xabcdef01 || r.key.length === 0 || r.extras.length !== 0).map(summary),
    [],
    'every stat packet: opcode 0x10, status 0, opaque echoed, a key, no extras',
  );
  const map = new Map(body.map((r) => [r.key.toString('latin1'), r.value.toString('latin1')]));
  for (const k of ['pid', 'uptime', 'time', 'version', 'curr_connections', 'total_connections', 'cmd_get', 'cmd_set', 'get_hits', 'get_misses', 'curr_items', 'total_items', 'bytes', 'limit_maxbytes', 'threads']) {
    t.match(map.get(k) ?? '<missing>', k === 'version' ? /^1\.6\.\d+$/ : /^\d+$/, `stat ${k}`);
  }
  t.equal(map.get('limit_maxbytes'), String(64 * 1024 * 1024), 'limit_maxbytes = -m 64');
  t.equal(map.get('threads'), '4', 'threads = -t 4');
  t.ok(Number(map.get('curr_items')) >= 1, 'curr_items counts the item');

  c.send(R({ opcode: Op.Stat, key: 'settings', opaque: 7 }));
  const settings = await readResponsesThrough(c, (r) => r.bodyLength === 0);
  t.same(summary(settings[settings.length - 1]!), want({ opcode: Op.Stat, opaque: 7 }), 'settings end with an empty packet');
  const smap = new Map(settings.slice(0, -1).map((r) => [r.key.toString('latin1'), r.value.toString('latin1')]));
  t.ok(settings.slice(0, -1).every((r) => r.opcode === Op.Stat && r.status === 0 && r.opaque === 7), 'settings packets ok, opaque echoed');
  t.equal(smap.get('maxbytes'), String(64 * 1024 * 1024), 'maxbytes');
  t.equal(smap.get('item_size_max'), '1048576', 'item_size_max');
  t.equal(smap.get('num_threads'), '4', 'num_threads');
  t.equal(smap.get('cas_enabled'), 'yes', 'cas_enabled');
  t.equal(smap.get('binding_protocol'), 'auto-negotiate', 'binding_protocol');

  const bogus = await roundTrip(c, [R({ opcode: Op.Stat, key: 'bogus', opaque: 8 }), R({ opcode: Op.Noop, opaque: 9 })], 2);
  expectPackets(
    t,
    bogus,
    [
      { opcode: Op.Stat, opaque: 8, status: Status.KEY_ENOENT, value: NOT_FOUND },
      { opcode: Op.Noop, opaque: 9 },
    ],
    'unknown stat group -> not found, connection usable',
  );
});

t.test('quiet pipeline: GetKQ/GetQ hits in order, then the Noop', async (t) => {
  const c = await client(t);
  await roundTrip(c, [set('q:h1', 'v1', { flags: 1 }), set('q:h2', 'v2', { flags: 2 }), set('q:h3', '', { flags: 3 })], 3);
  const rs = await roundTrip(
    c,
    [
      R({ opcode: Op.GetKQ, key: 'q:m1', opaque: 1 }),
      R({ opcode: Op.GetKQ, key: 'q:h1', opaque: 2 }),
      R({ opcode: Op.GetKQ, key: 'q:m2', opaque: 3 }),
      R({ opcode: Op.GetKQ, key: 'q:h2', opaque: 4 }),
      R({ opcode: Op.GetKQ, key: 'q:m3', opaque: 5 }),
      R({ opcode: Op.GetKQ, key: 'q:h3', opaque: 6 }),
      R({ opcode: Op.GetQ, key: 'q:h1', opaque: 7 }),
      R({ opcode: Op.GetQ, key: 'q:m4', opaque: 8 }),
      R({ opcode: Op.Noop, opaque: 9 }),
    ],
    5,
  );
  expectPackets(
    t,
    rs,
    [
      { opcode: Op.GetKQ, opaque: 2, key: 'q:h1', extras: flagsHex(1), value: 'v1' },
      { opcode: Op.GetKQ, opaque: 4, key: 'q:h2', extras: flagsHex(2), value: 'v2' },
      { opcode: Op.GetKQ, opaque: 6, key: 'q:h3', extras: flagsHex(3) },
      { opcode: Op.GetQ, opaque: 7, extras: flagsHex(1), value: 'v1' },
      { opcode: Op.Noop, opaque: 9 },
    ],
    'exactly the hits, then the Noop',
  );
  await sleep(100);
  t.equal(c.pending().length, 0, 'nothing after the Noop');

  // a pipeline of misses only: just the Noop
  const only = await roundTrip(c, [...Array.from({ length: 50 }, (_, i) => R({ opcode: Op.GetKQ, key: `q:none${i}`, opaque: i })), R({ opcode: Op.Noop, opaque: 99 })], 1);
  expectPackets(t, only, [{ opcode: Op.Noop, opaque: 99 }], '50 quiet misses, then the Noop');
});

t.test('quiet mutations: silent on success, errors answered', async (t) => {
  const c = await client(t);
  const ok = await roundTrip(
    c,
    [
      set('qm:a', '1', { opcode: Op.SetQ, opaque: 1 }),
      set('qm:b', '1', { opcode: Op.AddQ, opaque: 2 }),
      set('qm:a', '5', { opcode: Op.ReplaceQ, opaque: 3 }),
      R({ opcode: Op.AppendQ, key: 'qm:a', value: '6', opaque: 4 }),
      R({ opcode: Op.PrependQ, key: 'qm:a', value: '4', opaque: 5 }),
      R({ opcode: Op.IncrementQ, key: 'qm:a', extras: counterExtras(1n, 0n, 0), opaque: 6 }),
      R({ opcode: Op.DecrementQ, key: 'qm:a', extras: counterExtras(2n, 0n, 0), opaque: 7 }),
      R({ opcode: Op.IncrementQ, key: 'qm:seed', extras: counterExtras(1n, 42n, 0), opaque: 8 }),
      R({ opcode: Op.DeleteQ, key: 'qm:b', opaque: 9 }),
      R({ opcode: Op.GetK, key: 'qm:a', opaque: 10 }),
      R({ opcode: Op.GetK, key: 'qm:seed', opaque: 11 }),
      R({ opcode: Op.GetK, key: 'qm:b', opaque: 12 }),
      R({ opcode: Op.Noop, opaque: 13 }),
    ],
    4,
  );
  expectPackets(
    t,
    ok,
    [
      { opcode: Op.GetK, opaque: 10, key: 'qm:a', extras: flagsHex(0), value: '455' },
      { opcode: Op.GetK, opaque: 11, key: 'qm:seed', extras: flagsHex(0), value: '42' },
      { opcode: Op.GetK, opaque: 12, status: Status.KEY_ENOENT, key: 'qm:b' },
      { opcode: Op.Noop, opaque: 13 },
    ],
    'successful quiet mutations are silent',
  );

  const errs = await roundTrip(
    c,
    [
      set('qm:a', 'x', { opcode: Op.AddQ, opaque: 21 }),
      set('qm:none', 'x', { opcode: Op.ReplaceQ, opaque: 22 }),
      R({ opcode: Op.AppendQ, key: 'qm:none', value: 'x', opaque: 23 }),
      R({ opcode: Op.PrependQ, key: 'qm:none', value: 'x', opaque: 24 }),
      R({ opcode: Op.DeleteQ, key: 'qm:none', opaque: 25 }),
      R({ opcode: Op.IncrementQ, key: 'qm:none', extras: counterExtras(1n, 0n, 0xffffffff), opaque: 26 }),
      R({ opcode: Op.DecrementQ, key: 'qm:none', extras: counterExtras(1n, 0n, 0xffffffff), opaque: 27 }),
      set('qm:none', 'x', { opcode: Op.SetQ, opaque: 28, cas: 5n }),
      set('qm:a', 'x', { opcode: Op.SetQ, opaque: 29, cas: 1n }),
      set('qm:word', 'abc', { opcode: Op.SetQ, opaque: 30 }),
      R({ opcode: Op.IncrementQ, key: 'qm:word', extras: counterExtras(1n, 0n, 0), opaque: 31 }),
      R({ opcode: Op.Noop, opaque: 32 }),
    ],
    11,
  );
  expectPackets(
    t,
    errs,
    [
      { opcode: Op.AddQ, opaque: 21, status: Status.KEY_EEXISTS, value: EXISTS },
      { opcode: Op.ReplaceQ, opaque: 22, status: Status.KEY_ENOENT, value: NOT_FOUND },
      { opcode: Op.AppendQ, opaque: 23, status: Status.NOT_STORED, value: NOT_STORED },
      { opcode: Op.PrependQ, opaque: 24, status: Status.NOT_STORED, value: NOT_STORED },
      { opcode: Op.DeleteQ, opaque: 25, status: Status.KEY_ENOENT, value: NOT_FOUND },
      { opcode: Op.IncrementQ, opaque: 26, status: Status.KEY_ENOENT, value: NOT_FOUND },
      { opcode: Op.DecrementQ, opaque: 27, status: Status.KEY_ENOENT, value: NOT_FOUND },
      { opcode: Op.SetQ, opaque: 28, status: Status.KEY_ENOENT, value: NOT_FOUND },
      { opcode: Op.SetQ, opaque: 29, status: Status.KEY_EEXISTS, value: EXISTS },
      { opcode: Op.IncrementQ, opaque: 31, status: Status.DELTA_BADVAL, value: NON_NUMERIC },
      { opcode: Op.Noop, opaque: 32 },
    ],
    'quiet mutation errors are answered (with the quiet opcode)',
  );
  casZero(t, errs, 'errors carry CAS 0');
});

t.test('Flush and FlushQ, with and without an expiration', async (t) => {
  // its own daemon: a flush empties everything
  const d = await start(ARGS);
  t.teardown(() => d.stop());
  const c = await client(t, d);
  const seed = (p: string) => [set(`${p}1`, 'a'), set(`${p}2`, 'b')];
  const miss = (p: string, o: number) => [R({ opcode: Op.GetK, key: `${p}1`, opaque: o }), R({ opcode: Op.GetK, key: `${p}2`, opaque: o + 1 })];
  const missed = (p: string, o: number): Want[] => [
    { opcode: Op.GetK, opaque: o, status: Status.KEY_ENOENT, key: `${p}1` },
    { opcode: Op.GetK, opaque: o + 1, status: Status.KEY_ENOENT, key: `${p}2` },
  ];

  await roundTrip(c, seed('f:'), 2);
  let rs = await roundTrip(c, [R({ opcode: Op.Flush, opaque: 1 }), ...miss('f:', 2)], 3);
  expectPackets(t, rs, [{ opcode: Op.Flush, opaque: 1 }, ...missed('f:', 2)], 'Flush without extras');

  await roundTrip(c, seed('f:'), 2);
  rs = await roundTrip(c, [R({ opcode: Op.Flush, extras: u32(0), opaque: 4 }), ...miss('f:', 5)], 3);
  expectPackets(t, rs, [{ opcode: Op.Flush, opaque: 4 }, ...missed('f:', 5)], 'Flush with expiration 0');

  await roundTrip(c, seed('f:'), 2);
  rs = await roundTrip(c, [R({ opcode: Op.FlushQ, opaque: 7 }), ...miss('f:', 8), R({ opcode: Op.Noop, opaque: 10 })], 3);
  expectPackets(t, rs, [...missed('f:', 8), { opcode: Op.Noop, opaque: 10 }], 'FlushQ without extras is silent');

  await roundTrip(c, seed('f:'), 2);
  rs = await roundTrip(c, [R({ opcode: Op.FlushQ, extras: u32(0), opaque: 11 }), ...miss('f:', 12), R({ opcode: Op.Noop, opaque: 14 })], 3);
  expectPackets(t, rs, [...missed('f:', 12), { opcode: Op.Noop, opaque: 14 }], 'FlushQ with expiration 0 is silent');

  // delayed flush: items stay until the delay has passed
  await roundTrip(c, seed('fd:'), 2);
  rs = await roundTrip(c, [R({ opcode: Op.Flush, extras: u32(2), opaque: 15 }), R({ opcode: Op.GetK, key: 'fd:1', opaque: 16 })], 2);
  expectPackets(
    t,
    rs,
    [
      { opcode: Op.Flush, opaque: 15 },
      { opcode: Op.GetK, opaque: 16, key: 'fd:1', extras: flagsHex(0), value: 'a' },
    ],
    'Flush with a 2 s delay: items still there',
  );
  await sleep(3100);
  rs = await roundTrip(c, miss('fd:', 17), 2);
  expectPackets(t, rs, missed('fd:', 17), 'gone after the delay');
});

t.test('Quit answers then closes; QuitQ closes silently', async (t) => {
  const c1 = await client(t);
  c1.send(Buffer.concat([R({ opcode: Op.Noop, opaque: 1 }), R({ opcode: Op.Quit, opaque: 2 }), R({ opcode: Op.Noop, opaque: 3 })]));
  const rest = await c1.waitForClose(3000);
  expectPackets(t, parseResponses(rest), [{ opcode: Op.Noop, opaque: 1 }, { opcode: Op.Quit, opaque: 2 }], 'Quit answered, nothing after it, closed');

  const c2 = await client(t);
  c2.send(Buffer.concat([R({ opcode: Op.Noop, opaque: 1 }), R({ opcode: Op.QuitQ, opaque: 2 }), R({ opcode: Op.Noop, opaque: 3 })]));
  const rest2 = await c2.waitForClose(3000);
  expectPackets(t, parseResponses(rest2), [{ opcode: Op.Noop, opaque: 1 }], 'QuitQ: silent, closed');
});

t.test('unknown opcode: 0x81, the body is skipped, connection stays usable', async (t) => {
  const c = await client(t);
  let rs = await roundTrip(c, [R({ opcode: 0x50, opaque: 1 }), R({ opcode: Op.Noop, opaque: 2 })], 2);
  expectPackets(
    t,
    rs,
    [
      { opcode: 0x50, opaque: 1, status: Status.UNKNOWN_COMMAND, value: UNKNOWN },
      { opcode: Op.Noop, opaque: 2 },
    ],
    'unknown opcode without a body',
  );
  // with a body (a value): swallowed. (memcached 1.6.18 mis-skips an unknown command's *key*,
  // so the key-less form is the one with defined behaviour.)
  rs = await roundTrip(c, [R({ opcode: 0x50, value: 'some body bytes', opaque: 3 }), R({ opcode: 0x7f, opaque: 4 }), R({ opcode: Op.Noop, opaque: 5 })], 3);
  expectPackets(
    t,
    rs,
    [
      { opcode: 0x50, opaque: 3, status: Status.UNKNOWN_COMMAND, value: UNKNOWN },
      { opcode: 0x7f, opaque: 4, status: Status.UNKNOWN_COMMAND, value: UNKNOWN },
      { opcode: Op.Noop, opaque: 5 },
    ],
    'unknown opcode with a body, then more',
  );
  casZero(t, rs, 'CAS 0');
  t.notOk(c.isClosed(), 'still open');
});

t.test('a value over -I 1m: 3 too large, body swallowed, connection usable', async (t) => {
  const c = await client(t);
  const big = Buffer.alloc(2 * 1024 * 1024, 0x61);
  const rs = await roundTrip(
    c,
    [set('big:a', big, { opaque: 1 }), R({ opcode: Op.Noop, opaque: 2 }), R({ opcode: Op.Get, key: 'big:a', opaque: 3 })],
    3,
    10_000,
  );
  expectPackets(
    t,
    rs,
    [
      { opcode: Op.Set, opaque: 1, status: Status.E2BIG, value: TOO_LARGE },
      { opcode: Op.Noop, opaque: 2 },
      { opcode: Op.Get, opaque: 3, status: Status.KEY_ENOENT, value: NOT_FOUND },
    ],
    'too large, then Noop and Get answered',
  );
  // and the largest value that does fit still works (1 MB item, minus key and overhead)
  const fits = Buffer.alloc(1024 * 1024 - 512, 0x62);
  const rs2 = await roundTrip(c, [set('big:b', fits, { opaque: 4 }), R({ opcode: Op.Get, key: 'big:b', opaque: 5 })], 2, 10_000);
  t.equal(rs2[0]!.status, 0, 'a value just under 1 MB is stored');
  t.ok(rs2[1]!.value.equals(fits), 'and read back whole');
});

t.test('malformed requests: 4 invalid arguments and the connection closes', async (t) => {
  const cases: Array<[string, Buffer, number]> = [
    ['Get with 4 bytes of extras', R({ opcode: Op.Get, key: 'k', extras: u32(1), opaque: 1 }), Op.Get],
    ['Get without a key', R({ opcode: Op.Get, opaque: 1 }), Op.Get],
    ['Set without extras', R({ opcode: Op.Set, key: 'k', value: 'x', opaque: 1 }), Op.Set],
    ['Increment with 4 bytes of extras', R({ opcode: Op.Increment, key: 'k', extras: u32(1), opaque: 1 }), Op.Increment],
    ['Noop with a body', R({ opcode: Op.Noop, value: 'x', opaque: 1 }), Op.Noop],
    ['Get with a 251-byte key', R({ opcode: Op.Get, key: 'k'.repeat(251), opaque: 1 }), Op.Get],
  ];
  for (const [name, req, opcode] of cases) {
    const c = await client(t);
    c.send(Buffer.concat([req, R({ opcode: Op.Noop, opaque: 2 })]));
    const rest = await c.waitForClose(3000);
    expectPackets(t, parseResponses(rest), [{ opcode, opaque: 1, status: Status.EINVAL, value: EINVAL }], `${name}: invalid arguments, then closed`);
  }
});

t.test('a request with magic 0x81 later in the stream: earlier requests answered, then closed', async (t) => {
  // (the pipeline before the bad packet ends with a Noop: memcached flushes its answers there,
  // while answers still queued when it meets the bad magic are dropped with the connection)
  const c = await client(t);
  c.send(
    Buffer.concat([
      R({ opcode: Op.Noop, opaque: 1 }),
      R({ opcode: Op.Version, opaque: 2 }),
      R({ opcode: Op.Get, key: 'magic:none', opaque: 3 }),
      R({ opcode: Op.Noop, opaque: 4 }),
      R({ opcode: Op.Noop, opaque: 5, magic: 0x81 }),
      R({ opcode: Op.Noop, opaque: 6 }),
    ]),
  );
  const rs = parseResponses(await c.waitForClose(3000));
  t.same(
    rs.map((r) => [r.opcode, r.status, r.opaque]),
    [
      [Op.Noop, 0, 1],
      [Op.Version, 0, 2],
      [Op.Get, Status.KEY_ENOENT, 3],
      [Op.Noop, 0, 4],
    ],
    'answers for the valid requests only, nothing for the bad packet or after it, then closed',
  );

  // the bad packet in a later write of its own
  const c2 = await client(t);
  const first = await roundTrip(c2, [R({ opcode: Op.Noop, opaque: 1 }), R({ opcode: Op.Version, opaque: 2 })], 2);
  t.same(first.map((r) => r.opaque), [1, 2], 'binary session started');
  c2.send(Buffer.concat([R({ opcode: Op.Get, key: 'x', opaque: 3, magic: 0x81 }), R({ opcode: Op.Noop, opaque: 4 })]));
  t.equal((await c2.waitForClose(3000)).length, 0, 'bad magic: closed without an answer');
});

t.test('a mixed stream of many requests in one write, answered in order', async (t) => {
  const c = await client(t);
  const reqs: Buffer[] = [];
  const wanted: Want[] = [];
  let o = 1000;
  const N = 60;
  reqs.push(R({ opcode: Op.Delete, key: 'mx:ctr', opaque: o }));
  wanted.push({ opcode: Op.Delete, opaque: o++, status: Status.KEY_ENOENT, value: NOT_FOUND });
  for (let i = 0; i < N; i++) {
    const key = `mx:${i}`;
    const val = `value-${i}-${'z'.repeat(i * 7)}`;
    reqs.push(set(key, val, { opcode: Op.SetQ, flags: i, opaque: o++ }));
    reqs.push(R({ opcode: Op.GetK, key, opaque: o }));
    wanted.push({ opcode: Op.GetK, opaque: o++, key, extras: flagsHex(i), value: val });
    reqs.push(R({ opcode: Op.Increment, key: 'mx:ctr', extras: counterExtras(2n, 1n, 0), opaque: o }));
    wanted.push({ opcode: Op.Increment, opaque: o++, value: u64(i === 0 ? 1n : 1n + 2n * BigInt(i)) });
    reqs.push(R({ opcode: Op.GetKQ, key: `mx:none${i}`, opaque: o++ }));
    if (i % 3 === 0) {
      reqs.push(R({ opcode: Op.Delete, key, opaque: o }));
      wanted.push({ opcode: Op.Delete, opaque: o++ });
      reqs.push(R({ opcode: Op.Get, key, opaque: o }));
      wanted.push({ opcode: Op.Get, opaque: o++, status: Status.KEY_ENOENT, value: NOT_FOUND });
    } else {
      reqs.push(R({ opcode: Op.AppendQ, key, value: '!', opaque: o++ }));
      reqs.push(R({ opcode: Op.GetKQ, key, opaque: o }));
      wanted.push({ opcode: Op.GetKQ, opaque: o++, key, extras: flagsHex(i), value: `${val}!` });
    }
    if (i % 10 === 9) {
      reqs.push(R({ opcode: Op.Noop, opaque: o }));
      wanted.push({ opcode: Op.Noop, opaque: o++ });
    }
  }
  const rs = await roundTrip(c, reqs, wanted.length, 5000);
  expectPackets(t, rs, wanted, `${reqs.length} requests, ${wanted.length} answers, in order`);
  await sleep(100);
  t.equal(c.pending().length, 0, 'nothing extra');
});

t.test('a request split across many writes, one byte at a time', async (t) => {
  const c = await client(t);
  const bytes = Buffer.concat([set('split:a', 'abc', { flags: 5, opaque: 1 }), R({ opcode: Op.GetK, key: 'split:a', opaque: 2 })]);
  for (let i = 0; i < bytes.length; i++) {
    c.send(bytes.subarray(i, i + 1));
    if (i % 8 === 0) await sleep(1);
  }
  const rs = await readResponses(c, 2);
  expectPackets(
    t,
    rs,
    [
      { opcode: Op.Set, opaque: 1 },
      { opcode: Op.GetK, opaque: 2, key: 'split:a', extras: flagsHex(5), value: 'abc' },
    ],
    'answers once the bytes are complete',
  );
});

t.test('text and binary connections side by side see the same data', async (t) => {
  const b = await client(t);
  const a = await client(t);
  await roundTrip(b, set('mix:a', 'from-binary', { flags: 12 }), 1);
  a.send('get mix:a\r\n');
  t.equal(await a.readUntil('END\r\n'), 'VALUE mix:a 12 11\r\nfrom-binary\r\nEND\r\n', 'text get sees the binary set');
  a.send('set mix:b 3 0 9\r\nfrom-text\r\n');
  t.equal(await a.readUntil('\r\n'), 'STORED\r\n');
  const [g] = await roundTrip(b, R({ opcode: Op.GetK, key: 'mix:b', opaque: 1 }), 1);
  expectPackets(t, [g!], [{ opcode: Op.GetK, opaque: 1, key: 'mix:b', extras: flagsHex(3), value: 'from-text' }], 'binary get sees the text set');
});
