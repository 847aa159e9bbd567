/**
 * Bad input never crashes, hangs or harms other clients: a seeded fuzzer over the text codec and
 * over real sockets.
 */
import t from 'tap';
import { Parsed, TextParser } from '../lib/protocol/text.js';
import { seededRandom } from '../scripts/random.js';
import { rawClient, startDaemon } from './helpers/daemon.js';

const FRAGMENTS = [
  'get ', 'gets ', 'gat ', 'set ', 'add ', 'cas ', 'append ', 'incr ', 'decr ', 'delete ', 'touch ', 'flush_all',
  'stats', 'verbosity ', 'version', 'noreply', ' ', '  ', '\r\n', '\n', '\r', '0', '1', '-1', '4294967296',
  '18446744073709551616', '99999999999', 'k', 'key', '\x00', '\x7f', '\xff', 'x'.repeat(251), 'HTTP/1.1',
  'y'.repeat(2100), 'mg ', 'ms ', 'md ', 'ma ', 'me ', 'mn', ' v', ' q', ' k', ' c', ' t', ' s', ' h', ' l', ' u', ' f',
  ' N30', ' R5', ' T-1', ' b', ' Oop', ' MA', ' ME', ' MD', ' M', ' I', ' x', ' C1', ' E5', ' D9', ' J1', ' F2', ' Zm9v',
];

function randomRequest(next: () => number): Buffer {
  const parts: Array<string | Buffer> = [];
  const n = 1 + Math.floor(next() * 12);
  for (let i = 0; i < n; i++) {
    if (next() < 0.2) {
      const bytes = Buffer.alloc(Math.floor(next() * 40));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(next() * 256);
      parts.push(bytes);
    } else {
      parts.push(FRAGMENTS[Math.floor(next() * FRAGMENTS.length)]!);
    }
  }
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));
}

t.test('the parser never throws and always makes progress', async (t) => {
  const next = seededRandom(12345);
  const parser = new TextParser(1024 * 1024);
  const seen = new Set<number>();
  for (let i = 0; i < 20_000; i++) {
    const buf = randomRequest(next);
    let pos = 0;
    for (let steps = 0; pos < buf.length; steps++) {
      if (steps > buf.length + 1) throw new Error(`no progress on ${JSON.stringify(buf.toString('latin1'))}`);
      const kind = parser.parse(buf, pos, buf.length);
      seen.add(kind);
      if (kind === Parsed.Incomplete || kind === Parsed.Close) break;
      if (parser.next <= pos) throw new Error(`parser went backwards on ${JSON.stringify(buf.toString('latin1'))}`);
      pos = parser.next + (kind === Parsed.Reply || kind === Parsed.Key ? parser.swallow : 0);
    }
  }
  t.same([...seen].sort(), Object.values(Parsed).sort(), 'the inputs reached every kind of parse result');
});

t.test('garbage over sockets does not hurt the server or other clients', async (t) => {
  const d = await startDaemon(['-t', '4', '-m', '16']);
  t.teardown(() => d.stop());
  const keeper = await rawClient(d.port);
  keeper.send('set precious 7 0 6\r\nsafe!!\r\n');
  t.equal(await keeper.readUntil('\r\n'), 'STORED\r\n');

  const next = seededRandom(777);
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      const c = await rawClient(d.port);
      for (let i = 0; i < 50 && !c.isClosed(); i++) {
        c.send(randomRequest(next));
        await new Promise((r) => setImmediate(r));
      }
      await c.close();
    }),
  );

  keeper.send('get precious\r\nversion\r\n');
  t.equal(await keeper.readUntil('END\r\n'), 'VALUE precious 7 6\r\nsafe!!\r\nEND\r\n', 'stored data untouched');
  t.match(await keeper.readUntil('\r\n'), /^VERSION /, 'the connection is still in sync');
  const fresh = await rawClient(d.port);
  fresh.send('version\r\n');
  t.match(await fresh.readUntil('\r\n'), /^VERSION /, 'new connections are served');
  t.equal(d.exitStatus(), null, 'the server is still running');
  await Promise.all([keeper.close(), fresh.close()]);
});
