/**
 * Runs one command against a Store and encodes its reply in the command's protocol (text, binary,
 * meta). Pure: the caller holds the shard's lock (see ShardAccess).
 */
import { BinStatus, writeError, writeResponse, type ValueSource } from '../protocol/binary.js';
import { Op, type BinaryRequest, type KeyCommand } from '../protocol/command.js';
import { Errors } from '../protocol/text.js';
import { Mode, Status, type Store, type StatusCode, type StoreMode } from '../store/store.js';
import { ReplyWriter } from './reply-writer.js';
import { MetaExecutor } from './meta.js';

const STORE_MODE: Record<number, StoreMode> = {
  [Op.Set]: Mode.Set,
  [Op.Add]: Mode.Add,
  [Op.Replace]: Mode.Replace,
  [Op.Append]: Mode.Append,
  [Op.Prepend]: Mode.Prepend,
  [Op.Cas]: Mode.Cas,
};

/** The binary status for each store status. */
const BINARY_STATUS: Record<number, number> = {
  [Status.NotStored]: BinStatus.NotStored,
  [Status.Exists]: BinStatus.Exists,
  [Status.NotFound]: BinStatus.NotFound,
  [Status.TooLarge]: BinStatus.TooLarge,
  [Status.NoMemory]: BinStatus.OutOfMemory,
  [Status.NonNumeric]: BinStatus.NonNumeric,
};

/** An item's value, copied into the response when it is written (chained items are not contiguous). */
function valueOf(store: Store, ref: number): ValueSource {
  return { length: store.valueLength(ref), copyInto: (dest, pos) => store.copyValue(ref, dest, pos) };
}

/** The text reply to each store status, indexed by status code. */
const STATUS_LINE: Buffer[] = [];
for (const [status, line] of [
  [Status.Stored, 'STORED\r\n'],
  [Status.NotStored, 'NOT_STORED\r\n'],
  [Status.Exists, 'EXISTS\r\n'],
  [Status.NotFound, 'NOT_FOUND\r\n'],
  [Status.TooLarge, Errors.tooLarge],
  [Status.NoMemory, 'SERVER_ERROR out of memory storing object\r\n'],
  [Status.Deleted, 'DELETED\r\n'],
  [Status.Touched, 'TOUCHED\r\n'],
  [Status.NonNumeric, 'CLIENT_ERROR cannot increment or decrement non-numeric value\r\n'],
] as const) {
  STATUS_LINE[status] = Buffer.from(line, 'latin1');
}


const END = 'END\r\n';
const NO_VALUE = new Uint8Array(0);

export class CommandExecutor {
  private readonly out = new ReplyWriter();
  private readonly meta: MetaExecutor;

  constructor(private readonly store: Store) {
    this.meta = new MetaExecutor(store, this.out);
  }

  /** A single command: its reply, copied out of the store. */
  runOne(req: KeyCommand): Buffer {
    this.one(req);
    return this.out.takeBytes();
  }

  private one(req: KeyCommand): void {
    if (req.binary !== undefined) return this.binary(req, req.binary);
    if (req.meta !== undefined) return this.meta.run(req.op, req.key, req.value, req.meta);
    this.dispatch(req);
    if (req.end) this.out.ascii(END);
  }

  /** The binary protocol: memcached's statuses, quiet rules, CAS in and out (proto_bin.c). */
  private binary(req: KeyCommand, bin: BinaryRequest): void {
    const store = this.store;
    const out = this.out;
    const fail = (status: number) => writeError(out, bin.opcode, status, bin.opaque);
    const ok = (cas: number, extras: Uint8Array | null, key: Uint8Array | null, value: Uint8Array | null) => {
      if (!bin.quiet) writeResponse(out, bin.opcode, BinStatus.Ok, bin.opaque, cas, extras, key, value);
    };
    switch (req.op) {
      case Op.Get:
      case Op.Gat: {
        const ref = req.op === Op.Get ? store.get(req.key) : store.getAndTouch(req.key, req.exptime);
        if (ref === 0) {
          if (bin.quiet) return;
          // memcached echoes the key of a GetK/GatK miss, with no error text
          if (bin.withKey) writeResponse(out, bin.opcode, BinStatus.NotFound, bin.opaque, 0, null, req.key, null);
          else fail(BinStatus.NotFound);
          return;
        }
        const flags = Buffer.allocUnsafe(4);
        flags.writeUInt32BE(store.flagsOf(ref) >>> 0, 0);
        const value = bin.touchOnly ? null : valueOf(store, ref);
        // quiet gets still answer hits
        writeResponse(out, bin.opcode, BinStatus.Ok, bin.opaque, store.casOf(ref), flags, bin.withKey ? req.key : null, value);
        return;
      }
      case Op.Delete: {
        const status = store.delete(req.key, req.cas);
        if (status === Status.Deleted) ok(0, null, null, null);
        else fail(status === Status.Exists ? BinStatus.Exists : BinStatus.NotFound);
        return;
      }
      case Op.Incr:
      case Op.Decr: {
        let r = store.incrDecr(req.key, req.op === Op.Incr, req.delta, req.cas);
        let status: StatusCode = r.status;
        let result = r.number;
        if (status === Status.NotFound && bin.create) {
          r = store.store(Mode.Add, req.key, 0, req.exptime, Buffer.from(String(bin.initial), 'latin1'), 0);
          status = r.status === Status.NotStored ? Status.Exists : r.status;
          result = bin.initial;
        }
        if (status === Status.Ok || status === Status.Stored) {
          const value = Buffer.allocUnsafe(8);
          value.writeBigUInt64BE(result, 0);
          ok(store.casOf(r.ref), null, null, value);
          return;
        }
        fail(BINARY_STATUS[status] ?? BinStatus.NotFound);
        return;
      }
      case Op.SetTooLarge:
        store.refuseTooLarge(req.key, req.flags === 1);
        fail(BinStatus.TooLarge);
        return;
      default: {
        let mode = STORE_MODE[req.op];
        if (mode === undefined) return fail(BinStatus.UnknownCommand);
        // memcached: any binary store with a CAS is a compare-and-swap
        if (req.cas !== 0 && (mode === Mode.Set || mode === Mode.Add || mode === Mode.Replace)) mode = Mode.Cas;
        const { status, ref } = store.store(mode, req.key, req.flags, req.exptime, req.value ?? NO_VALUE, req.cas);
        if (status === Status.Stored) ok(store.casOf(ref), null, null, null);
        // memcached (complete_update_bin): a refused add means the key exists, a refused replace that it is missing
        else if (status === Status.NotStored && mode === Mode.Add) fail(BinStatus.Exists);
        else if (status === Status.NotStored && mode === Mode.Replace) fail(BinStatus.NotFound);
        else fail(BINARY_STATUS[status] ?? BinStatus.NotStored);
      }
    }
  }

  private dispatch(req: KeyCommand): void {
    const store = this.store;
    switch (req.op) {
      case Op.Get:
      case Op.Gets: {
        const ref = store.get(req.key);
        if (ref !== 0) writeValue(store, ref, req.op === Op.Gets, this.out);
        return;
      }
      case Op.Gat:
      case Op.Gats: {
        const ref = store.getAndTouch(req.key, req.exptime);
        if (ref !== 0) writeValue(store, ref, req.op === Op.Gats, this.out);
        return;
      }
      case Op.Delete:
        return this.status(req, store.delete(req.key));
      case Op.Touch:
        return this.status(req, store.touch(req.key, req.exptime));
      case Op.Incr:
      case Op.Decr: {
        const r = store.incrDecr(req.key, req.op === Op.Incr, req.delta);
        if (r.status === Status.Ok) {
          if (!req.noreply) this.out.ascii(`${r.number}\r\n`);
          return;
        }
        return this.status(req, r.status);
      }
      case Op.SetTooLarge:
        store.refuseTooLarge(req.key, req.flags === 1);
        return this.status(req, Status.TooLarge);
      default: {
        const mode = STORE_MODE[req.op];
        if (mode === undefined) return;
        return this.status(req, store.store(mode, req.key, req.flags, req.exptime, req.value ?? NO_VALUE, req.cas).status);
      }
    }
  }

  private status(req: KeyCommand, status: StatusCode): void {
    if (!req.noreply) this.out.bytes(STATUS_LINE[status]!);
  }
}

const VALUE_PREFIX = Buffer.from('VALUE ', 'latin1');

/** `VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n`, copied straight from the slab chunk(s). */
export function writeValue(store: Store, ref: number, withCas: boolean, out: ReplyWriter): void {
  const key = store.keyOf(ref);
  const vlen = store.valueLength(ref);
  // 6 + key + up to 3 numbers of at most 20 digits with their separators + 2 CRLF
  let p = out.reserve(6 + key.length + 63 + vlen + 4);
  const b = out.buf;
  b.set(VALUE_PREFIX, p);
  p += 6;
  b.set(key, p);
  p += key.length;
  b[p++] = 0x20;
  p = writeDecimal(b, p, store.flagsOf(ref));
  b[p++] = 0x20;
  p = writeDecimal(b, p, vlen);
  if (withCas) {
    b[p++] = 0x20;
    p = writeDecimal(b, p, store.casOf(ref));
  }
  b[p++] = 0x0d;
  b[p++] = 0x0a;
  store.copyValue(ref, b, p);
  p += vlen;
  b[p++] = 0x0d;
  b[p++] = 0x0a;
  out.advance(p);
}

/** Write a non-negative integer below 2^53 in decimal at p; returns the position after it. */
function writeDecimal(b: Buffer, p: number, n: number): number {
  if (n < 10) {
    b[p] = 0x30 + n;
    return p + 1;
  }
  let digits = 0;
  for (let m = n; m >= 1; m = Math.floor(m / 10)) digits++;
  for (let i = p + digits - 1; i >= p; i--) {
    b[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return p + digits;
}
