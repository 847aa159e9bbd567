/**
 * The differential tester (scripts/difftest.ts): its normalising and known-difference rules, the
 * requests its first runs found answered wrongly (replayed against both servers), and a seeded
 * run of at least 20,000 requests per protocol against memcached, reply for reply.
 * DIFFTEST_SEED and DIFFTEST_COMMANDS change the run.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { PROTOCOLS, runDifftest, summarise } from '../scripts/difftest.js';
import { explanation, KNOWN_DIFFERENCES, skipReason } from '../scripts/difftest/known-differences.js';
import { binarySentinel, frameBinary, frameText, textSentinel } from '../scripts/difftest/framing.js';
import { packet } from '../scripts/difftest/gen-binary.js';
import { CasNames, normaliseText, sameReply } from '../scripts/difftest/normalise.js';
import { Peer } from '../scripts/difftest/peer.js';
import { MEMCACHED_ORACLE_OPTIONS } from '../scripts/difftest/servers.js';
import { memcachedBin, repoRoot, startDaemon, startMemcached, type Daemon } from './helpers/daemon.js';

const SEED = Number(process.env.DIFFTEST_SEED ?? 1);
const COMMANDS = Number(process.env.DIFFTEST_COMMANDS ?? 20_000);
const b = (s: string) => Buffer.from(s, 'latin1');

t.test('normalising: CAS values renamed by first appearance, clock readings within 2 s', async (t) => {
  const [x, y] = [new CasNames(), new CasNames()];
  const a = normaliseText(b('VALUE k 0 1 17\r\nv\r\nHD c17 t100\r\nEND\r\n'), x);
  const c = normaliseText(b('VALUE k 0 1 905\r\nv\r\nHD c905 t99\r\nEND\r\n'), y);
  t.equal(a.text, 'VALUE k 0 1 #1\r\nv\r\nHD c#1 t~\r\nEND\r\n');
  t.ok(sameReply(a, c), 'the same CAS in both places, TTLs a tick apart');
  t.equal(x.recentCas(0), 17n, 'the most recent CAS of each server, for the next request');
  t.equal(y.recentCas(0), 905n);
  const far = normaliseText(b('HD t90\r\n'), new CasNames());
  t.notOk(sameReply(normaliseText(b('HD t100\r\n'), new CasNames()), far), 'ten seconds apart is a difference');
  t.notOk(sameReply(normaliseText(b('VALUE k 0 1 5\r\nv\r\n'), new CasNames()), normaliseText(b('VALUE k 0 1 5\r\nw\r\n'), new CasNames())), 'values compared byte for byte');
  const data = normaliseText(b('VA 7\r\nHD c1\r\n\r\n'), new CasNames());
  t.equal(data.text, 'VA 7\r\nHD c1\r\n\r\n', 'a value is data, even when it looks like a reply');
});

t.test('framing: a reply ends at its own sentinel only', async (t) => {
  const reply = b('VALUE k 0 9\r\nEN Os7\r\n\r\nEN Os6\r\n');
  t.same(frameText(Buffer.concat([reply, b('EN Os7\r\n')]), 7), { reply: reply.length, consumed: reply.length + 8 });
  t.equal(frameText(reply, 7), null, "another request's sentinel and a value that looks like it do not end the reply");
  const noop = binarySentinel(9);
  noop[0] = 0x81;
  t.same(frameBinary(noop, 9), { reply: 0, consumed: 24 });
  t.equal(frameBinary(noop, 8), null);
  t.equal(textSentinel(3).toString('latin1'), 'mg __difftest_sentinel Os3\r\n');
});

t.test('known differences: each one explains its own case only', async (t) => {
  const seen = (request: string, memshard: string, memcached: string, harmlessBlock = false) =>
    explanation({ request, harmlessBlock, memshard, memcached, memshardRaw: memshard, memcachedRaw: memcached })?.id ?? null;
  const bad = 'CLIENT_ERROR bad command line format\r\n';
  t.equal(seen('set k 0 x 2\r\nzq\r\n', bad, `${bad}ERROR\r\n`, true), 'refused-line-runs-block');
  t.equal(seen('set k 0 x 2\r\nzq\r\n', bad, `${bad}ERROR\r\n`, false), null, 'only for the blocks the generator made harmless');
  t.equal(seen('set k 0 x 2\r\nzq\r\n', bad, `${bad}STORED\r\n`, true), null, 'and only ERROR lines');
  t.equal(seen('ms k 1 s\r\nx\r\n', 'HD s1\r\n', 'HD\r\n'), 'ms-s-flag');
  t.equal(seen('ms k 1 s\r\nx\r\n', 'HD s1\r\n', 'NS\r\n'), null);
  t.equal(seen('incr k 1\r\n', '9223372036854775809\r\n', 'CLIENT_ERROR cannot increment or decrement non-numeric value\r\n'), 'incr-sign-scan');
  t.equal(seen('incr k 1\r\n', '11\r\n', 'CLIENT_ERROR cannot increment or decrement non-numeric value\r\n'), null, 'a counter below 2^63 must agree');
  t.equal(seen('ma k\r q N0\r\n', '', 'HD kk\r\r\n'), 'ma-quiet-create', 'a key may hold a CR');
  t.equal(skipReason('ms k 2 T2147483648\r\nab\r\n'), 'meta-number-tokens', "1.6.45's tokenizer refuses it, 1.6.18 truncates");
  t.equal(skipReason('incr k 1 noreply\r\n'), 'incr-sign-scan', 'a silent incr cannot show that 1.6.18 refused it');
  t.equal(skipReason('incr k 1\r\n'), null);
  t.equal(skipReason('ms k 2 T2147483647\r\nab\r\n'), null);
  t.equal(skipReason('ms k 2 Tabc\r\nab\r\n'), null, 'refused by both: compared');
  t.equal(skipReason(`gat 0 k1 ${'b'.repeat(251)}\r\n`), 'multiget-bad-key-side-effects');
  t.equal(skipReason(`gat 0 ${'b'.repeat(251)} k1\r\n`), null, 'nothing touched before the bad key');
  t.equal(skipReason(packet({ opcode: 0x30, key: b('k'), opaque: 1 }, null).toString('latin1')), 'binary-unknown-opcode-key');
  t.equal(skipReason(packet({ opcode: 0x30, opaque: 1 }, null).toString('latin1')), null);
});

t.test('the README lists every known difference by its id', async (t) => {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  for (const d of KNOWN_DIFFERENCES) t.ok(readme.includes(`\`${d.id}\``), d.id);
});

/** Sends each request (with its sentinel) to one server; returns the raw replies. */
async function replay(port: number, requests: Buffer[], binary: boolean): Promise<string[]> {
  const peer = new Peer('x', port);
  await peer.connect();
  const out: string[] = [];
  try {
    for (let i = 0; i < requests.length; i++) {
      const sentinel = binary ? binarySentinel(i + 1) : textSentinel(i + 1);
      const frame = binary ? frameBinary : frameText;
      const x = await peer.exchange(Buffer.concat([requests[i]!, sentinel]), (buf) => frame(buf, i + 1), 5000);
      out.push(x.reply.toString(binary ? 'hex' : 'latin1'));
    }
  } finally {
    peer.disconnect();
  }
  return out;
}

const hasMemcached = existsSync(memcachedBin);

t.test('memshard and memcached', { skip: !hasMemcached && 'no /usr/bin/memcached' }, async (t) => {
  let memshard: Daemon;
  let memcached: Daemon;
  t.before(async () => {
    [memshard, memcached] = await Promise.all([startDaemon(['-t', '2']), startMemcached([...MEMCACHED_ORACLE_OPTIONS])]);
  });
  t.teardown(async () => {
    await Promise.all([memshard?.stop(), memcached?.stop()]);
  });

  /** Requests the tester found answered wrongly, with memcached 1.6.18's answers. */
  const both = async (t: Test, requests: Buffer[], expected: string[], binary = false) => {
    const [ours, theirs] = await Promise.all([replay(memshard.port, requests, binary), replay(memcached.port, requests, binary)]);
    t.same(theirs, expected, 'memcached answers so');
    t.same(ours, expected, 'memshard answers the same');
  };

  t.test('counters past 2^53 are exact (text incr/decr)', async (t) => {
    await both(
      t,
      ['set n 0 0 19\r\n9223372036854775807\r\n', 'incr n 1\r\n', 'incr n 1\r\n', 'decr n 1\r\n', 'set m 0 0 16\r\n9007199254740993\r\n', 'incr m 0\r\n', 'set o 0 0 16\r\n9999999999999999\r\n', 'incr o 1\r\n', 'set p 0 0 3\r\n100\r\n', 'decr p 1\r\n', 'get p\r\n', 'set q 0 0 4\r\n12\0a\r\n', 'incr q 1\r\n'].map(b),
      ['STORED\r\n', '9223372036854775808\r\n', '9223372036854775809\r\n', '9223372036854775808\r\n', 'STORED\r\n', '9007199254740993\r\n', 'STORED\r\n', '10000000000000000\r\n', 'STORED\r\n', '99\r\n', 'VALUE p 0 3\r\n99 \r\nEND\r\n', 'STORED\r\n', '13\r\n'],
    );
  });

  t.test('-I: flags take 4 bytes; too large answers before a bad data chunk; incr refuses a chunked value', async (t) => {
    const value = (n: number, end = '\r\n') => Buffer.concat([b('a'.repeat(n)), b(end)]);
    const limit = 1048576 - 48 - 8 - (3 + 1) - 2; // key "big" and its NUL
    await both(
      t,
      [
        Buffer.concat([b(`set big 0 0 ${limit}\r\n`), value(limit)]),
        Buffer.concat([b(`set big 1 0 ${limit}\r\n`), value(limit)]),
        Buffer.concat([b(`set big 0 0 ${limit + 1}\r\n`), value(limit + 1, 'XY')]),
        Buffer.concat([b('set num 0 0 600000\r\n5'), value(599999).fill(0x20, 0, 599999)]),
        b('incr num 1\r\n'),
      ],
      ['STORED\r\n', 'SERVER_ERROR object too large for cache\r\n', 'SERVER_ERROR object too large for cache\r\n', 'STORED\r\n', 'CLIENT_ERROR cannot increment or decrement non-numeric value\r\n'],
    );
  });

  t.test("me: memcached's slab class for memcached's item size", async (t) => {
    // 48 + 8 + 2 + 1 + 39 + 2 = 100 bytes: memcached's class 2 (class 1 holds 96)
    const requests = [b(`set k1 0 0 39\r\n${'x'.repeat(39)}\r\n`), b('me k1\r\n')];
    const [ours, theirs] = await Promise.all([replay(memshard.port, requests, false), replay(memcached.port, requests, false)]);
    const cls = (s: string) => / cls=(\d+) size=(\d+)/.exec(s)?.slice(1);
    t.same(cls(theirs[1]!), ['2', '100'], 'memcached');
    t.same(cls(ours[1]!), ['2', '100'], 'memshard');
  });

  t.test('binary expirations are unsigned: 0xffffffff is far ahead, not past', async (t) => {
    const extras = Buffer.from('00000000ffffffff', 'hex');
    const set = packet({ opcode: 0x01, key: b('bx'), value: b('v'), extras, opaque: 1 }, null);
    const get = packet({ opcode: 0x00, key: b('bx'), opaque: 2 }, null);
    const [ours, theirs] = await Promise.all([replay(memshard.port, [set, get], true), replay(memcached.port, [set, get], true)]);
    const status = (hex: string) => hex.slice(12, 16);
    t.same(theirs.map(status), ['0000', '0000'], 'memcached stores it and finds it');
    t.same(ours.map(status), ['0000', '0000'], 'so does memshard');
  });

  for (const [i, protocol] of PROTOCOLS.entries()) {
    t.test(`${COMMANDS} seeded ${protocol} requests, reply for reply`, async (t) => {
      // a generous timeout: it is only reached when a server does not answer (the machine may be busy)
      const result = await runDifftest({ seed: SEED + i, commands: COMMANDS, protocol, memshardPort: memshard.port, memcachedPort: memcached.port, timeoutMs: 10_000, maxDifferences: 5 });
      t.equal(result.sent, COMMANDS, 'every request sent');
      t.same(result.differences, [], result.differences.length === 0 ? 'no differences' : summarise(result, true));
      // the run met the protocol's answers, not only misses and errors
      const wanted = {
        text: ['STORED', 'NOT_STORED', 'EXISTS', 'NOT_FOUND', 'VALUE', 'DELETED', 'TOUCHED', '<number>', 'CLIENT_ERROR', 'ERROR'],
        meta: ['HD', 'VA', 'EN', 'NF', 'NS', 'EX', 'ME', 'MN', 'CLIENT_ERROR'],
        binary: ['status 0x0', 'status 0x1', 'status 0x2', 'status 0x5', 'status 0x6', 'status 0x81'],
      }[protocol];
      for (const w of wanted) t.ok((result.replies[w] ?? 0) > 0, `answered ${w}`);
      t.comment(summarise(result));
    });
  }
});
