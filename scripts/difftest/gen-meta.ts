/**
 * Random meta-protocol requests (mg ms md ma mn me), mixed with some classic ones on the same
 * items: random flag sets in random order, every flag's edge arguments, bad and repeated flags.
 */
import { textCase, type Case, type Part } from './case.js';
import { storage, textCommand } from './gen-text.js';
import type { Prng } from './prng.js';
import * as V from './values.js';

/** TTL arguments (T N R): never, past, far ahead, and tokens the 32-bit reader refuses. */
const TTLS = ['-1', '0', '3600', '86400', '2592000', '2592001', '2147483647', '2147483648', '-2147483649', 'abc', '', '1x'];
/** R thresholds: far from every TTL above, so a run never crosses one. */
const RECACHE = ['30', '1800', '7200', '1000000000', '-1', 'x'];
const U64S = ['0', '1', '10', '1000', ...V.EDGE_NUMBERS.filter((n) => /^\d+$/.test(n))];

function opaque(r: Prng): string {
  return `O${r.bytes(r.chance(0.9) ? r.int(10) : 28 + r.int(6), 'abcdefghijklmnopqrstuvwxyz0123456789').toString('latin1')}`;
}

/** Each command's flags, as makers of a flag token (with a random argument where it takes one). */
type Flag = () => Part[];
function table(r: Prng): Record<'mg' | 'ms' | 'md' | 'ma', Flag[]> {
  const tok = (...parts: Part[]) => () => parts;
  const plain = (s: string) => tok(s);
  const ttl = (c: string) => () => [c, r.pick(TTLS)];
  const cas = (c: string) => () => [c, V.casToken(r)];
  const common = [plain('k'), plain('q'), () => [opaque(r)], plain('b')];
  return {
    mg: [...'cfhlstuv'.split('').map(plain), ...common, ttl('T'), ttl('N'), () => ['R', r.pick(RECACHE)], cas('C')],
    ms: [plain('c'), plain('s'), plain('I'), ...common, ttl('T'), ttl('N'), cas('C'),
      () => ['F', V.flags(r)], () => ['M', r.pick(['E', 'A', 'P', 'R', 'S', 's', 'a', 'X', ''])]],
    md: [plain('I'), ...common, ttl('T'), cas('C')],
    ma: [plain('t'), plain('c'), plain('v'), ...common, ttl('T'), ttl('N'), cas('C'),
      () => ['J', r.pick(U64S)], () => ['D', r.chance(0.5) ? r.pick(['1', '2', '100']) : r.pick(U64S)],
      () => ['M', r.pick(['I', '+', 'D', '-', 'i', 'd', 'x', ''])]],
  };
}

const BAD_FLAGS = ['zz', '!', '9', 'P/route', 'Lhint', 'Q', 'a'];

/** E (set the CAS) and x are newer than the 1.6.18 oracle: rare, and left out by the known differences. */
function newerFlag(r: Prng): Part[] {
  if (!r.chance(0.5)) return ['x'];
  return ['E', r.pick([String(2 ** 40 + r.int(1000)), String(2 ** 53 - 1), String(2 ** 53 + 1), '18446744073709551615', '18446744073709551616', '0', 'x'])];
}

/** A random flag set in random order, now and then a repeated, a bad or a newer flag. */
function flagsFor(r: Prng, list: Flag[]): Part[] {
  const n = r.chance(0.15) ? r.int(20) : r.int(6);
  const out: Part[] = [];
  const used = new Set<number>();
  for (let i = 0; i < n; i++) {
    const j = r.int(list.length);
    // repeated flags now and then; otherwise each once
    if (used.has(j) && !r.chance(0.05)) continue;
    used.add(j);
    out.push(' ', ...list[j]!());
  }
  if (r.chance(0.03)) out.push(' ', r.pick(BAD_FLAGS));
  if (r.chance(0.01)) out.push(' ', ...newerFlag(r));
  return out;
}

/** The key as sent: plain, or base64 when the flags carry `b` (sometimes invalid base64). */
function keyFor(r: Prng, flags: Part[]): string {
  const k = V.key(r);
  if (!flags.some((f) => f === 'b')) return k;
  if (r.chance(0.05)) return r.pick(['!!!!', 'abc', '====', 'a'.repeat(251)]);
  return Buffer.from(k, 'latin1').toString('base64');
}

export function metaCommand(r: Prng): Case {
  const t = table(r);
  const x = r.next() * 100;
  if (x < 10) return r.chance(0.5) ? storage(r, 'set', false) : textCommand(r);
  if (x < 11) return textCase(['mn\r\n']);
  if (x < 13) return textCase(['me ', V.key(r), r.chance(0.2) ? ' b' : '', '\r\n']);
  if (x < 40) {
    const flags = flagsFor(r, t.ms);
    const k = keyFor(r, flags);
    const value = V.value(r);
    let length = String(value.length);
    // memcached runs the block of an ms whose key is too long (other ms errors skip it)
    let harmless = k.length > 250;
    if (r.chance(0.03)) {
      length = r.pick(['-1', 'abc', '2147483647']);
      harmless = true;
    }
    const block = harmless ? V.harmlessBlock(r) : value;
    if (/^\d+$/.test(length)) length = String(block.length);
    return textCase(['ms ', k, ' ', length, ...flags, '\r\n', block, !harmless && r.chance(0.02) ? 'XY' : '\r\n'], harmless);
  }
  const name = x < 65 ? 'mg' : x < 80 ? 'md' : 'ma';
  const flags = flagsFor(r, t[name]);
  return textCase([name, ' ', keyFor(r, flags), ...flags, '\r\n']);
}
