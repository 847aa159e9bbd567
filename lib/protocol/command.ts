/**
 * The protocol-neutral command: what every codec parses into and what the router and the shard
 * executors run. Keys and values are views into the connection's input buffer.
 */
import type { MetaRequest } from './meta.js';

/** memcached's longest key, in every protocol. */
export const KEY_MAX_LENGTH = 250;

/**
 * The size memcached gives an item (its 48-byte header, 8-byte CAS, key + NUL, value + CRLF, and
 * 4 bytes of client flags unless they are 0: item_make_header), so that -I refuses exactly the
 * values memcached refuses although memshard's items are smaller.
 */
export function memcachedItemSize(nkey: number, vlen: number, flags: number): number {
  return 48 + 8 + nkey + 1 + vlen + 2 + (flags !== 0 ? 4 : 0);
}

/** Operations executed on a shard's store. */
export const Op = {
  Get: 1,
  Gets: 2,
  Gat: 3,
  Gats: 4,
  Set: 5,
  Add: 6,
  Replace: 7,
  Append: 8,
  Prepend: 9,
  Cas: 10,
  Delete: 11,
  Incr: 12,
  Decr: 13,
  Touch: 14,
  /** A set whose value was over -I: the value was swallowed, the old item must go (memcached does this). */
  SetTooLarge: 16,
  /** Meta commands (their flags travel in `KeyCommand.meta`). */
  MetaGet: 20,
  MetaSet: 21,
  MetaDelete: 22,
  MetaArith: 23,
  MetaDebug: 24,
} as const;
export type ShardOp = (typeof Op)[keyof typeof Op];

/** Names of shard operations in metrics and logs (memcached's command names). */
export const OP_NAMES: Record<number, string> = {
  [Op.Get]: 'get', [Op.Gets]: 'gets', [Op.Gat]: 'gat', [Op.Gats]: 'gats', [Op.Set]: 'set', [Op.Add]: 'add',
  [Op.Replace]: 'replace', [Op.Append]: 'append', [Op.Prepend]: 'prepend', [Op.Cas]: 'cas', [Op.Delete]: 'delete',
  [Op.Incr]: 'incr', [Op.Decr]: 'decr', [Op.Touch]: 'touch', [Op.SetTooLarge]: 'set', [Op.MetaGet]: 'mg',
  [Op.MetaSet]: 'ms', [Op.MetaDelete]: 'md', [Op.MetaArith]: 'ma', [Op.MetaDebug]: 'me',
};

/** What a binary-protocol command carries besides the key command. */
export interface BinaryRequest {
  /** The opcode as sent (echoed in the response). */
  opcode: number;
  opaque: number;
  /** Quiet opcode: successes (and get misses) are not answered; errors are. */
  quiet: boolean;
  /** Return the key with the value (GetK, GatK). */
  withKey: boolean;
  /** incr/decr: the value to create on a miss, and whether to create it at all. */
  initial: bigint;
  create: boolean;
  /** Touch answers flags only, no value. */
  touchOnly: boolean;
}

/** A command for one key, run on the key's shard. */
export interface KeyCommand {
  op: ShardOp;
  key: Uint8Array;
  flags: number;
  exptime: number;
  /** CAS to compare (cas) as a JS number; exact below 2^53, larger values never match a stored CAS. */
  cas: number;
  /** incr/decr delta, unsigned 64-bit. */
  delta: bigint;
  value: Uint8Array | null;
  noreply: boolean;
  /** The last key of a get command: END follows its reply. */
  end: boolean;
  /** Set for commands that came in the binary protocol. */
  binary?: BinaryRequest;
  /** Set for meta commands (mg ms md ma me). */
  meta?: MetaRequest;
}

/** Commands the front end answers itself. */
export type LocalCommand =
  | { kind: 'version' }
  | { kind: 'mn' }
  | { kind: 'verbosity'; level: number; noreply: boolean }
  | { kind: 'quit' }
  | { kind: 'shutdown'; mode: 'immediate' | 'graceful' | 'invalid' }
  | { kind: 'stats'; group: string; args: string[] }
  | { kind: 'flush_all'; delay: number; noreply: boolean }
  | { kind: 'debug'; args: string[] }
  | { kind: 'operator'; name: 'slabs' | 'lru' | 'lru_crawler' | 'cache_memlimit'; args: string[] }
  | { kind: 'watch'; args: string[] }
  | { kind: 'refresh_certs' }
  /** ElastiCache's `config get cluster` (Auto Discovery). */
  | { kind: 'config'; args: string[] };
