/** Random classic text-protocol requests (one per case), with the edges of every argument. */
import { textCase, type Case, type Part } from './case.js';
import type { Prng } from './prng.js';
import * as V from './values.js';

const STORES = ['set', 'add', 'replace', 'append', 'prepend'] as const;
const GETS = ['get', 'gets'] as const;

/**
 * A storage line and its block. When an argument may be refused (an edge number, a bad token, a
 * 251-byte key), the block is a harmless one, since memcached then runs it as commands.
 */
export function storage(r: Prng, command: string, withCas: boolean): Case {
  const k = V.key(r);
  const flags = V.flags(r);
  let exptime = V.exptime(r);
  let harmless = k === V.TOO_LONG_KEY || !V.SAFE_FLAGS.includes(flags);
  let length: string | null = null; // null: the block's length, as it is
  let value = V.value(r);
  const x = r.next();
  if (x < 0.04) {
    // lengths memcached refuses (the block is then read as commands by both)
    length = r.pick(['-1', 'abc', '2147483646', '2147483647', '-2147483648', '99999999999999999999']);
    harmless = true;
  } else if (x < 0.003 + 0.04) {
    // around -I (1 MB): the largest item memcached takes, give or take its header
    value = r.bytes(1048576 - 80 + r.int(40), 'abc');
  } else if (x < 0.06) {
    exptime = r.pick(V.BAD_EXPTIMES);
    harmless = true;
  }
  const cas: Part[] = withCas ? [' ', V.casToken(r)] : [];
  if (withCas && typeof cas[1] === 'string') harmless = true; // a literal CAS may be a bad token
  const tail = r.chance(0.1) ? ' noreply' : '';
  const extra = r.chance(0.02) ? ' extra' : '';
  if (extra !== '') harmless = true;
  const block = harmless ? V.harmlessBlock(r) : value;
  // lengths strtol reads as the block's: with a sign, zeros, or past 2^32 (truncated to int)
  if (length === null) {
    const n = block.length;
    length = r.chance(0.95) ? String(n) : r.pick([`+${n}`, `00${n}`, `${2 ** 32 + n}`, `${n}\t`]);
  }
  // a bad data chunk (not after a harmless block: memcached would run XY as part of the next line)
  const end = !harmless && r.chance(0.02) ? 'XY' : '\r\n';
  return textCase([command, ' ', k, ' ', flags, ' ', exptime, ' ', length, ...cas, tail, extra, '\r\n', block, end], harmless);
}

function multiGet(r: Prng): Case {
  const command = r.chance(0.7) ? r.pick(GETS) : r.pick(['gat', 'gats']);
  const parts: Part[] = [command];
  if (command.startsWith('gat')) parts.push(' ', r.chance(0.1) ? r.pick(V.BAD_EXPTIMES) : V.exptime(r));
  const n = r.chance(0.8) ? 1 + r.int(3) : 1 + r.int(40);
  // under memcached's 2048-byte line limit: a longer line cut by the network would close the connection
  for (let i = 0, length = 30; i < n; i++) {
    const k = V.key(r);
    length += k.length + 1;
    if (length > 2000) break;
    parts.push(' ', k);
  }
  return textCase([...parts, '\r\n']);
}

function noreply(r: Prng): string {
  return r.chance(0.1) ? ' noreply' : '';
}

/** Lines that are wrong as a whole: unknown commands, missing and extra arguments. */
const MALFORMED = [
  'foo\r\n', 'g\r\n', 'get\r\n', 'gets\r\n', 'gat\r\n', 'gat 0\r\n', 'incr\r\n', 'incr k1\r\n', 'incr k1 1 noreply x\r\n',
  'decr k1 1 2 3\r\n', 'touch k1\r\n', 'touch k1 0 0 0\r\n', 'delete\r\n', 'delete k1 1\r\n', 'delete k1 0 0\r\n',
  'delete k1 noreply x\r\n', 'delete k1 0 noreply\r\n', 'delete k1 0\r\n', 'flush_all 0 0 0\r\n', 'flush_all abc\r\n',
  'flush_all -1\r\n', 'flush_all noreply\r\n', 'flush_all 0 noreply\r\n', 'verbosity\r\n', 'verbosity abc\r\n',
  'verbosity 1 2 3\r\n', 'verbosity 5\r\n', 'verbosity 1 noreply\r\n', ' get k1\r\n', 'get  k1   k2 \r\n', '\r\n',
  'GET k1\r\n', 'set k1\r\n', 'cas k1 0 0 1\r\n', 'incr k1 1\n', 'get k1\n',
];

export function textCommand(r: Prng): Case {
  const x = r.next() * 100;
  if (x < 30) return storage(r, r.pick(STORES), false);
  if (x < 37) return storage(r, 'cas', true);
  if (x < 60) return multiGet(r);
  if (x < 65) return textCase(['touch ', V.key(r), ' ', r.chance(0.05) ? r.pick(V.BAD_EXPTIMES) : V.exptime(r), noreply(r), '\r\n']);
  if (x < 80) return textCase([r.pick(['incr', 'decr']), ' ', V.key(r), ' ', V.delta(r), noreply(r), '\r\n']);
  if (x < 90) return textCase(['delete ', V.key(r), noreply(r), '\r\n']);
  if (x < 90.4) return textCase(['flush_all', noreply(r), '\r\n']);
  if (x < 91) return textCase(['verbosity ', r.pick(['0', '1', '2']), noreply(r), '\r\n']);
  return textCase([r.pick(MALFORMED)]);
}
