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
  memshard: string;
  memcached: string;
}

export interface KnownDifference {
  id: string;
  kind: DifferenceKind;
  summary: string;
  /** Requests the tester does not send: the two caches would no longer hold the same items. */
  skip?(request: string): boolean;
  /** Replies that differ only in this way. */
  explains?(o: Observed): boolean;
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
    summary: "E (set the CAS) and md's x (drop the value) came after 1.6.18, which answers CLIENT_ERROR invalid flag",
    skip: (request) => {
      const flags = metaFlags(request);
      return flags !== null && flags.some((t) => t[0] === 'E' || (request.startsWith('md') && t[0] === 'x'));
    },
  },
];

/** The difference that leaves this request out, if any. */
export function skipReason(request: string): string | null {
  return KNOWN_DIFFERENCES.find((d) => d.skip?.(request))?.id ?? null;
}

/** The difference that explains these two replies, if any. */
export function explanation(o: Observed): string | null {
  return KNOWN_DIFFERENCES.find((d) => d.explains?.(o))?.id ?? null;
}
