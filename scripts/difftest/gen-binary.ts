/**
 * Random binary-protocol requests: every opcode memcached answers, their quiet forms, CAS in
 * the header, incr/decr with initial values and the no-create expiration, and a few malformed
 * packets (which both servers answer and then close).
 */
import type { Case, RenderContext } from './case.js';
import type { Prng } from './prng.js';
import * as V from './values.js';

export const NOOP = 0x0a;

interface Packet {
  opcode: number;
  key?: Buffer;
  extras?: Buffer;
  value?: Buffer;
  opaque: number;
  /** The header's CAS: a recent CAS of the server, or a literal. */
  cas?: { cas: number } | bigint;
  /** Declared extras length, when it must lie. */
  extrasLength?: number;
}

export function packet(p: Packet, ctx: RenderContext | null): Buffer {
  const key = p.key ?? Buffer.alloc(0);
  const extras = p.extras ?? Buffer.alloc(0);
  const value = p.value ?? Buffer.alloc(0);
  const h = Buffer.alloc(24);
  h[0] = 0x80;
  h[1] = p.opcode;
  h.writeUInt16BE(key.length, 2);
  h[4] = p.extrasLength ?? extras.length;
  h.writeUInt32BE(extras.length + key.length + value.length, 8);
  h.writeUInt32BE(p.opaque >>> 0, 12);
  const cas = p.cas === undefined ? 0n : typeof p.cas === 'bigint' ? p.cas : (ctx?.recentCas(p.cas.cas) ?? 0n);
  h.writeBigUInt64BE(cas, 16);
  return Buffer.concat([h, extras, key, value]);
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
};
const u64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, n), 0);
  return b;
};

/** A 32-bit expiration whose outcome does not depend on when it runs; `unixIn` is absolute. */
type Expiration = number | { unixIn: number };

function expiration(r: Prng): Expiration {
  const x = r.next();
  if (x < 0.6) return 0;
  if (x < 0.9) return r.pick([3600, 86400, 2592000, 2592001, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe]);
  return { unixIn: r.pick([3600, -10]) };
}

const expirationAt = (e: Expiration, now: number) => u32(typeof e === 'number' ? e : now + e.unixIn);

const U64S = [0n, 1n, 2n, 10n, (1n << 32n) - 1n, 1n << 32n, (1n << 53n) + 1n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n];

function cas(r: Prng): Packet['cas'] {
  const x = r.next();
  if (x < 0.7) return undefined;
  if (x < 0.93) return { cas: r.int(3) };
  return r.pick([1n << 40n, (1n << 64n) - 1n]);
}

const GETS = [0x00, 0x09, 0x0c, 0x0d];
const STORES = [0x01, 0x02, 0x03, 0x11, 0x12, 0x13];
const CONCATS = [0x0e, 0x0f, 0x19, 0x1a];
const ARITH = [0x05, 0x06, 0x15, 0x16];
const TOUCHES = [0x1c, 0x1d, 0x1e, 0x23, 0x24];

export function binaryCommand(r: Prng): Case {
  const opaque = r.int(0x100000000);
  const keyBytes = () => Buffer.from(V.key(r), 'latin1');
  const x = r.next() * 100;
  let spec: (now: number) => Packet;
  if (x < 25) {
    const opcode = r.pick(GETS);
    const key = keyBytes();
    spec = () => ({ opcode, key, opaque });
  } else if (x < 50) {
    const opcode = r.pick(STORES);
    const key = keyBytes();
    const value = V.value(r);
    const flags = r.pick([0, 1, 42, 0xffffffff]);
    const c = cas(r);
    const e = expiration(r);
    spec = (now) => ({ opcode, key, value, opaque, cas: c, extras: Buffer.concat([u32(flags), expirationAt(e, now)]) });
  } else if (x < 58) {
    const opcode = r.pick(CONCATS);
    const key = keyBytes();
    const value = V.value(r);
    const c = cas(r);
    spec = () => ({ opcode, key, value, opaque, cas: c });
  } else if (x < 75) {
    const opcode = r.pick(ARITH);
    const key = keyBytes();
    const delta = r.chance(0.7) ? r.pick([0n, 1n, 2n, 100n]) : r.pick(U64S);
    const initial = r.pick(U64S);
    const noCreate = r.chance(0.3);
    const c = cas(r);
    const e: Expiration = noCreate ? 0xffffffff : expiration(r);
    spec = (now) => ({ opcode, key, opaque, cas: c, extras: Buffer.concat([u64(delta), u64(initial), expirationAt(e, now)]) });
  } else if (x < 85) {
    const opcode = r.chance(0.7) ? 0x04 : 0x14;
    const key = keyBytes();
    const c = cas(r);
    spec = () => ({ opcode, key, opaque, cas: c });
  } else if (x < 93) {
    const opcode = r.pick(TOUCHES);
    const key = keyBytes();
    const e = expiration(r);
    spec = (now) => ({ opcode, key, opaque, extras: expirationAt(e, now) });
  } else if (x < 94) {
    const opcode = r.pick([0x08, 0x18]);
    const extras = r.chance(0.5) ? u32(0) : Buffer.alloc(0);
    spec = () => ({ opcode, extras, opaque });
  } else if (x < 96) {
    spec = () => ({ opcode: NOOP, opaque });
  } else if (x < 98) {
    // opcodes memcached does not know: UnknownCommand, the body skipped
    const opcode = r.pick([0x1b, 0x25, 0x30, 0x41, 0xfe]);
    // (with a key, memcached mis-skips the body: a known difference that leaves those out)
    const key = r.chance(0.5) ? keyBytes() : Buffer.alloc(0);
    const value = r.bytes(r.int(8));
    spec = () => ({ opcode, key, value, opaque });
  } else {
    // wrong extras or key lengths: an error, then the connection is closed
    const opcode = r.pick([0x00, 0x01, 0x04, 0x05, 0x1c, 0x0a]);
    const key = r.chance(0.3) ? Buffer.alloc(0) : keyBytes();
    const extras = r.bytes(r.pick([0, 1, 4, 8, 20]));
    spec = () => ({ opcode, key, extras, opaque });
  }
  return { protocol: 'binary', render: (ctx) => packet(spec(ctx.unixNow), ctx) };
}
