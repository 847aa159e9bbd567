/**
 * The protocol-neutral command: what every codec parses into and what the router and the shard
 * workers execute. Keys and values are views into the connection's input buffer until they are
 * copied, once, into a shard batch.
 */
import type { MetaRequest } from './meta.js';

/** memcached's longest key, in every protocol. */
export const KEY_MAX_LENGTH = 250;

/** Operations executed by a shard (they travel in batches, see lib/shards/batch.ts). */
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
  /** Flush every item of the shard (sent to all shards). */
  FlushAll: 15,
  /** A set whose value was over -I: the value was swallowed, the old item must go (memcached does this). */
  SetTooLarge: 16,
  /** `stats reset` (sent to all shards). */
  ResetStats: 17,
  /** Does nothing: its reply tells that the shard has executed everything queued before it. */
  Barrier: 18,
  /** Fault injection (MEMSHARD_FAULT_INJECTION=1 only): the worker exits, as if it crashed. */
  Crash: 19,
  /** Meta commands (their flags travel in `KeyCommand.meta`). */
  MetaGet: 20,
  MetaSet: 21,
  MetaDelete: 22,
  MetaArith: 23,
  MetaDebug: 24,
} as const;
export type ShardOp = (typeof Op)[keyof typeof Op];

/** Request bits carried with a shard op. */
export const ReqFlag = {
  NoReply: 1,
  End: 2,
  /** Answer in the binary protocol (see `BinaryRequest`). */
  Binary: 4,
  /** A meta command: its flag tokens follow the header (see `MetaRequest`). */
  Meta: 8,
} as const;

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

/** A command for one key (or none, for FlushAll) bound for a shard. */
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
  | { kind: 'debug'; args: string[] };
