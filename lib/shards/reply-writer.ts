/**
 * The growable buffer the executors encode replies into; one per thread, reused for every
 * command, so a reply costs one exact-size copy (takeBytes) and no intermediate allocation.
 */
export class ReplyWriter {
  buf: Buffer = Buffer.allocUnsafeSlow(64 * 1024);
  private pos = 0;

  /** Make room for n more bytes; returns the write position (buffer may change: re-read `buf`). */
  reserve(n: number): number {
    if (this.pos + n > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < this.pos + n) size *= 2;
      const next = Buffer.allocUnsafeSlow(size);
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

  /** The bytes written since the last take, as a copy. */
  takeBytes(): Buffer {
    const copy = Buffer.from(this.buf.subarray(0, this.pos));
    this.pos = 0;
    return copy;
  }
}
