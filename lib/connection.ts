/**
 * One client connection on the front end: input buffering, text parsing, the ordered reply queue
 * (pipelined replies leave in request order even when shards answer out of order), write
 * coalescing and backpressure.
 */
import type { Socket } from 'node:net';
import { Op, type KeyCommand, type LocalCommand } from './protocol/command.js';
import { Parsed, TextParser } from './protocol/text.js';
import type { ReplySink } from './shards/shard-set.js';
import type { Clock } from './store/store.js';

/** What the connection needs from the server. */
export interface ConnectionHost {
  readonly maxValue: number;
  readonly shardCount: number;
  shardOf(key: Uint8Array): number;
  /**
   * Run a key command now on the front end's thread if `inline` and the shard is free (then
   * return true, its reply already filled), else queue it for the shard.
   */
  dispatch(shard: number, cmd: KeyCommand, sink: ReplySink, slot: number, inline: boolean): boolean;
  /**
   * Answer a front-end command for reply slot `slot`: a reply, null to close the connection after
   * the earlier replies, or undefined when the host fills the slot itself later.
   */
  local(cmd: LocalCommand, conn: Connection, slot: number): string | null | undefined;
  /** Record a command's latency (seconds) under its metrics name (see `metricsName`). */
  observeLatency(command: string, seconds: number): void;
  countRead(bytes: number): void;
  countWritten(bytes: number): void;
  readonly verbosity: number;
  readonly clock: Clock;
  log(level: number, msg: string): void;
}

/** Stop reading from a client that has this much unsent output or this many unanswered requests. */
const HIGH_WATER_BYTES = 4 * 1024 * 1024;
const MAX_PENDING_REPLIES = 16 * 1024;

/** Marks the reply slot after which the connection closes (quit). */
const CLOSE_MARK = Buffer.alloc(0);

export class Connection implements ReplySink {
  private readonly parser: TextParser;
  /** Unparsed input: a leftover buffer plus chunks gathered until `need` bytes are there. */
  private readonly pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes of replies filled but not yet handed to the socket. */
  private unsentBytes = 0;
  private need = 0;
  private swallow = 0;
  /** Reply slots; slot ids are absolute, `base` is the id of replies[0]. */
  private replies: Array<Buffer | undefined> = [];
  private base = 0;
  /**
   * This connection's commands waiting in shard queues: slot -> shard (ALL_SHARDS for flush_all)
   * with when the command was parsed and its name for the latency metric,
   * and their count per shard. A command may run inline only on a shard where none of this
   * connection's earlier commands still wait, so a connection's commands never overtake each
   * other; other connections' queued commands are concurrent with it and may be overtaken.
   */
  private readonly queuedSlots = new Map<number, { shard: number; started: number; command: string }>();
  private readonly queuedOn: Int32Array;
  private closing = false;
  private paused = false;
  readonly id: number;
  /** Server time of the last request (seconds), for `stats conns`. */
  lastCommandAt: number;
  state = 'conn_read';

  constructor(
    readonly socket: Socket,
    private readonly host: ConnectionHost,
    id: number,
  ) {
    this.id = id;
    this.lastCommandAt = host.clock.now();
    this.parser = new TextParser(host.maxValue);
    this.queuedOn = new Int32Array(host.shardCount);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.maybeResume());
  }

  private onData(chunk: Buffer): void {
    this.host.countRead(chunk.length);
    if (this.closing) return;
    if (this.swallow > 0) {
      const skip = Math.min(this.swallow, chunk.length);
      this.swallow -= skip;
      chunk = chunk.subarray(skip);
      if (chunk.length === 0) return;
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.lastCommandAt = this.host.clock.now();
    this.process();
  }

  /** Run the buffered requests, as far as the client keeps reading what we answer. */
  private process(): void {
    // a large value arrives in many chunks: join them once, when all of it is here
    if (this.pendingBytes === 0 || this.pendingBytes < this.need || this.paused) return;
    const buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending.length = 0;
    this.pendingBytes = 0;
    this.need = 0;
    const pos = this.consume(buf);
    if (pos < buf.length && !this.closing) {
      this.pending.push(buf.subarray(pos));
      this.pendingBytes = buf.length - pos;
    }
    this.flushReplies();
  }

  /** Parse and dispatch every complete request in buf; returns the offset of the unparsed rest. */
  private consume(buf: Buffer): number {
    const parser = this.parser;
    const host = this.host;
    const end = buf.length;
    let pos = 0;
    while (pos < end && !this.closing) {
      // like memcached, stop taking requests from a client that does not read its replies
      if (this.outputFull()) {
        this.pause();
        return pos;
      }
      if (this.swallow > 0) {
        const skip = Math.min(this.swallow, end - pos);
        this.swallow -= skip;
        pos += skip;
        continue;
      }
      const started = performance.now();
      const kind = parser.parse(buf, pos, end);
      if (kind === Parsed.Incomplete) {
        this.need = parser.need;
        return pos;
      }
      if (host.verbosity >= 2) host.log(2, `<${this.id} ${buf.toString('latin1', pos, Math.min(parser.lineEnd, pos + 300))}`);
      switch (kind) {
        case Parsed.Key: {
          const cmd = parser.keyCommand!;
          if (cmd.op === Op.SetTooLarge) this.swallow = parser.swallow;
          this.dispatch(cmd, this.reserve(), started, OP_NAMES[cmd.op]!);
          break;
        }
        case Parsed.MultiGet: {
          const keys = parser.keys;
          if (keys.length === 0) {
            this.fill(this.reserve(), END);
            break;
          }
          for (let i = 0; i < keys.length; i++) {
            const cmd: KeyCommand = {
              op: parser.getOp,
              key: keys[i]!,
              flags: 0,
              exptime: parser.exptime,
              cas: 0,
              delta: 0n,
              value: null,
              noreply: false,
              end: i === keys.length - 1,
            };
            // the whole get is timed by its last key, whose reply carries END
            this.dispatch(cmd, this.reserve(), started, cmd.end ? OP_NAMES[cmd.op]! : '');
          }
          break;
        }
        case Parsed.Local: {
          const local = parser.local!;
          const slot = this.reserve();
          if (local.kind === 'flush_all') this.queued(slot, ALL_SHARDS, started, local.kind);
          const reply = host.local(local, this, slot);
          if (reply !== undefined) {
            this.fill(slot, reply === null ? CLOSE_MARK : Buffer.from(reply, 'latin1'));
            host.observeLatency(local.kind, (performance.now() - started) / 1000);
          }
          break;
        }
        case Parsed.Reply:
          if (parser.reply !== '') this.fill(this.reserve(), Buffer.from(parser.reply, 'latin1'));
          this.swallow = parser.swallow;
          break;
        case Parsed.Close:
          host.log(2, `<${this.id} protocol violation, closing`);
          this.closeAfterReplies();
          return end;
      }
      pos = parser.next;
    }
    return Math.min(pos, end);
  }

  /** Run or queue a key command; `command` names it for the latency metric ('' = not timed). */
  private dispatch(cmd: KeyCommand, slot: number, started: number, command: string): void {
    const shard = this.host.shardOf(cmd.key);
    const inline = this.queuedOn[shard] === 0;
    if (!this.host.dispatch(shard, cmd, this, slot, inline)) this.queued(slot, shard, started, command);
    else if (command !== '') this.host.observeLatency(command, (performance.now() - started) / 1000);
  }

  private queued(slot: number, shard: number, started: number, command: string): void {
    this.queuedSlots.set(slot, { shard, started, command });
    if (shard === ALL_SHARDS) for (let i = 0; i < this.queuedOn.length; i++) this.queuedOn[i]!++;
    else this.queuedOn[shard]!++;
  }

  private reserve(): number {
    this.replies.push(undefined);
    return this.base + this.replies.length - 1;
  }

  private outputFull(): boolean {
    return this.replies.length > MAX_PENDING_REPLIES || this.unsentBytes + this.socket.writableLength > HIGH_WATER_BYTES;
  }

  fill(slot: number, reply: Buffer): void {
    this.replies[slot - this.base] = reply;
    this.unsentBytes += reply.length;
    if (this.queuedSlots.size === 0) return;
    const queued = this.queuedSlots.get(slot);
    if (queued === undefined) return;
    this.queuedSlots.delete(slot);
    if (queued.command !== '') this.host.observeLatency(queued.command, (performance.now() - queued.started) / 1000);
    const shard = queued.shard;
    if (shard === ALL_SHARDS) for (let i = 0; i < this.queuedOn.length; i++) this.queuedOn[i]!--;
    else this.queuedOn[shard]!--;
  }

  /** Write the ready prefix of the reply queue as one socket write. */
  flushReplies(): void {
    const replies = this.replies;
    let n = 0;
    let bytes = 0;
    let close = false;
    while (n < replies.length) {
      const r = replies[n];
      if (r === undefined) break;
      n++;
      if (r === CLOSE_MARK) {
        close = true;
        break;
      }
      bytes += r.length;
    }
    if (n === 0) return;
    let ready: Buffer[];
    if (n === replies.length) {
      ready = replies as Buffer[];
      this.replies = [];
    } else {
      ready = replies.splice(0, n) as Buffer[];
    }
    this.base += n;
    this.unsentBytes -= bytes;
    if (close) ready.pop();
    if (bytes > 0 && !this.socket.destroyed) {
      const out = ready.length === 1 ? ready[0]! : Buffer.concat(ready, bytes);
      this.host.countWritten(bytes);
      this.socket.write(out);
    }
    if (close) {
      this.closing = true;
      this.socket.end();
      return;
    }
    this.maybeResume();
  }

  /** Close once every earlier reply has been written. */
  closeAfterReplies(): void {
    this.fill(this.reserve(), CLOSE_MARK);
    this.flushReplies();
  }

  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.state = 'conn_mwrite';
    this.socket.pause();
  }

  /** Once the client has read enough, take its requests again: the buffered ones first. */
  private maybeResume(): void {
    if (!this.paused || this.closing || this.outputFull()) return;
    this.paused = false;
    this.state = 'conn_read';
    this.process();
    if (!this.paused) this.socket.resume();
  }
}

const END = Buffer.from('END\r\n');

/** Names of shard operations in metrics (memcached's command names). */
const OP_NAMES: Record<number, string> = {
  [Op.Get]: 'get', [Op.Gets]: 'gets', [Op.Gat]: 'gat', [Op.Gats]: 'gats', [Op.Set]: 'set', [Op.Add]: 'add',
  [Op.Replace]: 'replace', [Op.Append]: 'append', [Op.Prepend]: 'prepend', [Op.Cas]: 'cas', [Op.Delete]: 'delete',
  [Op.Incr]: 'incr', [Op.Decr]: 'decr', [Op.Touch]: 'touch', [Op.SetTooLarge]: 'set',
};
const ALL_SHARDS = -1;
