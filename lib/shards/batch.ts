/**
 * The packed wire format between the front end and a shard worker: one ArrayBuffer of request
 * records per shard per event-loop turn, answered by one ArrayBuffer of reply slices (DESIGN.md:
 * packed bytes cost a third of the front end's CPU of structured-cloned objects).
 *
 * Request batch:  u32 count, then per record a 24-byte header, a 24-byte binary-protocol part when
 * the Binary bit is set or a meta part when the Meta bit is, the key and the value:
 *   u8 op | u8 bits | u16 keyLen | u32 flags | i32 exptime | u32 valueLen | 8 bytes cas (f64) or delta (u64)
 *   [u8 opcode | u8 binary bits | u16 0 | u32 opaque | u64 initial | f64 cas (incr/decr carry a delta above)]
 *   [u32 length | the meta flag tokens as sent (the shard re-reads them)]
 * Reply batch:    u32 count, u32 end offset of each reply (relative to the payload), payload.
 */
import type { BinaryRequest, KeyCommand, ShardOp } from '../protocol/command.js';
import { ReqFlag } from '../protocol/command.js';
import { readMetaFlags, type MetaRequest } from '../protocol/meta.js';

const HEADER = 24;
const BINARY_PART = 24;
const Bin = { Quiet: 1, WithKey: 2, Create: 4, TouchOnly: 8 } as const;

/** A growable byte buffer that hands out exact-size, transferable copies of what it holds. */
class Growable {
  buf: Buffer;
  pos = 0;
  constructor(initial: number) {
    this.buf = Buffer.allocUnsafeSlow(initial);
  }
  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafeSlow(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
}

/** Front end side: accumulates the requests for one shard during a turn. */
export class BatchWriter {
  private readonly out = new Growable(64 * 1024);
  count = 0;

  constructor() {
    this.out.pos = 4;
  }

  add(cmd: KeyCommand): void {
    const key = cmd.key;
    const value = cmd.value;
    const vlen = value === null ? 0 : value.length;
    const binary = cmd.binary;
    const meta = cmd.meta;
    const head = HEADER + (binary !== undefined ? BINARY_PART : 0) + (meta !== undefined ? 4 + meta.flags.length : 0);
    const out = this.out;
    out.reserve(head + key.length + vlen);
    const b = out.buf;
    const p = out.pos;
    b[p] = cmd.op;
    b[p + 1] =
      (cmd.noreply ? ReqFlag.NoReply : 0) | (cmd.end ? ReqFlag.End : 0) | (binary ? ReqFlag.Binary : 0) | (meta ? ReqFlag.Meta : 0);
    b.writeUInt16LE(key.length, p + 2);
    b.writeUInt32LE(cmd.flags >>> 0, p + 4);
    b.writeInt32LE(cmd.exptime | 0, p + 8);
    b.writeUInt32LE(vlen, p + 12);
    if (cmd.delta !== 0n) b.writeBigUInt64LE(cmd.delta, p + 16);
    else b.writeDoubleLE(cmd.cas, p + 16);
    if (binary !== undefined) {
      b[p + HEADER] = binary.opcode;
      b[p + HEADER + 1] =
        (binary.quiet ? Bin.Quiet : 0) | (binary.withKey ? Bin.WithKey : 0) | (binary.create ? Bin.Create : 0) | (binary.touchOnly ? Bin.TouchOnly : 0);
      b.writeUInt16LE(0, p + HEADER + 2);
      b.writeUInt32LE(binary.opaque >>> 0, p + HEADER + 4);
      b.writeBigUInt64LE(binary.initial, p + HEADER + 8);
      b.writeDoubleLE(cmd.cas, p + HEADER + 16);
    }
    if (meta !== undefined) {
      b.writeUInt32LE(meta.flags.length, p + HEADER);
      b.set(meta.flags, p + HEADER + 4);
    }
    b.set(key, p + head);
    if (value !== null) b.set(value, p + head + key.length);
    out.pos = p + head + key.length + vlen;
    this.count++;
  }

  /** The batch as a standalone ArrayBuffer (to transfer), and reset for the next turn. */
  take(): ArrayBuffer {
    const out = this.out;
    out.buf.writeUInt32LE(this.count, 0);
    const ab = new ArrayBuffer(out.pos);
    new Uint8Array(ab).set(out.buf.subarray(0, out.pos));
    out.pos = 4;
    this.count = 0;
    return ab;
  }
}

/** Worker side: walks the records of a request batch; fields are valid after each `next()`. */
export class BatchReader {
  readonly count: number;
  private readonly b: Buffer;
  private pos = 4;
  op: ShardOp = 0 as ShardOp;
  noreply = false;
  end = false;
  flags = 0;
  exptime = 0;
  cas = 0;
  key: Buffer;
  value: Buffer;
  binary: BinaryRequest | undefined = undefined;
  meta: MetaRequest | undefined = undefined;
  private deltaAt = 0;

  constructor(ab: ArrayBuffer) {
    this.b = Buffer.from(ab);
    this.count = this.b.readUInt32LE(0);
    this.key = this.b.subarray(0, 0);
    this.value = this.key;
  }

  next(): void {
    const b = this.b;
    const p = this.pos;
    const keyLen = b.readUInt16LE(p + 2);
    const vlen = b.readUInt32LE(p + 12);
    this.op = b[p] as ShardOp;
    this.noreply = (b[p + 1]! & ReqFlag.NoReply) !== 0;
    this.end = (b[p + 1]! & ReqFlag.End) !== 0;
    this.flags = b.readUInt32LE(p + 4);
    this.exptime = b.readInt32LE(p + 8);
    this.cas = b.readDoubleLE(p + 16);
    this.deltaAt = p + 16;
    let head = HEADER;
    if ((b[p + 1]! & ReqFlag.Binary) !== 0) {
      const bits = b[p + HEADER + 1]!;
      this.binary = {
        opcode: b[p + HEADER]!,
        quiet: (bits & Bin.Quiet) !== 0,
        withKey: (bits & Bin.WithKey) !== 0,
        create: (bits & Bin.Create) !== 0,
        touchOnly: (bits & Bin.TouchOnly) !== 0,
        opaque: b.readUInt32LE(p + HEADER + 4),
        initial: b.readBigUInt64LE(p + HEADER + 8),
      };
      this.cas = b.readDoubleLE(p + HEADER + 16);
      head += BINARY_PART;
    } else {
      this.binary = undefined;
    }
    if ((b[p + 1]! & ReqFlag.Meta) !== 0) {
      const len = b.readUInt32LE(p + head);
      this.meta = readMetaFlags(b.subarray(p + head + 4, p + head + 4 + len));
      head += 4 + len;
    } else {
      this.meta = undefined;
    }
    this.key = b.subarray(p + head, p + head + keyLen);
    this.value = b.subarray(p + head + keyLen, p + head + keyLen + vlen);
    this.pos = p + head + keyLen + vlen;
  }

  /** incr/decr records carry an unsigned 64-bit delta where others carry the CAS. */
  get delta(): bigint {
    return this.b.readBigUInt64LE(this.deltaAt);
  }
}

/** Worker side: collects one reply slice per request and packs them. */
export class ReplyWriter {
  private readonly out = new Growable(64 * 1024);
  private ends = new Uint32Array(256);
  private count = 0;

  get buf(): Buffer {
    return this.out.buf;
  }

  /** Make room for n more bytes; returns the write position (buffer may change: re-read `buf`). */
  reserve(n: number): number {
    this.out.reserve(n);
    return this.out.pos;
  }

  advance(to: number): void {
    this.out.pos = to;
  }

  ascii(s: string): void {
    this.out.reserve(s.length);
    this.out.pos += this.out.buf.write(s, this.out.pos, 'latin1');
  }

  bytes(b: Uint8Array): void {
    this.out.reserve(b.length);
    this.out.buf.set(b, this.out.pos);
    this.out.pos += b.length;
  }

  /** Close the current reply (possibly empty). */
  end(): void {
    if (this.count === this.ends.length) {
      const next = new Uint32Array(this.ends.length * 2);
      next.set(this.ends);
      this.ends = next;
    }
    this.ends[this.count++] = this.out.pos;
  }

  /** The bytes written since the last take, as a copy, without reply boundaries. */
  takeBytes(): Buffer {
    const copy = Buffer.from(this.out.buf.subarray(0, this.out.pos));
    this.out.pos = 0;
    this.count = 0;
    return copy;
  }

  take(): ArrayBuffer {
    const head = 4 * (this.count + 1);
    const ab = new ArrayBuffer(head + this.out.pos);
    const u32 = new Uint32Array(ab, 0, this.count + 1);
    u32[0] = this.count;
    u32.set(this.ends.subarray(0, this.count), 1);
    new Uint8Array(ab, head).set(this.out.buf.subarray(0, this.out.pos));
    this.out.pos = 0;
    this.count = 0;
    return ab;
  }
}

/** Front end side: the reply slices of one batch, as views (no copies). */
export class ReplyReader {
  readonly count: number;
  private readonly ends: Uint32Array;
  private readonly payload: Buffer;

  constructor(ab: ArrayBuffer) {
    const count = new Uint32Array(ab, 0, 1)[0]!;
    this.count = count;
    this.ends = new Uint32Array(ab, 4, count);
    this.payload = Buffer.from(ab, 4 * (count + 1));
  }

  slice(i: number): Buffer {
    return this.payload.subarray(i === 0 ? 0 : this.ends[i - 1]!, this.ends[i]!);
  }
}
