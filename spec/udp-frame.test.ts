/**
 * lib/udp/frame.ts: memcached 1.6.18's UDP frame header and how it splits replies into datagrams
 * (memcached.c try_read_udp, build_udp_header, transmit_udp, _transmit_post).
 */
import t from 'tap';
import {
  binaryFlushesAfter,
  frameHeader,
  frameReply,
  frameResponse,
  parseHeader,
  parseRequest,
  ReplyFramer,
  UDP_DATA_SIZE,
  UDP_HEADER_SIZE,
  UDP_MAX_PAYLOAD_SIZE,
  yieldFlushBetween,
  type Response,
} from '../lib/udp/frame.js';
import { udpHeader } from './helpers/udp.js';

const header = udpHeader;

t.test('memcached.h sizes', async (t) => {
  t.equal(UDP_HEADER_SIZE, 8);
  t.equal(UDP_MAX_PAYLOAD_SIZE, 1400);
  t.equal(UDP_DATA_SIZE, 1392);
});

t.test('header: four big-endian u16s', async (t) => {
  t.same(parseHeader(header(0x1234, 0xabcd, 3, 7)), { requestId: 0x1234, sequence: 0xabcd, total: 3, reserved: 7 });
  t.equal(parseHeader(Buffer.alloc(7)), null, 'shorter than a header');
  t.same(parseHeader(Buffer.alloc(8)), { requestId: 0, sequence: 0, total: 0, reserved: 0 });
  t.same(frameHeader(0xfffe, 1, 2), header(0xfffe, 1, 2));
  t.same(frameHeader(0x10001, 0x10002, 0x10003), header(1, 2, 3), 'fields modulo 2^16');
});

t.test('requests: what memcached reads and what it drops', async (t) => {
  for (let n = 0; n <= 8; n++) t.same(parseRequest(Buffer.alloc(n, 1)), { kind: 'short' }, `${n} bytes: dropped, not counted`);
  const body = Buffer.from('get a\r\n');
  const ok = parseRequest(Buffer.concat([header(42, 0, 1), body]));
  t.equal(ok.kind, 'request');
  if (ok.kind === 'request') {
    t.equal(ok.requestId, 42);
    t.same(ok.payload, body);
  }
  t.same(parseRequest(Buffer.concat([header(5, 0, 2), body])), { kind: 'multi-datagram', requestId: 5 }, 'total 2: a multi-datagram request');
  t.same(parseRequest(Buffer.concat([header(5, 0, 0), body])), { kind: 'multi-datagram', requestId: 5 }, 'total 0 as well');
  t.same(parseRequest(Buffer.concat([header(5, 0, 0x0101), body])).kind, 'multi-datagram', 'both bytes of the total are checked');
  const odd = parseRequest(Buffer.concat([header(6, 9, 1, 0xffff), body]));
  t.equal(odd.kind, 'request', 'the sequence number and the reserved field are not looked at');
  t.equal(parseRequest(Buffer.concat([header(7, 0, 1), Buffer.from('x')])).kind, 'request', 'one byte of payload is a request');
});

/** The datagrams' headers and payload sizes, and their payloads joined. */
function shape(datagrams: Buffer[]) {
  return {
    headers: datagrams.map((d) => parseHeader(d)),
    sizes: datagrams.map((d) => d.length),
    payload: Buffer.concat(datagrams.map((d) => d.subarray(8))),
  };
}

t.test('one response: 1392-byte pieces numbered from 0, each with the total', async (t) => {
  const cases: Array<[number, number[]]> = [
    [1, [9]],
    [1391, [1399]],
    [1392, [1400]],
    [1393, [1400, 9]],
    [2784, [1400, 1400]],
    [5000 + 20, [1400, 1400, 1400, 5020 - 3 * 1392 + 8]],
  ];
  for (const [length, sizes] of cases) {
    const reply = Buffer.alloc(length);
    for (let i = 0; i < length; i++) reply[i] = i & 0xff;
    const s = shape(frameResponse(77, reply));
    t.same(s.sizes, sizes, `${length} bytes: datagram sizes`);
    t.same(
      s.headers,
      sizes.map((_, seq) => ({ requestId: 77, sequence: seq, total: sizes.length, reserved: 0 })),
      `${length} bytes: headers`,
    );
    t.same(s.payload, reply, `${length} bytes: the pieces join to the reply`);
  }
  t.same(frameResponse(1, Buffer.alloc(0)), [], 'an empty response has no pieces of its own');
});

const r = (bytes: string, skip = false, flush = false): Response => ({ bytes: Buffer.from(bytes, 'latin1'), skip, flush });
/** A reply's datagrams as short strings: `[seq/total]payload`, a lone header as `[0/0]`. */
const show = (datagrams: Buffer[]) => datagrams.map((d) => `[${d.readUInt16BE(2)}/${d.readUInt16BE(4)}]${d.subarray(8).toString('latin1')}`);

t.test('several responses: each is a message of its own', async (t) => {
  const out = frameReply(9, [r('STORED\r\n'), r('VALUE b 0 1\r\n1\r\nEND\r\n', false, true), r('6\r\n'), r('DELETED\r\n')]);
  t.same(show(out), ['[0/1]STORED\r\n', '[0/1]VALUE b 0 1\r\n1\r\nEND\r\n', '[0/1]6\r\n', '[0/1]DELETED\r\n']);
  t.ok(out.every((d) => d.readUInt16BE(0) === 9 && d.readUInt16BE(6) === 0), 'request id and reserved 0 on all');
  const big = 'v'.repeat(3000);
  t.same(
    show(frameReply(1, [r(`VALUE k 0 3000\r\n${big}\r\n`), r('VALUE a 0 1\r\n1\r\nEND\r\n', false, true)])).map((s) => s.slice(0, 5)),
    ['[0/3]', '[1/3]', '[2/3]', '[0/1]'],
    'a multi-get: every key numbered from 0',
  );
});

t.test('noreply responses send nothing', async (t) => {
  t.same(show(frameReply(1, [r('', true), r('', true)])), []);
  t.same(show(frameReply(1, [r('', true), r('END\r\n', false, true)])), ['[0/1]END\r\n']);
});

t.test('empty responses: a lone header at the head of the queue, else nothing', async (t) => {
  // get b c a, b and c missing: memcached sends [8-byte header, total 0], then a's value and END
  t.same(show(frameReply(5, [r(''), r(''), r('VALUE a 0 1\r\nA\r\nEND\r\n', false, true)])), ['[0/0]', '[0/1]VALUE a 0 1\r\nA\r\nEND\r\n']);
  // get a b c, a found: b completes with a's datagram
  t.same(show(frameReply(5, [r('VALUE a 0 1\r\nA\r\n'), r(''), r('END\r\n', false, true)])), ['[0/1]VALUE a 0 1\r\nA\r\n', '[0/1]END\r\n']);
  // version; get b c: the empty one completes with VERSION's datagram
  t.same(show(frameReply(5, [r('VERSION 1\r\n'), r(''), r('END\r\n', false, true)])), ['[0/1]VERSION 1\r\n', '[0/1]END\r\n']);
  // get a; get b c: the first get flushes, so the second starts a new queue
  t.same(show(frameReply(5, [r('END\r\n', false, true), r(''), r('END\r\n', false, true)])), ['[0/1]END\r\n', '[0/0]', '[0/1]END\r\n']);
  // a noreply at the head is taken off without a datagram: the empty one after it is the head
  t.same(show(frameReply(5, [r('', true), r(''), r('END\r\n', false, true)])), ['[0/0]', '[0/1]END\r\n']);
  // binary getq b, getq c (misses), noop
  t.same(show(frameReply(5, [r(''), r(''), r('NOOP', false, true)])), ['[0/0]', '[0/1]NOOP']);
  // an empty response whose header is its only datagram
  t.same(show(frameReply(5, [r('')])), ['[0/0]']);
  const f = new ReplyFramer(3);
  t.same(show(f.push(r('x'))), ['[0/1]x']);
  t.same(show(f.push(r(''))), []);
  f.flush();
  t.same(show(f.push(r(''))), ['[0/0]'], 'after a flush point the queue starts over');
});

t.test('-R flushes: after command R + 1, then every R', async (t) => {
  // 21 versions + get b c (R = 20): a flush between command 21 and 22
  t.equal(yieldFlushBetween(1, 22, 20), true);
  t.equal(yieldFlushBetween(21, 22, 20), true);
  t.equal(yieldFlushBetween(1, 21, 20), false, '20 versions + get b c: none');
  t.equal(yieldFlushBetween(22, 23, 20), false, '22 versions: the get follows command 22, no flush between');
  t.equal(yieldFlushBetween(22, 42, 20), true, '41 versions + get b c');
  t.equal(yieldFlushBetween(22, 41, 20), false);
  t.equal(yieldFlushBetween(42, 43, 20), false, '42 versions + get b c');
  t.equal(yieldFlushBetween(61, 62, 20), true);
  t.equal(yieldFlushBetween(5, 5, 20), false, 'same command');
  t.equal(yieldFlushBetween(1, 2, 1), false, '-R 1: the first flush is after command 2');
  t.equal(yieldFlushBetween(2, 3, 1), true);
  t.equal(yieldFlushBetween(3, 4, 1), true, '-R 1: then after every command');
});

t.test('binary responses memcached flushes after', async (t) => {
  const bin = (opcode: number, status: number) => {
    const b = Buffer.alloc(24);
    b[0] = 0x81;
    b[1] = opcode;
    b.writeUInt16BE(status, 6);
    return b;
  };
  t.equal(binaryFlushesAfter(bin(0x0a, 0)), true, 'noop');
  t.equal(binaryFlushesAfter(bin(0x00, 0)), false, 'a get hit');
  t.equal(binaryFlushesAfter(bin(0x00, 1)), true, 'a get miss is write_bin_error');
  t.equal(binaryFlushesAfter(bin(0x0c, 1)), false, 'a getk miss is not');
  t.equal(binaryFlushesAfter(bin(0x0d, 1)), false, 'getkq');
  t.equal(binaryFlushesAfter(bin(0x04, 1)), true, 'a delete miss');
  t.equal(binaryFlushesAfter(bin(0x01, 3)), false, 'E2BIG swallows the value instead');
  t.equal(binaryFlushesAfter(bin(0x01, 2)), true, 'KEY_EEXISTS');
  t.equal(binaryFlushesAfter(Buffer.alloc(0)), false, 'a quiet command');
  t.equal(binaryFlushesAfter(Buffer.from('END\r\n'.repeat(10))), false, 'not a binary response');
});
