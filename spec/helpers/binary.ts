// Test helper: memcached binary protocol packets (build requests, parse responses) and reading
// an exact number of complete response packets off a rawClient.
import type { RawClient } from './daemon.js';

export const HEADER_LEN = 24;
export const REQ_MAGIC = 0x80;
export const RES_MAGIC = 0x81;

export const Op = {
  Get: 0x00,
  Set: 0x01,
  Add: 0x02,
  Replace: 0x03,
  Delete: 0x04,
  Increment: 0x05,
  Decrement: 0x06,
  Quit: 0x07,
  Flush: 0x08,
  GetQ: 0x09,
  Noop: 0x0a,
  Version: 0x0b,
  GetK: 0x0c,
  GetKQ: 0x0d,
  Append: 0x0e,
  Prepend: 0x0f,
  Stat: 0x10,
  SetQ: 0x11,
  AddQ: 0x12,
  ReplaceQ: 0x13,
  DeleteQ: 0x14,
  IncrementQ: 0x15,
  DecrementQ: 0x16,
  QuitQ: 0x17,
  FlushQ: 0x18,
  AppendQ: 0x19,
  PrependQ: 0x1a,
  Touch: 0x1c,
  GAT: 0x1d,
  GATQ: 0x1e,
  GATK: 0x23,
  GATKQ: 0x24,
} as const;

export const Status = {
  OK: 0x00,
  KEY_ENOENT: 0x01,
  KEY_EEXISTS: 0x02,
  E2BIG: 0x03,
  EINVAL: 0x04,
  NOT_STORED: 0x05,
  DELTA_BADVAL: 0x06,
  UNKNOWN_COMMAND: 0x81,
  ENOMEM: 0x82,
} as const;

export interface RequestSpec {
  opcode: number;
  key?: string | Buffer;
  extras?: Buffer;
  value?: string | Buffer;
  opaque?: number;
  cas?: bigint;
  /** Defaults to 0x80; set to build deliberately bad packets. */
  magic?: number;
  /** Defaults to 0 (vbucket id in a request). */
  vbucket?: number;
  dataType?: number;
  /** Override the key length field (default: the key's length). */
  keyLength?: number;
  /** Override the total body length field (default: extras + key + value). */
  bodyLength?: number;
}

const toBuf = (b: string | Buffer | undefined): Buffer =>
  b === undefined ? Buffer.alloc(0) : typeof b === 'string' ? Buffer.from(b, 'utf8') : b;

/** One request packet. */
export function request(spec: RequestSpec): Buffer {
  const key = toBuf(spec.key);
  const extras = spec.extras ?? Buffer.alloc(0);
  const value = toBuf(spec.value);
  const h = Buffer.alloc(HEADER_LEN);
  h.writeUInt8(spec.magic ?? REQ_MAGIC, 0);
  h.writeUInt8(spec.opcode, 1);
  h.writeUInt16BE(spec.keyLength ?? key.length, 2);
  h.writeUInt8(extras.length, 4);
  h.writeUInt8(spec.dataType ?? 0, 5);
  h.writeUInt16BE(spec.vbucket ?? 0, 6);
  h.writeUInt32BE(spec.bodyLength ?? extras.length + key.length + value.length, 8);
  h.writeUInt32BE((spec.opaque ?? 0) >>> 0, 12);
  h.writeBigUInt64BE(spec.cas ?? 0n, 16);
  return Buffer.concat([h, extras, key, value]);
}

/** Extras of Set/Add/Replace: flags (u32) + expiration (u32). */
export function storeExtras(flags: number, exptime: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(flags >>> 0, 0);
  b.writeUInt32BE(exptime >>> 0, 4);
  return b;
}

/** Extras of Increment/Decrement: delta (u64) + initial (u64) + expiration (u32). */
export function counterExtras(delta: bigint, initial: bigint, exptime: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeBigUInt64BE(delta, 0);
  b.writeBigUInt64BE(initial, 8);
  b.writeUInt32BE(exptime >>> 0, 16);
  return b;
}

/** A 4-byte big-endian u32 (expiration extras of Touch/GAT/Flush, flags...). */
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

export interface Response {
  magic: number;
  opcode: number;
  status: number;
  dataType: number;
  opaque: number;
  cas: bigint;
  key: Buffer;
  extras: Buffer;
  value: Buffer;
  /** total body length field */
  bodyLength: number;
}

/** Byte length of the first `count` complete packets in buf, or false if they are not all there. */
export function packetsLength(buf: Buffer, count: number): number | false {
  let off = 0;
  for (let i = 0; i < count; i++) {
    if (buf.length < off + HEADER_LEN) return false;
    const len = HEADER_LEN + buf.readUInt32BE(off + 8);
    if (buf.length < off + len) return false;
    off += len;
  }
  return off;
}

/** Parse a buffer of complete response packets (throws on a trailing partial packet). */
export function parseResponses(buf: Buffer): Response[] {
  const out: Response[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < HEADER_LEN) throw new Error(`partial header at ${off}: ${buf.subarray(off).toString('hex')}`);
    const keyLen = buf.readUInt16BE(off + 2);
    const extLen = buf.readUInt8(off + 4);
    const bodyLength = buf.readUInt32BE(off + 8);
    const end = off + HEADER_LEN + bodyLength;
    if (end > buf.length) throw new Error(`partial body at ${off}: need ${bodyLength}, have ${buf.length - off - HEADER_LEN}`);
    const body = buf.subarray(off + HEADER_LEN, end);
    out.push({
      magic: buf.readUInt8(off),
      opcode: buf.readUInt8(off + 1),
      dataType: buf.readUInt8(off + 5),
      status: buf.readUInt16BE(off + 6),
      bodyLength,
      opaque: buf.readUInt32BE(off + 12),
      cas: buf.readBigUInt64BE(off + 16),
      extras: Buffer.from(body.subarray(0, extLen)),
      key: Buffer.from(body.subarray(extLen, extLen + keyLen)),
      value: Buffer.from(body.subarray(extLen + keyLen)),
    });
    off = end;
  }
  return out;
}

/** Read exactly `count` complete response packets (rejects on timeout or close first). */
export async function readResponses(client: RawClient, count: number, timeoutMs = 3000): Promise<Response[]> {
  const buf = await client.readUntil((b) => packetsLength(b, count), timeoutMs);
  return parseResponses(buf);
}

/** Read one packet. */
export async function readResponse(client: RawClient, timeoutMs = 3000): Promise<Response> {
  const [r] = await readResponses(client, 1, timeoutMs);
  return r!;
}

/** Send requests then read exactly `count` responses. */
export async function roundTrip(client: RawClient, req: Buffer | Buffer[], count: number, timeoutMs = 3000): Promise<Response[]> {
  client.send(Array.isArray(req) ? Buffer.concat(req) : req);
  return readResponses(client, count, timeoutMs);
}

/** Compact view of a response for readable assertions. */
export function summary(r: Response): {
  opcode: number;
  status: number;
  opaque: number;
  key: string;
  extras: string;
  value: string;
} {
  return {
    opcode: r.opcode,
    status: r.status,
    opaque: r.opaque,
    key: r.key.toString('latin1'),
    extras: r.extras.toString('hex'),
    value: r.value.toString('latin1'),
  };
}

/**
 * Read complete packets up to and including the first one for which `last` is true
 * (e.g. the empty packet that ends a Stat reply).
 */
export async function readResponsesThrough(
  client: RawClient,
  last: (r: Response) => boolean,
  timeoutMs = 3000,
): Promise<Response[]> {
  const buf = await client.readUntil((b) => {
    let off = 0;
    while (b.length >= off + HEADER_LEN) {
      const len = HEADER_LEN + b.readUInt32BE(off + 8);
      if (b.length < off + len) return false;
      const [r] = parseResponses(b.subarray(off, off + len));
      off += len;
      if (last(r!)) return off;
    }
    return false;
  }, timeoutMs);
  return parseResponses(buf);
}
