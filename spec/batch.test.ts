/**
 * The packed batch format between the front end and a shard, and the executor that runs it:
 * pure code, tested without threads.
 */
import t from 'tap';
import { Op, type KeyCommand, type ShardOp } from '../lib/protocol/command.js';
import { BatchReader, BatchWriter, ReplyReader } from '../lib/shards/batch.js';
import { CommandExecutor } from '../lib/shards/execute.js';
import { Store, type StoreConfig } from '../lib/store/store.js';

function cmd(op: ShardOp, key: string, extra: Partial<KeyCommand> = {}): KeyCommand {
  return { op, key: Buffer.from(key), flags: 0, exptime: 0, cas: 0, delta: 0n, value: null, noreply: false, end: false, ...extra };
}

t.test('records survive the round trip byte for byte', async (t) => {
  const w = new BatchWriter();
  const big = Buffer.alloc(200_000, 7); // forces the writer to grow
  w.add(cmd(Op.Set, 'k1', { flags: 0xffffffff, exptime: -5, value: big, noreply: true }));
  w.add(cmd(Op.Incr, 'counter', { delta: 18446744073709551615n }));
  w.add(cmd(Op.Cas, 'k2', { cas: 2 ** 53 - 1, value: Buffer.from('v') }));
  w.add(cmd(Op.Get, 'k3', { end: true }));
  t.equal(w.count, 4);
  const r = new BatchReader(w.take());
  t.equal(w.count, 0, 'take() resets the writer');
  t.equal(r.count, 4);
  r.next();
  t.same([r.op, r.key.toString(), r.flags, r.exptime, r.noreply, r.end], [Op.Set, 'k1', 0xffffffff, -5, true, false]);
  t.ok(r.value.equals(big), 'value bytes');
  r.next();
  t.same([r.op, r.key.toString(), r.delta], [Op.Incr, 'counter', 18446744073709551615n]);
  r.next();
  t.same([r.op, r.cas, r.value.toString()], [Op.Cas, 2 ** 53 - 1, 'v']);
  r.next();
  t.same([r.op, r.key.toString(), r.end, r.value.length], [Op.Get, 'k3', true, 0]);
});

t.test('binary-protocol records carry opcode, opaque, initial value and a CAS beside the delta', async (t) => {
  const w = new BatchWriter();
  const binary = { opcode: 0x15, opaque: 0xdeadbeef, quiet: true, withKey: false, initial: 7n, create: true, touchOnly: false };
  w.add(cmd(Op.Incr, 'n', { delta: 5n, cas: 12345, binary }));
  const r = new BatchReader(w.take());
  r.next();
  t.same([r.op, r.key.toString(), r.delta, r.cas], [Op.Incr, 'n', 5n, 12345]);
  t.same(r.binary, binary);
});

t.test('the executor answers a batch with one reply slice per record, in order', async (t) => {
  const cfg: StoreConfig = {
    memoryBytes: 4 * 1024 * 1024, pageSize: 1024 * 1024, itemSizeMax: 1024 * 1024, growthFactor: 1.25, minChunk: 48,
    shardIndex: 0, shardCount: 1,
  };
  const store = new Store(new SharedArrayBuffer(Store.byteLength(cfg)), cfg, { processStarted: 0, now: () => 100 });
  const exec = new CommandExecutor(store);
  const w = new BatchWriter();
  w.add(cmd(Op.Set, 'a', { flags: 3, value: Buffer.from('hello') }));
  w.add(cmd(Op.Set, 'quiet', { value: Buffer.from('x'), noreply: true }));
  w.add(cmd(Op.Get, 'a'));
  w.add(cmd(Op.Get, 'missing', { end: true }));
  w.add(cmd(Op.Add, 'a', { value: Buffer.from('no') }));
  w.add(cmd(Op.Incr, 'a', { delta: 1n }));
  w.add(cmd(Op.Delete, 'a'));
  w.add(cmd(Op.SetTooLarge, 'quiet', { flags: 1 }));
  w.add(cmd(Op.Get, 'quiet', { end: true }));
  const replies = new ReplyReader(exec.run(w.take()));
  const got = Array.from({ length: replies.count }, (_, i) => replies.slice(i).toString('latin1'));
  t.same(got, [
    'STORED\r\n',
    '',
    'VALUE a 3 5\r\nhello\r\n',
    'END\r\n',
    'NOT_STORED\r\n',
    'CLIENT_ERROR cannot increment or decrement non-numeric value\r\n',
    'DELETED\r\n',
    'SERVER_ERROR object too large for cache\r\n',
    'END\r\n',
  ]);
  t.equal(exec.runOne(cmd(Op.Gets, 'nothing', { end: true })).toString(), 'END\r\n', 'single commands too');
});
