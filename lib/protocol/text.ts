/**
 * memcached's classic text protocol: a pure request parser (bytes -> command) that follows
 * memcached 1.6's proto_text.c tokenizer and error replies byte for byte.
 */
import { KEY_MAX_LENGTH, memcachedItemSize, Op, type KeyCommand, type LocalCommand, type ShardOp } from './command.js';
import { parseMetaLine, type MetaCommand } from './meta.js';

/** memcached closes a connection whose line has no newline after this many bytes (multi-gets excepted). */
export const MAX_LINE = 2048;
/** Bound for a multi-get line, so a client cannot make us buffer without limit. */
export const MAX_GET_LINE = 1 << 20;
/** memcached's tokenizer stops splitting after this many tokens (it re-tokenizes get keys). */
const MAX_TOKENS = 24;

export const Parsed = {
  /** More bytes are needed; `need` is the total byte count from the start offset, or 0 if unknown. */
  Incomplete: 0,
  /** A command for one key: `keyCommand`. */
  Key: 1,
  /** A get/gets/gat/gats over `keys`. */
  MultiGet: 2,
  /** A command answered by the front end: `local`. */
  Local: 3,
  /** Reply `reply` at once (an error); then drop `swallow` bytes of data that follow the line. */
  Reply: 4,
  /** Protocol violation that memcached answers by closing the connection. */
  Close: 5,
} as const;
export type ParsedKind = (typeof Parsed)[keyof typeof Parsed];

const CRLF = 0x0a;
const SPACE = 0x20;

export const Errors = {
  error: 'ERROR\r\n',
  badFormat: 'CLIENT_ERROR bad command line format\r\n',
  badChunk: 'CLIENT_ERROR bad data chunk\r\n',
  badExptime: 'CLIENT_ERROR invalid exptime argument\r\n',
  badDelta: 'CLIENT_ERROR invalid numeric delta argument\r\n',
  deleteUsage: 'CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n',
  tooLarge: 'SERVER_ERROR object too large for cache\r\n',
  shutdownDisabled: 'SERVER_ERROR: shutdown not enabled\r\n',
  shutdownMode: 'CLIENT_ERROR invalid shutdown mode\r\n',
  flushDisabled: 'CLIENT_ERROR flush_all not allowed\r\n',
  badCommandLine: 'CLIENT_ERROR bad command line\r\n',
  illegalSlabId: 'CLIENT_ERROR Illegal slab id\r\n',
  badClass: 'BADCLASS invalid class id\r\n',
  cachedumpDisabled: 'CLIENT_ERROR stats cachedump not allowed\r\n',
  metadumpDisabled: 'ERROR metadump not allowed\r\n',
  watchDisabled: 'CLIENT_ERROR watch commands not allowed\r\n',
  detailUsage: 'CLIENT_ERROR usage: stats detail on|off|dump\r\n',
  tlsNotEnabled: 'Error TLS not enabled\r\n',
  watchPipelined: 'ERROR cannot pipeline other commands before watch\r\n',
} as const;

/** Command names, matched on bytes: no string is built for the command token. */
const Cmd = {
  None: 0, Get: 1, Gets: 2, Gat: 3, Gats: 4, Set: 5, Add: 6, Replace: 7, Append: 8, Prepend: 9, Cas: 10,
  Delete: 11, Incr: 12, Decr: 13, Touch: 14, FlushAll: 15, Version: 16, Quit: 17, Verbosity: 18, Stats: 19,
  Shutdown: 20, Debug: 21, Mg: 22, Ms: 23, Md: 24, Ma: 25, Mn: 26, Me: 27, LruCrawler: 28, Slabs: 29, Lru: 30,
  CacheMemlimit: 31, Watch: 32, RefreshCerts: 33, Config: 34,
} as const;
type CmdId = (typeof Cmd)[keyof typeof Cmd];
const COMMAND_NAMES: Array<[string, CmdId]> = [
  ['get', Cmd.Get], ['gets', Cmd.Gets], ['gat', Cmd.Gat], ['gats', Cmd.Gats], ['set', Cmd.Set], ['add', Cmd.Add],
  ['replace', Cmd.Replace], ['append', Cmd.Append], ['prepend', Cmd.Prepend], ['cas', Cmd.Cas],
  ['delete', Cmd.Delete], ['incr', Cmd.Incr], ['decr', Cmd.Decr], ['touch', Cmd.Touch], ['flush_all', Cmd.FlushAll],
  ['version', Cmd.Version], ['quit', Cmd.Quit], ['verbosity', Cmd.Verbosity], ['stats', Cmd.Stats],
  ['shutdown', Cmd.Shutdown], ['debug', Cmd.Debug], ['mg', Cmd.Mg], ['ms', Cmd.Ms], ['md', Cmd.Md], ['ma', Cmd.Ma],
  ['mn', Cmd.Mn], ['me', Cmd.Me], ['lru_crawler', Cmd.LruCrawler], ['slabs', Cmd.Slabs], ['lru', Cmd.Lru],
  ['cache_memlimit', Cmd.CacheMemlimit], ['watch', Cmd.Watch], ['refresh_certs', Cmd.RefreshCerts],
  ['config', Cmd.Config],
];
/** Names by length and first byte; each candidate is then compared in full. */
const COMMANDS_BY_HEAD = new Map<number, Array<[Buffer, CmdId]>>();
for (const [name, id] of COMMAND_NAMES) {
  const head = (name.length << 8) | name.charCodeAt(0);
  const list = COMMANDS_BY_HEAD.get(head) ?? [];
  list.push([Buffer.from(name, 'latin1'), id]);
  COMMANDS_BY_HEAD.set(head, list);
}

function commandOf(buf: Buffer, s: number, e: number): CmdId {
  const candidates = COMMANDS_BY_HEAD.get(((e - s) << 8) | buf[s]!);
  if (candidates === undefined) return Cmd.None;
  for (const [name, id] of candidates) {
    let i = 1;
    while (i < name.length && buf[s + i] === name[i]) i++;
    if (i === name.length) return id;
  }
  return Cmd.None;
}

/**
 * A reusable parser: `parse()` returns a kind and leaves its result in the fields, so the hot path
 * allocates only the command itself.
 */
export class TextParser {
  /** Offset just past the parsed request (line and data block). */
  next = 0;
  need = 0;
  reply = '';
  swallow = 0;
  keyCommand: KeyCommand | null = null;
  local: LocalCommand | null = null;
  getOp: ShardOp = Op.Get;
  keys: Uint8Array[] = [];
  exptime = 0;
  /** End of the request line just parsed (without CR LF), for logging. */
  lineEnd = 0;
  private start = 0;

  // token boundaries of the current line
  private readonly ts: number[] = [];
  private readonly te: number[] = [];

  /** @param maxValue values longer than this are refused as too large without being buffered */
  constructor(private readonly maxValue: number) {}

  parse(buf: Buffer, pos: number, end: number): ParsedKind {
    this.start = pos;
    const nl = buf.indexOf(CRLF, pos);
    if (nl < 0 || nl >= end) return this.incompleteLine(buf, pos, end);
    const lineEnd = nl > pos && buf[nl - 1] === 0x0d ? nl - 1 : nl;
    this.lineEnd = lineEnd;
    this.next = nl + 1;
    const n = this.tokenize(buf, pos, lineEnd, MAX_TOKENS);
    const ts = this.ts;
    const te = this.te;
    // memcached: every command has at least two bytes
    if (n === 0 || te[0]! - ts[0]! < 2) return this.fail(Errors.error);
    switch (commandOf(buf, ts[0]!, te[0]!)) {
      case Cmd.Get:
        return this.parseGet(buf, Op.Get, n, lineEnd);
      case Cmd.Gets:
        return this.parseGet(buf, Op.Gets, n, lineEnd);
      case Cmd.Gat:
        return this.parseGet(buf, Op.Gat, n, lineEnd);
      case Cmd.Gats:
        return this.parseGet(buf, Op.Gats, n, lineEnd);
      case Cmd.Set:
        return this.parseStore(buf, Op.Set, n, end);
      case Cmd.Add:
        return this.parseStore(buf, Op.Add, n, end);
      case Cmd.Replace:
        return this.parseStore(buf, Op.Replace, n, end);
      case Cmd.Append:
        return this.parseStore(buf, Op.Append, n, end);
      case Cmd.Prepend:
        return this.parseStore(buf, Op.Prepend, n, end);
      case Cmd.Cas:
        return this.parseStore(buf, Op.Cas, n, end);
      case Cmd.Delete:
        return this.parseDelete(buf, n);
      case Cmd.Incr:
        return this.parseArith(buf, Op.Incr, n);
      case Cmd.Decr:
        return this.parseArith(buf, Op.Decr, n);
      case Cmd.Touch:
        return this.parseTouch(buf, n);
      case Cmd.FlushAll:
        return this.parseFlush(buf, n);
      case Cmd.Mg:
        return this.parseMeta(buf, 'mg', Op.MetaGet, pos, lineEnd, end);
      case Cmd.Ms:
        return this.parseMeta(buf, 'ms', Op.MetaSet, pos, lineEnd, end);
      case Cmd.Md:
        return this.parseMeta(buf, 'md', Op.MetaDelete, pos, lineEnd, end);
      case Cmd.Ma:
        return this.parseMeta(buf, 'ma', Op.MetaArith, pos, lineEnd, end);
      case Cmd.Me:
        return this.parseMeta(buf, 'me', Op.MetaDebug, pos, lineEnd, end);
      case Cmd.Mn:
        return this.localCmd({ kind: 'mn' });
      case Cmd.Version:
        return this.localCmd({ kind: 'version' });
      case Cmd.Quit:
        return this.localCmd({ kind: 'quit' });
      case Cmd.Verbosity:
        return this.parseVerbosity(buf, n);
      case Cmd.Stats:
        return this.localCmd({ kind: 'stats', group: n > 1 ? this.tok(buf, 1) : '', args: this.rest(buf, 2, n) });
      case Cmd.Debug:
        return this.localCmd({ kind: 'debug', args: this.rest(buf, 1, n) });
      case Cmd.LruCrawler:
        return this.localCmd({ kind: 'operator', name: 'lru_crawler', args: this.rest(buf, 1, n) });
      case Cmd.Slabs:
        return this.localCmd({ kind: 'operator', name: 'slabs', args: this.rest(buf, 1, n) });
      case Cmd.Lru:
        // memcached answers a bare `lru` with ERROR before looking further
        return n < 2 ? this.fail(Errors.error) : this.localCmd({ kind: 'operator', name: 'lru', args: this.rest(buf, 1, n) });
      case Cmd.CacheMemlimit:
        return n !== 2 && n !== 3 ? this.fail(Errors.error) : this.localCmd({ kind: 'operator', name: 'cache_memlimit', args: this.rest(buf, 1, n) });
      case Cmd.Watch:
        return this.localCmd({ kind: 'watch', args: this.rest(buf, 1, n) });
      case Cmd.RefreshCerts:
        return this.localCmd({ kind: 'refresh_certs' });
      case Cmd.Config:
        return this.localCmd({ kind: 'config', args: this.rest(buf, 1, n) });
      case Cmd.Shutdown:
        if (n === 1) return this.localCmd({ kind: 'shutdown', mode: 'immediate' });
        if (n === 2 && this.tok(buf, 1) === 'graceful') return this.localCmd({ kind: 'shutdown', mode: 'graceful' });
        return this.localCmd({ kind: 'shutdown', mode: 'invalid' });
      default:
        // memcached hangs up on HTTP requests sent to it by mistake
        if (buf.toString('latin1', ts[n - 1]!, Math.min(te[n - 1]!, ts[n - 1]! + 5)) === 'HTTP/') return Parsed.Close;
        return this.fail(Errors.error);
    }
  }

  private incompleteLine(buf: Buffer, pos: number, end: number): ParsedKind {
    const len = end - pos;
    if (len > MAX_LINE) {
      let p = pos;
      while (p < end && buf[p] === SPACE) p++;
      const isGet = p - pos <= 100 && (buf.toString('latin1', p, p + 4) === 'get ' || buf.toString('latin1', p, p + 5) === 'gets ');
      if (!isGet || len > MAX_GET_LINE) return Parsed.Close;
    }
    this.need = 0;
    return Parsed.Incomplete;
  }

  /** Split [start, end) on spaces like memcached (only ' ' separates; empty tokens vanish). */
  private tokenize(buf: Buffer, start: number, end: number, max: number): number {
    const ts = this.ts;
    const te = this.te;
    let n = 0;
    let s = start;
    for (let i = start; i < end; i++) {
      if (buf[i] === SPACE) {
        if (i > s) {
          ts[n] = s;
          te[n] = i;
          n++;
          if (n === max - 1) {
            s = i + 1;
            // the rest of the line is one final token, as in memcached (used by long get lines)
            ts[n] = s;
            te[n] = end;
            return s < end ? n + 1 : n;
          }
        }
        s = i + 1;
      }
    }
    if (end > s) {
      ts[n] = s;
      te[n] = end;
      n++;
    }
    return n;
  }

  private tok(buf: Buffer, i: number): string {
    return buf.toString('latin1', this.ts[i]!, this.te[i]!);
  }

  private rest(buf: Buffer, from: number, n: number): string[] {
    const out: string[] = [];
    for (let i = from; i < n; i++) out.push(this.tok(buf, i));
    return out;
  }

  private isNoreply(buf: Buffer, i: number): boolean {
    return this.te[i]! - this.ts[i]! === 7 && buf.toString('latin1', this.ts[i]!, this.te[i]!) === 'noreply';
  }

  private fail(reply: string, swallow = 0): ParsedKind {
    this.reply = reply;
    this.swallow = swallow;
    return Parsed.Reply;
  }

  private localCmd(cmd: LocalCommand): ParsedKind {
    this.local = cmd;
    return Parsed.Local;
  }

  /** Token i as a key: memcached checks only the length (control bytes are key bytes too). */
  private key(buf: Buffer, i: number): Uint8Array | null {
    const s = this.ts[i]!;
    const e = this.te[i]!;
    return e - s > KEY_MAX_LENGTH ? null : buf.subarray(s, e);
  }

  private keyCmd(op: ShardOp, key: Uint8Array, noreply: boolean): KeyCommand {
    const cmd: KeyCommand = { op, key, flags: 0, exptime: 0, cas: 0, delta: 0n, value: null, noreply, end: false };
    this.keyCommand = cmd;
    return cmd;
  }

  private parseGet(buf: Buffer, op: ShardOp, n: number, lineEnd: number): ParsedKind {
    if (n < 2) return this.fail(Errors.error);
    const touch = op === Op.Gat || op === Op.Gats;
    let first = 1;
    if (touch) {
      const exptime = parseI32(buf, this.ts[1]!, this.te[1]!);
      if (exptime === null) return this.fail(Errors.badExptime);
      this.exptime = exptime;
      first = 2; // memcached answers a bare `gat <exptime>` with END
    }
    // get lines may hold any number of keys: past memcached's 24-token window, tokenize it all
    const count = n < MAX_TOKENS - 1 ? n : this.tokenize(buf, this.ts[0]!, lineEnd, Number.MAX_SAFE_INTEGER);
    const keys: Uint8Array[] = [];
    for (let i = first; i < count; i++) {
      const key = this.key(buf, i);
      if (key === null) return this.fail(Errors.badFormat);
      keys.push(key);
    }
    this.getOp = op;
    this.keys = keys;
    return Parsed.MultiGet;
  }

  private parseStore(buf: Buffer, op: ShardOp, n: number, end: number): ParsedKind {
    const isCas = op === Op.Cas;
    const base = isCas ? 6 : 5;
    if (n !== base && n !== base + 1) return this.fail(Errors.error);
    const noreply = this.isNoreply(buf, n - 1); // memcached looks at the last token, whatever the count
    const reply = noreply ? '' : Errors.badFormat;
    const vlen = parseI32(buf, this.ts[4]!, this.te[4]!);
    if (vlen === null || vlen < 0 || vlen > 0x7fffffff - 2) return this.fail(reply);
    // memcached then reads the data block as commands; with a readable length it is skipped instead
    const key = this.key(buf, 1);
    const flags = parseU32(buf, this.ts[2]!, this.te[2]!);
    const exptime = parseI32(buf, this.ts[3]!, this.te[3]!);
    const c = isCas ? parseU64(buf, this.ts[5]!, this.te[5]!) : 0n;
    if (key === null || flags === null || exptime === null || c === null) return this.fail(reply, vlen + 2);
    const cas = Number(c);
    const kind = this.withValue(buf, end, op, key, vlen, noreply, op === Op.Set, flags);
    if (kind === Parsed.Key && this.keyCommand!.op === op) {
      const cmd = this.keyCommand!;
      cmd.flags = flags;
      cmd.exptime = exptime;
      cmd.cas = cas;
    }
    return kind;
  }

  /**
   * The data block of a storage command: the command with its value (Key), Incomplete, the bad
   * chunk error, or a too large value refused without being buffered (a SetTooLarge command that
   * removes the old item when `dropsOld`; the value is swallowed). Like memcached, which sizes the
   * item before it reads the block, too large comes before a bad chunk.
   */
  private withValue(buf: Buffer, end: number, op: ShardOp, key: Uint8Array, vlen: number, noreply: boolean, dropsOld: boolean, flags: number): ParsedKind {
    if (memcachedItemSize(key.length, vlen, flags) > this.maxValue) {
      this.keyCmd(Op.SetTooLarge, key, noreply).flags = dropsOld ? 1 : 0;
      this.swallow = vlen + 2;
      return Parsed.Key;
    }
    const dataStart = this.next;
    const dataEnd = dataStart + vlen;
    if (dataEnd + 2 > end) {
      this.need = dataEnd + 2 - this.start;
      return Parsed.Incomplete;
    }
    this.next = dataEnd + 2;
    if (buf[dataEnd] !== 0x0d || buf[dataEnd + 1] !== CRLF) return this.fail(noreply ? '' : Errors.badChunk);
    this.keyCmd(op, key, noreply).value = buf.subarray(dataStart, dataEnd);
    this.swallow = 0;
    return Parsed.Key;
  }

  /** A meta command (see meta.ts); ms reads its data block like set. Errors ignore `q`. */
  private parseMeta(buf: Buffer, name: MetaCommand, op: ShardOp, lineStart: number, lineEnd: number, end: number): ParsedKind {
    const line = parseMetaLine(name, buf, lineStart, lineEnd);
    if ('error' in line) return this.fail(line.error, line.swallow);
    if (op !== Op.MetaSet) {
      this.keyCmd(op, line.key, false).meta = line.request;
      return Parsed.Key;
    }
    // like memcached's ms, a too large value drops the old item whatever the mode
    const kind = this.withValue(buf, end, op, line.key, line.valueLength, false, true, line.request.clientFlags);
    if (kind === Parsed.Key && this.keyCommand!.op === op) this.keyCommand!.meta = line.request;
    return kind;
  }

  private parseDelete(buf: Buffer, n: number): ParsedKind {
    if (n < 2 || n > 4) return this.fail(Errors.error);
    let noreply = false;
    if (n > 2) {
      const holdIsZero = this.tok(buf, 2) === '0';
      noreply = this.isNoreply(buf, n - 1);
      const valid = (n === 3 && (holdIsZero || noreply)) || (n === 4 && holdIsZero && noreply);
      if (!valid) return this.fail(noreply ? '' : Errors.deleteUsage);
    }
    const key = this.key(buf, 1);
    if (key === null) return this.fail(noreply ? '' : Errors.badFormat);
    this.keyCmd(Op.Delete, key, noreply);
    return Parsed.Key;
  }

  private parseArith(buf: Buffer, op: ShardOp, n: number): ParsedKind {
    if (n !== 3 && n !== 4) return this.fail(Errors.error);
    const noreply = this.isNoreply(buf, n - 1);
    const key = this.key(buf, 1);
    if (key === null) return this.fail(noreply ? '' : Errors.badFormat);
    const delta = parseU64(buf, this.ts[2]!, this.te[2]!);
    if (delta === null) return this.fail(noreply ? '' : Errors.badDelta);
    this.keyCmd(op, key, noreply).delta = delta;
    return Parsed.Key;
  }

  private parseTouch(buf: Buffer, n: number): ParsedKind {
    if (n !== 3 && n !== 4) return this.fail(Errors.error);
    const noreply = this.isNoreply(buf, n - 1);
    const key = this.key(buf, 1);
    if (key === null) return this.fail(noreply ? '' : Errors.badFormat);
    const exptime = parseI32(buf, this.ts[2]!, this.te[2]!);
    if (exptime === null) return this.fail(noreply ? '' : Errors.badExptime);
    this.keyCmd(Op.Touch, key, noreply).exptime = exptime;
    return Parsed.Key;
  }

  private parseFlush(buf: Buffer, n: number): ParsedKind {
    if (n > 3) return this.fail(Errors.error);
    const noreply = n > 1 && this.isNoreply(buf, n - 1);
    let delay = 0;
    if (n !== (noreply ? 2 : 1)) {
      const d = parseI32(buf, this.ts[1]!, this.te[1]!);
      if (d === null) return this.fail(noreply ? '' : Errors.badExptime);
      delay = d;
    }
    return this.localCmd({ kind: 'flush_all', delay, noreply });
  }

  private parseVerbosity(buf: Buffer, n: number): ParsedKind {
    if (n !== 2 && n !== 3) return this.fail(Errors.error);
    const noreply = this.isNoreply(buf, n - 1);
    const level = parseU32(buf, this.ts[1]!, this.te[1]!);
    if (level === null) return this.fail(noreply ? '' : Errors.badFormat);
    return this.localCmd({ kind: 'verbosity', level, noreply });
  }
}

/** C's isspace: strtol skips these before a number and stops at them after it. */
function isCSpace(c: number): boolean {
  return c === SPACE || (c >= 0x09 && c <= 0x0d);
}

const U64_MAX = 0xffffffffffffffffn;
const I64_MIN = -(1n << 63n);

/**
 * What strtol/strtoull read in a token, as memcached's safe_strto* accept it: spaces, a sign,
 * decimal digits, then the token end, a space or a NUL (the rest is ignored). Returns the signed
 * value, a number while exact, else a bigint; null without digits, before other bytes, or past
 * 2^64 - 1 (ERANGE).
 */
function strtoNumber(buf: Uint8Array, s: number, e: number): number | bigint | null {
  let p = s;
  while (p < e && isCSpace(buf[p]!)) p++;
  const neg = p < e && buf[p] === 0x2d;
  if (p < e && (buf[p] === 0x2d || buf[p] === 0x2b)) p++;
  const digits = p;
  let v = 0;
  let big: bigint | null = null;
  for (; p < e; p++) {
    const d = buf[p]! - 0x30;
    if (d < 0 || d > 9) break;
    if (big === null && v < 9e14) {
      v = v * 10 + d;
    } else {
      big = (big ?? BigInt(v)) * 10n + BigInt(d);
      if (big > U64_MAX) return null;
    }
  }
  if (p === digits || (p < e && buf[p] !== 0 && !isCSpace(buf[p]!))) return null;
  if (big !== null) return neg ? -big : big;
  return neg && v !== 0 ? -v : v;
}

/** strtoull's wrap of a negative number; memcached refuses it when the result has bit 63 set. */
function wrapU64(v: bigint): bigint | null {
  if (v >= 0n) return v;
  const w = BigInt.asUintN(64, v);
  return w >> 63n === 0n ? w : null;
}

/** memcached's safe_strtol: a long (ERANGE outside 64 bits), truncated to int32. */
export function parseI32(buf: Uint8Array, s: number, e: number): number | null {
  const v = strtoNumber(buf, s, e);
  if (typeof v === 'number') return v | 0;
  if (v === null || v < I64_MIN || v > -I64_MIN - 1n) return null;
  return Number(BigInt.asIntN(32, v));
}

/** memcached's safe_strtoul: an unsigned long, truncated to uint32. */
export function parseU32(buf: Uint8Array, s: number, e: number): number | null {
  const v = strtoNumber(buf, s, e);
  if (typeof v === 'number') return v < 0 ? null : v % 0x100000000;
  const w = v === null ? null : wrapU64(v);
  return w === null ? null : Number(w & 0xffffffffn);
}

/** memcached's safe_strtoull: unsigned 64-bit. */
export function parseU64(buf: Uint8Array, s: number, e: number): bigint | null {
  const v = strtoNumber(buf, s, e);
  if (typeof v === 'number') return v < 0 ? null : BigInt(v);
  return v === null ? null : wrapU64(v);
}
