/**
 * `stats hotkeys [N]` over real sockets (text and binary): with --hot-keys the key this test made
 * hot comes first with its exact count (few distinct keys: the sketch is exact) however the
 * connections fell on the threads, writes apart from reads, shard rows adding up to the totals; without
 * --hot-keys no key name appears in the reply nor in the dashboard's JSON, only shard counts.
 */
import t from 'tap';
import { Op, readResponsesThrough, request } from './helpers/binary.js';
import { freePort, httpGet, rawClient, startDaemon, type RawClient } from './helpers/daemon.js';

async function ask(c: RawClient, line: string, until = 'END\r\n'): Promise<string> {
  c.send(`${line}\r\n`);
  return c.readUntil(until, 5000);
}

function rows(reply: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of reply.split('\r\n')) {
    const s = /^STAT (\S+) (.*)$/.exec(line);
    if (s) m.set(s[1]!, s[2]!);
  }
  return m;
}

const HOT = 'hot:item';
const HOT_READS = 600;
const COLD = 150;

/** Over 8 connections (so over every thread): HOT set once and read HOT_READS times, COLD other keys read once, one key written 20 times. */
async function traffic(port: number): Promise<void> {
  const clients = await Promise.all(Array.from({ length: 8 }, () => rawClient(port)));
  await ask(clients[0]!, `set ${HOT} 0 0 3\r\nhot`, 'STORED\r\n');
  for (let i = 0; i < HOT_READS; i++) {
    const c = clients[i % clients.length]!;
    // a multi-get counts each key: a second key on every 3rd request
    c.send(i % 3 === 0 ? `get ${HOT} cold:${i % COLD}\r\n` : `get ${HOT}\r\n`);
    await c.readUntil('END\r\n', 5000);
  }
  for (let i = 0; i < 20; i++) await ask(clients[i % clients.length]!, `set wr:key 0 0 1\r\nw`, 'STORED\r\n');
  await Promise.all(clients.map((c) => c.close()));
}

t.test('--hot-keys: the hot key first, exact counts, writes apart, shards add up', async (t) => {
  const d = await startDaemon(['-t', '4', '--hot-keys']);
  t.teardown(() => d.stop());
  await traffic(d.port);
  const c = await rawClient(d.port);
  const r = rows(await ask(c, 'stats hotkeys'));
  t.equal(r.get('hot_keys'), 'on');
  t.equal(r.get('reads:1:key'), HOT, 'the hot key is the first read');
  t.equal(r.get('reads:1:count'), String(HOT_READS), 'its count is exact');
  t.equal(r.get('reads:1:error'), '0', 'with an error of 0');
  const cold = HOT_READS / 3;
  t.equal(r.get('reads'), String(HOT_READS + cold), 'every key read is counted');
  t.equal(r.get('writes:1:key'), 'wr:key', 'the key written 20 times is the first write');
  t.equal(r.get('writes:1:count'), '20');
  t.equal(r.get('writes:2:key'), HOT);
  t.equal(r.get('writes'), '21');
  t.ok(Number(r.get('reads:1:rate')) > 0, `a rate: ${r.get('reads:1:rate')}/s over ${r.get('window_seconds')} s`);
  t.ok(Number(r.get('window_seconds')) > 0 && Number(r.get('window_seconds')) <= 2 * Number(r.get('epoch_seconds')), 'window within two epochs');
  t.equal([...r.keys()].filter((k) => /^reads:\d+:key$/.test(k)).length, 10, 'ten reads listed by default');
  let shardReads = 0;
  let shardWrites = 0;
  for (let s = 0; s < 4; s++) {
    shardReads += Number(r.get(`shard:${s}:reads`));
    shardWrites += Number(r.get(`shard:${s}:writes`));
  }
  t.equal(shardReads, HOT_READS + cold, 'shard reads add up');
  t.equal(shardWrites, 21, 'shard writes add up');

  const three = rows(await ask(c, 'stats hotkeys 3'));
  t.same([...three.keys()].filter((k) => /^reads:\d+:key$/.test(k)), ['reads:1:key', 'reads:2:key', 'reads:3:key'], 'stats hotkeys 3: three');
  t.equal(await ask(c, 'stats hotkeys 0', '\r\n'), 'CLIENT_ERROR bad command line format\r\n');
  t.equal(await ask(c, 'stats hotkeys many', '\r\n'), 'CLIENT_ERROR bad command line format\r\n');

  await c.close();
  // binary Stat with the group as key (a connection speaks the protocol of its first byte)
  const b = await rawClient(d.port);
  b.send(request({ opcode: Op.Stat, key: 'hotkeys' }));
  const packets = await readResponsesThrough(b, (p) => p.key.length === 0);
  const bin = new Map(packets.filter((p) => p.key.length > 0).map((p) => [p.key.toString(), p.value.toString()]));
  t.equal(bin.get('reads:1:key'), HOT, 'binary Stat hotkeys: the same first key');
  t.equal(bin.get('reads:1:count'), String(HOT_READS));
  await b.close();
});

t.test('without --hot-keys: no key name leaves the server, shard counts do', async (t) => {
  const metricsPort = await freePort();
  const d = await startDaemon(['-t', '2', '--metrics-port', String(metricsPort)]);
  t.teardown(() => d.stop());
  await traffic(d.port);
  const c = await rawClient(d.port);
  const reply = await ask(c, 'stats hotkeys 50');
  const r = rows(reply);
  t.equal(r.get('hot_keys'), 'off');
  t.notOk(reply.includes('hot:item') || reply.includes('cold:') || reply.includes('wr:key'), 'no key name in stats hotkeys');
  t.same([...r.keys()].filter((k) => /:key$/.test(k)), [], 'no key rows');
  t.equal(Number(r.get('shard:0:reads')) + Number(r.get('shard:1:reads')), HOT_READS + HOT_READS / 3, 'shard reads still counted');
  await c.close();
  let json = { status: 0, body: '' };
  for (let i = 0; i < 50 && json.status !== 200; i++) {
    json = await httpGet(`http://127.0.0.1:${metricsPort}/api/snapshot`).catch(() => ({ status: 0, body: '' }));
    if (json.status !== 200) await new Promise((res) => setTimeout(res, 100));
  }
  t.equal(json.status, 200, 'the dashboard JSON is served');
  t.notOk(/hot:item|cold:\d|wr:key/.test(json.body), 'no key name in the dashboard JSON');
  const snap = JSON.parse(json.body) as { hotKeys: { keys: boolean; reads: { total: number; keys: unknown[] } } };
  t.equal(snap.hotKeys.keys, false);
  t.same(snap.hotKeys.reads.keys, []);
  t.equal(snap.hotKeys.reads.total, HOT_READS + HOT_READS / 3, 'the JSON has the shard counts');
});
