/**
 * One buffer a large request is gathered in (issue 14: a value read once, not joined from
 * chunks). Once a request's whole length is known and it is cut by a read, its first bytes are
 * copied in and the socket's next reads land straight in the space left (socket-reads.ts
 * readTarget), never past the request's end; a chunk that arrives elsewhere (TLS, 'data'
 * events) is copied in. The request is then parsed from the one buffer, as if it had come in
 * one read. Before: every chunk was copied out of the thread's read buffer, and all of them
 * joined again once the last had come.
 */

/**
 * The least a request must need before it is staged: below this, joining its pieces costs
 * about what a stage does.
 */
export const STAGE_MIN_BYTES = 16 * 1024;
/**
 * How far ahead of the bytes a client has sent a stage may be allocated: a client that declares
 * a large value and sends it slowly makes the server hold at most this, or as much again as it
 * sent.
 */
export const STAGE_AHEAD_BYTES = 64 * 1024;

/** Whether a request of `total` bytes, of which `have` are here, is worth staging now. */
export function shouldStage(total: number, have: number): boolean {
  return total >= STAGE_MIN_BYTES && have < total && (total - have <= STAGE_AHEAD_BYTES || have * 2 >= total);
}

export class RequestStage {
  private filled = 0;
  readonly buffer: Buffer;

  /** A stage for a request of `total` bytes, beginning with `parts` (copied in, in order). */
  constructor(total: number, parts: readonly Buffer[]) {
    this.buffer = Buffer.allocUnsafe(total);
    for (const part of parts) this.filled += part.copy(this.buffer, this.filled);
  }

  get complete(): boolean {
    return this.filled === this.buffer.length;
  }

  /** Where the next read should land: the space left. */
  get readTarget(): Buffer {
    return this.buffer.subarray(this.filled);
  }

  /** Take what of `chunk` belongs to the request (copied unless it was read in place); the rest. */
  take(chunk: Buffer): Buffer {
    const n = Math.min(chunk.length, this.buffer.length - this.filled);
    const inPlace = chunk.buffer === this.buffer.buffer && chunk.byteOffset === this.buffer.byteOffset + this.filled;
    if (!inPlace) chunk.copy(this.buffer, this.filled, 0, n);
    this.filled += n;
    return chunk.subarray(n);
  }
}
