/**
 * The buffer the executors encode replies into; one per thread, reused for every command. A
 * small reply costs one exact-size copy out of it (takeBytes, from Node's pool). A reply of
 * OWN_BUFFER_BYTES or more (a value of kilobytes) moves to a buffer of its own as soon as it is
 * reserved, and that buffer is handed out as it is: the value is copied once, from the store to
 * the bytes the socket writes. It cannot be written from the store itself: the item may change
 * while the write is still queued.
 */

/** Replies from here up get their own buffer (Node pools copies below 4 KB, so those stay cheap). */
export const OWN_BUFFER_BYTES = 4096;
/** Room kept after a large reservation for what follows a value (CRLF, END) without regrowing. */
const OWN_BUFFER_SLACK = 64;

export class ReplyWriter {
  private readonly home = Buffer.allocUnsafeSlow(OWN_BUFFER_BYTES);
  buf: Buffer = this.home;
  private pos = 0;

  /** Make room for n more bytes; returns the write position (buffer may change: re-read `buf`). */
  reserve(n: number): number {
    const need = this.pos + n;
    const inHome = this.buf === this.home;
    if (inHome ? need >= OWN_BUFFER_BYTES : need > this.buf.length) {
      // doubling once the reply has its own buffer: many small appends (stats rows) stay linear
      const next = Buffer.allocUnsafeSlow(inHome ? need + OWN_BUFFER_SLACK : Math.max(need + OWN_BUFFER_SLACK, this.buf.length * 2));
      this.buf.copy(next, 0, 0, this.pos);
      this.buf = next;
    }
    return this.pos;
  }

  advance(to: number): void {
    this.pos = to;
  }

  ascii(s: string): void {
    this.reserve(s.length);
    this.pos += this.buf.write(s, this.pos, 'latin1');
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** The bytes written since the last take: a copy of a small reply, a large one's own buffer. */
  takeBytes(): Buffer {
    const reply = this.buf === this.home ? Buffer.from(this.home.subarray(0, this.pos)) : this.buf.subarray(0, this.pos);
    this.buf = this.home;
    this.pos = 0;
    return reply;
  }
}
