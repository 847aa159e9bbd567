/**
 * A parsed binary request as the front end's work: the key command it runs on a shard, or the
 * response it gets without one (noop, version, quit, SASL mechanisms). Requests that need the
 * server (flush, SASL login, stats, config get) are left to the connection. Also the front end's
 * own binary responses (errors, stats packets).
 */
import { BinOp, BinStatus, writeError, writeResponse, type BinaryParser } from './binary.js';
import { Op, OP_NAMES, type BinaryRequest, type KeyCommand } from './command.js';
import { ReplyWriter } from '../shards/reply-writer.js';
import { MEMCACHED_VERSION } from '../version.js';

/** Binary commands allowed before a SASL login (memcached's authenticated()). */
export const OPEN_BEFORE_AUTH = new Set<number>([BinOp.SaslListMechs, BinOp.SaslAuth, BinOp.SaslStep, BinOp.Version]);

/** A quiet command's answer: nothing. */
export const NO_REPLY = Buffer.alloc(0);

const BINARY_STORE_OPS: Record<number, KeyCommand['op']> = {
  [BinOp.Set]: Op.Set, [BinOp.Add]: Op.Add, [BinOp.Replace]: Op.Replace, [BinOp.Append]: Op.Append, [BinOp.Prepend]: Op.Prepend,
};

/** Builds the front end's own binary responses (copied out by takeBytes). */
const binaryOut = new ReplyWriter();

export function binaryReply(opcode: number, opaque: number, value: Uint8Array | null): Buffer {
  writeResponse(binaryOut, opcode, BinStatus.Ok, opaque, 0, null, null, value);
  return binaryOut.takeBytes();
}

export function binaryError(opcode: number, status: number, opaque: number): Buffer {
  writeError(binaryOut, opcode, status, opaque);
  return binaryOut.takeBytes();
}

/** One packet per stat (key = name, value = value), then an empty one; unknown group: not found. */
export function binaryStats(opcode: number, opaque: number, rows: Array<[string, string | number]> | null): Buffer {
  if (rows === null) return binaryError(opcode, BinStatus.NotFound, opaque);
  for (const [name, value] of rows) {
    writeResponse(binaryOut, opcode, BinStatus.Ok, opaque, 0, null, Buffer.from(name, 'latin1'), Buffer.from(String(value), 'latin1'));
  }
  writeResponse(binaryOut, opcode, BinStatus.Ok, opaque, 0, null, null, null);
  return binaryOut.takeBytes();
}

/** The key command of request bp, with the binary details its reply needs. */
export function binaryKeyCommand(bp: BinaryParser, op: KeyCommand['op'], binary: Partial<BinaryRequest> = {}): KeyCommand {
  return {
    op,
    key: bp.key,
    flags: 0,
    exptime: 0,
    cas: bp.cas,
    delta: 0n,
    value: null,
    noreply: false,
    end: false,
    binary: { opcode: bp.opcode, opaque: bp.opaque, quiet: bp.quiet, withKey: false, initial: 0n, create: false, touchOnly: false, ...binary },
  };
}

/** What the connection does with a well-formed request. */
export type BinaryAction =
  /** run cmd on its key's shard; `name` is memcached's command name, for the latency metric */
  | { cmd: KeyCommand; name: string }
  /** answer reply, then close if `close` */
  | { reply: Buffer; close: boolean };

/** The action for request bp; null for the requests that need the server (see the top). */
export function binaryAction(bp: BinaryParser): BinaryAction | null {
  const ext = bp.extras;
  switch (bp.command) {
    case BinOp.Get:
    case BinOp.GetK:
      return { cmd: binaryKeyCommand(bp, Op.Get, { withKey: bp.command === BinOp.GetK }), name: 'get' };
    case BinOp.Touch:
    case BinOp.Gat:
    case BinOp.GatK: {
      const cmd = binaryKeyCommand(bp, Op.Gat, { withKey: bp.command === BinOp.GatK, touchOnly: bp.command === BinOp.Touch });
      cmd.exptime = ext.readUInt32BE(0); // unsigned, as memcached reads binary expirations
      return { cmd, name: bp.command === BinOp.Touch ? 'touch' : 'gat' };
    }
    case BinOp.Set:
    case BinOp.Add:
    case BinOp.Replace:
    case BinOp.Append:
    case BinOp.Prepend: {
      const op = BINARY_STORE_OPS[bp.command]!;
      const cmd = binaryKeyCommand(bp, op);
      if (ext.length === 8) {
        cmd.flags = ext.readUInt32BE(0);
        cmd.exptime = ext.readUInt32BE(4);
      }
      cmd.value = bp.value;
      return { cmd, name: OP_NAMES[op]! };
    }
    case BinOp.Delete:
      return { cmd: binaryKeyCommand(bp, Op.Delete), name: 'delete' };
    case BinOp.Increment:
    case BinOp.Decrement: {
      const expiration = ext.readUInt32BE(16);
      const cmd = binaryKeyCommand(bp, bp.command === BinOp.Increment ? Op.Incr : Op.Decr, {
        initial: ext.readBigUInt64BE(8),
        create: expiration !== 0xffffffff,
      });
      cmd.delta = ext.readBigUInt64BE(0);
      cmd.exptime = expiration;
      return { cmd, name: bp.command === BinOp.Increment ? 'incr' : 'decr' };
    }
    case BinOp.Noop:
      return { reply: binaryReply(bp.opcode, bp.opaque, null), close: false };
    case BinOp.Version:
      return { reply: binaryReply(bp.opcode, bp.opaque, Buffer.from(MEMCACHED_VERSION, 'latin1')), close: false };
    case BinOp.Quit:
      return { reply: bp.quiet ? NO_REPLY : binaryReply(bp.opcode, bp.opaque, null), close: true };
    case BinOp.SaslListMechs:
      return { reply: binaryReply(bp.opcode, bp.opaque, Buffer.from('PLAIN', 'latin1')), close: false };
    default:
      return null;
  }
}
