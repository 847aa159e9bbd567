/**
 * The meta protocol over real sockets: the same request scripts sent to memshard and to the real
 * memcached (Debian's 1.6.18) must get the same replies; meta and classic commands mixed on one
 * connection; pipelining with q and mn; and the stampede: 50 connections asking for one missing
 * key at once, exactly one of them wins the recache.
 */
import t, { type Test } from 'tap';
import { rawClient, startDaemon, startMemcached, type Daemon, type RawClient } from './helpers/daemon.js';

let memshard: Daemon;
let memcached: Daemon;

t.before(async () => {
  [memshard, memcached] = await Promise.all([startDaemon(['-t', '4', '-m', '64']), startMemcached(['-m', '64'])]);
});
t.teardown(async () => {
  await Promise.all([memshard?.stop(), memcached?.stop()]);
});

async function client(t: Test, daemon: Daemon): Promise<RawClient> {
  const c = await rawClient(daemon.port);
  t.teardown(() => c.close());
  return c;
}

/** Sends a request followed by `mn` and returns everything answered before MN. */
async function exchange(c: RawClient, request: string): Promise<string> {
  c.send(`${request}mn\r\n`);
  const reply = await c.readUntil('MN\r\n', 5000);
  return reply.slice(0, -4);
}

/**
 * A script: requests in which `$k` is a key of the script's own, and `$cas1`, `$cas2`... are the
 * CAS values the server returned earlier in the script (in order of first appearance).
 */
type Script = string[];

/** Runs a script, with each server's CAS values renamed #1, #2... in order of appearance. */
async function runScript(c: RawClient, prefix: string, script: Script): Promise<string[]> {
  const seen: string[] = [];
  const replies: string[] = [];
  for (const step of script) {
    const request = step.replaceAll('$k', prefix).replace(/\$cas(\d+)/g, (_, i: string) => seen[Number(i) - 1] ?? '0');
    const reply = await exchange(c, request);
    replies.push(
      reply.replace(/( c|cas=|^VALUE \S+ \d+ \d+ )(\d+)/gm, (_, lead: string, cas: string) => {
        if (cas === '0') return `${lead}0`;
        if (!seen.includes(cas)) seen.push(cas);
        return `${lead}#${seen.indexOf(cas) + 1}`;
      }),
    );
  }
  return replies;
}

/** Replies equal, except TTLs and idle times that may be a clock tick apart. */
function sameReplies(a: string, b: string): boolean {
  const ta = a.split(/( |\r\n)/);
  const tb = b.split(/( |\r\n)/);
  if (ta.length !== tb.length) return false;
  return ta.every((x, i) => {
    const y = tb[i]!;
    if (x === y) return true;
    const mx = /^([tl])(\d+)$/.exec(x);
    const my = /^([tl])(\d+)$/.exec(y);
    return mx !== null && my !== null && mx[1] === my[1] && Math.abs(Number(mx[2]) - Number(my[2])) <= 1;
  });
}

/** Behaviour memcached 1.6.18 shares with 1.6.45 (what memshard follows); the rest is in meta.test.ts. */
const SCRIPTS: Record<string, Script> = {
  'mg hit flags in request order': [
    'ms $k 5 F7 T100\r\nhello\r\n',
    'mg $k s v f t c k Oabc\r\n',
    'mg $k Oabc k t q\r\n',
    'mg $k v P/route Lhint\r\n',
  ],
  'mg misses, q, opaque and key echo': ['mg $k v\r\n', 'mg $k v k Oxy q\r\n', 'mg $k s v k Oxy\r\nmg $k q\r\nmg $k\r\n'],
  'mg h l u': ['ms $k 1\r\nx\r\n', 'mg $k h l u\r\n', 'mg $k h\r\n', 'mg $k h\r\n'],
  'mg T and t': ['ms $k 1\r\nx\r\n', 'mg $k t T30\r\n', 'mg $k T60 t\r\n', 'mg $k t\r\n', 'mg $k T-1\r\nmg $k v\r\n'],
  'mg N: placeholder, W then Z': [
    'mg $k s v N30 t c\r\n',
    'mg $k v N30 t\r\n',
    'mg $k v\r\n',
    'ms $k 5 T60\r\nvalue\r\n',
    'mg $k v N30 t\r\n',
  ],
  'mg R: early recache': ['ms $k 1 T100\r\nx\r\n', 'mg $k R30 t\r\n', 'mg $k R200 t\r\n', 'mg $k R200 t\r\n', 'mg $k R0\r\n'],
  'md I and ms I: serve stale, one winner': [
    'ms $k 3 T100 c\r\nold\r\n',
    'md $k I T30 q\r\n',
    'mg $k v t c\r\n',
    'mg $k v\r\n',
    'ms $k 3 C$cas1 I T999\r\nnew\r\n',
    'mg $k v t\r\n',
    'ms $k 3 C$cas1\r\nbad\r\n',
    'mg $k c\r\n',
    'ms $k 5 C$cas3 I\r\nfresh\r\n',
    'mg $k v\r\n',
  ],
  'ms modes': [
    'ms $k 3 ME\r\none\r\n',
    'ms $k 3 ME Oa k\r\ntwo\r\n',
    'ms $k 1 MA\r\n+\r\n',
    'ms $k 1 MP\r\n-\r\n',
    'mg $k v\r\n',
    'ms $k-none 1 MA c\r\n+\r\n',
    'ms $k-new 1 MR\r\nx\r\n',
    'ms $k 1 MR q\r\nr\r\n',
    'ms $k 1 MS\r\ns\r\nmg $k v\r\n',
    'ms $k 0\r\n\r\nmg $k s v\r\n',
  ],
  'ms CAS': [
    'ms $k 2 c\r\nv1\r\n',
    'ms $k 2 C1 q\r\nv2\r\n',
    'ms $k-gone 2 C1\r\nv2\r\n',
    'ms $k 2 C$cas1 c F9 T7\r\nv3\r\nmg $k c f t v\r\n',
    'ms $k 2 MA C$cas2\r\n++\r\nmg $k v\r\n',
  ],
  'ms errors and swallowed data': [
    'ms $k 2 q\r\nabc\r\n',
    'ms $k 3 zz\r\nabc\r\n',
    'ms $k 3 Mz\r\nabc\r\n',
    'ms $k 3 Tx\r\nabc\r\n',
    'ms $k 3 v v\r\nabc\r\n',
    'ms $k bad\r\n',
    'ms $k\r\n',
    'ms $k 2 S2\r\nab\r\n',
  ],
  'md': [
    'ms $k 3 c F5 T100\r\nabc\r\n',
    'md $k C1 Oa k\r\n',
    'md $k C$cas1 q\r\n',
    'md $k Oa\r\n',
    'md $k q\r\n',
    'ms $k 1\r\nx\r\nmd $k\r\nmg $k\r\n',
  ],
  'ma': [
    'ma $k\r\n',
    'ma $k q Oa\r\n',
    'ma $k N0 J10 v t\r\n',
    'ma $k v\r\n',
    'ma $k D9 v MI\r\n',
    'ma $k D5 M- v\r\n',
    'ma $k D100 MD v\r\n',
    'ma $k M+ D18446744073709551615 v\r\n',
    'ma $k v\r\n',
    'ma $k t T30\r\n',
    'ma $k c\r\n',
    'ma $k C1\r\n',
    'ma $k C$cas1 c v\r\n',
    'ma $k q\r\nma $k q v\r\nma $k v\r\n',
    // (a quiet ma that creates its item: 1.6.18 answers HD, 1.6.45 nothing)
    'ms $k-txt 2\r\nab\r\nma $k-txt\r\n',
    'ma $k Dx\r\nma $k zz\r\nma $k Mx\r\n',
  ],
  'flag errors': [
    'mg $k zz\r\n',
    'mg $k v v\r\n',
    'mg $k Tabc\r\nmg $k T\r\nmg $k N\r\nmg $k R1x\r\n',
    'mg $k 1\r\n',
    `mg $k O${'x'.repeat(32)}\r\n`,
    'mg $k a b c d e f g h i j k l m n o p q r s t u v\r\n',
    'mg !!!! b\r\n',
    `mg ${'k'.repeat(251)} v\r\n`,
  ],
  'base64 keys': ['ms AAEgDQr/ 2 b k\r\nhi\r\n', 'mg AAEgDQr/ b k v\r\n', 'mg AAEgDQr/ k\r\n', 'ms $k 1\r\nx\r\n'],
  'control bytes are key bytes in both protocols': ['set $k\x01\t\x7f 0 0 1\r\nx\r\nget $k\x01\t\x7f\r\nmg $k\x01\t\x7f v k\r\n'],
  'meta and classic commands share items and CAS values': [
    'set $k 3 0 2\r\nhi\r\n',
    'mg $k v f c\r\n',
    'gets $k\r\n',
    'ms $k 3 F4\r\nbye\r\n',
    'get $k\r\n',
    'incr $k 1\r\nset $k 0 0 1\r\n5\r\nma $k v\r\n',
    'md $k I\r\nmg $k v\r\ngets $k\r\n',
    'touch $k 100\r\nmg $k t\r\n',
    'delete $k\r\nmg $k\r\n',
  ],
};

t.test('meta replies match memcached 1.6.18 wherever 1.6.18 and 1.6.45 agree', async (t) => {
  const [ours, theirs] = await Promise.all([client(t, memshard), client(t, memcached)]);
  let n = 0;
  for (const [name, script] of Object.entries(SCRIPTS)) {
    const prefix = `diff${n++}`;
    const [a, b] = await Promise.all([runScript(ours, prefix, script), runScript(theirs, prefix, script)]);
    for (let i = 0; i < script.length; i++) {
      const ok = sameReplies(a[i]!, b[i]!);
      t.ok(ok, `${name}: ${JSON.stringify(script[i]!.slice(0, 50))}`, ok ? {} : { memshard: a[i], memcached: b[i] });
    }
  }
});

t.test('one connection mixes meta and classic commands over every shard', async (t) => {
  const c = await client(t, memshard);
  let sets = '';
  let gets = '';
  let expected = '';
  for (let i = 0; i < 64; i++) {
    sets += i % 2 === 0 ? `ms mix${i} 2 q T0\r\nv${i % 10}\r\n` : `set mix${i} 0 0 2 noreply\r\nv${i % 10}\r\n`;
    gets += i % 3 === 0 ? `get mix${i}\r\n` : `mg mix${i} v k O${i} q\r\n`;
    expected += i % 3 === 0 ? `VALUE mix${i} 0 2\r\nv${i % 10}\r\nEND\r\n` : `VA 2 kmix${i} O${i}\r\nv${i % 10}\r\n`;
  }
  t.equal(await exchange(c, sets), '', 'quiet stores answer nothing');
  t.equal(await exchange(c, `${gets}mg mix-missing v q\r\n`), expected, 'replies in request order, quiet miss left out');
  const gets1 = await exchange(c, 'gets mix1\r\n');
  const cas = /^VALUE mix1 0 2 (\d+)\r\n/.exec(gets1)?.[1];
  t.ok(cas, 'gets gives a CAS');
  t.equal(await exchange(c, 'mg mix1 c\r\n'), `HD c${cas}\r\n`, 'mg sees the same CAS');
  t.equal(await exchange(c, `ms mix1 2 C${cas}\r\nzz\r\ncas mix1 0 0 1 ${cas}\r\nx\r\n`), 'HD\r\nEXISTS\r\n', 'ms C changes it for cas');
});

/**
 * Opens n connections and sends each one `request` at once; returns every reply's first line.
 * Every other connection first sends `flush_all 3600` (a delayed flush that never comes within the
 * test), which queues behind it the connection's request in the shard workers' batches: the
 * herd hits both execution paths, the front end's inline one and the workers'.
 */
async function burst(t: Test, n: number, request: string): Promise<string[]> {
  const clients = await Promise.all(Array.from({ length: n }, () => client(t, memshard)));
  clients.forEach((c, i) => c.send(i % 2 === 0 ? request : `flush_all 3600\r\n${request}`));
  return Promise.all(
    clients.map(async (c, i) => {
      if (i % 2 === 1) await c.readUntil('OK\r\n', 5000);
      return c.readUntil('\r\n', 5000);
    }),
  );
}

t.test('stampede: 50 connections miss one key at once, exactly one wins the recache', async (t) => {
  for (let round = 0; round < 5; round++) {
    const key = `herd${round}`;
    const lines = await burst(t, 50, `mg ${key} v N30\r\n`);
    t.equal(lines.filter((l) => l === 'VA 0 W\r\n').length, 1, `round ${round}: one W`);
    t.equal(lines.filter((l) => l === 'VA 0 Z\r\n').length, 49, `round ${round}: 49 Z`);
  }
});

t.test('stampede on a stale item: one W among 50, the rest Z X, until the winner recaches', async (t) => {
  const c = await client(t, memshard);
  t.equal(await exchange(c, 'ms hot 3 T300\r\nold\r\nmd hot I\r\n'), 'HD\r\nHD\r\n');
  const lines = await burst(t, 50, 'mg hot v c\r\n');
  const winners = lines.filter((l) => / X W\r\n$/.test(l));
  t.equal(winners.length, 1, 'one winner');
  t.equal(lines.filter((l) => / Z X\r\n$/.test(l)).length, 49, 'everyone else is told the item is stale and taken');
  const cas = /c(\d+)/.exec(winners[0]!)?.[1];
  t.equal(await exchange(c, `ms hot 3 C${cas} T300\r\nnew\r\nmg hot v\r\n`), 'HD\r\nVA 3\r\nnew\r\n', 'the winner recaches with its CAS');
});

const COUNTED = [
  'cmd_get', 'get_hits', 'get_misses', 'cmd_touch', 'touch_hits', 'touch_misses', 'cmd_set', 'delete_hits',
  'delete_misses', 'incr_hits', 'incr_misses', 'decr_hits', 'decr_misses', 'cas_hits', 'cas_badval', 'cas_misses',
  'cmd_meta',
];

async function counters(c: RawClient): Promise<Map<string, number>> {
  const stats = await exchange(c, 'stats\r\n');
  return new Map([...stats.matchAll(/^STAT (\S+) (\d+)\r$/gm)].map((m) => [m[1]!, Number(m[2])]));
}

t.test('meta commands count in stats as memcached counts them', async (t) => {
  const script = [
    'mg sc-a v\r\n', 'ms sc-a 1 T0\r\nx\r\n', 'mg sc-a v\r\n', 'mg sc-a T30\r\n', 'mg sc-b T30\r\n', 'mg sc-c N30\r\n',
    'md sc-a\r\n', 'md sc-a\r\n', 'ms sc-n 1\r\n5\r\n', 'ma sc-n\r\n', 'ma sc-n MD\r\n', 'ma sc-m\r\n', 'ma sc-m MD\r\n',
    'ma sc-v N0\r\n', 'ms sc-n 1 C1\r\n1\r\n', 'ms sc-none 1 C1\r\n1\r\n', 'me sc-n\r\n', 'me sc-none\r\n',
  ];
  const [ours, theirs] = await Promise.all([client(t, memshard), client(t, memcached)]);
  for (const c of [ours, theirs]) await exchange(c, 'flush_all\r\n');
  const delta = async (c: RawClient) => {
    const before = await counters(c);
    for (const step of script) await exchange(c, step);
    const after = await counters(c);
    return Object.fromEntries(COUNTED.map((name) => [name, after.get(name)! - before.get(name)!]));
  };
  t.same(await delta(ours), await delta(theirs));
});
