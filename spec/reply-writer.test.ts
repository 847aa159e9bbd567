/**
 * The executors' reply buffer: small replies come out as copies, large ones in a buffer of their
 * own that is handed out without a copy; a reply taken is never touched by the next one.
 */
import t from 'tap';
import { OWN_BUFFER_BYTES, ReplyWriter } from '../lib/shards/reply-writer.js';

t.test('a small reply is a copy; the next reply does not change it', async (t) => {
  const w = new ReplyWriter();
  w.ascii('STORED\r\n');
  const first = w.takeBytes();
  w.ascii('NOT_FOUND\r\n');
  const second = w.takeBytes();
  t.equal(first.toString(), 'STORED\r\n');
  t.equal(second.toString(), 'NOT_FOUND\r\n');
  t.not(first.buffer, w.buf.buffer, 'not a view of the writer\'s buffer');
});

t.test('a large reply gets its own buffer, keeps the header written before it, and is handed out as it is', async (t) => {
  const w = new ReplyWriter();
  w.ascii('VA 5000\r\n');
  const value = Buffer.alloc(5000, 0x61);
  const p = w.reserve(value.length + 2);
  const own = w.buf;
  value.copy(w.buf, p);
  w.buf[p + value.length] = 0x0d;
  w.buf[p + value.length + 1] = 0x0a;
  w.advance(p + value.length + 2);
  w.ascii('EN\r\n');
  t.equal(w.buf, own, 'what follows the value fits in the same buffer');
  const reply = w.takeBytes();
  t.equal(reply.buffer, own.buffer, 'no copy: the reply is a view of its own buffer');
  t.equal(reply.length, 9 + 5002 + 4);
  t.equal(reply.toString('latin1', 0, 9), 'VA 5000\r\n');
  t.equal(reply.toString('latin1', 9, 5009), 'a'.repeat(5000));
  t.equal(reply.toString('latin1', 5011), 'EN\r\n');
  w.ascii('HD\r\n');
  t.equal(w.takeBytes().toString(), 'HD\r\n', 'the writer is back on its small buffer');
  t.equal(reply.toString('latin1', 0, 9), 'VA 5000\r\n', 'the large reply is untouched by the next');
});

t.test('many small writes grow past the threshold and keep every byte', async (t) => {
  const w = new ReplyWriter();
  const rows: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const row = `STAT row_${i} ${i * 7}\r\n`;
    rows.push(row);
    w.ascii(row);
  }
  const out = w.takeBytes().toString('latin1');
  t.ok(out.length > OWN_BUFFER_BYTES * 4);
  t.equal(out, rows.join(''));
});
