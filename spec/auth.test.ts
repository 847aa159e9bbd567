/**
 * Authentication: SASL PLAIN over the binary protocol (-S) and memcached's text login (-Y). No
 * command is served to a connection that has not logged in.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import memjs from 'memjs';
import t from 'tap';
import { counterExtras, Op, readResponse, readResponsesThrough, request, Status, storeExtras, u32 } from './helpers/binary.js';
import { cliPath, rawClient, startDaemon, type RawClient } from './helpers/daemon.js';

/** SASL opcodes and the auth status, from memcached's protocol_binary.h. */
const SASL_LIST_MECHS = 0x20;
const SASL_AUTH = 0x21;
const AUTH_ERROR = 0x20;

const dir = mkdtempSync(path.join(tmpdir(), 'memshard-auth-'));
const pwdb = path.join(dir, 'users');
writeFileSync(pwdb, '# memshard test users\nalice:s3cret\nbob:pa:ss\n');

/** A request of every binary opcode with valid lengths, to try each one before logging in. */
const EVERY_OPCODE: Array<[string, Buffer]> = [
  ['get', request({ opcode: Op.Get, key: 'k' })],
  ['getq', request({ opcode: Op.GetQ, key: 'k' })],
  ['getk', request({ opcode: Op.GetK, key: 'k' })],
  ['getkq', request({ opcode: Op.GetKQ, key: 'k' })],
  ['set', request({ opcode: Op.Set, key: 'k', extras: storeExtras(0, 0), value: 'v' })],
  ['setq', request({ opcode: Op.SetQ, key: 'k', extras: storeExtras(0, 0), value: 'v' })],
  ['add', request({ opcode: Op.Add, key: 'k', extras: storeExtras(0, 0), value: 'v' })],
  ['replace', request({ opcode: Op.Replace, key: 'k', extras: storeExtras(0, 0), value: 'v' })],
  ['append', request({ opcode: Op.Append, key: 'k', value: 'v' })],
  ['prepend', request({ opcode: Op.Prepend, key: 'k', value: 'v' })],
  ['delete', request({ opcode: Op.Delete, key: 'k' })],
  ['incr', request({ opcode: Op.Increment, key: 'n', extras: counterExtras(1n, 0n, 0) })],
  ['decr', request({ opcode: Op.Decrement, key: 'n', extras: counterExtras(1n, 0n, 0) })],
  ['touch', request({ opcode: Op.Touch, key: 'k', extras: u32(10) })],
  ['gat', request({ opcode: Op.GAT, key: 'k', extras: u32(10) })],
  ['gatk', request({ opcode: Op.GATK, key: 'k', extras: u32(10) })],
  ['flush', request({ opcode: Op.Flush })],
  ['stat', request({ opcode: Op.Stat })],
  ['noop', request({ opcode: Op.Noop })],
  ['quit', request({ opcode: Op.Quit })],
  ['unknown 0x50', request({ opcode: 0x50 })],
  // memcached checks the login before each command's length rules
  ['get with extras (malformed)', request({ opcode: Op.Get, key: 'k', extras: u32(1) })],
];

/** A binary Stat group as a map: one packet per stat, up to the empty one that ends it. */
async function binaryStats(c: RawClient, group: string): Promise<Map<string, string>> {
  c.send(request({ opcode: Op.Stat, key: group }));
  const packets = await readResponsesThrough(c, (r) => r.key.length === 0);
  return new Map(packets.filter((r) => r.key.length > 0).map((r) => [r.key.toString(), r.value.toString()]));
}

function plain(user: string, password: string): Buffer {
  return Buffer.from(`\0${user}\0${password}`, 'utf8');
}

t.test('-S: every command before a SASL login gets an auth error and the connection closes', async (t) => {
  const d = await startDaemon(['-S', '--sasl-pwdb', pwdb]);
  t.teardown(() => d.stop());
  for (const [name, req] of EVERY_OPCODE) {
    const c = await rawClient(d.port);
    c.send(req);
    const r = await readResponse(c);
    t.equal(r.status, AUTH_ERROR, `${name}: auth error`);
    await c.waitForClose(3000);
    t.ok(c.isClosed(), `${name}: connection closed`);
  }
  const c = await rawClient(d.port);
  c.send(request({ opcode: Op.Version, opaque: 7 }));
  const v = await readResponse(c);
  t.same([v.status, v.opaque], [Status.OK, 7], 'version is open');
  c.send(request({ opcode: SASL_LIST_MECHS }));
  t.equal((await readResponse(c)).value.toString(), 'PLAIN');
  c.send(request({ opcode: SASL_AUTH, key: 'PLAIN', value: plain('alice', 'wrong') }));
  t.equal((await readResponse(c)).status, AUTH_ERROR, 'wrong password refused');
  c.send(request({ opcode: SASL_AUTH, key: 'PLAIN', value: plain('bob', 'pa:ss') }));
  const ok = await readResponse(c);
  t.same([ok.status, ok.value.toString()], [Status.OK, 'Authenticated'], 'a password may contain a colon');
  c.send(request({ opcode: Op.Set, key: 'k', extras: storeExtras(5, 0), value: 'after' }));
  t.equal((await readResponse(c)).status, Status.OK, 'served once logged in');
  t.equal((await binaryStats(c, 'settings')).get('auth_enabled_sasl'), 'yes');
  const general = await binaryStats(c, '');
  t.equal(general.get('auth_cmds'), '2');
  t.equal(general.get('auth_errors'), '1');
  await c.close();

  const text = await rawClient(d.port);
  text.send('get k\r\n');
  t.equal((await text.waitForClose(3000)).length, 0, 'the text protocol is refused: the connection closes');
});

t.test('-S with memjs: the right password works, a wrong one or none does not', async (t) => {
  const d = await startDaemon(['-S', '--sasl-pwdb', pwdb]);
  t.teardown(() => d.stop());
  const good = memjs.Client.create(`127.0.0.1:${d.port}`, { username: 'alice', password: 's3cret', retries: 0, timeout: 2, logger: { log: () => {} } });
  t.teardown(() => good.close());
  t.equal(await good.set('memjs', Buffer.from([0, 255, 128]), {}), true);
  t.same([...(await good.get('memjs')).value!], [0, 255, 128]);
  for (const [name, options] of [
    ['wrong password', { username: 'alice', password: 'nope' }],
    ['no credentials', {}],
  ] as const) {
    const client = memjs.Client.create(`127.0.0.1:${d.port}`, { ...options, retries: 0, timeout: 2, logger: { log: () => {} } });
    await t.rejects(client.get('memjs'), `${name}: refused`);
    client.close();
  }
});

t.test('-Y: text commands before the login get CLIENT_ERROR unauthenticated', async (t) => {
  const d = await startDaemon(['-Y', pwdb]);
  t.teardown(() => d.stop());
  const c = await rawClient(d.port);
  for (const cmd of ['get k', 'gets k', 'delete k', 'incr n 1', 'touch k 1', 'flush_all', 'stats', 'version', 'verbosity 1', 'quit', 'mg k v', 'bogus']) {
    c.send(`${cmd}\r\n`);
    t.equal(await c.readUntil('\r\n'), 'CLIENT_ERROR unauthenticated\r\n', cmd);
  }
  c.send('set any 0 0 11\r\nalice wrong\r\n');
  t.equal(await c.readUntil('\r\n'), 'CLIENT_ERROR authentication failure\r\n');
  c.send('set any 0 0 12\r\nalice s3cret\r\n');
  t.equal(await c.readUntil('\r\n'), 'STORED\r\n', 'logged in');
  c.send('set k 0 0 2\r\nok\r\nget k\r\n');
  t.equal(await c.readUntil('END\r\n'), 'STORED\r\nVALUE k 0 2\r\nok\r\nEND\r\n', 'served once logged in');
  c.send('stats\r\n');
  const stats = await c.readUntil('END\r\n');
  t.match(stats, 'STAT auth_cmds 2\r\n');
  t.match(stats, 'STAT auth_errors 1\r\n');
  await c.close();

  const binary = await rawClient(d.port);
  binary.send(request({ opcode: Op.Version }));
  t.equal((await binary.waitForClose(3000)).length, 0, 'the binary protocol is refused: the connection closes');
});

t.test('CLI: -S needs a password file, which must be readable and well formed', async (t) => {
  const run = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [cliPath, '-p', '0', '--metrics-port', '0', ...args], { encoding: 'utf8', timeout: 10_000, env: { ...process.env, ...env } });
  const none = run(['-S']);
  t.equal(none.status, 64);
  t.match(none.stderr, /-S\/--enable-sasl: needs a password file/);
  const missing = run(['-S', '--sasl-pwdb', path.join(dir, 'nope')]);
  t.equal(missing.status, 64);
  t.match(missing.stderr, /--sasl-pwdb: .*nope/);
  const bad = path.join(dir, 'bad');
  writeFileSync(bad, 'no colon here\n');
  const malformed = run(['-Y', bad]);
  t.equal(malformed.status, 64);
  t.match(malformed.stderr, /-Y\/--auth-file: .*user:password/);
  t.equal(run(['-S', '-Y', pwdb, '--sasl-pwdb', pwdb]).status, 64, '-S and -Y together are refused');
});

t.test('MEMCACHED_SASL_PWDB names the password file', async (t) => {
  process.env['MEMCACHED_SASL_PWDB'] = pwdb;
  const d = await startDaemon(['-S']);
  delete process.env['MEMCACHED_SASL_PWDB'];
  t.teardown(() => d.stop());
  const c = await rawClient(d.port);
  c.send(request({ opcode: SASL_AUTH, key: 'PLAIN', value: plain('alice', 's3cret') }));
  t.equal((await readResponse(c)).status, Status.OK);
  await c.close();
});
