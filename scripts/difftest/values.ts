/**
 * The values generators draw from: a small key space (so that commands meet the same items) and
 * the edge numbers of memcached's parsers. Exptimes are only ones whose outcome cannot depend on
 * when a command runs: never, already past, or far enough ahead that no run reaches them.
 */
import type { Part } from './case.js';
import type { Prng } from './prng.js';

/** 16 plain keys, plus keys of odd bytes and the 250 / 251-byte lengths. */
export const PLAIN_KEYS = Array.from({ length: 16 }, (_, i) => `k${i}`);
export const ODD_KEYS = ['k\x01\x7f', 'k\xff\xfe', '\x1b[0m', 'k\r', 'a'.repeat(250)];
export const TOO_LONG_KEY = 'b'.repeat(251);

export function key(r: Prng): string {
  const x = r.next();
  if (x < 0.9) return r.pick(PLAIN_KEYS);
  if (x < 0.985) return r.pick(ODD_KEYS);
  return TOO_LONG_KEY;
}

const P = (e: number) => (1n << BigInt(e)).toString();
const M = (e: number, d: number) => ((1n << BigInt(e)) + BigInt(d)).toString();

/** Numbers near 2^32, 2^53, 2^63, 2^64, and what strtoul/strtoull do with signs and junk. */
export const EDGE_NUMBERS = [
  '0', '1', '-1', '-0', '+5', '007', M(31, -1), P(31), M(32, -1), P(32), M(32, 1), M(53, -1), P(53), M(53, 1),
  M(63, -1), P(63), M(64, -1), P(64), '99999999999999999999', '-18446744073709551615', '5\t', 'abc', '12x',
];

/** Flags every parser reads. */
export const SAFE_FLAGS = ['0', '1', '42', '65535', M(32, -1)];

export function flags(r: Prng): string {
  return r.chance(0.85) ? r.pick(SAFE_FLAGS) : r.pick(EDGE_NUMBERS);
}

/** Exptimes that read as: never, already expired, or more than an hour ahead (any parser). */
const EXPTIME_TOKENS = [
  '0', '-1', '-2147483648', '2592000', '2592001', '3600', '86400', '2147483647', M(32, -1), P(32), M(32, 86400),
  P(53), M(63, -1),
];

/** A safe exptime (mostly 0), sometimes absolute: an hour ahead or ten seconds ago. */
export function exptime(r: Prng): Part {
  const x = r.next();
  if (x < 0.6) return '0';
  if (x < 0.9) return r.pick(EXPTIME_TOKENS);
  return { unixIn: r.pick([3600, -10]) };
}

/** An exptime token that is not a number memcached reads (or out of range). */
export const BAD_EXPTIMES = ['abc', P(63), '99999999999999999999', '1x'];

/** Stored values: counters (for incr/decr) and their edges, random bytes, and blocks that are commands. */
const COUNTERS = [
  '0', '1', '9', '10', '99', '100', '4294967295', '4294967296', M(53, -1), M(53, 0), M(53, 1), '9999999999999999',
  M(63, -1), M(64, -1), P(64), ' 12', '12 ', '-1', '-0', '+5', '007', '1 2x', '12\0a', '1\r\n2',
];
export const COMMAND_BLOCKS = ['delete k1', 'get k2\r\nset k3 0 0 1\r\nx', 'flush_all', 'mn', 'incr k1 1', 'VALUE k1 0 1'];

export function value(r: Prng): Buffer {
  const x = r.next();
  if (x < 0.4) return Buffer.from(r.pick(COUNTERS), 'latin1');
  if (x < 0.6) return r.bytes(r.int(12), 'abcdefghijklmnopqrstuvwxyz0123456789');
  if (x < 0.75) return r.bytes(r.int(40));
  if (x < 0.85) return Buffer.from(r.pick(COMMAND_BLOCKS), 'latin1');
  if (x < 0.9) return Buffer.alloc(0);
  return r.bytes(100 + r.int(3000), 'xyz\r\n ');
}

/**
 * A block memcached runs as commands after refusing the line: one line of lowercase letters
 * that is no command, so it only answers ERROR (and never closes: far below 2048 bytes).
 */
export function harmlessBlock(r: Prng): Buffer {
  return Buffer.concat([Buffer.from('zq', 'latin1'), r.bytes(r.int(20), 'abcdefghijklmnopqrstuvwxyz')]);
}

/** Deltas for incr/decr: mostly small, then every edge. */
export function delta(r: Prng): string {
  return r.chance(0.7) ? r.pick(['0', '1', '2', '10', '1000']) : r.pick(EDGE_NUMBERS);
}

/** A CAS for a request: a recent one this server returned (likely to match), or a literal. */
export function casToken(r: Prng): Part {
  if (r.chance(0.75)) return { cas: r.int(3) };
  return r.pick(['0', M(32, 7), M(53, 1), M(63, 0), M(64, -1), P(64), 'abc', '-1']);
}
