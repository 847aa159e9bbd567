/**
 * `stats detail on|off|dump` and -D: per-prefix gets, hits, sets and deletes, counted over every
 * serving thread, compared with memcached 1.6.18 (lines sorted: both list prefixes in hash order).
 */
import t from 'tap';
import { Op, request, readResponses } from './helpers/binary.js';
import { rawClient, startDaemon, startMemcached, type Daemon, type RawClient } from './helpers/daemon.js';

async function ask(c: RawClient, line: string, until = '\r\n'): Promise<string> {
  c.send(`${line}\r\n`);
  return c.readUntil(until, 3000);
}

const sorted = (dump: string): string[] => dump.split('\r\n').filter((l) => l.startsWith('PREFIX ')).sort();

/** Seeded: keys with and without the delimiter, over several connections (so several threads). */
async function traffic(port: number, delimiter: string, seed: number): Promise<void> {
  let x = seed;
  const rnd = (): number => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const clients = await Promise.all(Array.from({ length: 6 }, () => rawClient(port)));
  const prefixes = ['user', 'session', 'a', '', 'x y'.replace(' ', '_')];
  for (let i = 0; i < 600; i++) {
    const c = clients[i % clients.length]!;
    const p = prefixes[Math.floor(rnd() * prefixes.length)]!;
    const key = rnd() < 0.15 ? `plain${i % 7}` : `${p}${delimiter}${Math.floor(rnd() * 20)}`;
    const r = rnd();
    if (r < 0.3) c.send(`set ${key} 0 0 2\r\nhi\r\n`);
    else if (r < 0.4) c.send(`add ${key} 0 0 2\r\nhi\r\n`);
    else if (r < 0.5) c.send(`append ${key} 0 0 1\r\n!\r\n`);
    else if (r < 0.75) c.send(`get ${key}\r\n`);
    else if (r < 0.85) c.send(`get ${key} ${key}x nope\r\n`);
    else if (r < 0.95) c.send(`delete ${key}\r\n`);
    else c.send(`mg ${key} v\r\nincr ${key} 1\r\n`);
    c.send('mn\r\n');
    await c.readUntil('MN\r\n', 3000);
  }
  await Promise.all(clients.map((c) => c.close()));
}

t.test('stats detail: memcached 1.6.18 counts, text and binary', async (t) => {
  for (const delimiter of [':', '/']) {
    const extra = delimiter === ':' ? [] : ['-D', delimiter];
    const servers: Daemon[] = [await startMemcached(extra), await startDaemon(['-t', '4', ...extra])];
    const [mc, ms] = await Promise.all(servers.map((s) => rawClient(s.port)));
    for (const c of [mc!, ms!]) {
      t.equal(await ask(c, 'stats detail'), 'CLIENT_ERROR usage: stats detail on|off|dump\r\n');
      t.equal(await ask(c, 'stats detail bogus'), 'CLIENT_ERROR usage: stats detail on|off|dump\r\n');
      if (delimiter === ':') t.equal(await ask(c, 'stats detail on'), 'OK\r\n');
    }
    const [a, b] = await Promise.all([settingsOf(mc!), settingsOf(ms!)]);
    t.equal(b.get('detail_enabled'), a.get('detail_enabled'), `${delimiter}: detail_enabled`);
    t.equal(b.get('stat_key_prefix'), a.get('stat_key_prefix'), `${delimiter}: stat_key_prefix`);
    await traffic(servers[0]!.port, delimiter, 7);
    await traffic(servers[1]!.port, delimiter, 7);
    const [da, db] = await Promise.all([ask(mc!, 'stats detail dump', 'END\r\n'), ask(ms!, 'stats detail dump', 'END\r\n')]);
    t.ok(sorted(da).length >= 4, `${delimiter}: memcached lists ${sorted(da).length} prefixes`);
    t.same(sorted(db), sorted(da), `${delimiter}: the same counts per prefix`);
    for (const c of [mc!, ms!]) {
      t.equal(await ask(c, 'stats detail off'), 'OK\r\n');
      c.send('get user:1\r\n');
      await c.readUntil('END\r\n');
    }
    const [oa, ob] = await Promise.all([ask(mc!, 'stats detail dump', 'END\r\n'), ask(ms!, 'stats detail dump', 'END\r\n')]);
    t.same(sorted(ob), sorted(oa), `${delimiter}: off stops counting`);
    for (const c of [mc!, ms!]) await ask(c, 'stats reset');
    const [ra, rb] = await Promise.all([ask(mc!, 'stats detail dump', 'END\r\n'), ask(ms!, 'stats detail dump', 'END\r\n')]);
    t.same(rb, ra, `${delimiter}: stats reset clears them`);
    await Promise.all(servers.map((s) => s.stop()));
  }
});

async function settingsOf(c: RawClient): Promise<Map<string, string>> {
  const reply = await ask(c, 'stats settings', 'END\r\n');
  return new Map(reply.split('\r\n').filter((l) => l.startsWith('STAT ')).map((l) => l.slice(5).split(' ') as [string, string]));
}

t.test('binary Stat detail on|dump|off answers as memcached does', async (t) => {
  const servers: Daemon[] = [await startMemcached(), await startDaemon(['-t', '2'])];
  t.teardown(() => Promise.all(servers.map((s) => s.stop())));
  const answers: string[][] = [];
  for (const server of servers) {
    const c = await rawClient(server.port);
    const seen: string[] = [];
    for (const key of ['detail on', 'detail bogus', 'detail dump', 'detail off']) {
      c.send(request({ opcode: Op.Stat, key }));
      if (key === 'detail on') c.send(request({ opcode: Op.Set, key: 'p:k', extras: Buffer.alloc(8), value: 'v' }));
      const wanted = key === 'detail bogus' ? 1 : key === 'detail dump' ? 2 : 1;
      const responses = await readResponses(c, wanted + (key === 'detail on' ? 1 : 0));
      seen.push(...responses.map((r) => `${r.status} ${r.key.toString('latin1')} ${r.value.toString('latin1')}`));
    }
    answers.push(seen);
    await c.close();
  }
  t.same(answers[1], answers[0]);
  t.match(answers[1]!.join('\n'), /detailed PREFIX p get 0 hit 0 set 1 del 0\r\nEND\r\n/);
});
