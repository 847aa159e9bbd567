/**
 * One client connection, served by the thread that accepted it: input buffering, parsing, running
 * each command at once on its key's shard, the ordered reply queue (a `stats` reply may come
 * later than the replies after it are ready; they still leave in request order), write
 * coalescing and backpressure.
 */
import type { Socket } from 'node:net';
import { type Credentials, parseAsciiLogin, parsePlain } from './auth.js';
import { BinaryParser, BinOp, BinParsed, BinStatus, REQUEST_MAGIC } from './protocol/binary.js';
import { binaryAction, binaryError, binaryKeyCommand, binaryReply, binaryStats, NO_REPLY, OPEN_BEFORE_AUTH } from './protocol/binary-request.js';
import { Op, OP_NAMES, type KeyCommand, type LocalCommand } from './protocol/command.js';
import { Parsed, TextParser } from './protocol/text.js';
import { readChunks } from './threads/socket-reads.js';
import { RequestStage, shouldStage } from './threads/request-stage.js';
import type { ProtocolChoice } from './config.js';
import type { Protocol } from './threads/thread-stats.js';
import type { Clock } from './store/store.js';

/** What the connection needs from the server. */
export interface ConnectionHost {
  readonly maxValue: number;
  /** -R: requests a connection runs in one turn before the thread serves the others. */
  readonly reqsPerEvent: number;
  countYield(): void;
  /** Server-wide KB of unsent replies (-o read_buf_mem_limit): add to it, and whether it is spent. */
  holdReplies(deltaKb: number): void;
  replyBudgetSpent(): boolean;
  countReplyBudgetWait(): void;
  shardOf(key: Uint8Array): number;
  /** Run a key command on its shard now (for client `client`, a connection id); its reply bytes. */
  execute(shard: number, cmd: KeyCommand, client?: number): Buffer;
  /**
   * Answer a command that is not for one key, for reply slot `slot`: a reply, null to close the
   * connection after the earlier replies, or undefined when the host fills the slot itself later.
   */
  local(cmd: LocalCommand, conn: Connection, slot: number): string | null | undefined;
  /** SASL PLAIN users (-S: binary only) and text-protocol users (-Y: text only); null = open. */
  readonly sasl: Credentials | null;
  readonly asciiAuth: Credentials | null;
  countAuth(ok: boolean): void;
  /** false when flush_all is off (-F). */
  flushAll(delay: number): boolean;
  /** -B: the protocols connections may speak. */
  readonly protocol: ProtocolChoice;
  /** The rows of a stats group (null: unknown group), now or later. */
  statsRows(group: string, then: (rows: Array<[string, string | number]> | null) => void): void;
  /** Auto Discovery's payload (`<version>\n<nodes>\n`); null without a cluster. */
  clusterConfig(): string | null;
  countConfigGet(): void;
  /** Record a command's latency (seconds) under its name (memcached's command name, e.g. 'get'). */
  observeLatency(protocol: Protocol, command: string, seconds: number): void;
  countCommand(): void;
  countRead(bytes: number): void;
  countWritten(bytes: number): void;
  readonly verbosity: number;
  readonly clock: Clock;
  log(level: number, msg: string): void;
}

/** Stop reading from a client that has this much unsent output or this many unanswered requests. */
const HIGH_WATER_BYTES = 4 * 1024 * 1024;
const MAX_PENDING_REPLIES = 16 * 1024;
/** Under a spent server-wide reply budget a connection still holds this much (so none starves). */
const BUDGET_FLOOR_BYTES = 64 * 1024;
/**
 * A connection also gives way once it has taken this much input in a turn: -R counts requests,
 * and 20 sets of large values would hold the thread for milliseconds.
 */
const TURN_BYTES = 256 * 1024;
/** Stop reading from a client whose unparsed requests (beyond the value being read) pass this. */
const MAX_UNPARSED_BYTES = 1024 * 1024;
/** Ready replies of this many bytes go out in one writev instead of being joined first. */
const WRITEV_BYTES = 32 * 1024;

/** Marks the reply slot after which the connection closes (quit). */
const CLOSE_MARK = Buffer.alloc(0);

export class Connection {
  private readonly parser: TextParser;
  /** Set when the connection's first byte is the binary protocol's request magic. */
  private binaryParser: BinaryParser | null = null;
  private protocolKnown = false;
  /** Logged in, when the server requires it (-S or -Y). */
  private authenticated = false;
  /** Unparsed input: a leftover buffer plus chunks gathered until `need` bytes are there. */
  private readonly pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes of replies filled but not yet handed to the socket. */
  private unsentBytes = 0;
  private need = 0;
  /** The whole length of the request at the front of `pending` when its parser knows it, else 0. */
  private frontLength = 0;
  /** A large request being gathered in one buffer (see threads/request-stage.ts). */
  private stage: RequestStage | null = null;
  private swallow = 0;
  /** Reply slots; slot ids are absolute, `base` is the id of replies[0]. */
  private replies: Array<Buffer | undefined> = [];
  private base = 0;
  private closing = false;
  private paused = false;
  /** A multi-get that waits for the client to read the first part of its reply. */
  private multiGet: PendingMultiGet | null = null;
  /** Gave way after -R requests: the rest runs on the next turn of the event loop. */
  private yielded = false;
  /** Requests run and bytes taken in this turn, for -R and TURN_BYTES. */
  private turnRequests = 0;
  private turnBytes = 0;
  /** Not reading: the unparsed input waits for its turn (see MAX_UNPARSED_BYTES). */
  private inputHeld = false;
  /** The client closed its side: close once everything it asked is answered. */
  private peerEnded = false;
  /** What this connection counts in the server-wide reply budget, KB. */
  private heldKb = 0;
  /** Held back by the spent server-wide budget (counted once per wait in response_obj_oom). */
  private waitingForBudget = false;
  readonly id: number;
  /** Server time of the last request (seconds), for `stats conns`. */
  lastCommandAt: number;
  state = 'conn_read';
  /** A `watch` connection: it reads no more requests, it only receives log lines. */
  private watching = false;
  /** The client certificate's subject, for a mutual-TLS connection (`stats conns`). */
  peerSubject: string | null = null;
  /** Why the connection closed, as memcached's conn_close watch line says. */
  closeReason: 'normal' | 'error' | 'idle_timeout' | 'shutdown' = 'normal';

  /**
   * `readBuffer`: the thread's buffer for reads of plain sockets (see threads/socket-reads.ts), or
   * null for a socket whose chunks are its own (TLS).
   */
  constructor(
    readonly socket: Socket,
    private readonly host: ConnectionHost,
    id: number,
    readBuffer: Buffer | null,
  ) {
    this.id = id;
    this.lastCommandAt = host.clock.now();
    this.parser = new TextParser(host.maxValue);
    socket.setNoDelay(true);
    readChunks(socket, readBuffer, (chunk, inShared) => this.onData(chunk, inShared), () => this.stage?.readTarget ?? null);
    socket.on('drain', () => {
      this.recountHeld();
      this.maybeResume();
    });
    socket.on('close', () => {
      this.host.holdReplies(-this.heldKb);
      this.heldKb = 0;
    });
    // The client closed its side (a read of 0 bytes): the requests it sent before are still
    // answered, then the connection closes, as memcached does. Node would end the socket's write
    // side at once, before the requests waiting for a later turn (-R) have run.
    socket.allowHalfOpen = true;
    socket.on('end', () => {
      this.peerEnded = true;
      if (this.allAnswered()) this.closeAnswered();
    });
  }

  /** No request waits for its turn or its reply (a request cut by the client's close is dropped, as memcached drops it). */
  private allAnswered(): boolean {
    return this.replies.length === 0 && this.multiGet === null && !this.yielded && !this.inputHeld && !this.paused;
  }

  /**
   * After the client's end, with every request answered: close at once when every reply is
   * written (no shutdown round first), else once they are; TLS ends with its close_notify.
   */
  private closeAnswered(): void {
    if (this.socket.writableLength === 0 && !('encrypted' in this.socket)) this.socket.destroy();
    else this.socket.end();
  }

  /** `shared`: chunk lives in the thread's read buffer, which the next read overwrites. */
  private onData(chunk: Buffer, shared: boolean): void {
    this.host.countRead(chunk.length);
    if (this.closing || this.watching) return;
    if (this.swallow > 0) {
      const skip = Math.min(this.swallow, chunk.length);
      this.swallow -= skip;
      chunk = chunk.subarray(skip);
      if (chunk.length === 0) return;
    }
    this.lastCommandAt = this.host.clock.now();
    if (this.stage !== null) {
      chunk = this.stage.take(chunk);
      if (!this.stage.complete) return;
      this.pending.push(this.stage.buffer);
      this.pendingBytes += this.stage.buffer.length;
      this.stage = null;
    }
    if (chunk.length > 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
    }
    if (this.yielded && this.pendingBytes > this.need + MAX_UNPARSED_BYTES && !this.inputHeld) {
      this.inputHeld = true;
      this.socket.pause();
    }
    this.process();
    if (this.wantsStage()) {
      this.stage = new RequestStage(this.need, this.pending);
      this.pending.length = 0;
      this.pendingBytes = 0;
    }
    if (shared) this.keepApartFrom(chunk.buffer);
  }

  /** The request at the front is cut, its length is known, and it is large enough to stage. */
  private wantsStage(): boolean {
    if (this.stage !== null || this.paused || this.yielded || this.closing || this.frontLength === 0 || this.frontLength !== this.need) return false;
    // before a login, nothing larger than a few KB is allocated for a client
    if (!this.authenticated && (this.host.sasl !== null || this.host.asciiAuth !== null)) return false;
    return shouldStage(this.need, this.pendingBytes);
  }

  /** Copy what the connection still holds of `shared` (unparsed input, a multi-get's keys to go). */
  private keepApartFrom(shared: ArrayBufferLike): void {
    const pending = this.pending;
    for (let i = 0; i < pending.length; i++) if (pending[i]!.buffer === shared) pending[i] = Buffer.from(pending[i]!);
    const mg = this.multiGet;
    if (mg === null) return;
    for (let i = mg.next; i < mg.keys.length; i++) if (mg.keys[i]!.buffer === shared) mg.keys[i] = Buffer.from(mg.keys[i]!);
  }

  /** Run the buffered requests, as far as the client keeps reading what we answer. */
  private process(): void {
    if (this.paused || this.yielded) return;
    this.turnRequests = 0;
    this.turnBytes = 0;
    if (this.multiGet !== null) this.continueMultiGet();
    while (!this.paused && !this.yielded && !this.closing && !this.watching && this.pendingBytes > 0 && this.pendingBytes >= this.need) {
      const buf = this.takeFront();
      const pos = this.consume(buf);
      if (pos < buf.length && !this.closing) {
        this.pending.unshift(buf.subarray(pos));
        this.pendingBytes += buf.length - pos;
      }
      // the request at the front is cut (a line without its end yet): wait for, or join, more
      if (pos === 0 && !this.paused && !this.yielded) this.need = Math.max(this.need, buf.length + 1);
    }
    this.flushReplies();
    if (this.inputHeld && !this.yielded && !this.paused) {
      this.inputHeld = false;
      this.socket.resume();
    }
    if (this.peerEnded && this.allAnswered()) this.closeAnswered();
  }

  /**
   * The first buffered chunk, joined with as many of the next as the request at its start needs
   * (a large value arrives in many chunks: joined once, when all of it is here). The chunks after
   * those stay apart, so a connection that yields with much input buffered copies none of it.
   */
  private takeFront(): Buffer {
    let count = 1;
    for (let bytes = this.pending[0]!.length; bytes < this.need; count++) bytes += this.pending[count]!.length;
    const parts = this.pending.splice(0, count);
    const buf = count === 1 ? parts[0]! : Buffer.concat(parts);
    this.pendingBytes -= buf.length;
    this.need = 0;
    this.frontLength = 0;
    return buf;
  }

  /** Give the thread's other connections a turn; this one goes on after them. */
  private yieldTurn(): void {
    this.yielded = true;
    this.host.countYield();
    setImmediate(() => {
      this.yielded = false;
      this.process();
    });
  }

  /** Parse and dispatch every complete request in buf; returns the offset of the unparsed rest. */
  private consume(buf: Buffer): number {
    if (!this.protocolKnown) {
      this.protocolKnown = true;
      // -B auto: the first byte decides for the whole connection, as in memcached
      const binary = this.host.protocol === 'auto' ? buf[0] === REQUEST_MAGIC : this.host.protocol === 'binary';
      // -S makes the server binary-only and -Y text-only, as in memcached
      if ((binary && this.host.asciiAuth !== null) || (!binary && this.host.sasl !== null)) {
        this.host.log(1, `<${this.id} ${binary ? 'binary' : 'text'} protocol not allowed with ${binary ? '-Y' : '-S'}, closing`);
        this.closeAfterReplies();
        return buf.length;
      }
      if (binary) this.binaryParser = new BinaryParser(this.host.maxValue, this.host.sasl !== null);
      this.host.log(2, `${this.id}: Client using the ${binary ? 'binary' : 'ascii'} protocol`);
    }
    const end = buf.length;
    let pos = 0;
    for (; pos < end && !this.closing && !this.watching; this.turnRequests++) {
      // like memcached, stop taking requests from a client that does not read its replies
      if (this.outputFull()) {
        this.pause();
        return pos;
      }
      // and give others a turn after -R requests (or TURN_BYTES of them)
      if (this.turnRequests >= this.host.reqsPerEvent || this.turnBytes >= TURN_BYTES) {
        this.yieldTurn();
        return pos;
      }
      if (this.swallow > 0) {
        const skip = Math.min(this.swallow, end - pos);
        this.swallow -= skip;
        pos += skip;
        continue;
      }
      const next = this.binaryParser === null ? this.textRequest(buf, pos, end) : this.binaryRequestAt(buf, pos, end, this.binaryParser);
      if (next < 0) return pos;
      this.turnBytes += next - pos;
      pos = next;
    }
    return Math.min(pos, end);
  }

  /** Run the text request at pos; returns where the next one starts, or -1 if it is incomplete. */
  private textRequest(buf: Buffer, pos: number, end: number): number {
    const parser = this.parser;
    const host = this.host;
    if (!this.authenticated && host.asciiAuth !== null) return this.asciiLogin(buf, pos, end, host.asciiAuth);
    const started = performance.now();
    const kind = parser.parse(buf, pos, end);
    if (kind === Parsed.Incomplete) {
      this.need = this.frontLength = parser.need;
      return -1;
    }
    host.countCommand();
    if (host.verbosity >= 2) host.log(2, `<${this.id} ${buf.toString('latin1', pos, Math.min(parser.lineEnd, pos + 300))}`);
    switch (kind) {
      case Parsed.Key: {
        const cmd = parser.keyCommand!;
        if (cmd.op === Op.SetTooLarge) this.swallow = parser.swallow;
        this.dispatch(cmd, this.reserve(), started, OP_NAMES[cmd.op]!);
        break;
      }
      case Parsed.MultiGet: {
        if (parser.keys.length === 0) {
          this.fill(this.reserve(), END);
          break;
        }
        this.multiGet = { keys: parser.keys, next: 0, op: parser.getOp, exptime: parser.exptime, started };
        this.continueMultiGet();
        break;
      }
      case Parsed.Local: {
        const local = parser.local!;
        const slot = this.reserve();
        const reply = host.local(local, this, slot);
        if (reply !== undefined) this.fill(slot, reply === null ? CLOSE_MARK : Buffer.from(reply, 'latin1'));
        host.observeLatency('text', local.kind, (performance.now() - started) / 1000);
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
    return parser.next;
  }

  /** Run the binary request at pos; returns where the next one starts, or -1 if it is incomplete. */
  private binaryRequestAt(buf: Buffer, pos: number, end: number, bp: BinaryParser): number {
    const started = performance.now();
    const kind = bp.parse(buf, pos, end);
    switch (kind) {
      case BinParsed.Incomplete:
        this.need = this.frontLength = bp.need;
        return -1;
      case BinParsed.Close:
        this.host.log(1, `<${this.id} invalid binary magic, closing`);
        this.closeAfterReplies();
        return end;
    }
    this.host.countCommand();
    // Before a SASL login, anything but SASL and Version gets an auth error and a hang-up. memcached
    // checks the body lengths first (UnknownCommand), then the login, then each command's rules.
    const loginFirst = this.host.sasl !== null && !this.authenticated && !OPEN_BEFORE_AUTH.has(bp.command);
    if (kind === BinParsed.Malformed || loginFirst) {
      const lengthsWrong = kind === BinParsed.Malformed && bp.errorStatus === BinStatus.UnknownCommand;
      const status = loginFirst && !lengthsWrong ? BinStatus.AuthError : bp.errorStatus;
      this.fill(this.reserve(), binaryError(bp.opcode, status, bp.opaque));
      this.closeAfterReplies();
      return end;
    }
    switch (kind) {
      case BinParsed.Unknown:
        this.fill(this.reserve(), binaryError(bp.opcode, BinStatus.UnknownCommand, bp.opaque));
        break;
      case BinParsed.TooLarge: {
        const cmd = binaryKeyCommand(bp, Op.SetTooLarge);
        cmd.flags = bp.command === BinOp.Set ? 1 : 0;
        this.swallow = bp.swallow;
        this.dispatch(cmd, this.reserve(), started, 'set');
        break;
      }
      case BinParsed.Request:
        this.binaryRequest(bp, started);
        break;
    }
    return bp.next;
  }

  /** memcached's text login (-Y, see parseAsciiLogin): the offset after what it took, or -1 for more bytes. */
  private asciiLogin(buf: Buffer, pos: number, end: number, users: Credentials): number {
    const login = parseAsciiLogin(buf, pos, end);
    switch (login.kind) {
      case 'incomplete':
        this.need = login.need;
        return -1;
      case 'close':
        this.closeAfterReplies();
        return end;
      case 'reply':
        this.fill(this.reserve(), Buffer.from(login.reply, 'latin1'));
        return login.next;
      case 'login':
        this.authenticated = users.check(login.user, login.password);
        this.host.countAuth(this.authenticated);
        this.fill(this.reserve(), Buffer.from(this.authenticated ? 'STORED\r\n' : 'CLIENT_ERROR authentication failure\r\n', 'latin1'));
        return login.next;
    }
  }

  /** A well-formed binary request: a key command, a reply of its own, or one that needs the host. */
  private binaryRequest(bp: BinaryParser, started: number): void {
    const slot = this.reserve();
    const action = binaryAction(bp);
    if (action !== null) {
      if ('cmd' in action) return this.dispatch(action.cmd, slot, started, action.name);
      this.fill(slot, action.reply);
      if (action.close) this.closeAfterReplies();
      return;
    }
    const ext = bp.extras;
    switch (bp.command) {
      case BinOp.Flush:
        // memcached answers a flush refused by -F with an auth error
        if (!this.host.flushAll(ext.length === 4 ? ext.readInt32BE(0) : 0)) this.fill(slot, binaryError(bp.opcode, BinStatus.AuthError, bp.opaque));
        else this.fill(slot, bp.quiet ? NO_REPLY : binaryReply(bp.opcode, bp.opaque, null));
        return this.host.observeLatency('binary', 'flush_all', (performance.now() - started) / 1000);
      case BinOp.SaslAuth:
      case BinOp.SaslStep: {
        // PLAIN is one step: an Auth with the whole message; a Step has nothing to continue
        const login = bp.command === BinOp.SaslAuth && bp.key.toString('latin1') === 'PLAIN' ? parsePlain(bp.value) : null;
        const ok = login !== null && this.host.sasl!.check(login.user, login.password);
        this.host.countAuth(ok);
        this.authenticated = ok;
        this.host.log(1, `<${this.id} SASL authentication ${ok ? 'succeeded' : 'failed'}`);
        return this.fill(
          slot,
          ok ? binaryReply(bp.opcode, bp.opaque, Buffer.from('Authenticated', 'latin1')) : binaryError(bp.opcode, BinStatus.AuthError, bp.opaque),
        );
      }
      case BinOp.ConfigGet: {
        // a server without Auto Discovery does not know the command, as memcached does not
        const config = this.host.clusterConfig();
        if (config === null) return this.fill(slot, binaryError(bp.opcode, BinStatus.UnknownCommand, bp.opaque));
        if (bp.key.toString('latin1') !== 'cluster') return this.fill(slot, binaryError(bp.opcode, BinStatus.NotFound, bp.opaque));
        this.host.countConfigGet();
        return this.fill(slot, binaryReply(bp.opcode, bp.opaque, Buffer.from(config, 'latin1')));
      }
      case BinOp.Stat: {
        const { opcode, opaque } = bp;
        const group = bp.key.toString('latin1');
        this.host.statsRows(group, (rows) => {
          this.fill(slot, binaryStats(opcode, opaque, rows));
          this.flushReplies();
        });
        return;
      }
    }
  }

  /**
   * Answer the multi-get's keys in order until the output is full: a client that does not read
   * gets the rest as it drains the first part (memcached's conn_mwrite), so a get line naming a
   * large value many times costs the high-water mark plus one value, not the whole reply.
   */
  private continueMultiGet(): void {
    const mg = this.multiGet!;
    const last = mg.keys.length - 1;
    while (mg.next <= last) {
      if (this.outputFull()) {
        // the rest once the client has read this part (maybeResume)
        this.pause();
        return;
      }
      const i = mg.next++;
      const end = i === last;
      const cmd: KeyCommand = { op: mg.op, key: mg.keys[i]!, flags: 0, exptime: mg.exptime, cas: 0, delta: 0n, value: null, noreply: false, end };
      // the whole get is timed by its last key, whose reply carries END
      this.dispatch(cmd, this.reserve(), mg.started, end ? OP_NAMES[cmd.op]! : '');
    }
    this.multiGet = null;
  }

  /** Run a key command on its shard; `command` names it for the latency metric ('' = not timed). */
  private dispatch(cmd: KeyCommand, slot: number, started: number, command: string): void {
    const host = this.host;
    this.fill(slot, host.execute(host.shardOf(cmd.key), cmd, this.id));
    if (command !== '') host.observeLatency(this.protocol, command, (performance.now() - started) / 1000);
  }

  private get protocol(): Protocol {
    return this.binaryParser === null ? 'text' : 'binary';
  }

  private reserve(): number {
    this.replies.push(undefined);
    return this.base + this.replies.length - 1;
  }

  private outputFull(): boolean {
    const held = this.unsentBytes + this.socket.writableLength;
    if (this.replies.length > MAX_PENDING_REPLIES || held > HIGH_WATER_BYTES) return true;
    if (held <= BUDGET_FLOOR_BYTES) return (this.waitingForBudget = false);
    // count what this connection filled since it last did: threads read the total concurrently
    this.recountHeld();
    if (!this.host.replyBudgetSpent()) return (this.waitingForBudget = false);
    // one wait, however often it is checked while it lasts
    if (!this.waitingForBudget) this.host.countReplyBudgetWait();
    return (this.waitingForBudget = true);
  }

  /** Keep the server-wide reply budget's count of this connection's unsent replies current. */
  private recountHeld(): void {
    if (this.socket.destroyed) return;
    const kb = (this.unsentBytes + this.socket.writableLength) >>> 10;
    if (kb === this.heldKb) return;
    this.host.holdReplies(kb - this.heldKb);
    this.heldKb = kb;
  }

  fill(slot: number, reply: Buffer): void {
    this.replies[slot - this.base] = reply;
    this.unsentBytes += reply.length;
    if (this.binaryParser === null && reply.length > 0 && this.host.verbosity >= 2) this.logReply(reply);
  }

  /** -vv, as memcached logs text replies: `>id <line>`, and `>id sending key <key>` for a value. */
  private logReply(reply: Buffer): void {
    for (let pos = 0; pos < reply.length; ) {
      const eol = reply.indexOf('\r\n', pos);
      if (eol < 0) break;
      const line = reply.toString('latin1', pos, eol);
      const value = /^VALUE (\S+) \d+ (\d+)/.exec(line);
      this.host.log(2, `>${this.id} ${value === null ? line : `sending key ${value[1]}`}`);
      // a value's data is skipped, not logged
      pos = eol + 2 + (value === null ? 0 : Number(value[2]) + 2);
    }
  }

  /** No reply of an earlier request is still waiting to be written before reply slot `slot`. */
  isFrontReply(slot: number): boolean {
    return slot === this.base;
  }

  /**
   * Turns the connection into a watcher (memcached's conn_watch): the requests after this one are
   * not read; the returned sink writes log lines while less than `limitBytes` wait unsent.
   */
  startWatching(limitBytes: number): { write(text: string): boolean; onClose(fn: () => void): void } {
    this.watching = true;
    this.state = 'conn_watch';
    const socket = this.socket;
    return {
      write: (text) => {
        if (socket.destroyed) return true;
        if (socket.writableLength > limitBytes) return false;
        this.host.countWritten(text.length);
        socket.write(text);
        return true;
      },
      onClose: (fn) => socket.once('close', fn),
    };
  }

  /**
   * Replies as one socket write: joined when small, handed to one writev when large (values of
   * kilobytes, already copied once out of the store, are not copied again to be joined).
   */
  private writeAll(ready: Buffer[], bytes: number): void {
    if (ready.length === 1) {
      this.socket.write(ready[0]!);
    } else if (bytes < WRITEV_BYTES) {
      this.socket.write(Buffer.concat(ready, bytes));
    } else {
      this.socket.cork();
      for (const r of ready) if (r.length > 0) this.socket.write(r);
      this.socket.uncork();
    }
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
      this.host.countWritten(bytes);
      this.writeAll(ready, bytes);
    }
    this.recountHeld();
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

interface PendingMultiGet {
  keys: Uint8Array[];
  /** The next key to answer. */
  next: number;
  op: KeyCommand['op'];
  exptime: number;
  started: number;
}

const END = Buffer.from('END\r\n');

