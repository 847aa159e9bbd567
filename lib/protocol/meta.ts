/**
 * memcached's meta protocol (mg ms md ma me; mn is a local command): a pure parser of meta request
 * lines that follows memcached 1.6.45 (proto_parser.c, vendor/mcmc tokenizer) error for error.
 *
 * A meta line is parsed and validated once; the request keeps its flag tokens as sent, and the
 * reply walks them, so returned flags keep request order.
 */
import { KEY_MAX_LENGTH } from './command.js';
import { parseI32 } from './text.js';

/** Request flags, one bit each (`MetaRequest.bits`). */
export const MetaBit = {
  Base64Key: 1 << 0, // b
  ReturnCas: 1 << 1, // c
  ReturnFlags: 1 << 2, // f
  ReturnHit: 1 << 3, // h
  ReturnKey: 1 << 4, // k
  ReturnLastAccess: 1 << 5, // l
  Quiet: 1 << 6, // q
  ReturnSize: 1 << 7, // s
  ReturnTtl: 1 << 8, // t
  NoBump: 1 << 9, // u
  Value: 1 << 10, // v
  RemoveValue: 1 << 11, // x
  Invalidate: 1 << 12, // I
  Vivify: 1 << 13, // N
  Ttl: 1 << 14, // T
  Recache: 1 << 15, // R
  CompareCas: 1 << 16, // C
  NewCas: 1 << 17, // E
  ClientFlags: 1 << 18, // F
  Opaque: 1 << 19, // O
} as const;

/** A meta command's flags, parsed. Numbers are as sent (TTLs are client exptimes). */
export interface MetaRequest {
  bits: number;
  /** The M token's mode character code (0 = none). */
  mode: number;
  ttl: number;
  vivifyTtl: number;
  recacheTtl: number;
  compareCas: number;
  newCas: number;
  clientFlags: number;
  delta: bigint;
  initial: bigint;
  /** The flag tokens as sent (from the first flag to the end of the line). */
  flags: Uint8Array;
}

/** A parsed meta line: the key (base64-decoded with `b`), the request, and ms's value length. */
export interface MetaLine {
  key: Uint8Array;
  request: MetaRequest;
  valueLength: number;
}

export const MetaErrors = {
  badFormat: 'CLIENT_ERROR bad command line format\r\n',
  badToken: 'CLIENT_ERROR bad token in command line format\r\n',
  duplicate: 'CLIENT_ERROR duplicate flag\r\n',
  invalidFlag: 'CLIENT_ERROR invalid flag\r\n',
  tooManyFlags: 'CLIENT_ERROR options flags are too long\r\n',
  badKey: 'CLIENT_ERROR error decoding key\r\n',
  opaqueTooLong: 'CLIENT_ERROR opaque token too long\r\n',
  badInitial: 'CLIENT_ERROR invalid numeric initial value\r\n',
  badDelta: 'CLIENT_ERROR invalid numeric delta value\r\n',
  badSetMode: 'CLIENT_ERROR invalid mode for ms M token\r\n',
  badArithMode: 'CLIENT_ERROR invalid mode for ma M token\r\n',
  // memcached's ma answers every flag error with this one line
  badArithFlag: 'CLIENT_ERROR invalid or duplicate flag\r\n',
} as const;

export type MetaCommand = 'mg' | 'ms' | 'md' | 'ma' | 'me';

/** mcmc parses at most this many tokens of a line (the rest is dropped). */
const MAX_TOKENS = 23;
/** memcached refuses a meta line with more tokens than this (command and key included). */
const MAX_META_TOKENS = 20;
const MAX_OPAQUE_TOKEN = 32;
/** CAS values are kept as doubles: E (new CAS) is refused above this instead of being rounded. */
const MAX_NEW_CAS = Number.MAX_SAFE_INTEGER;

const ts: number[] = [];
const te: number[] = [];

/**
 * Parses `<cm> <key> [<datalen>] <flags>*` between lineStart and lineEnd (no CR LF). Returns the
 * line, or an error reply; for ms, `swallow` tells whether its data block must then be skipped.
 */
export function parseMetaLine(
  cmd: MetaCommand,
  buf: Uint8Array,
  lineStart: number,
  lineEnd: number,
): MetaLine | { error: string; swallow: number } {
  const flagsFrom = cmd === 'ms' ? 3 : 2;
  const n = tokenize(buf, lineStart, lineEnd, flagsFrom);
  // a token the tokenizer refuses comes after the key and length: they are still read
  if (n >= 0 && n < flagsFrom) return { error: MetaErrors.badFormat, swallow: 0 };
  let valueLength = 0;
  if (cmd === 'ms') {
    // the data length is read like set's (safe_strtol), so every block set would read is skipped on an error
    const len = parseI32(buf, ts[2]!, te[2]!);
    if (len === null || len < 0 || len > 0x7fffffff - 2) return { error: MetaErrors.badFormat, swallow: 0 };
    valueLength = len;
  }
  const swallow = cmd === 'ms' ? valueLength + 2 : 0;
  if (n < 0) return { error: MetaErrors.badFormat, swallow };
  const rawKey = buf.subarray(ts[1]!, te[1]!);
  const request = emptyRequest(buf.subarray(n > flagsFrom ? ts[flagsFrom]! : lineEnd, lineEnd));
  if (cmd === 'me') return meDebugLine(buf, rawKey, n, request);
  const keyOut = { key: rawKey };
  let error: string | null = rawKey.length > KEY_MAX_LENGTH ? MetaErrors.badFormat : null;
  if (error === null && n > MAX_META_TOKENS) error = MetaErrors.tooManyFlags;
  if (error === null) error = readFlags(buf, flagsFrom, n, request, keyOut);
  if (error !== null) return { error: cmd === 'ma' ? MetaErrors.badArithFlag : error, swallow };
  if (cmd === 'ms' && !SET_MODES.includes(request.mode)) return { error: MetaErrors.badSetMode, swallow };
  if (cmd === 'ma' && !ARITH_MODES.includes(request.mode)) return { error: MetaErrors.badArithMode, swallow };
  // memcached checks opaque length while writing the reply, after mg/ma may have changed the item;
  // refusing the request before it runs answers the same error without that side effect.
  for (let i = flagsFrom; i < n; i++) {
    if (buf[ts[i]!] === 0x4f && te[i]! - ts[i]! > MAX_OPAQUE_TOKEN) return { error: MetaErrors.opaqueTooLong, swallow };
  }
  return { key: keyOut.key, request, valueLength };
}

const code = (c: string) => c.charCodeAt(0);
/** ms modes: none, E(add) A(ppend) P(repend) R(eplace) S(et); ma: none, I/+ (incr), D/- (decr). */
const SET_MODES = [0, ...Array.from('EAPRS', code)];
const ARITH_MODES = [0, ...Array.from('I+D-', code)];

function emptyRequest(flags: Uint8Array): MetaRequest {
  return {
    bits: 0, mode: 0, ttl: 0, vivifyTtl: 0, recacheTtl: 0, compareCas: 0, newCas: 0, clientFlags: 0,
    delta: 1n, initial: 0n, flags,
  };
}

/** `me <key> [b]`: only the key and an exact `b` token matter. */
function meDebugLine(buf: Uint8Array, rawKey: Uint8Array, n: number, request: MetaRequest): MetaLine | { error: string; swallow: number } {
  if (rawKey.length > KEY_MAX_LENGTH) return { error: MetaErrors.badFormat, swallow: 0 };
  // memcached 1.6.45 miscounts tokens here and never decodes; 1.6.18 and protocol.txt decode
  if (n >= 3 && te[2]! - ts[2]! === 1 && buf[ts[2]!] === 0x62) {
    const key = decodeBase64Key(rawKey);
    if (key === null) return { error: MetaErrors.badFormat, swallow: 0 };
    request.bits |= MetaBit.Base64Key;
    return { key, request, valueLength: 0 };
  }
  return { key: rawKey, request, valueLength: 0 };
}

/**
 * mcmc's tokenizer: splits on spaces, keeps at most MAX_TOKENS tokens, and refuses a line whose
 * tokens from `flagsFrom` on do not start with a letter-range byte (A..z) or a digit (-1).
 */
function tokenize(buf: Uint8Array, start: number, end: number, flagsFrom: number): number {
  let n = 0;
  let i = start;
  while (i < end && n < MAX_TOKENS) {
    while (i < end && buf[i] === 0x20) i++;
    if (i === end) break;
    const s = i;
    while (i < end && buf[i] !== 0x20) i++;
    if (n >= flagsFrom) {
      const c = buf[s]!;
      if (!(c > 64 && c < 123) && !(c >= 0x30 && c <= 0x39)) return -1;
    }
    ts[n] = s;
    te[n] = i;
    n++;
  }
  return n;
}

/** The flags that take a TTL: N (placeholder TTL), T (new TTL), R (recache threshold). */
const TTL_FLAGS: Record<number, [number, 'vivifyTtl' | 'ttl' | 'recacheTtl']> = {
  [code('N')]: [MetaBit.Vivify, 'vivifyTtl'],
  [code('T')]: [MetaBit.Ttl, 'ttl'],
  [code('R')]: [MetaBit.Recache, 'recacheTtl'],
};

/** Flags without an argument, and their bits (P and L are proxy hints: known, ignored). */
const PLAIN_FLAGS: Record<number, number> = {
  [code('c')]: MetaBit.ReturnCas, [code('f')]: MetaBit.ReturnFlags, [code('h')]: MetaBit.ReturnHit,
  [code('k')]: MetaBit.ReturnKey, [code('l')]: MetaBit.ReturnLastAccess, [code('q')]: MetaBit.Quiet,
  [code('s')]: MetaBit.ReturnSize, [code('t')]: MetaBit.ReturnTtl, [code('u')]: MetaBit.NoBump,
  [code('v')]: MetaBit.Value, [code('x')]: MetaBit.RemoveValue, [code('I')]: MetaBit.Invalidate,
  [code('O')]: MetaBit.Opaque, [code('P')]: 0, [code('L')]: 0,
};

/** Flags seen in the current request: a flag was seen when its entry equals the request's number. */
const seenIn = new Uint32Array(128);
let requestNumber = 0;

/** memcached's _meta_flag_preparse; decodes the key on `b` when keyOut is given. */
function readFlags(buf: Uint8Array, from: number, n: number, req: MetaRequest, keyOut: { key: Uint8Array } | null): string | null {
  requestNumber = (requestNumber + 1) >>> 0 || 1;
  // like memcached: a bad argument is remembered and parsing goes on (a later one may replace the
  // message); an unknown or repeated flag ends parsing at once
  let error: string | null = null;
  let message: string = MetaErrors.badFormat;
  for (let i = from; i < n; i++) {
    const s = ts[i]!;
    const e = te[i]!;
    const flag = buf[s]!;
    if (seenIn[flag] === requestNumber) return MetaErrors.duplicate;
    seenIn[flag] = requestNumber;
    const plain = PLAIN_FLAGS[flag];
    if (plain !== undefined) {
      req.bits |= plain;
      continue;
    }
    switch (String.fromCharCode(flag)) {
      case 'b':
        req.bits |= MetaBit.Base64Key;
        if (keyOut !== null) {
          const key = decodeBase64Key(keyOut.key);
          if (key === null) error = message = MetaErrors.badKey;
          else keyOut.key = key;
        }
        break;
      case 'N':
      case 'T':
      case 'R': {
        const [bit, field] = TTL_FLAGS[flag]!;
        req.bits |= bit;
        const v = e - s > 1 ? toI32(buf, s + 1, e) : null;
        if (v === null) error = message = MetaErrors.badToken;
        else req[field] = v;
        break;
      }
      case 'F': {
        req.bits |= MetaBit.ClientFlags;
        const v = e - s > 1 ? toU32(buf, s + 1, e) : null;
        if (v === null) error = message; // memcached keeps the previous message here
        else req.clientFlags = v;
        break;
      }
      case 'C': {
        req.bits |= MetaBit.CompareCas;
        const v = argU64(buf, s, e);
        if (v === null) error = message = MetaErrors.badToken;
        else req.compareCas = Number(v);
        break;
      }
      case 'E': {
        req.bits |= MetaBit.NewCas;
        const v = argU64(buf, s, e);
        if (v === null || v > BigInt(MAX_NEW_CAS)) error = message = MetaErrors.badToken;
        else req.newCas = Number(v);
        break;
      }
      case 'M':
        // the character after M, even a space or the line end (memcached reads one byte on)
        req.mode = s + 1 < e ? buf[s + 1]! : 0x20;
        break;
      case 'J': {
        const v = argU64(buf, s, e);
        if (v === null) error = message = MetaErrors.badInitial;
        else req.initial = v;
        break;
      }
      case 'D': {
        const v = argU64(buf, s, e);
        if (v === null) error = message = MetaErrors.badDelta;
        else req.delta = v;
        break;
      }
      default:
        return MetaErrors.invalidFlag;
    }
  }
  return error;
}

/** A flag's u64 argument (mcmc_toktou64 on the bytes after the flag; none is an error). */
function argU64(buf: Uint8Array, s: number, e: number): bigint | null {
  return e - s > 1 ? toU64(buf, s + 1, e) : null;
}

/** mcmc_tokto32: optional '-', digits, at most 11 bytes, within int32 ("-" alone is 0). */
function toI32(buf: Uint8Array, s: number, e: number): number | null {
  if (e - s > 11) return null;
  let p = s;
  const neg = p < e && buf[p] === 0x2d;
  if (neg) p++;
  let v = 0;
  for (; p < e; p++) {
    const d = buf[p]! - 0x30;
    if (d < 0 || d > 9) return null;
    v = v * 10 + d;
  }
  v = neg ? -v : v;
  return v < -0x80000000 || v > 0x7fffffff ? null : v;
}

/** mcmc_toktou32: digits only, at most 11 bytes, within uint32. */
function toU32(buf: Uint8Array, s: number, e: number): number | null {
  if (e - s > 11) return null;
  let v = 0;
  for (let p = s; p < e; p++) {
    const d = buf[p]! - 0x30;
    if (d < 0 || d > 9) return null;
    v = v * 10 + d;
  }
  return v > 0xffffffff ? null : v;
}

/** mcmc_toktou64: digits only, at most 22 bytes, within uint64. */
function toU64(buf: Uint8Array, s: number, e: number): bigint | null {
  if (e - s > 22) return null;
  let v = 0n;
  for (let p = s; p < e; p++) {
    const d = buf[p]! - 0x30;
    if (d < 0 || d > 9) return null;
    v = v * 10n + BigInt(d);
  }
  return v > 0xffffffffffffffffn ? null : v;
}

/**
 * memcached's base64_decode: bytes outside the alphabet are skipped; the rest must be a non-empty
 * multiple of 4 characters. Returns null when memcached's decoder fails.
 */
export function decodeBase64Key(text: Uint8Array): Uint8Array | null {
  let clean = '';
  for (const c of text) {
    if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f || c === 0x3d) {
      clean += String.fromCharCode(c);
    }
  }
  if (clean.length === 0 || clean.length % 4 !== 0) return null;
  const key = Buffer.from(clean, 'base64');
  return key.length === 0 ? null : key;
}
