import t from 'tap';
import { Op } from '../lib/protocol/command.js';
import { Errors, MAX_LINE, Parsed, parseI32, parseU32, parseU64, TextParser } from '../lib/protocol/text.js';

const MAX_VALUE = 1024 * 1024;

function parse(input: string | Buffer) {
  const buf = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const p = new TextParser(MAX_VALUE);
  const kind = p.parse(buf, 0, buf.length);
  return { p, kind, buf };
}

t.test('storage commands', async (t) => {
  const { p, kind } = parse('set foo 5 100 3\r\nbar\r\nget foo\r\n');
  t.equal(kind, Parsed.Key);
  const cmd = p.keyCommand!;
  t.equal(cmd.op, Op.Set);
  t.equal(Buffer.from(cmd.key).toString(), 'foo');
  t.equal(cmd.flags, 5);
  t.equal(cmd.exptime, 100);
  t.equal(Buffer.from(cmd.value!).toString(), 'bar');
  t.equal(cmd.noreply, false);
  t.equal(p.next, 'set foo 5 100 3\r\nbar\r\n'.length, 'next points at the following request');

  const cas = parse('cas k 0 -1 2 18446744073709551615 noreply\r\nhi\r\n');
  t.equal(cas.kind, Parsed.Key);
  t.equal(cas.p.keyCommand!.op, Op.Cas);
  t.equal(cas.p.keyCommand!.exptime, -1);
  t.equal(cas.p.keyCommand!.noreply, true);
  t.equal(cas.p.keyCommand!.cas, 18446744073709551615);

  for (const [name, op] of [['add', Op.Add], ['replace', Op.Replace], ['append', Op.Append], ['prepend', Op.Prepend]] as const) {
    const r = parse(`${name} k 0 0 1\nx\r\n`);
    t.equal(r.kind, Parsed.Key, `${name} with a bare \\n line end`);
    t.equal(r.p.keyCommand!.op, op);
  }
});

t.test('incomplete input asks for exactly the bytes still needed', async (t) => {
  const { p, kind } = parse('set foo 0 0 10\r\nabc');
  t.equal(kind, Parsed.Incomplete);
  t.equal(p.need, 'set foo 0 0 10\r\n'.length + 12);
  t.equal(parse('get fo').kind, Parsed.Incomplete);
});

t.test('keys are any bytes but space, up to 250 (memcached checks only the length)', async (t) => {
  const { p, kind } = parse('get a\x01\tb\x7f\r\n');
  t.equal(kind, Parsed.MultiGet);
  t.same(p.keys.map((k) => Buffer.from(k).toString('latin1')), ['a\x01\tb\x7f']);
});

t.test('error replies are memcached\'s', async (t) => {
  const cases: Array<[string, string]> = [
    ['bogus\r\n', Errors.error],
    ['x\r\n', Errors.error],
    ['\r\n', Errors.error],
    ['set foo 0 0\r\n', Errors.error],
    ['get\r\n', Errors.error],
    ['set foo bar 0 1\r\n', Errors.badFormat],
    ['set foo 0 0 -1\r\n', Errors.badFormat],
    [`set ${'k'.repeat(251)} 0 0 1\r\n`, Errors.badFormat],
    [`get a ${'k'.repeat(251)}\r\n`, Errors.badFormat],
    ['set foo 0 0 3\r\nabcd\r\n', Errors.badChunk],
    ['incr foo bar\r\n', Errors.badDelta],
    ['incr foo -1\r\n', Errors.badDelta],
    ['touch foo x\r\n', Errors.badExptime],
    ['gat x foo\r\n', Errors.badExptime],
    ['delete foo 5\r\n', Errors.deleteUsage],
    ['flush_all x\r\n', Errors.badExptime],
    ['verbosity\r\n', Errors.error],
    ['verbosity x\r\n', Errors.badFormat],
  ];
  for (const [input, reply] of cases) {
    const { p, kind } = parse(input);
    t.equal(kind, Parsed.Reply, JSON.stringify(input));
    t.equal(p.reply, reply, JSON.stringify(input));
  }
});

t.test('noreply suppresses error replies too, like memcached', async (t) => {
  for (const input of ['set foo bar 0 1 noreply\r\n', 'verbosity noreply\r\n', 'touch k noreply\r\n', 'incr k x noreply\r\n']) {
    const { p, kind } = parse(input);
    t.equal(kind, Parsed.Reply, input);
    t.equal(p.reply, '', input);
  }
});

t.test('too large values are refused without buffering them', async (t) => {
  const { p, kind } = parse(`set big 0 0 ${MAX_VALUE + 1}\r\n`);
  t.equal(kind, Parsed.Key);
  t.equal(p.keyCommand!.op, Op.SetTooLarge);
  t.equal(p.keyCommand!.flags, 1, 'a set removes the old item');
  t.equal(p.swallow, MAX_VALUE + 3, 'value and its CRLF are swallowed');
  const add = parse(`add big 0 0 ${MAX_VALUE + 1}\r\n`);
  t.equal(add.p.keyCommand!.flags, 0, 'an add leaves the old item');
});

t.test('multi-key gets, gat', async (t) => {
  const { p, kind } = parse('gets a bb ccc\r\n');
  t.equal(kind, Parsed.MultiGet);
  t.equal(p.getOp, Op.Gets);
  t.same(p.keys.map((k) => Buffer.from(k).toString()), ['a', 'bb', 'ccc']);

  const many = Array.from({ length: 100 }, (_, i) => `key${i}`);
  const long = parse(`get ${many.join(' ')}\r\n`);
  t.equal(long.p.keys.length, 100, 'more keys than memcached\'s 24-token tokenizer window');

  const gat = parse('gat 300 x y\r\n');
  t.equal(gat.p.getOp, Op.Gat);
  t.equal(gat.p.exptime, 300);
  t.equal(gat.p.keys.length, 2);
  t.equal(parse('gat 10\r\n').p.keys.length, 0, 'a bare gat answers END');
});

t.test('other commands', async (t) => {
  const del = parse('delete foo noreply\r\n');
  t.equal(del.p.keyCommand!.op, Op.Delete);
  t.equal(del.p.keyCommand!.noreply, true);
  t.equal(parse('delete foo 0\r\n').kind, Parsed.Key);
  const incr = parse('incr n 18446744073709551615\r\n');
  t.equal(incr.p.keyCommand!.delta, 18446744073709551615n);
  t.equal(parse('decr n 1\r\n').p.keyCommand!.op, Op.Decr);
  t.equal(parse('touch k 10\r\n').p.keyCommand!.exptime, 10);
  t.same(parse('flush_all 10 noreply\r\n').p.local, { kind: 'flush_all', delay: 10, noreply: true });
  t.same(parse('flush_all\r\n').p.local, { kind: 'flush_all', delay: 0, noreply: false });
  t.same(parse('version\r\n').p.local, { kind: 'version' });
  t.same(parse('quit\r\n').p.local, { kind: 'quit' });
  t.same(parse('verbosity 1 noreply\r\n').p.local, { kind: 'verbosity', level: 1, noreply: true });
  t.same(parse('stats slabs\r\n').p.local, { kind: 'stats', group: 'slabs', args: [] });
  t.same(parse('shutdown graceful\r\n').p.local, { kind: 'shutdown', mode: 'graceful' });
  t.same(parse('shutdown now\r\n').p.local, { kind: 'shutdown', mode: 'invalid' });
});

t.test('long lines without a newline close the connection, except multi-gets', async (t) => {
  t.equal(parse('x'.repeat(MAX_LINE + 1)).kind, Parsed.Close);
  t.equal(parse(`get ${'k '.repeat(MAX_LINE)}`).kind, Parsed.Incomplete);
  t.equal(parse('GET / HTTP/1.1\r\n').kind, Parsed.Close);
});

t.test('number parsing follows strtol/strtoul', async (t) => {
  const n = (s: string) => Buffer.from(s);
  const i32 = (s: string) => parseI32(n(s), 0, s.length);
  t.equal(i32('2147483647'), 2147483647);
  t.equal(i32('2147483648'), -2147483648, 'truncated like memcached 1.6.18 (it stores `set k 0 2147483648 1`)');
  t.equal(i32('-5'), -5);
  t.equal(i32('+5'), 5);
  t.equal(i32('5x'), null);
  t.equal(i32(''), null);
  const u32 = (s: string) => parseU32(n(s), 0, s.length);
  t.equal(u32('4294967295'), 4294967295);
  t.equal(u32('4294967296'), 0, 'wraps like memcached\'s cast');
  t.equal(u32('-1'), null);
  const u64 = (s: string) => parseU64(n(s), 0, s.length);
  t.equal(u64('18446744073709551615'), 18446744073709551615n);
  t.equal(u64('18446744073709551616'), null);
  t.equal(u64('12a'), null);
});
