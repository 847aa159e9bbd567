/**
 * memcached's UDP port (-U): the socket glue around lib/udp/frame.ts.
 *
 * Each request datagram is run through a Connection of its own (the text and binary protocols
 * exactly as on TCP), whose socket is a ReplySocket: it takes the reply bytes, and the Connection's
 * reply slots tell where each memcached response object starts (one per command, one per key of a
 * text multi-get), which memcached frames as a message of its own. A cut request at the end of a
 * datagram is dropped, as memcached drops it. Datagrams are served one at a time, in order.
 *
 * Which threads bind the port: with SO_REUSEPORT in Node's dgram (`reusePort`, Node >= 22.12 and
 * >= 23.1 on Linux, as for TCP in lib/threads/listen-socket.ts) every serving thread binds it and
 * the kernel spreads datagrams over them by source address; on Node 20 only serving thread 0 binds
 * it. Either way a thread that dies closes its socket and its replacement binds again.
 */
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import net, { type Socket } from 'node:net';
import type { Credentials } from '../auth.js';
import { firstHost, type Config, type ProtocolChoice } from '../config.js';
import { Connection, type ConnectionHost } from '../connection.js';
import { REQUEST_MAGIC } from '../protocol/binary.js';
import { Op, type KeyCommand, type LocalCommand } from '../protocol/command.js';
import type { Row } from '../stats.js';
import type { Clock } from '../store/store.js';
import { reusePortAvailable } from '../threads/listen-socket.js';
import type { Protocol } from '../threads/thread-stats.js';
import { binaryFlushesAfter, parseRequest, ReplyFramer, yieldFlushBetween } from './frame.js';

/** Datagrams waiting while one is served (a `stats conns` or a client-side backlog); more are dropped. */
const MAX_QUEUED = 1024;
/** A request whose reply is not complete by then (a thread that never answers) is given up. */
const REQUEST_TIMEOUT_MS = 10_000;

/** Whether serving thread `thread` binds the UDP port (see the file comment). */
export function servesUdp(config: Config, thread: number): boolean {
  // -s: memcached then listens on the UNIX socket only, neither TCP nor UDP
  return config.udpPort !== 0 && config.unixSocket === undefined && (reusePortAvailable() || thread === 0);
}

export class UdpEndpoint {
  private readonly queue: Array<{ payload: Buffer; requestId: number; port: number; address: string }> = [];
  private current: Exchange | null = null;
  private closed = false;
  /** Bytes handed to the socket whose send has not completed. */
  inFlight = 0;

  private constructor(
    private readonly socket: dgram.Socket,
    readonly host: ConnectionHost,
    /** The id the requests' Connections log with: negative, apart from TCP connections' ids. */
    readonly id: number,
  ) {
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo.port, rinfo.address));
    socket.on('error', (err) => host.log(1, `UDP socket error: ${err.message}`));
  }

  /**
   * At the first start, thread 0 checks that the port is free with a plain bind before the
   * threads join its SO_REUSEPORT group: memcached fails on a port in use, and another memshard's
   * group would otherwise share it silently. Call it before the threads wait for each other.
   */
  static async checkPortFree(config: Config, thread: number): Promise<void> {
    if (thread !== 0 || !servesUdp(config, thread) || !reusePortAvailable()) return;
    const probe = await bind(config.udpPort, firstHost(config), false);
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  }

  /** Bind the UDP port in serving thread `thread`, if it serves UDP (else null). */
  static async open(host: ConnectionHost, config: Config, thread: number): Promise<UdpEndpoint | null> {
    if (!servesUdp(config, thread)) return null;
    const socket = await bind(config.udpPort, firstHost(config), reusePortAvailable());
    return new UdpEndpoint(socket, host, -1 - thread);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.current?.abandon('the UDP socket closes');
    this.current = null;
    this.socket.close();
  }

  private onMessage(msg: Buffer, port: number, address: string): void {
    if (this.closed) return;
    const req = parseRequest(msg);
    if (req.kind === 'short') {
      this.host.log(2, `UDP: dropped a ${msg.length}-byte datagram from ${address}:${port} (no request in it)`);
      return;
    }
    // memcached counts every datagram longer than a header, also the ones it drops next
    this.host.countRead(msg.length);
    if (req.kind === 'multi-datagram') {
      this.host.log(2, `UDP: dropped request ${req.requestId} from ${address}:${port}: multi-datagram requests are not supported`);
      return;
    }
    if (this.queue.length >= MAX_QUEUED) {
      this.host.log(2, `UDP: dropped request ${req.requestId} from ${address}:${port}: ${MAX_QUEUED} requests waiting`);
      return;
    }
    this.queue.push({ payload: req.payload, requestId: req.requestId, port, address });
    this.pump();
  }

  /** Serve the queued requests in order, one at a time. */
  private pump(): void {
    while (this.current === null && this.queue.length > 0 && !this.closed) {
      const job = this.queue.shift()!;
      const exchange = new Exchange(this, job.requestId, job.port, job.address, () => {
        if (this.current !== exchange) return;
        this.current = null;
        // an exchange that finished later (not inside run()) starts the next one itself
        if (!running) this.pump();
      });
      this.current = exchange;
      let running = true;
      exchange.run(job.payload);
      running = false;
    }
  }

  send(datagram: Buffer, port: number, address: string): void {
    if (this.closed) return;
    this.inFlight += datagram.length;
    this.host.countWritten(datagram.length);
    this.socket.send(datagram, port, address, (err) => {
      this.inFlight -= datagram.length;
      if (err) this.host.log(2, `UDP: send to ${address}:${port} failed: ${err.message}`);
      // what the request being served waits for may have been an earlier request's datagrams
      if (this.inFlight === 0) this.current?.drained();
    });
  }
}

/** Bind a UDP socket on port (host undefined: all interfaces, IPv6 and IPv4 when there is IPv6). */
async function bind(port: number, host: string | undefined, reusePort: boolean): Promise<dgram.Socket> {
  const attempt = (type: dgram.SocketType, address: string | undefined) =>
    new Promise<dgram.Socket>((resolve, reject) => {
      // reusePort is not in @types/node 20's SocketOptions; Node 20 ignores it (servesUdp never asks there)
      const options: dgram.SocketOptions & { reusePort?: boolean } = { type, reusePort };
      const socket = dgram.createSocket(options);
      const fail = (err: Error) => {
        socket.close();
        reject(err);
      };
      socket.once('error', fail);
      socket.bind({ port, ...(address === undefined ? {} : { address }) }, () => {
        socket.off('error', fail);
        resolve(socket);
      });
    });
  try {
    if (host !== undefined) return await attempt(net.isIPv6(host) ? 'udp6' : 'udp4', host);
    try {
      return await attempt('udp6', '::');
    } catch (err) {
      // no IPv6 here: all IPv4 interfaces, as net.Server.listen falls back
      if ((err as NodeJS.ErrnoException).code !== 'EAFNOSUPPORT') throw err;
      return await attempt('udp4', '0.0.0.0');
    }
  } catch (err) {
    throw new Error(`failed to listen on UDP port ${port}: ${(err as Error).message}`);
  }
}

/** What an empty reply slot is to memcached (see Response in frame.ts), decided when it is filled. */
const enum Slot {
  /** Text: an empty reply is a noreply (skipped). */
  Plain,
  /** A text multi-get's key: an empty reply is a miss that still has a response object. */
  GetKey,
  /** The last key of a text get, or mn: memcached flushes after it. */
  Flush,
  /** Text quit: memcached flushes its empty response object (a lone header at the queue's head). */
  Quit,
}

interface SlotRecord {
  length: number;
  skip: boolean;
  flush: boolean;
  /** The request (1-based, in the datagram) it answers, for -R's flushes. */
  command: number;
  /** The slot that closeAfterReplies() fills (binary quit, a protocol error): nothing of its own. */
  close: boolean;
}

/** memcached's text get family: each key is a response object of its own. */
const GET_OPS = new Set<number>([Op.Get, Op.Gets, Op.Gat, Op.Gats]);

/**
 * One request datagram: its Connection's host (delegating to the thread's) and the sink of its
 * replies, which it frames and sends as the reply slots complete, in slot order.
 */
class Exchange implements ConnectionHost {
  private readonly thread: ConnectionHost;
  private readonly socket: ReplySocket;
  private readonly framer: ReplyFramer;
  private binary = false;
  private inputDone = false;
  private finished = false;
  private timer: NodeJS.Timeout | null = null;
  /** Requests parsed so far (countCommand). */
  private commands = 0;
  /** Set by execute()/local() for the fill that follows at once. */
  private nextSlot: Slot = Slot.Plain;
  /** While an asynchronous reply is filled: the request it answers. */
  private fillCommand = 0;
  /** Reply slots of asynchronous replies (stats conns), with the request they answer. */
  private readonly waiting = new Map<number, number>();
  /** Binary stats replies still to come. */
  private waitingStats = 0;
  /** Filled slots not framed yet, by slot id; slots are framed in order from `framedUpTo`. */
  private readonly slots = new Map<number, SlotRecord>();
  private framedUpTo = 0;
  private lastCommand = 1;
  /** Reply bytes written by the Connection and not framed yet. */
  private written: Buffer[] = [];
  private writtenBytes = 0;

  constructor(
    private readonly endpoint: UdpEndpoint,
    requestId: number,
    private readonly port: number,
    private readonly address: string,
    private readonly done: () => void,
  ) {
    this.thread = endpoint.host;
    this.framer = new ReplyFramer(requestId);
    this.socket = new ReplySocket(this, () => endpoint.inFlight);
  }

  run(payload: Buffer): void {
    const host = this.thread;
    this.binary = host.protocol === 'auto' ? payload[0] === REQUEST_MAGIC : host.protocol === 'binary';
    // Connection uses on('data'|'drain'|'close'), pause, resume, writableLength, destroyed, write,
    // cork, uncork, end, setNoDelay and destroy of its socket: ReplySocket has exactly those
    new UdpConnection(this.socket as unknown as Socket, this, this.endpoint.id, this);
    this.socket.emit('data', payload);
    this.inputDone = true;
    this.maybeFinish();
    if (!this.finished) this.timer = setTimeout(() => this.abandon(), REQUEST_TIMEOUT_MS);
  }

  /** The Connection filled reply slot `slot` (UdpConnection.fill). */
  onFill(slot: number, reply: Buffer, closing: boolean): void {
    const kind = this.nextSlot;
    this.nextSlot = Slot.Plain;
    const waited = this.waiting.get(slot);
    if (waited !== undefined) {
      this.waiting.delete(slot);
      // the host flushes the Connection right after filling it
      queueMicrotask(() => this.maybeFinish());
    }
    const command = waited ?? (this.fillCommand || this.commands);
    const empty = reply.length === 0;
    this.slots.set(slot, {
      length: reply.length,
      close: closing,
      // binary: every command has a response object, a quiet one an empty one
      skip: !this.binary && empty && kind !== Slot.GetKey && kind !== Slot.Quit,
      flush: this.binary ? binaryFlushesAfter(reply) : kind === Slot.Flush || kind === Slot.Quit,
      command,
    });
  }

  onWrite(chunk: Buffer): void {
    if (this.finished) return;
    this.written.push(chunk);
    this.writtenBytes += chunk.length;
    this.frameReady();
  }

  /** Frame and send the slots whose bytes are written, in slot order. */
  private frameReady(): void {
    for (;;) {
      const rec = this.slots.get(this.framedUpTo);
      if (rec === undefined || rec.length > this.writtenBytes) return;
      this.slots.delete(this.framedUpTo++);
      if (rec.close) continue;
      const bytes = this.take(rec.length);
      if (yieldFlushBetween(this.lastCommand, rec.command, this.thread.reqsPerEvent)) this.framer.flush();
      this.lastCommand = Math.max(this.lastCommand, rec.command);
      for (const d of this.framer.push({ bytes, skip: rec.skip, flush: rec.flush })) this.send(d);
    }
  }

  private take(n: number): Buffer {
    this.writtenBytes -= n;
    const first = this.written[0];
    if (n === 0 || first === undefined) return EMPTY;
    if (first.length === n) return this.written.shift()!;
    if (first.length > n) {
      this.written[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    // a reply over several writes: not what Connection does, but correct either way
    const all = Buffer.concat(this.written);
    this.written = all.length > n ? [all.subarray(n)] : [];
    return all.subarray(0, n);
  }

  private send(datagram: Buffer): void {
    this.endpoint.send(datagram, this.port, this.address);
  }

  /** Every datagram sent so far has gone out. */
  drained(): void {
    if (this.finished || !this.socket.paused) return;
    // the Connection stopped for its output to drain (a large multi-get): it has
    this.socket.emit('drain');
    this.maybeFinish();
  }

  /** Done once the whole payload ran, nothing waits for output or an answer. */
  private maybeFinish(): void {
    if (this.finished || !this.inputDone || this.socket.paused || this.waiting.size > 0 || this.waitingStats > 0) return;
    this.frameReady();
    if (this.writtenBytes > 0) {
      // slots and bytes disagree: send the rest as one response rather than lose it
      this.thread.log(1, `UDP: ${this.writtenBytes} reply bytes without a reply slot`);
      for (const d of this.framer.push({ bytes: this.take(this.writtenBytes), skip: false, flush: false })) this.send(d);
    }
    this.finish();
  }

  /** Give up on what is still to come (after REQUEST_TIMEOUT_MS, or when the endpoint closes). */
  abandon(why = `its reply did not complete in ${REQUEST_TIMEOUT_MS} ms`): void {
    if (this.finished) return;
    this.thread.log(1, `UDP: gave up on a request from ${this.address}:${this.port}: ${why}`);
    this.finish();
  }

  private finish(): void {
    this.finished = true;
    if (this.timer !== null) clearTimeout(this.timer);
    // the Connection hands back what it counted in the server-wide reply budget
    this.socket.destroy();
    this.done();
  }

  // ---- ConnectionHost: the thread's, except what UDP counts or runs otherwise ----

  get maxValue(): number {
    return this.thread.maxValue;
  }
  /** No yields within a datagram (at most 64 KB of requests); -R's flushes are framed instead. */
  readonly reqsPerEvent = Number.MAX_SAFE_INTEGER;
  countYield(): void {
    this.thread.countYield();
  }
  holdReplies(deltaKb: number): void {
    this.thread.holdReplies(deltaKb);
  }
  replyBudgetSpent(): boolean {
    return this.thread.replyBudgetSpent();
  }
  countReplyBudgetWait(): void {
    this.thread.countReplyBudgetWait();
  }
  shardOf(key: Uint8Array): number {
    return this.thread.shardOf(key);
  }
  execute(...args: Parameters<ConnectionHost['execute']>): Buffer {
    const reply = this.thread.execute(...args);
    const cmd: KeyCommand = args[1];
    if (cmd.binary === undefined && GET_OPS.has(cmd.op)) this.nextSlot = cmd.end ? Slot.Flush : Slot.GetKey;
    return reply;
  }
  local(cmd: LocalCommand, conn: Connection, slot: number): string | null | undefined {
    const reply = this.thread.local(cmd, conn, slot);
    if (reply === undefined) this.waiting.set(slot, this.commands);
    else if (cmd.kind === 'mn') this.nextSlot = Slot.Flush;
    else if (cmd.kind === 'quit') this.nextSlot = Slot.Quit;
    return reply;
  }
  get sasl(): Credentials | null {
    return this.thread.sasl;
  }
  get asciiAuth(): Credentials | null {
    return this.thread.asciiAuth;
  }
  countAuth(ok: boolean): void {
    this.thread.countAuth(ok);
  }
  flushAll(delay: number): boolean {
    return this.thread.flushAll(delay);
  }
  get protocol(): ProtocolChoice {
    return this.thread.protocol;
  }
  statsRows(group: string, then: (rows: Row[] | null) => void): void {
    const command = this.commands;
    let sync = true;
    this.waitingStats++;
    this.thread.statsRows(group, (rows) => {
      this.fillCommand = command;
      then(rows);
      this.fillCommand = 0;
      this.waitingStats--;
      if (!sync) this.maybeFinish();
    });
    sync = false;
  }
  clusterConfig(): string | null {
    return this.thread.clusterConfig();
  }

  countConfigGet(): void {
    this.thread.countConfigGet();
  }

  observeLatency(protocol: Protocol, command: string, seconds: number): void {
    this.thread.observeLatency(protocol, command, seconds);
  }
  countCommand(): void {
    this.commands++;
    this.thread.countCommand();
  }
  /** bytes_read and bytes_written count whole datagrams, headers included, as memcached does. */
  countRead(): void {}
  countWritten(): void {}
  get verbosity(): number {
    return this.thread.verbosity;
  }
  get clock(): Clock {
    return this.thread.clock;
  }
  log(level: number, msg: string): void {
    this.thread.log(level, msg);
  }
}

/** A Connection that tells its Exchange where each reply slot is filled. */
class UdpConnection extends Connection {
  private closingSlot = false;

  constructor(
    socket: Socket,
    host: ConnectionHost,
    id: number,
    private readonly exchange: Exchange,
  ) {
    super(socket, host, id, null);
  }

  override fill(slot: number, reply: Buffer): void {
    // `exchange` is not set yet only while super() runs, which fills nothing
    this.exchange.onFill(slot, reply, this.closingSlot);
    super.fill(slot, reply);
  }

  override closeAfterReplies(): void {
    this.closingSlot = true;
    super.closeAfterReplies();
    this.closingSlot = false;
  }
}

/** The part of net.Socket a Connection uses, writing into an Exchange. */
class ReplySocket extends EventEmitter {
  destroyed = false;
  paused = false;

  constructor(
    private readonly exchange: Exchange,
    /** Its unsent output: the endpoint's datagrams still being sent. */
    private readonly inFlight: () => number,
  ) {
    super();
  }

  get writableLength(): number {
    return this.inFlight();
  }

  setNoDelay(): this {
    return this;
  }

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    this.paused = false;
    return this;
  }

  write(chunk: Buffer): boolean {
    if (!this.destroyed) this.exchange.onWrite(chunk);
    return true;
  }

  /** Large replies come as several writes between cork and uncork; the exchange frames any split. */
  cork(): void {}

  uncork(): void {}

  /** After quit: the rest of the datagram is not read (memcached drops it too). */
  end(): this {
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.emit('close');
    return this;
  }
}

const EMPTY = Buffer.alloc(0);
