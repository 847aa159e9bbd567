/**
 * The pure parts of the front end: what a binary request becomes (binaryAction) and what the
 * text login (-Y) reads (parseAsciiLogin). Their behaviour over sockets is in binary.test.ts,
 * memcapable.test.ts and auth.test.ts.
 */
import t from 'tap';
import { parseAsciiLogin } from '../lib/auth.js';
import { BinaryParser, BinParsed } from '../lib/protocol/binary.js';
import { binaryAction, NO_REPLY } from '../lib/protocol/binary-request.js';
import { Op as ShardOp } from '../lib/protocol/command.js';
import { counterExtras, Op, request, storeExtras, u32, type RequestSpec } from './helpers/binary.js';

function parsed(spec: RequestSpec, sasl = false): BinaryParser {
  const bp = new BinaryParser(1024 * 1024, sasl);
  const frame = request(spec);
  t.equal(bp.parse(frame, 0, frame.length), BinParsed.Request, `opcode ${spec.opcode} parses`);
  return bp;
}

const commandOf = (spec: RequestSpec) => {
  const action = binaryAction(parsed(spec));
  if (action === null || !('cmd' in action)) throw new Error(`opcode ${spec.opcode}: no key command`);
  return action;
};

t.test('key commands carry what the shard needs', async (t) => {
  const set = commandOf({ opcode: Op.SetQ, key: 'k', extras: storeExtras(7, 0xfffffff0), value: 'val', opaque: 9, cas: 5n });
  t.equal(set.name, 'set');
  t.match(set.cmd, { op: ShardOp.Set, flags: 7, exptime: 0xfffffff0, cas: 5, binary: { opaque: 9, quiet: true } });
  t.equal(Buffer.from(set.cmd.value!).toString(), 'val');
  t.equal(Buffer.from(set.cmd.key).toString(), 'k');

  const gatk = commandOf({ opcode: Op.GATK, key: 'k', extras: u32(0x80000000) });
  t.match(gatk, { name: 'gat', cmd: { op: ShardOp.Gat, exptime: 0x80000000, binary: { withKey: true, touchOnly: false } } }, 'expirations are unsigned');
  t.match(commandOf({ opcode: Op.Touch, key: 'k', extras: u32(10) }), { name: 'touch', cmd: { binary: { touchOnly: true } } });
  t.match(commandOf({ opcode: Op.GetK, key: 'k' }), { name: 'get', cmd: { op: ShardOp.Get, binary: { withKey: true } } });

  const incr = commandOf({ opcode: Op.Increment, key: 'n', extras: counterExtras(2n ** 64n - 1n, 42n, 0xffffffff) });
  t.match(incr, { name: 'incr', cmd: { op: ShardOp.Incr, delta: 2n ** 64n - 1n, binary: { initial: 42n, create: false } } }, '0xffffffff: do not create');
  t.match(commandOf({ opcode: Op.Decrement, key: 'n', extras: counterExtras(1n, 0n, 0) }), { name: 'decr', cmd: { binary: { create: true } } });
  t.match(commandOf({ opcode: Op.Prepend, key: 'k', value: 'x' }), { name: 'prepend', cmd: { op: ShardOp.Prepend, flags: 0 } });
});

t.test('requests answered by the front end itself', async (t) => {
  const noop = binaryAction(parsed({ opcode: Op.Noop, opaque: 3 }));
  t.ok(noop !== null && 'reply' in noop && !noop.close && noop.reply[0] === 0x81 && noop.reply.readUInt32BE(12) === 3, 'noop: a response with the opaque');
  const version = binaryAction(parsed({ opcode: Op.Version }));
  t.ok(version !== null && 'reply' in version && /^\d+\.\d+\.\d+/.test(version.reply.subarray(24).toString()), 'version: a version string');
  t.same(binaryAction(parsed({ opcode: Op.QuitQ })), { reply: NO_REPLY, close: true }, 'quiet quit: nothing, then close');
  const quit = binaryAction(parsed({ opcode: Op.Quit }));
  t.ok(quit !== null && 'reply' in quit && quit.close && quit.reply.length === 24, 'quit: a response, then close');
  const mechs = binaryAction(parsed({ opcode: 0x20 }, true));
  t.ok(mechs !== null && 'reply' in mechs && mechs.reply.subarray(24).toString() === 'PLAIN', 'SASL mechanisms: PLAIN');
  for (const opcode of [Op.Flush, Op.Stat]) t.equal(binaryAction(parsed({ opcode })), null, `opcode ${opcode} is the server's`);
});

t.test('the text login', async (t) => {
  const at = (s: string, pos = 0) => parseAsciiLogin(Buffer.from(s, 'latin1'), pos, s.length);
  t.same(at('set k 0 0 9\r\nalice pw\r\n'), { kind: 'incomplete', need: 24 }, 'the data block is waited for');
  t.match(at('xxset k 0 0 8\r\nalice pw\r\nget', 2), { kind: 'login', user: 'alice', next: 25 }, 'from pos, up to the data block');
  t.equal(Buffer.from((at('set k 0 0 8\r\nalice pw\r\n') as { password: Buffer }).password).toString(), 'pw');
  t.same(at('get k\r\n'), { kind: 'reply', reply: 'CLIENT_ERROR unauthenticated\r\n', next: 7 });
  t.same(at('set k 0 0 x\r\n'), { kind: 'reply', reply: 'CLIENT_ERROR unauthenticated\r\n', next: 13 }, 'a length that is no number');
  t.same(at('set k 0 0 8\r\nalice pwXX'), { kind: 'reply', reply: 'CLIENT_ERROR bad command line termination\r\n', next: 23 });
  t.same(at('set k 0 0 5\r\nalice\r\n'), { kind: 'reply', reply: 'CLIENT_ERROR bad authentication token format\r\n', next: 20 });
  t.same(at('set k 0 0'), { kind: 'incomplete', need: 0 }, 'a line without its end yet');
  t.same(at('x'.repeat(2049)), { kind: 'close' }, "a line past memcached's 2048 bytes without its end");
});
