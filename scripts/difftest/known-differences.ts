/**
 * The one list of answers memshard gives on purpose that Debian's memcached 1.6.18 (the oracle)
 * does not: where memcached 1.6.45 (what memshard answers as) changed behaviour since 1.6.18,
 * where memcached's answer is a bug memshard does not copy, and memshard's own documented limits.
 * The differential tester reads it to leave such requests out (when they would leave the two
 * caches in different states) or to accept the known difference in a reply. README, "Where
 * memshard differs", lists the same entries.
 */
import { parseI32, parseU32, parseU64 } from '../../lib/protocol/text.js';

export type DifferenceKind = 'version' | 'memcached-bug' | 'memshard-limit';

/** A request and the two (normalised) replies to it. */
export interface Observed {
  request: string;
  harmlessBlock: boolean;
  /** The replies normalised (CAS values renamed, clock readings taken out). */
  memshard: string;
  memcached: string;
  /** The replies as received. */
  memshardRaw: string;
  memcachedRaw: string;
}

export interface KnownDifference {
  id: string;
  kind: DifferenceKind;
  summary: string;
  /** Requests the tester does not send: the two caches would no longer hold the same items. */
  skip?(request: string): boolean;
  /** Replies that differ only in this way. */
  explains?(o: Observed): boolean;
  /** An explained difference that leaves the two caches holding different items: the run starts over after it. */
  diverges?: boolean;
}

/** The first line's tokens and where a meta command's flags start (null: not mg ms md ma). */
function metaFlags(request: string): string[] | null {
  const line = request.slice(0, request.indexOf('\n')).replace(/\r$/, '');
  const tokens = line.split(' ').filter((t) => t !== '');
  const from = { mg: 2, md: 2, ma: 2, ms: 3 }[tokens[0] ?? ''];
  return from === undefined ? null : tokens.slice(from);
}

const b = (s: string) => Buffer.from(s, 'latin1');

/** A flag argument both tokenizers read as the same number: plain digits, in range, short. */
function canonical(flag: string, arg: string): boolean {
  if ('TNR'.includes(flag)) return /^-?\d{1,10}$/.test(arg) && Number(arg) >= -(2 ** 31) && Number(arg) < 2 ** 31;
  if (flag === 'F') return /^\d{1,10}$/.test(arg) && Number(arg) < 2 ** 32;
  return /^\d{1,20}$/.test(arg) && BigInt(arg) < 1n << 64n;
}

/** What 1.6.18's safe_strto* accept for the flag (1.6.45's mcmc tokenizer accepts less). */
function accepted1618(flag: string, arg: string): boolean {
  const v = b(arg);
  if ('TNR'.includes(flag)) return parseI32(v, 0, v.length) !== null;
  if (flag === 'F') return parseU32(v, 0, v.length) !== null;
  return parseU64(v, 0, v.length) !== null;
}

const NUMERIC_FLAGS = 'TNRFCDJ';

const isClientError = (reply: string) => /^CLIENT_ERROR [^\r]*\r\n$/.test(reply);
const command = (request: string) => request.slice(0, 3);

/** Opcodes memcached 1.6 knows (the SASL ones included). */
const KNOWN_OPCODES = new Set([...Array(0x1b).keys(), 0x1c, 0x1d, 0x1e, 0x20, 0x21, 0x22, 0x23, 0x24]);

/** A binary request with an opcode memcached does not know, and a key. */
function unknownBinaryWithKey(request: string): boolean {
  if (request.charCodeAt(0) !== 0x80 || request.length < 24) return false;
  const opcode = request.charCodeAt(1);
  const keyLength = (request.charCodeAt(2) << 8) | request.charCodeAt(3);
  return !KNOWN_OPCODES.has(opcode) && keyLength > 0;
}

const NON_NUMERIC_TEXT = 'CLIENT_ERROR cannot increment or decrement non-numeric value\r\n';
const U63 = 1n << 63n;
const U64 = 1n << 64n;

/** The counter before an incr/decr that answered `result`: at least 2^63 (for a decr to 0, unknown: assumed). */
function wasAtLeast2to63(incr: boolean, delta: bigint, result: bigint): boolean {
  if (!incr && result === 0n) return true;
  const old = incr ? (((result - delta) % U64) + U64) % U64 : result + delta;
  return old >= U63;
}

/** An incr/decr memshard ran and memcached refused as non-numeric: the counter before it, when the replies tell. */
function signScanExplains(o: Observed): boolean {
  const r = o.request;
  if (r.charCodeAt(0) === 0x80) {
    // binary: Increment/Decrement (quiet or not) refused with 0x06 by memcached
    const opcode = r.charCodeAt(1);
    if (![0x05, 0x06, 0x15, 0x16].includes(opcode) || o.memcachedRaw.length < 24 || o.memcachedRaw.charCodeAt(7) !== 0x06) return false;
    const ours = Buffer.from(o.memshardRaw, 'latin1');
    if (ours.length === 0) return opcode >= 0x15; // a quiet success: the value is not in the reply
    if (ours.length !== 32 || ours.readUInt16BE(6) !== 0) return false;
    const delta = Buffer.from(r, 'latin1').readBigUInt64BE(24);
    return wasAtLeast2to63(opcode === 0x05 || opcode === 0x15, delta, ours.readBigUInt64BE(24));
  }
  if (o.memcached !== NON_NUMERIC_TEXT) return false;
  const text = /^(incr|decr) \S+ (\d+)/.exec(r);
  if (text !== null) {
    const n = /^(\d+)\r\n$/.exec(o.memshard);
    return n !== null && wasAtLeast2to63(text[1] === 'incr', BigInt(text[2]!), BigInt(n[1]!));
  }
  // ma: the new value is only in a VA reply (with v); HD, or nothing with q, does not tell
  return command(r) === 'ma ' && (/^(HD|VA)/.test(o.memshard) || (o.memshard === '' && (metaFlags(r)?.includes('q') ?? false)));
}

export const KNOWN_DIFFERENCES: KnownDifference[] = [
  {
    id: 'multiget-bad-key-side-effects',
    kind: 'memcached-bug',
    summary:
      'a get/gets/gat/gats with a key over 250 bytes is refused; memcached has already fetched (and gat touched) ' +
      'the keys before it, memshard refuses the line before touching anything',
    skip: (request) => {
      const m = /^(get|gets|gat|gats) (.*?)\r?\n/s.exec(request);
      if (m === null) return false;
      const keys = m[2]!.split(' ').filter((k) => k !== '').slice(m[1]!.startsWith('gat') ? 1 : 0);
      const bad = keys.findIndex((k) => k.length > 250);
      return bad > 0;
    },
  },
  {
    id: 'refused-line-runs-block',
    kind: 'memcached-bug',
    summary:
      'memcached runs the data block of a refused storage line as commands; memshard skips it (the tester sends ' +
      'blocks that only answer ERROR there)',
    explains: (o) => {
      if (!o.harmlessBlock || !o.memcached.startsWith(o.memshard)) return false;
      const rest = o.memcached.slice(o.memshard.length);
      return rest.length > 0 && /^(ERROR\r\n)+$/.test(rest);
    },
  },
  {
    id: 'meta-number-tokens',
    kind: 'version',
    summary:
      "meta flag numbers are read by 1.6.45's tokenizer (digits only, in range: T2147483648, F+1, C007... are refused); " +
      '1.6.18 reads them with strtol/strtoul and truncates',
    skip: (request) =>
      metaFlags(request)?.some((t) => NUMERIC_FLAGS.includes(t[0]!) && !canonical(t[0]!, t.slice(1)) && accepted1618(t[0]!, t.slice(1))) ?? false,
  },
  {
    id: 'meta-E-and-x-flags',
    kind: 'version',
    summary: 'the E (set the CAS) and x (md: drop the value) flags came after 1.6.18, which answers CLIENT_ERROR invalid flag',
    skip: (request) => metaFlags(request)?.some((t) => t[0] === 'E' || t[0] === 'x') ?? false,
  },
  {
    id: 'mg-C-leaves-value-out',
    kind: 'version',
    summary: 'mg with C and v leaves the value out (HD) when the CAS matches, in 1.6.45; 1.6.18 ignores C in mg',
    explains: (o) => {
      if (command(o.request) !== 'mg ' || !(metaFlags(o.request)?.some((t) => t[0] === 'C') ?? false)) return false;
      const m = /^VA \d+([^\r]*)\r\n[^]*\r\n$/.exec(o.memcached);
      return m !== null && o.memshard === `HD${m[1]}\r\n`;
    },
  },
  {
    id: 'ma-long-key-text',
    kind: 'version',
    summary: 'ma with a key over 250 bytes: 1.6.45 answers CLIENT_ERROR invalid or duplicate flag, 1.6.18 bad command line format',
    explains: (o) =>
      command(o.request) === 'ma ' &&
      o.memshard === 'CLIENT_ERROR invalid or duplicate flag\r\n' &&
      o.memcached === 'CLIENT_ERROR bad command line format\r\n',
  },
  {
    id: 'me-exp-sign',
    kind: 'version',
    summary: "me's exp= is the time left in 1.6.45; 1.6.18 prints its negative",
    explains: (o) => {
      if (!o.request.startsWith('me ') || o.memshard !== o.memcached) return false;
      const exp = (raw: string) => Number(/ exp=(-?\d+)/.exec(raw)?.[1]);
      return Math.abs(exp(o.memshardRaw) + exp(o.memcachedRaw)) <= 2;
    },
  },
  {
    id: 'meta-token-start',
    kind: 'version',
    summary:
      "1.6.45's tokenizer refuses a meta flag token that does not start with a letter or digit " +
      '(CLIENT_ERROR bad command line format); 1.6.18 reads it as an unknown flag (CLIENT_ERROR invalid flag)',
    explains: (o) =>
      (metaFlags(o.request)?.some((t) => !/^[A-z0-9]/.test(t)) ?? false) &&
      o.memshard === 'CLIENT_ERROR bad command line format\r\n' &&
      isClientError(o.memcached),
  },
  {
    id: 'md-error-texts',
    kind: 'version',
    summary: "md answers each flag error with its own text in 1.6.45; 1.6.18 says CLIENT_ERROR invalid or duplicate flag to all",
    explains: (o) =>
      command(o.request) === 'md ' && isClientError(o.memshard) && o.memcached === 'CLIENT_ERROR invalid or duplicate flag\r\n',
  },
  {
    id: 'meta-M-token-length',
    kind: 'version',
    summary:
      '1.6.45 takes the byte after M whatever the token length (a bare M is an invalid mode); ' +
      '1.6.18 refuses an M token that is not 2 bytes (CLIENT_ERROR incorrect length for M token)',
    explains: (o) =>
      (metaFlags(o.request)?.includes('M') ?? false) &&
      isClientError(o.memshard) &&
      /^CLIENT_ERROR (incorrect length for M token|invalid or duplicate flag)\r\n$/.test(o.memcached),
  },
  {
    id: 'ms-s-flag',
    kind: 'version',
    summary: "ms returns the item's size for s in 1.6.45; 1.6.18 ignores s",
    explains: (o) => command(o.request) === 'ms ' && o.memshard.replace(/ s\d+(?=[ \r])/, '') === o.memcached,
  },
  {
    id: 'ma-quiet-create',
    kind: 'version',
    summary: 'a quiet ma that creates its counter (N) answers nothing in 1.6.45; 1.6.18 answers HD',
    explains: (o) => {
      const flags = metaFlags(o.request);
      return command(o.request) === 'ma ' && flags !== null && flags.includes('q') && flags.some((t) => t[0] === 'N') &&
        o.memshard === '' && /^(HD|VA)[ \r]/.test(o.memcached);
    },
  },
  {
    id: 'meta-long-opaque',
    kind: 'memcached-bug',
    summary:
      'an opaque over 32 bytes is refused before the command runs; memcached notices it while writing the reply, ' +
      'after an mg or ma has changed the item (1.6.18 even answers other errors first)',
    skip: (request) => metaFlags(request)?.some((t) => t[0] === 'O' && t.length > 32) ?? false,
  },
  {
    id: 'ma-T-on-longer-number',
    kind: 'memcached-bug',
    summary:
      'ma with T applies the TTL to the counter as stored; memcached applies it to the old copy whenever the number ' +
      'gets longer (or a pipelined read still holds the item), so it is lost',
    skip: (request) => command(request) === 'ma ' && (metaFlags(request)?.some((t) => t[0] === 'T') ?? false),
  },
  {
    id: 'cas-order-across-keys',
    kind: 'memshard-limit',
    summary:
      "ms with I (and C) stores a stale item when C is older than the item's CAS: memshard's CAS values grow per " +
      "shard, so the order of two different keys' CAS values is not memcached's",
    skip: (request) => {
      const flags = metaFlags(request);
      return command(request) === 'ms ' && flags !== null && flags.includes('I') && flags.some((t) => t[0] === 'C');
    },
  },
  {
    id: 'ms-append-vivify',
    kind: 'version',
    summary: 'ms in append or prepend mode with N creates a missing item in 1.6.45; 1.6.18 answers NS',
    skip: (request) => {
      const flags = metaFlags(request);
      return command(request) === 'ms ' && flags !== null && flags.some((t) => t === 'MA' || t === 'MP') && flags.some((t) => t[0] === 'N');
    },
  },
  {
    id: 'binary-unknown-opcode-key',
    kind: 'memcached-bug',
    summary:
      'an unknown binary opcode whose request has a key: memcached answers Unknown command but skips the wrong number ' +
      'of bytes and reads the rest of the body as the next header; memshard skips the whole body',
    skip: unknownBinaryWithKey,
  },
  {
    id: 'incr-sign-scan',
    kind: 'version',
    summary:
      "incr/decr of a counter of 2^63 or more: 1.6.18's safe_strtoull looks for a '-' with strchr, past the value into " +
      'whatever memory follows, and may answer non-numeric; 1.6.45 looks within the number only (memchr)',
    explains: signScanExplains,
    diverges: true,
    // with noreply neither answer shows: the two counters would part silently
    skip: (request) => /^(incr|decr) [^\n]* noreply\r?\n/.test(request),
  },
];

/** The difference that leaves this request out, if any. */
export function skipReason(request: string): string | null {
  return KNOWN_DIFFERENCES.find((d) => d.skip?.(request))?.id ?? null;
}

/** The difference that explains these two replies, if any. */
export function explanation(o: Observed): KnownDifference | null {
  return KNOWN_DIFFERENCES.find((d) => d.explains?.(o)) ?? null;
}
