/**
 * The meta protocol's pure parts: the line parser (memcached 1.6.45's errors, token rules, base64
 * keys) and the executor over a Store with a controlled clock, every command run both on the
 * front end's path (runOne) and through a packed shard batch.
 */
import t, { type Test } from 'tap';
import { Op, type KeyCommand } from '../lib/protocol/command.js';
import { decodeBase64Key, MetaBit, MetaErrors, parseMetaLine, type MetaCommand } from '../lib/protocol/meta.js';
import { Parsed, TextParser } from '../lib/protocol/text.js';
import { CommandExecutor } from '../lib/shards/execute.js';
import { Store, type StoreConfig } from '../lib/store/store.js';

const line = (cmd: MetaCommand, text: string) => {
  const buf = Buffer.from(text, 'latin1');
  return parseMetaLine(cmd, buf, 0, buf.length);
};
const errorOf = (cmd: MetaCommand, text: string) => {
  const r = line(cmd, text);
  return 'error' in r ? r.error : null;
};

t.test('flags parse into one request that keeps its tokens', async (t) => {
  const r = line('ms', 'ms a2V5 5 b c C123 E77 F4294967295 I k O=op= q s T-1 MA N30 P/x Lhint');
  if ('error' in r) throw new Error(r.error);
  t.equal(Buffer.from(r.key).toString(), 'key', 'b decodes the key');
  t.equal(r.valueLength, 5);
  const m = r.request;
  const bits = MetaBit.Base64Key | MetaBit.ReturnCas | MetaBit.CompareCas | MetaBit.NewCas | MetaBit.ClientFlags |
    MetaBit.Invalidate | MetaBit.ReturnKey | MetaBit.Opaque | MetaBit.Quiet | MetaBit.ReturnSize | MetaBit.Ttl | MetaBit.Vivify;
  t.equal(m.bits, bits);
  t.same([m.compareCas, m.newCas, m.clientFlags, m.ttl, m.vivifyTtl, String.fromCharCode(m.mode)], [123, 77, 4294967295, -1, 30, 'A']);
  t.equal(Buffer.from(m.flags).toString(), 'b c C123 E77 F4294967295 I k O=op= q s T-1 MA N30 P/x Lhint', 'the flag tokens as sent');

  const ma = line('ma', 'ma n D18446744073709551615 J42 MD N0 v t c');
  if ('error' in ma) throw new Error(ma.error);
  t.same([ma.request.delta, ma.request.initial, String.fromCharCode(ma.request.mode)], [18446744073709551615n, 42n, 'D']);
  const plain = line('ma', 'ma n');
  if ('error' in plain) throw new Error(plain.error);
  t.same([plain.request.delta, plain.request.initial, plain.request.flags.length], [1n, 0n, 0], 'defaults: delta 1, initial 0');
});

t.test("memcached 1.6.45's error for each bad request", async (t) => {
  const cases: Array<[MetaCommand, string, string]> = [
    ['mg', 'mg', MetaErrors.badFormat],
    ['mg', `mg ${'k'.repeat(251)} v`, MetaErrors.badFormat],
    ['mg', 'mg k zz', MetaErrors.invalidFlag],
    ['mg', 'mg k 1', MetaErrors.invalidFlag],
    ['mg', 'mg k [', MetaErrors.invalidFlag],
    ['mg', 'mg k #', MetaErrors.badFormat], // the tokenizer refuses tokens not starting A..z or a digit
    ['mg', 'mg k v ~x', MetaErrors.badFormat],
    ['mg', 'mg k v v', MetaErrors.duplicate],
    ['mg', 'mg k T', MetaErrors.badToken],
    ['mg', 'mg k T1x', MetaErrors.badToken],
    ['mg', 'mg k N99999999999', MetaErrors.badToken],
    ['mg', 'mg k R+1', MetaErrors.badToken],
    ['mg', 'mg k C-1', MetaErrors.badToken],
    ['mg', 'mg k E18446744073709551616', MetaErrors.badToken],
    ['mg', 'mg k E9007199254740992', MetaErrors.badToken], // above 2^53: memshard keeps CAS in a double
    ['mg', 'mg k Fx', MetaErrors.badFormat], // F keeps the previous message
    ['mg', 'mg k Tx Fx', MetaErrors.badToken],
    ['mg', 'mg k Tx zz', MetaErrors.invalidFlag], // an unknown flag ends parsing with its own message
    ['mg', 'mg !!!! b', MetaErrors.badKey],
    ['mg', 'mg a b', MetaErrors.badKey],
    ['mg', 'mg YQ== b Tx', MetaErrors.badToken],
    ['mg', `mg k O${'x'.repeat(32)}`, MetaErrors.opaqueTooLong],
    ['mg', 'mg k a b c d e f g h i j k l m n o p q r s', MetaErrors.tooManyFlags],
    ['ms', 'ms k', MetaErrors.badFormat],
    ['ms', 'ms k x', MetaErrors.badFormat],
    ['ms', 'ms k -1', MetaErrors.badFormat],
    ['ms', 'ms k 2 Mz', MetaErrors.badSetMode],
    ['ms', 'ms k 2 M', MetaErrors.badSetMode],
    ['ms', 'ms k 2 S2', MetaErrors.invalidFlag], // protocol.txt's old S<size> flag: memcached refuses it
    ['ma', 'ma k Dx', MetaErrors.badArithFlag],
    ['ma', 'ma k Jx', MetaErrors.badArithFlag],
    ['ma', 'ma k zz', MetaErrors.badArithFlag],
    ['ma', 'ma k Mx', MetaErrors.badArithMode],
    ['md', 'md k zz', MetaErrors.invalidFlag],
    ['md', 'md k Cx', MetaErrors.badToken],
    ['me', 'me', MetaErrors.badFormat],
    ['me', 'me !!!! b', MetaErrors.badFormat],
  ];
  for (const [cmd, text, error] of cases) t.equal(errorOf(cmd, text), error, text.slice(0, 60));
  const ms = line('ms', 'ms k 5 zz');
  t.same(ms, { error: MetaErrors.invalidFlag, swallow: 7 }, 'ms errors skip the data block');
  t.equal(errorOf('mg', 'mg k a b c d e f g h i j k l m n o p q r'), MetaErrors.invalidFlag, '18 flags is the limit');
  t.equal(errorOf('mg', `mg k O${'x'.repeat(31)} v c f h k l s t u q`), null, 'a 31-byte opaque, every return flag');
});

t.test('base64 keys decode like memcached: outside bytes skipped, whole quads required', async (t) => {
  t.same(decodeBase64Key(Buffer.from('Zm9v')), Buffer.from('foo'));
  t.same(decodeBase64Key(Buffer.from('AAEC/w==')), Buffer.from([0, 1, 2, 255]));
  t.same(decodeBase64Key(Buffer.from('Zm9v!')), Buffer.from('foo'));
  t.equal(decodeBase64Key(Buffer.from('Zm9')), null);
  t.equal(decodeBase64Key(Buffer.from('!!!!')), null);
  const me = line('me', 'me Zm9v b');
  t.ok(!('error' in me) && Buffer.from(me.key).toString() === 'foo', 'me decodes with an exact b token');
});

interface Session {
  send(text: string | Buffer): string;
  tick(seconds: number): void;
}

/** A store with a clock the test moves; requests go through the text parser to the executor. */
function session(memoryBytes = 4 * 1024 * 1024): Session {
  let now = 1000;
  const cfg: StoreConfig = {
    memoryBytes, pageSize: 64 * 1024, itemSizeMax: 1024 * 1024, growthFactor: 1.25, minChunk: 48, shardIndex: 0, shardCount: 1,
  };
  const store = new Store(new SharedArrayBuffer(Store.byteLength(cfg)), cfg, { processStarted: 0, now: () => now });
  const exec = new CommandExecutor(store);
  const parser = new TextParser(1024 * 1024);
  const run = (cmd: KeyCommand): string => exec.runOne(cmd).toString('latin1');
  return {
    send(text) {
      const buf = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
      let pos = 0;
      let out = '';
      while (pos < buf.length) {
        const kind = parser.parse(buf, pos, buf.length);
        if (kind === Parsed.Incomplete) throw new Error(`incomplete request at ${pos}`);
        if (kind === Parsed.Key) out += run(parser.keyCommand!);
        else if (kind === Parsed.Reply) out += parser.reply;
        else if (kind === Parsed.Local && parser.local!.kind === 'mn') out += 'MN\r\n';
        else throw new Error(`unexpected parse result ${kind}`);
        pos = parser.next + (kind === Parsed.Reply || parser.keyCommand?.op === Op.SetTooLarge ? parser.swallow : 0);
      }
      return out;
    },
    tick(seconds) {
      now += seconds;
    },
  };
}

/** Runs the test body on a fresh store. */
function scenario(name: string, body: (t: Test, s: Session) => void): void {
  t.test(name, async (t) => body(t, session()));
}

/** CAS values in a reply line (c<n> tokens). */
const casIn = (reply: string) => Number(/ c(\d+)/.exec(reply)?.[1]);

scenario('mg: hit and miss flags in request order, q hides only misses', (t, s) => {
  t.equal(s.send('ms k 5 F7 T100\r\nhello\r\n'), 'HD\r\n');
  const cas = casIn(s.send('mg k c\r\n'));
  t.ok(cas > 0);
  t.equal(s.send('mg k s v f t c k Oabc\r\n'), `VA 5 s5 f7 t100 c${cas} kk Oabc\r\nhello\r\n`);
  t.equal(s.send('mg k Oabc k t\r\n'), 'HD Oabc kk t100\r\n', 'flags come back in the order sent');
  t.equal(s.send('mg k q\r\n'), 'HD\r\n', 'a hit is answered despite q');
  t.equal(s.send('mg nope v\r\n'), 'EN\r\n');
  t.equal(s.send('mg nope v k Ox q\r\n'), '', 'q hides EN');
  t.equal(s.send('mg nope s v k Ox\r\n'), 'EN knope Ox\r\n', 'a miss echoes k and O only');
  t.equal(s.send('mg k v P/route Lhint\r\n'), 'VA 5\r\nhello\r\n', 'P and L are ignored');
  t.equal(s.send('mn\r\n'), 'MN\r\n');
});

scenario('mg: h and l report the state before this request; u leaves the item untouched', (t, s) => {
  s.send('ms k 1\r\nx\r\n');
  s.tick(5);
  t.equal(s.send('mg k h l u\r\n'), 'HD h0 l5\r\n', 'u: not fetched, access time kept');
  t.equal(s.send('mg k h l\r\n'), 'HD h0 l5\r\n');
  s.tick(2);
  t.equal(s.send('mg k h l\r\n'), 'HD h1 l2\r\n');
});

scenario('mg: T sets the TTL in its place among the flags; t without TTL is -1', (t, s) => {
  s.send('ms k 1\r\nx\r\n');
  t.equal(s.send('mg k t T30\r\n'), 'HD t-1\r\n', 't shows the TTL before T');
  t.equal(s.send('mg k T30 t\r\n'), 'HD t30\r\n', 'and after it');
  s.tick(10);
  t.equal(s.send('mg k t\r\n'), 'HD t20\r\n');
  s.tick(20);
  t.equal(s.send('mg k t\r\n'), 'EN\r\n', 'expired');
  s.send('ms k 1\r\nx\r\n');
  t.equal(s.send('mg k T-1 t\r\n'), `HD t${2 ** 32 + 1 - 1030}\r\n`, 'a TTL already past wraps around, as in memcached');
  t.equal(s.send('mg k v\r\n'), 'EN\r\n', 'a negative TTL expires at once');
});

scenario('mg C: the value is left out when the client has the current CAS', (t, s) => {
  const cas = casIn(s.send('ms k 2 c\r\nhi\r\n'));
  t.equal(s.send(`mg k v C${cas} c\r\n`), `HD c${cas}\r\n`);
  t.equal(s.send(`mg k v C${cas + 1}\r\n`), 'VA 2\r\nhi\r\n');
  t.equal(s.send(`mg k v C${cas} T50 t\r\n`), 'HD t50\r\n', 'other flags still apply');
});

scenario('mg N: one placeholder, one W; later requests see Z until it is replaced', (t, s) => {
  t.equal(s.send('mg k s v t N30 c\r\n').replace(/ c\d+/, ' c#'), 'VA 0 s0 t-1 c# W\r\n\r\n', 'N sets the TTL in its place');
  t.equal(s.send('mg k v N30 t\r\n'), 'VA 0 t30 Z\r\n\r\n', 'the placeholder has the TTL of N');
  t.equal(s.send('mg k v\r\n'), 'VA 0 Z\r\n\r\n', 'Z without N too');
  t.equal(s.send('ms k 5 T60\r\nvalue\r\n'), 'HD\r\n', 'the winner recaches');
  t.equal(s.send('mg k v N30\r\n'), 'VA 5\r\nvalue\r\n', 'no marks on the new value');
  t.equal(s.send('mg e v N30 E99 c\r\n'), 'VA 0 c99 W\r\n\r\n', 'E gives the placeholder its CAS');
});

scenario('mg R: one early-recache win when the TTL left is below the token', (t, s) => {
  s.send('ms k 1 T100\r\nx\r\n');
  t.equal(s.send('mg k R30 t\r\n'), 'HD t100\r\n', 'TTL 100 is not below 30');
  s.tick(75);
  t.equal(s.send('mg k R30 t\r\n'), 'HD t25 W\r\n');
  t.equal(s.send('mg k R30 t\r\n'), 'HD t25 Z\r\n');
  s.send('ms n 1\r\nx\r\n');
  t.equal(s.send('mg n R30\r\n'), 'HD\r\n', 'an item without TTL never wins early');
});

scenario('md I / ms I: stale items, one W with X, Z X for the others, a winner recaches', (t, s) => {
  const cas = casIn(s.send('ms k 3 T100 c\r\nold\r\n'));
  t.equal(s.send('md k I T30 q\r\n'), '', 'q hides HD');
  const reply = s.send('mg k v t c\r\n');
  const staleCas = casIn(reply);
  t.not(staleCas, cas, 'invalidating bumps the CAS');
  t.equal(reply, `VA 3 t30 c${staleCas} X W\r\nold\r\n`);
  t.equal(s.send('mg k v\r\n'), 'VA 3 Z X\r\nold\r\n');
  // a recache with the CAS read before the invalidation is older than the stale item's: ms I stores it, still stale
  t.equal(s.send(`ms k 3 C${cas} I T999\r\nnew\r\n`), 'HD\r\n');
  t.equal(s.send('mg k v t\r\n'), 'VA 3 t30 Z X\r\nnew\r\n', 'stale value, TTL and win kept');
  t.equal(s.send(`ms k 3 C${cas}\r\nbad\r\n`), 'EX\r\n', 'without I an old CAS is refused');
  const current = casIn(s.send('mg k c\r\n'));
  t.equal(s.send(`ms k 5 C${current} I\r\nfresh\r\n`), 'HD\r\n', 'the current CAS replaces the item');
  t.equal(s.send('mg k v\r\n'), 'VA 5\r\nfresh\r\n', 'no longer stale');
  t.equal(s.send('md k I E500\r\nmg k c\r\n'), 'HD\r\nHD c500 X W\r\n', 'E sets the CAS of the invalidation');
});

scenario('ms: modes, CAS compare, E, flags, returned c k s O, q hides only HD', (t, s) => {
  t.equal(s.send('ms k 3 ME\r\none\r\n'), 'HD\r\n', 'add');
  t.equal(s.send('ms k 3 ME Oa k\r\ntwo\r\n'), 'NS Oa kk\r\n', 'add over an item');
  t.equal(s.send('ms k 1 MA s\r\n+\r\n'), 'HD s4\r\n', 'append: s is the new size');
  t.equal(s.send('ms k 1 MP\r\n-\r\n'), 'HD\r\n');
  t.equal(s.send('mg k v\r\n'), 'VA 5\r\n-one+\r\n');
  t.equal(s.send('ms none 1 MA s c\r\n+\r\n'), 'NS s1 c0\r\n', 'append to nothing: NS, c0, the request size');
  t.equal(s.send('ms none 1 MA N30\r\n+\r\nmg none v t\r\n'), 'HD\r\nVA 1 t30\r\n+\r\n', 'N creates on a miss with its TTL');
  t.equal(s.send('ms new 1 MR\r\nx\r\n'), 'NS\r\n', 'replace needs an item');
  t.equal(s.send('ms k 1 MR q\r\nr\r\n'), '', 'replace, quiet');
  t.equal(s.send('ms k 1 MS\r\ns\r\nmg k v\r\n'), 'HD\r\nVA 1\r\ns\r\n');
  const cas = casIn(s.send('ms k 2 c\r\nv1\r\n'));
  t.equal(s.send(`ms k 2 C${cas + 1} q\r\nv2\r\n`), 'EX\r\n', 'q never hides EX');
  t.equal(s.send('ms gone 2 C1\r\nv2\r\n'), 'NF\r\n', 'compare against nothing');
  t.equal(s.send(`ms k 2 C${cas} c\r\nv2\r\n`).startsWith('HD c'), true);
  t.equal(s.send('ms k 2 E12345 c F9 T7\r\nv3\r\nmg k c f t v\r\n'), 'HD c12345\r\nVA 2 c12345 f9 t7\r\nv3\r\n');
  t.equal(s.send('ms k 2 MA C12345\r\n++\r\nmg k v\r\n'), 'HD\r\nVA 4\r\nv3++\r\n', 'append respects C');
  t.equal(s.send('ms k 0\r\n\r\nmg k s v\r\n'), 'HD\r\nVA 0 s0\r\n\r\n', 'empty value');
});

scenario('ms: a bad data chunk, a too large value, swallowed data after an error', (t, s) => {
  t.equal(s.send('ms k 2 q\r\nabc\r\n'), 'CLIENT_ERROR bad data chunk\r\nERROR\r\n', 'q does not hide errors');
  const big = 'x'.repeat(1024 * 1024 + 1);
  s.send('ms k 1\r\nx\r\n');
  t.equal(s.send(`ms k ${big.length} MA\r\n${big}\r\nmg k v\r\n`), 'SERVER_ERROR object too large for cache\r\nEN\r\n', 'the old item goes');
  t.equal(s.send('ms k 3 zz\r\nabc\r\nmn\r\n'), 'CLIENT_ERROR invalid flag\r\nMN\r\n', 'the data block is skipped');
});

scenario('ms/mg with base64 keys: binary keys come back encoded, with b', (t, s) => {
  const key = Buffer.from([0, 1, 0x20, 0x0d, 0x0a, 0xff]).toString('base64');
  t.equal(s.send(`ms ${key} 2 b k\r\nhi\r\n`), `HD k${key} b\r\n`);
  t.equal(s.send(`mg ${key} b k v\r\n`), `VA 2 k${key} b\r\nhi\r\n`);
  t.equal(s.send(`mg ${key} k\r\n`), `EN k${key}\r\n`, 'the encoded text is another key');
  t.equal(s.send('ms plain 1\r\nx\r\nmg cGxhaW4= b k\r\n'), 'HD\r\nHD kplain\r\n', 'a key stored as text comes back as text');
  t.equal(s.send(`me ${key} b\r\n`).replace(/la=\d+ cas=\d+/, 'la cas'), `ME ${key} exp=-1 la cas fetch=yes cls=1 size=67\r\n`);
});

scenario('md: delete, CAS compare, x leaves an empty item, k O echoed on every code', (t, s) => {
  const cas = casIn(s.send('ms k 3 c F5 T100\r\nabc\r\n'));
  t.equal(s.send(`md k C${cas + 1} Oa k\r\n`), 'EX Oa kk\r\n');
  t.equal(s.send('md k x F3 T50\r\nmg k v f t c\r\n'), `HD\r\nVA 0 f3 t50 c${cas}\r\n\r\n`, 'x keeps the CAS, takes F and T');
  t.equal(s.send(`md k C${cas} q\r\n`), '', 'q hides HD');
  t.equal(s.send('md k Oa\r\n'), 'NF Oa\r\n');
  t.equal(s.send('md k q\r\n'), 'NF\r\n', 'q never hides NF');
  s.send('ms k 1\r\nx\r\n');
  t.equal(s.send('md k I x T20\r\nmg k v t\r\n'), 'HD\r\nVA 0 t20 X W\r\n\r\n', 'x with I: a stale tombstone');
});

scenario('ma: incr, decr, delta, create with N and J, CAS, TTL, q', (t, s) => {
  t.equal(s.send('ma n\r\n'), 'NF\r\n');
  t.equal(s.send('ma n q Oa k\r\n'), 'NF Oa kn\r\n', 'q never hides NF');
  t.equal(s.send('ma n N0 J10 v t\r\n'), 'VA 2 t-1\r\n10\r\n', 'created at J');
  t.equal(s.send('ma n v\r\n'), 'VA 2\r\n11\r\n');
  t.equal(s.send('ma n D9 v MI\r\n'), 'VA 2\r\n20\r\n');
  t.equal(s.send('ma n D5 M- v\r\n'), 'VA 2\r\n15\r\n');
  t.equal(s.send('ma n D100 MD v\r\n'), 'VA 1\r\n0\r\n', 'decr stops at 0');
  t.equal(s.send('ma n M+ D18446744073709551615 v\r\n'), 'VA 20\r\n18446744073709551615\r\n');
  t.equal(s.send('ma n v\r\n'), 'VA 1\r\n0\r\n', 'incr wraps at 2^64');
  t.equal(s.send('ma n t T30\r\n'), 'HD t-1\r\n', 'T in its place');
  t.equal(s.send('ma n T40 t\r\n'), 'HD t40\r\n');
  const cas = casIn(s.send('ma n c\r\n'));
  t.equal(s.send(`ma n C${cas + 1}\r\n`), 'EX\r\n');
  t.equal(s.send(`ma n C${cas} c E777 v\r\n`), 'VA 1 c777\r\n4\r\n');
  t.equal(s.send('ma n q\r\n'), '', 'q hides HD');
  t.equal(s.send('ma n q v\r\nma n v\r\n'), 'VA 1\r\n7\r\n', 'and VA');
  t.equal(s.send('mg n s\r\n'), 'HD s20\r\n', 'like memcached, a shorter number is padded in place');
  t.equal(s.send('ma m N60 q\r\nmg m v t\r\n'), 'VA 1 t60\r\n0\r\n', 'a quiet create still takes N');
  t.equal(s.send('ms txt 2\r\nab\r\nma txt\r\n'), 'HD\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n');
  t.equal(s.send('ms empty 0\r\n\r\nma empty C1\r\n'), 'HD\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n', 'an empty value fails before the CAS compare');
});

scenario('me: the item dump, EN on a miss', (t, s) => {
  s.send('ms k 5 T100\r\nhello\r\n');
  s.tick(3);
  const cas = casIn(s.send('mg k c u\r\n'));
  t.equal(s.send('me k\r\n'), `ME k exp=97 la=3 cas=${cas} fetch=no cls=1 size=65\r\n`);
  t.equal(s.send('me nope\r\n'), 'EN\r\n');
});

scenario('large values: ms and mg carry values chained over several slab chunks', (t, s) => {
  const value = Buffer.alloc(300_000);
  for (let i = 0; i < value.length; i++) value[i] = (i * 7) & 0xff;
  const request = Buffer.concat([Buffer.from(`ms big ${value.length} T0\r\n`), value, Buffer.from('\r\n')]);
  t.equal(s.send(request), 'HD\r\n');
  const reply = s.send('mg big s v\r\n');
  const head = `VA ${value.length} s${value.length}\r\n`;
  t.equal(reply.slice(0, head.length), head);
  t.ok(Buffer.from(reply.slice(head.length, -2), 'latin1').equals(value), 'the value comes back byte for byte');
  t.equal(s.send('ms big 2 MA s\r\n!!\r\n'), `HD s${value.length + 2}\r\n`, 'append to a chained value');
});
