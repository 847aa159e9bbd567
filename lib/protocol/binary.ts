/**
 * memcached's binary protocol: a pure request parser and response encoder, with memcached 1.6's
 * validation rules (proto_bin.c) and error texts.
 */

export const HEADER = 24;
const NO_BYTES = Buffer.alloc(0);
export const REQUEST_MAGIC = 0x80;
const RESPONSE_MAGIC = 0x81;

export const BinOp = {
  Get: 0x00, Set: 0x01, Add: 0x02, Replace: 0x03, Delete: 0x04, Increment: 0x05, Decrement: 0x06, Quit: 0x07,
  Flush: 0x08, GetQ: 0x09, Noop: 0x0a, Version: 0x0b, GetK: 0x0c, GetKQ: 0x0d, Append: 0x0e, Prepend: 0x0f,
  Stat: 0x10, SetQ: 0x11, AddQ: 0x12, ReplaceQ: 0x13, DeleteQ: 0x14, IncrementQ: 0x15, DecrementQ: 0x16,
  QuitQ: 0x17, FlushQ: 0x18, AppendQ: 0x19, PrependQ: 0x1a, Touch: 0x1c, Gat: 0x1d, GatQ: 0x1e,
  SaslListMechs: 0x20, SaslAuth: 0x21, SaslStep: 0x22, GatK: 0x23, GatKQ: 0x24,
  /** ElastiCache's Auto Discovery `config get` (key `cluster`), as its cluster clients send it. */
  ConfigGet: 0x60,
} as const;

export const BinStatus = {
  Ok: 0x00, NotFound: 0x01, Exists: 0x02, TooLarge: 0x03, InvalidArgs: 0x04, NotStored: 0x05, NonNumeric: 0x06,
  AuthError: 0x20, AuthContinue: 0x21, UnknownCommand: 0x81, OutOfMemory: 0x82,
} as const;

/** memcached's error texts, sent as the value of an error response. */
const ERROR_TEXT: Record<number, string> = {
  [BinStatus.NotFound]: 'Not found',
  [BinStatus.Exists]: 'Data exists for key.',
  [BinStatus.TooLarge]: 'Too large.',
  [BinStatus.InvalidArgs]: 'Invalid arguments',
  [BinStatus.NotStored]: 'Not stored.',
  [BinStatus.NonNumeric]: 'Non-numeric server-side value for incr or decr',
  [BinStatus.AuthError]: 'Auth failure.',
  [BinStatus.UnknownCommand]: 'Unknown command',
  [BinStatus.OutOfMemory]: 'Out of memory',
};

/** The quiet opcode's loud twin (memcached handles them as one command with noreply). */
const LOUD: Record<number, number> = {
  [BinOp.SetQ]: BinOp.Set, [BinOp.AddQ]: BinOp.Add, [BinOp.ReplaceQ]: BinOp.Replace, [BinOp.DeleteQ]: BinOp.Delete,
  [BinOp.IncrementQ]: BinOp.Increment, [BinOp.DecrementQ]: BinOp.Decrement, [BinOp.QuitQ]: BinOp.Quit,
  [BinOp.FlushQ]: BinOp.Flush, [BinOp.AppendQ]: BinOp.Append, [BinOp.PrependQ]: BinOp.Prepend,
  [BinOp.GetQ]: BinOp.Get, [BinOp.GetKQ]: BinOp.GetK, [BinOp.GatQ]: BinOp.Gat, [BinOp.GatKQ]: BinOp.GatK,
};

const STORE_OPS = new Set<number>([BinOp.Set, BinOp.Add, BinOp.Replace, BinOp.Append, BinOp.Prepend]);

/**
 * memcached's answer to a value over the limit where it cannot swallow it (it then closes): too
 * large for a store, out of memory for SASL data; other commands get InvalidArgs.
 */
const TOO_BIG_STATUS: Record<number, number> = {
  [BinOp.Set]: BinStatus.TooLarge, [BinOp.Add]: BinStatus.TooLarge, [BinOp.Replace]: BinStatus.TooLarge,
  [BinOp.Append]: BinStatus.TooLarge, [BinOp.Prepend]: BinStatus.TooLarge,
  [BinOp.SaslAuth]: BinStatus.OutOfMemory, [BinOp.SaslStep]: BinStatus.OutOfMemory,
};

export const BinParsed = {
  Incomplete: 0,
  /** A valid request: see the parser's fields. */
  Request: 1,
  /** A store whose value is over the limit: answer TooLarge and swallow `swallow` bytes. */
  TooLarge: 2,
  /** Unknown opcode: answer UnknownCommand, skip the body, keep the connection. */
  Unknown: 3,
  /** Malformed request: answer `errorStatus` and close (memcached does). */
  Malformed: 4,
  /** Not a request magic: close at once. */
  Close: 5,
} as const;
export type BinParsedKind = (typeof BinParsed)[keyof typeof BinParsed];

export class BinaryParser {
  /** Opcode as sent, and its loud form (GetQ -> Get). */
  opcode = 0;
  command = 0;
  quiet = false;
  opaque = 0;
  /** The header's CAS (memshard's CAS values are below 2^53). */
  cas = 0;
  key: Buffer = Buffer.alloc(0);
  extras: Buffer = Buffer.alloc(0);
  value: Buffer = Buffer.alloc(0);
  next = 0;
  need = 0;
  swallow = 0;
  errorStatus = 0;

  private readonly known: ReadonlySet<number>;

  /** @param sasl SASL commands exist only when the server requires SASL (memcached: else unknown) */
  constructor(
    private readonly maxValue: number,
    sasl = false,
    private readonly maxKey = 250,
  ) {
    this.known = sasl ? new Set([...KNOWN, BinOp.SaslListMechs, BinOp.SaslAuth, BinOp.SaslStep]) : KNOWN;
  }

  parse(buf: Buffer, pos: number, end: number): BinParsedKind {
    if (end - pos < HEADER) {
      this.need = HEADER;
      return BinParsed.Incomplete;
    }
    if (buf[pos] !== REQUEST_MAGIC) return BinParsed.Close;
    const opcode = buf[pos + 1]!;
    const keyLen = buf.readUInt16BE(pos + 2);
    const extLen = buf[pos + 4]!;
    const bodyLen = buf.readUInt32BE(pos + 8);
    this.opcode = opcode;
    this.command = LOUD[opcode] ?? opcode;
    this.quiet = LOUD[opcode] !== undefined;
    this.opaque = buf.readUInt32BE(pos + 12);
    this.cas = buf.readUInt32BE(pos + 16) * 0x100000000 + buf.readUInt32BE(pos + 20);
    const bodyStart = pos + HEADER;
    this.next = bodyStart + bodyLen;
    if (keyLen + extLen > bodyLen) {
      // memcached answers these with UnknownCommand and hangs up
      this.errorStatus = BinStatus.UnknownCommand;
      return BinParsed.Malformed;
    }
    // Everything below is decided on the header alone, so the body waited for is at most
    // extras + key + maxValue bytes.
    const known = this.known.has(this.command);
    if (keyLen > this.maxKey || (known && !this.validate(keyLen, extLen, bodyLen))) {
      this.errorStatus = BinStatus.InvalidArgs;
      return BinParsed.Malformed;
    }
    const valueLen = bodyLen - keyLen - extLen;
    if (valueLen > this.maxValue) {
      // memcached swallows a too large store value, but not one its int length turns negative
      if (STORE_OPS.has(this.command) && valueLen <= 0x7fffffff) return this.tooLarge(buf, bodyStart, end, keyLen, extLen, valueLen);
      this.errorStatus = !known ? BinStatus.UnknownCommand : (TOO_BIG_STATUS[this.command] ?? BinStatus.InvalidArgs);
      return BinParsed.Malformed;
    }
    if (end < this.next) {
      this.need = HEADER + bodyLen;
      return BinParsed.Incomplete;
    }
    if (!known) return BinParsed.Unknown;
    // most requests (a Get) have no extras and no value: no views made for them
    this.extras = extLen === 0 ? NO_BYTES : buf.subarray(bodyStart, bodyStart + extLen);
    this.key = buf.subarray(bodyStart + extLen, bodyStart + extLen + keyLen);
    this.value = valueLen === 0 ? NO_BYTES : buf.subarray(bodyStart + extLen + keyLen, this.next);
    return BinParsed.Request;
  }

  /** A store over the limit: the key is read (to remove the old item), the value is swallowed. */
  private tooLarge(buf: Buffer, bodyStart: number, end: number, keyLen: number, extLen: number, valueLen: number): BinParsedKind {
    if (end - bodyStart < extLen + keyLen) {
      this.need = HEADER + extLen + keyLen;
      return BinParsed.Incomplete;
    }
    this.extras = buf.subarray(bodyStart, bodyStart + extLen);
    this.key = buf.subarray(bodyStart + extLen, bodyStart + extLen + keyLen);
    this.next = bodyStart + extLen + keyLen;
    this.swallow = valueLen;
    return BinParsed.TooLarge;
  }

  /** memcached's per-command length rules (dispatch_bin_command); the key length is checked first. */
  private validate(keyLen: number, extLen: number, bodyLen: number): boolean {
    switch (this.command) {
      case BinOp.Version:
      case BinOp.Noop:
      case BinOp.Quit:
      case BinOp.SaslListMechs:
        return extLen === 0 && keyLen === 0 && bodyLen === 0;
      case BinOp.Flush:
        return keyLen === 0 && bodyLen === extLen && (extLen === 0 || extLen === 4);
      case BinOp.Set:
      case BinOp.Add:
      case BinOp.Replace:
        return extLen === 8 && keyLen !== 0;
      case BinOp.Get:
      case BinOp.GetK:
        return extLen === 0 && keyLen > 0 && bodyLen === keyLen;
      case BinOp.Delete:
        return extLen === 0 && keyLen > 0 && bodyLen === keyLen;
      case BinOp.Increment:
      case BinOp.Decrement:
        return extLen === 20 && keyLen > 0 && bodyLen === keyLen + extLen;
      case BinOp.Append:
      case BinOp.Prepend:
        return extLen === 0 && keyLen > 0;
      case BinOp.Stat:
        return extLen === 0;
      case BinOp.ConfigGet:
        return extLen === 0 && keyLen > 0 && bodyLen === keyLen;
      case BinOp.SaslAuth:
      case BinOp.SaslStep:
        return extLen === 0 && keyLen !== 0;
      case BinOp.Touch:
      case BinOp.Gat:
      case BinOp.GatK:
        return extLen === 4 && keyLen !== 0;
      default:
        return false;
    }
  }
}

const KNOWN = new Set<number>([
  BinOp.Get, BinOp.Set, BinOp.Add, BinOp.Replace, BinOp.Delete, BinOp.Increment, BinOp.Decrement, BinOp.Quit,
  BinOp.Flush, BinOp.Noop, BinOp.Version, BinOp.GetK, BinOp.Append, BinOp.Prepend, BinOp.Stat, BinOp.Touch,
  BinOp.Gat, BinOp.GatK, BinOp.ConfigGet,
]);

/** Where an encoder writes (a ReplyWriter). */
export interface ByteSink {
  readonly buf: Buffer;
  reserve(n: number): number;
  advance(to: number): void;
}

/** A value copied straight from where it lives (e.g. a chained slab item) into the response. */
export interface ValueSource {
  readonly length: number;
  copyInto(dest: Uint8Array, pos: number): void;
}

/** One response packet: header, extras, key, value. */
export function writeResponse(
  out: ByteSink,
  opcode: number,
  status: number,
  opaque: number,
  cas: number | bigint,
  extras: Uint8Array | null,
  key: Uint8Array | null,
  value: Uint8Array | ValueSource | null,
): void {
  const extLen = extras?.length ?? 0;
  const keyLen = key?.length ?? 0;
  const valueLen = value?.length ?? 0;
  let p = out.reserve(HEADER + extLen + keyLen + valueLen);
  const b = out.buf;
  b[p] = RESPONSE_MAGIC;
  b[p + 1] = opcode;
  b.writeUInt16BE(keyLen, p + 2);
  b[p + 4] = extLen;
  b[p + 5] = 0;
  b.writeUInt16BE(status, p + 6);
  b.writeUInt32BE(extLen + keyLen + valueLen, p + 8);
  b.writeUInt32BE(opaque >>> 0, p + 12);
  b.writeBigUInt64BE(typeof cas === 'bigint' ? cas : BigInt(cas), p + 16);
  p += HEADER;
  if (extras !== null) {
    b.set(extras, p);
    p += extLen;
  }
  if (key !== null) {
    b.set(key, p);
    p += keyLen;
  }
  if (value instanceof Uint8Array) b.set(value, p);
  else value?.copyInto(b, p);
  p += valueLen;
  out.advance(p);
}

/** An error response with memcached's text for the status. */
export function writeError(out: ByteSink, opcode: number, status: number, opaque: number): void {
  writeResponse(out, opcode, status, opaque, 0, null, null, Buffer.from(ERROR_TEXT[status] ?? '', 'latin1'));
}
