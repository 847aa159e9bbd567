/**
 * Parser hardening: a data block is never read as commands (numbers are read the way memcached
 * 1.6.18's safe_strtol/strtoul/strtoull read them, and a refused storage line whose length is
 * readable skips its block), and declared lengths are checked before anything is buffered.
 * The memcached replies below were taken from /usr/bin/memcached 1.6.18; the differential tests
 * check them again against it.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { BinaryParser, BinOp, BinParsed, BinStatus, HEADER } from '../lib/protocol/binary.js';
import { Op } from '../lib/protocol/command.js';
import { parseMetaLine } from '../lib/protocol/meta.js';
import { Errors, Parsed, parseI32, parseU32, parseU64, TextParser } from '../lib/protocol/text.js';
import { readResponse, request, Status, storeExtras } from './helpers/binary.js';
import { memcachedBin, rawClient, startDaemon, startMemcached, type Daemon, type RawClient } from './helpers/daemon.js';
import { seededRandom } from '../scripts/random.js';

const MAX_VALUE = 1024 * 1024;
const BAD = 'CLIENT_ERROR bad command line format';
const DATA = 'delete victim'; // 13 bytes: the block memcached runs as a command when it refuses the line

function textParse(input: string, maxValue = MAX_VALUE) {
  const buf = Buffer.from(input, 'latin1');
  const p = new TextParser(maxValue);
  return { p, kind: p.parse(buf, 0, buf.length) };
}

t.test('numbers are read like memcached 1.6.18 reads them', async (t) => {
  const b = (s: string) => Buffer.from(s, 'latin1');
  const i32 = (s: string) => parseI32(b(s), 0, s.length);
  const u32 = (s: string) => parseU32(b(s), 0, s.length);
  const u64 = (s: string) => parseU64(b(s), 0, s.length);
  const cases: Array<[string, unknown, unknown]> = [
    ['2147483648', i32('2147483648'), -2147483648],
    ['4294967296', i32('4294967296'), 0],
    ['-2147483649', i32('-2147483649'), 2147483647],
    ['9223372036854775807', i32('9223372036854775807'), -1],
    ['9223372036854775808', i32('9223372036854775808'), null],
    ['99999999999999999999', i32('99999999999999999999'), null],
    ['-0000000000000000000000005', i32('-0000000000000000000000005'), -5],
    ['+5', i32('+5'), 5],
    ['\\t5 (leading space)', i32('\t5'), 5],
    ['5\\tx (strtol stops at a space)', i32('5\tx'), 5],
    ['13\\0 (and at a NUL)', i32('13\0'), 13],
    ['5x', i32('5x'), null],
    ['-', i32('-'), null],
    ['+-5', i32('+-5'), null],
    ['empty', i32(''), null],
    ['u32 +1', u32('+1'), 1],
    ['u32 -0', u32('-0'), 0],
    ['u32 0000000000000000000000001', u32('0000000000000000000000001'), 1],
    ['u32 4294967296', u32('4294967296'), 0],
    ['u32 4294967297', u32('4294967297'), 1],
    ['u32 -1', u32('-1'), null],
    ['u32 \\t-1', u32('\t-1'), null],
    ['u32 18446744073709551615', u32('18446744073709551615'), 4294967295],
    ['u32 18446744073709551616', u32('18446744073709551616'), null],
    ['u32 -9223372036854775809 (wraps to bit 63 clear)', u32('-9223372036854775809'), 4294967295],
    ['u64 +1', u64('+1'), 1n],
    ['u64 -0', u64('-0'), 0n],
    ['u64 -1', u64('-1'), null],
    ['u64 -18446744073709551615', u64('-18446744073709551615'), 1n],
    ['u64 18446744073709551615', u64('18446744073709551615'), 18446744073709551615n],
    ['u64 18446744073709551616', u64('18446744073709551616'), null],
  ];
  for (const [name, got, want] of cases) t.equal(got, want, name);
});

t.test('set k 0 2147483648 13: stored (already expired), its block is the value', async (t) => {
  const { p, kind } = textParse(`set k 0 2147483648 13\r\n${DATA}\r\n`);
  t.equal(kind, Parsed.Key);
  t.equal(p.keyCommand!.op, Op.Set);
  t.equal(p.keyCommand!.exptime, -2147483648);
  t.equal(Buffer.from(p.keyCommand!.value!).toString(), DATA);
});

t.test('a refused storage line with a readable length skips its data block', async (t) => {
  for (const line of ['set k -1 0 13', 'set k 0 99999999999999999999 13', 'cas k 0 0 13 -1', 'append k 1x 0 13', `add ${'x'.repeat(251)} 0 0 13`]) {
    // the line alone: the answer and the swallow are known before the block arrives
    const { p, kind } = textParse(`${line}\r\n`);
    t.same([kind, p.reply, p.swallow], [Parsed.Reply, `${BAD}\r\n`, 15], line);
    const quiet = textParse(`${line} noreply\r\n`);
    t.same([quiet.kind, quiet.p.reply, quiet.p.swallow], [Parsed.Reply, '', 15], `${line} noreply`);
  }
  const unreadable = textParse('set k 0 0 13x\r\n');
  t.same([unreadable.kind, unreadable.p.swallow], [Parsed.Reply, 0], 'an unreadable length cannot be skipped');
});

t.test('ms: the length is read like set, a refused line skips its block', async (t) => {
  for (const len of ['+13', '0013', '000000000000000000000013', '4294967309']) {
    const line = parseMetaLine('ms', Buffer.from(`ms k ${len}`), 0, 5 + len.length);
    t.ok(!('error' in line) && line.valueLength === 13, `ms k ${len}`);
  }
  const refused = ['ms k 13 #', 'ms k 13 v ~x', 'ms k 13 T2147483648', `ms ${'x'.repeat(251)} 13`];
  for (const text of refused) {
    const line = parseMetaLine('ms', Buffer.from(text, 'latin1'), 0, text.length);
    t.ok('error' in line && line.swallow === 15, text);
  }
});

t.test('a storage block over -I is refused without being buffered', async (t) => {
  for (const line of ['set k 0 0 5000', 'ms k 5000 T0']) {
    const { p, kind } = textParse(`${line}\r\n`, 1024);
    t.same([kind, p.keyCommand?.op, p.swallow], [Parsed.Key, Op.SetTooLarge, 5002], line);
  }
});

t.test('random storage lines: a readable length always gets its block consumed', async (t) => {
  const rnd = seededRandom(2463534242);
  const next = (n: number) => Math.floor(rnd() * 2 ** 32) % n;
  const numbers = ['0', '13', '+13', '-13', '-0', '0013', '13x', '-1', '2147483648', '4294967296', '4294967309',
    '99999999999999999999', '\t13', '13\t', '+', '-', 'x'];
  const commands = ['set', 'add', 'replace', 'append', 'prepend', 'cas'];
  const failures: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const cmd = commands[next(commands.length)]!;
    const tokens = [cmd, next(8) === 0 ? 'x'.repeat(251) : 'k'];
    for (let j = cmd === 'cas' ? 0 : 1; j < 4; j++) tokens.push(numbers[next(numbers.length)]!);
    if (next(3) === 0) tokens.push('noreply');
    const line = tokens.join(' ');
    const len = parseI32(Buffer.from(tokens[4]!, 'latin1'), 0, tokens[4]!.length);
    const { p, kind } = textParse(`${line}\r\n${'y'.repeat(Math.max(0, len ?? 0))}\r\n`);
    if (len === null || len < 0) {
      if (kind !== Parsed.Reply || p.swallow !== 0) failures.push(`${JSON.stringify(line)}: kind ${kind}`);
      continue;
    }
    const consumed = kind === Parsed.Key ? p.next - (line.length + 2) : kind === Parsed.Reply ? p.swallow : -1;
    if (consumed !== len + 2) failures.push(`${JSON.stringify(line)}: kind ${kind}, block of ${len} consumed as ${consumed}`);
  }
  t.same(failures.slice(0, 5), [], `every readable block consumed (${failures.length} not)`);
});

t.test('binary: a declared body is checked on the header alone, never waited for past -I', async (t) => {
  const bound = HEADER + 255 + 250 + MAX_VALUE;
  const header = (op: number, keyLen: number, extLen: number, bodyLen: number) => {
    const h = Buffer.alloc(HEADER);
    h[0] = 0x80;
    h[1] = op;
    h.writeUInt16BE(keyLen, 2);
    h[4] = extLen;
    h.writeUInt32BE(bodyLen >>> 0, 8);
    return h;
  };
  const parse = (h: Buffer, sasl = false) => {
    const bp = new BinaryParser(MAX_VALUE, sasl);
    return { bp, kind: bp.parse(h, 0, h.length) };
  };
  const rnd = seededRandom(88172645);
  const rand = () => Math.floor(rnd() * 2 ** 32);
  let over = 0;
  for (let i = 0; i < 20000; i++) {
    const r = rand();
    const keyLen = [0, 1, 250, 251, 65535][r % 5]!;
    const extLen = [0, 4, 8, 20, 255][(r >>> 3) % 5]!;
    const bodyLen = [0xffffffff, 0x80000000, MAX_VALUE * 2, keyLen + extLen + 10, rand()][(r >>> 6) % 5]!;
    const { bp, kind } = parse(header(rand() % 0x30, keyLen, extLen, bodyLen), (r & 1) === 1);
    if (kind === BinParsed.Incomplete && bp.need > bound) over++;
  }
  t.equal(over, 0, `no header makes the parser wait for more than ${bound} bytes`);

  const cases: Array<[string, Buffer, number, number, boolean?]> = [
    ['Get, body 4 GiB', header(BinOp.Get, 1, 0, 0xffffffff), BinParsed.Malformed, BinStatus.InvalidArgs],
    ['Noop, body 4 GiB', header(BinOp.Noop, 0, 0, 0xffffffff), BinParsed.Malformed, BinStatus.InvalidArgs],
    ['Touch, body 4 GiB', header(BinOp.Touch, 1, 4, 0xffffffff), BinParsed.Malformed, BinStatus.InvalidArgs],
    ['Stat, body 4 GiB', header(BinOp.Stat, 0, 0, 0xffffffff), BinParsed.Malformed, BinStatus.InvalidArgs],
    ['Get, 300-byte key', header(BinOp.Get, 300, 0, 300), BinParsed.Malformed, BinStatus.InvalidArgs],
    ['unknown 0x50, 300-byte key', header(0x50, 300, 0, 300), BinParsed.Malformed, BinStatus.InvalidArgs],
    ['Set, value 4 GiB', header(BinOp.Set, 1, 8, 0xffffffff), BinParsed.Malformed, BinStatus.TooLarge],
    ['Append, value 2 GiB', header(BinOp.Append, 1, 0, 0x80000001), BinParsed.Malformed, BinStatus.TooLarge],
    ['unknown 0x50, body 4 GiB', header(0x50, 0, 0, 0xffffffff), BinParsed.Malformed, BinStatus.UnknownCommand],
    ['SaslAuth, body 4 GiB', header(BinOp.SaslAuth, 5, 0, 0xffffffff), BinParsed.Malformed, BinStatus.OutOfMemory, true],
  ];
  for (const [name, h, kind, status, sasl] of cases) {
    const r = parse(h, sasl);
    t.same([r.kind, r.bp.errorStatus], [kind, status], name);
  }
  // a value over -I it can swallow: TooLarge as soon as extras and key are there
  const big = Buffer.concat([header(BinOp.Set, 1, 8, 9 + 2 * MAX_VALUE), storeExtras(0, 0), Buffer.from('k')]);
  const r = parse(big);
  t.same([r.kind, r.bp.swallow, r.bp.next], [BinParsed.TooLarge, 2 * MAX_VALUE, big.length], 'Set, value 2 MiB: too large, swallowed');
});

/** One exchange: send, read through the END of the trailing get. */
async function run(c: RawClient, text: string): Promise<string> {
  c.send(text);
  return c.readUntil('END\r\n', 3000);
}

/** [storage line, memcached 1.6.18's reply to it, flags of the stored `k` when it stays readable]. */
type Case = [string, string, number | null];
const TEXT_CASES: Case[] = [
  ['set k 0 2147483648 13', 'STORED', null], // truncated to -2147483648: expired at once
  ['set k 0 -1 13', 'STORED', null],
  ['set k 0 +5 13', 'STORED', 0],
  ['set k 0 4294967296 13', 'STORED', 0],
  ['set k 0 \t5 13', 'STORED', 0],
  ['set k 0 99999999999999999999 13', BAD, null],
  ['set k 0 9223372036854775808 13', BAD, null],
  ['set k 0 5x 13', BAD, null],
  ['set k +1 0 13', 'STORED', 1],
  ['set k -0 0 13', 'STORED', 0],
  ['set k 0000000000000000000000001 0 13', 'STORED', 1],
  ['set k 4294967296 0 13', 'STORED', 0],
  ['set k 18446744073709551615 0 13', 'STORED', 4294967295],
  ['set k -1 0 13', BAD, null],
  ['set k 18446744073709551616 0 13', BAD, null],
  ['set k -1 0 13 noreply', '', null],
  ['set k 0 0 0013', 'STORED', 0],
  ['set k 0 0 000000000000000000000000013', 'STORED', 0],
  ['set k 0 0 +13', 'STORED', 0],
  ['set k 0 0 4294967309', 'STORED', 0], // truncated to 13
  ['set k 0 0 13\t', 'STORED', 0],
  [`set ${'x'.repeat(251)} 0 0 13`, BAD, null],
  ['cas k 0 2147483648 13 1', 'NOT_FOUND', null],
  ['cas k 0 0 13 +1', 'NOT_FOUND', null],
  ['cas k 0 0 13 -1', BAD, null],
  ['cas k 0 0 13 18446744073709551616', BAD, null],
  ['append k 0 2147483648 13', 'NOT_STORED', null],
  ['prepend k -1 0 13', BAD, null],
  ['add k 0 99999999999999999999 13', BAD, null],
  ['ms k +13', 'HD', 0],
  ['ms k 0013', 'HD', 0],
  ['ms k 4294967309', 'HD', 0],
];
const SCRIPT = (line: string) => `set victim 0 0 9\r\nimportant\r\n${line}\r\n${DATA}\r\nget victim k\r\ndelete k\r\nget k\r\n`;
const replyLine = (reply: string) => (reply === '' ? '' : `${reply}\r\n`);
const storedK = (flags: number | null) => (flags === null ? '' : `VALUE k ${flags} 13\r\n${DATA}\r\n`);
const VICTIM = 'VALUE victim 0 9\r\nimportant\r\n';

t.test('over a socket: the answer memcached gives to the line, and the victim stays', async (t) => {
  const d = await startDaemon(['-t', '2', '-m', '64']);
  t.teardown(() => d.stop());
  const c = await rawClient(d.port);
  t.teardown(() => c.close());
  for (const [line, reply, flags] of TEXT_CASES) {
    const got = await run(c, SCRIPT(line));
    t.equal(got, `STORED\r\n${replyLine(reply)}${VICTIM}${storedK(flags)}END\r\n`, JSON.stringify(line.slice(0, 60)));
    await c.readUntil('END\r\n', 3000); // delete k, get k
  }
  // memcached 1.6.45's meta flags: refused (1.6.18 takes T2147483648, answers invalid flag for #), block skipped
  for (const [line, reply] of [
    ['ms k 13 T2147483648', 'CLIENT_ERROR bad token in command line format'],
    ['ms k 13 #', BAD],
    [`ms ${'x'.repeat(251)} 13`, BAD],
  ]) {
    t.equal(await run(c, SCRIPT(line!)), `STORED\r\n${reply}\r\n${VICTIM}END\r\n`, line!.slice(0, 40));
    await c.readUntil('END\r\n', 3000);
  }
});

t.test('differential: memcached 1.6.18 gives the same answers, and runs the refused blocks', { skip: !existsSync(memcachedBin) && 'no memcached' }, async (t) => {
  const d = await startMemcached(['-m', '64']);
  t.teardown(() => d.stop());
  const c = await rawClient(d.port);
  t.teardown(() => c.close());
  for (const [line, reply, flags] of TEXT_CASES) {
    const accepted = !reply.startsWith('CLIENT_ERROR') && reply !== '';
    const want = accepted ? `STORED\r\n${reply}\r\n${VICTIM}${storedK(flags)}END\r\n` : `STORED\r\n${replyLine(reply)}DELETED\r\nEND\r\n`;
    t.equal(await run(c, SCRIPT(line)), want, JSON.stringify(line.slice(0, 60)));
    await c.readUntil('END\r\n', 3000);
  }
});

async function expectClosedWith(t: Test, c: RawClient, send: Buffer, opcode: number, status: number, name: string): Promise<void> {
  c.send(send);
  const r = await readResponse(c, 2000);
  t.same([r.opcode, r.status], [opcode, status], `${name}: status ${status.toString(16)}`);
  await c.waitForClose(2000);
  t.ok(c.isClosed(), `${name}: closed without waiting for the body`);
}

const huge = (opcode: number, key: string, extras: Buffer | undefined, bodyLength: number) =>
  request({ opcode, key, extras, bodyLength, opaque: 9 });

t.test('binary over a socket: huge declared bodies are answered at once and the connection closes', async (t) => {
  const d = await startDaemon(['-t', '2', '-m', '64', '-I', '1m']);
  t.teardown(() => d.stop());
  const cases: Array<[string, Buffer, number, number]> = [
    ['Get, body 4 GiB', huge(BinOp.Get, 'k', undefined, 0xffffffff), BinOp.Get, Status.EINVAL],
    ['Delete, body 4 GiB', huge(BinOp.Delete, 'k', undefined, 0xffffffff), BinOp.Delete, Status.EINVAL],
    ['Version, body 4 GiB', huge(BinOp.Version, '', undefined, 0xffffffff), BinOp.Version, Status.EINVAL],
    ['Set, value 4 GiB', huge(BinOp.Set, 'k', storeExtras(0, 0), 0xffffffff), BinOp.Set, Status.E2BIG],
    ['unknown 0x50, body 4 GiB', huge(0x50, '', undefined, 0xffffffff), 0x50, Status.UNKNOWN_COMMAND],
  ];
  for (const [name, req, opcode, status] of cases) {
    const c = await rawClient(d.port);
    t.teardown(() => c.close());
    await expectClosedWith(t, c, req, opcode, status, name);
  }
  // memcached answers these the same way
  if (existsSync(memcachedBin)) {
    const m = await startMemcached(['-m', '64', '-I', '1m']);
    t.teardown(() => m.stop());
    for (const [name, req, opcode, status] of cases.slice(0, 3)) {
      const c = await rawClient(m.port);
      t.teardown(() => c.close());
      await expectClosedWith(t, c, req, opcode, status, `memcached: ${name}`);
    }
  }
});

t.test('binary with -S: huge bodies refused before and after the SASL login', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'memshard-hardening-'));
  const pwdb = path.join(dir, 'users');
  writeFileSync(pwdb, 'alice:s3cret\n');
  const d: Daemon = await startDaemon(['-t', '2', '-S', '--sasl-pwdb', pwdb]);
  t.teardown(() => d.stop());
  const AUTH_ERROR = 0x20;
  for (const [name, req, opcode] of [
    ['Get, body 4 GiB', huge(BinOp.Get, 'k', undefined, 0xffffffff), BinOp.Get],
    ['Set, value 4 GiB', huge(BinOp.Set, 'k', storeExtras(0, 0), 0xffffffff), BinOp.Set],
  ] as const) {
    const c = await rawClient(d.port);
    t.teardown(() => c.close());
    await expectClosedWith(t, c, req, opcode, AUTH_ERROR, `before login: ${name}`);
  }
  const sasl = await rawClient(d.port);
  t.teardown(() => sasl.close());
  await expectClosedWith(t, sasl, huge(BinOp.SaslAuth, 'PLAIN', undefined, 0xffffffff), BinOp.SaslAuth, Status.ENOMEM, 'SaslAuth, body 4 GiB');

  for (const [name, req, opcode, status] of [
    ['Get, body 4 GiB', huge(BinOp.Get, 'k', undefined, 0xffffffff), BinOp.Get, Status.EINVAL],
    ['Set, value 4 GiB', huge(BinOp.Set, 'k', storeExtras(0, 0), 0xffffffff), BinOp.Set, Status.E2BIG],
  ] as const) {
    const c = await rawClient(d.port);
    t.teardown(() => c.close());
    c.send(request({ opcode: BinOp.SaslAuth, key: 'PLAIN', value: '\0alice\0s3cret' }));
    t.equal((await readResponse(c)).status, Status.OK, 'logged in');
    await expectClosedWith(t, c, req, opcode, status, `after login: ${name}`);
  }
});
