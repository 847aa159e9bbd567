/**
 * A serving thread (memcached's worker thread): accepts connections on its own socket or descriptor
 * of the listening port, and answers everything its connections send, running key commands on any
 * shard under that shard's lock. It also runs the expiry crawler of the shard with its number.
 * What needs every thread (`stats conns`, shutdown, fault injection) goes to the main thread.
 */
import net from 'node:net';
import type { MessagePort } from 'node:worker_threads';
import { Credentials } from '../auth.js';
import { serverClock, useClockCell } from '../clock.js';
import { idleTimeout, replyBudgetMb, type Config, type ProtocolChoice } from '../config.js';
import { Connection, type ConnectionHost } from '../connection.js';
import { GarbageBound } from '../gc.js';
import type { KeyCommand, LocalCommand } from '../protocol/command.js';
import { Errors } from '../protocol/text.js';
import { HashRing } from '../router.js';
import { ShardAccess } from '../shards/shard-access.js';
import { cachedump, SLAB_CLASS_LIMIT, type Dumping } from '../shards/dump.js';
import { lock } from '../shards/lock.js';
import { StatsReporter, type ConnInfo, type Row } from '../stats.js';
import type { Clock } from '../store/store.js';
import { MEMCACHED_VERSION } from '../version.js';
import type { ThreadInit, ToMain, ToThread } from './messages.js';
import { OperatorCommands } from './operator.js';
import { Cell, COMMAND_INDEX, Field, PROTOCOLS, ThreadStats, type Protocol } from './thread-stats.js';

/** Items the background crawler inspects per tick; a tick every 100 ms keeps it off the hot path. */
const CRAWL_PER_TICK = 2000;
const CRAWL_INTERVAL_MS = 100;
const TOO_MANY_CONNECTIONS = 'ERROR Too many open connections\r\n';
const START_BARRIER_MS = 10_000;
/** How often idle connections are looked for (-o idle_timeout has a one-second grain). */
const IDLE_CHECK_MS = 1000;
const PROTOCOL_INDEX: Record<Protocol, number> = { text: PROTOCOLS.indexOf('text'), binary: PROTOCOLS.indexOf('binary') };

export class ServingThread implements ConnectionHost {
  readonly maxValue: number;
  readonly protocol: ProtocolChoice;
  readonly reqsPerEvent: number;
  private readonly replyBudgetKb: number;
  readonly clock: Clock;
  readonly sasl: Credentials | null;
  readonly asciiAuth: Credentials | null;
  readonly config: Config;
  private readonly thread: number;
  private readonly ring: HashRing;
  readonly access: ShardAccess;
  private readonly operator: OperatorCommands;
  private readonly stats: ThreadStats;
  private readonly reporter: StatsReporter;
  private readonly port: MessagePort;
  private readonly listener: net.Server;
  private readonly connections = new Set<Connection>();
  private readonly garbage = new GarbageBound();
  /** `stats conns` requests waiting for every thread's answer. */
  private readonly gathering = new Map<number, (conns: ConnInfo[]) => void>();
  private nextRequest = 0;
  private connectionsAccepted = 0;

  constructor(private readonly init: ThreadInit) {
    this.config = init.config;
    this.thread = init.thread;
    this.maxValue = init.config.maxItemSize;
    this.reqsPerEvent = init.config.reqsPerEvent;
    this.replyBudgetKb = replyBudgetMb(init.config) * 1024;
    this.protocol = init.config.protocol;
    useClockCell(init.clock);
    this.clock = serverClock(init.processStarted);
    this.sasl = init.sasl === null ? null : Credentials.of(init.sasl);
    this.asciiAuth = init.ascii === null ? null : Credentials.of(init.ascii);
    this.ring = new HashRing(init.config.threads);
    this.access = new ShardAccess(init.shards, init.locks, init.thread, this.clock);
    this.stats = new ThreadStats(init.stats, init.config.threads);
    this.reporter = new StatsReporter({ config: init.config, clock: this.clock, shards: init.shards, threads: this.stats });
    this.operator = new OperatorCommands(this);
    this.port = init.port;
    this.port.on('message', (msg: ToThread) => this.onMessage(msg));
    this.listener = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  async start(): Promise<void> {
    if (this.init.startTogether) this.waitForEveryThread();
    await new Promise<void>((resolve, reject) => {
      this.listener.once('error', reject);
      this.listener.listen({ ...this.init.listen, backlog: this.config.backlog }, () => {
        this.listener.off('error', reject);
        resolve();
      });
    });
    const idle = idleTimeout(this.config);
    if (idle > 0) setInterval(() => this.kickIdle(idle), IDLE_CHECK_MS);
    // a shard's crawler runs in the thread with its number; any thread could, under the lock
    if (this.thread < this.access.count) {
      setInterval(() => {
        if (Atomics.load(this.stats.shared, Cell.crawlerEnabled) === 1) this.access.with(this.thread, (store) => store.crawl(CRAWL_PER_TICK));
      }, CRAWL_INTERVAL_MS);
    }
  }

  private accept(socket: net.Socket): void {
    const shared = this.stats.shared;
    // a reset from the peer must not become an unhandled 'error' event that ends the thread
    socket.on('error', (err) => this.log(2, `connection error: ${err.message}`));
    if (Atomics.add(shared, Cell.connections, 1) >= this.config.connLimit) {
      Atomics.sub(shared, Cell.connections, 1);
      this.stats.add(this.thread, Field.rejectedConnections, 1);
      this.log(1, 'Too many open connections');
      // close once the error is out, whatever the client does: its descriptor must not linger
      socket.end(TOO_MANY_CONNECTIONS, () => socket.destroy());
      return;
    }
    this.stats.add(this.thread, Field.currConnections, 1);
    this.stats.add(this.thread, Field.totalConnections, 1);
    // ids unique over threads: thread + threads * n
    const id = this.thread + this.config.threads * this.connectionsAccepted++;
    const conn = new Connection(socket, this, id);
    this.connections.add(conn);
    const kind = this.config.protocol === 'auto' ? 'auto-negotiating' : this.config.protocol;
    this.log(2, `<${conn.id} new ${kind} client connection`);
    socket.on('close', () => {
      Atomics.sub(shared, Cell.connections, 1);
      this.stats.add(this.thread, Field.currConnections, -1);
      this.connections.delete(conn);
      this.log(2, `<${conn.id} connection closed.`);
    });
  }

  /**
   * At the first start every thread listens only once all of them can: the first to listen
   * would otherwise take every connection of a client pool that connects at once. A thread that
   * never comes is not waited for beyond START_BARRIER_MS.
   */
  private waitForEveryThread(): void {
    const shared = this.stats.shared;
    Atomics.add(shared, Cell.startBarrier, 1);
    Atomics.notify(shared, Cell.startBarrier);
    const deadline = Date.now() + START_BARRIER_MS;
    for (let ready = Atomics.load(shared, Cell.startBarrier); ready < this.config.threads; ready = Atomics.load(shared, Cell.startBarrier)) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      Atomics.wait(shared, Cell.startBarrier, ready, left);
    }
  }

  /** memcached's idle_timeout: close connections that sent nothing for `seconds`. */
  private kickIdle(seconds: number): void {
    const now = this.clock.now();
    for (const conn of this.connections) {
      if (now - conn.lastCommandAt <= seconds) continue;
      this.stats.add(this.thread, Field.idleKicks, 1);
      this.log(2, `<${conn.id} idle timeout, closing`);
      conn.socket.destroy();
    }
  }

  shardOf(key: Uint8Array): number {
    return this.ring.shardOf(key);
  }

  execute(shard: number, cmd: KeyCommand): Buffer {
    return this.access.run(shard, cmd);
  }

  local(cmd: LocalCommand, conn: Connection, slot: number): string | null | undefined {
    switch (cmd.kind) {
      case 'version':
        return `VERSION ${MEMCACHED_VERSION}\r\n`;
      case 'mn':
        return 'MN\r\n';
      case 'quit':
        return null;
      case 'verbosity':
        Atomics.store(this.stats.shared, Cell.verbosity, Math.min(cmd.level, 2));
        return cmd.noreply ? '' : 'OK\r\n';
      case 'flush_all':
        if (!this.flushAll(cmd.delay)) return cmd.noreply ? '' : Errors.flushDisabled;
        return cmd.noreply ? '' : 'OK\r\n';
      case 'shutdown':
        if (!this.config.enableShutdown) return Errors.shutdownDisabled;
        if (cmd.mode === 'invalid') return Errors.shutdownMode;
        this.log(1, `shutdown requested by connection ${conn.id}`);
        this.send({ type: 'shutdown' });
        return null;
      case 'debug':
        return this.debug(cmd.args);
      case 'operator':
        return this.operator.run(cmd.name, cmd.args);
      case 'watch':
        return Errors.error;
      case 'stats':
        if (cmd.group === 'cachedump') return this.cachedump(cmd.args);
        if (!this.needsEveryThread(cmd.group)) return this.reporter.report(cmd.group, cmd.args);
        this.gatherConns((conns) => {
          conn.fill(slot, Buffer.from(this.reporter.report(cmd.group, cmd.args, conns), 'latin1'));
          conn.flushReplies();
        });
        return undefined;
    }
  }

  flushAll(delay: number): boolean {
    if (!this.config.flushEnabled) return false;
    this.stats.add(this.thread, Field.flushCommands, 1);
    this.access.flushAll(delay);
    return true;
  }

  statsRows(group: string, then: (rows: Row[] | null) => void): void {
    if (this.needsEveryThread(group)) this.gatherConns((conns) => then(this.reporter.rows(group, conns)));
    else then(this.reporter.rows(group));
  }

  /**
   * Before a stats group is reported: `reset` clears the shards' counters (under their locks;
   * the reporter clears the threads'), `sizes_enable|disable` switch size tracking. True for `conns`, which needs every thread's connections.
   */
  private needsEveryThread(group: string): boolean {
    if (group === 'reset') this.access.resetStats();
    if (group === 'sizes_enable' || group === 'sizes_disable') {
      const on = group === 'sizes_enable';
      for (let shard = 0; shard < this.access.count; shard++) {
        this.access.with(shard, (store) => on !== store.tracksSizes && store.setSizeTracking(on));
      }
    }
    return group === 'conns';
  }

  /** `stats cachedump <class> <limit>`. */
  private cachedump(args: string[]): string {
    if (!this.config.dumpEnabled) return Errors.cachedumpDisabled;
    if (args.length !== 2) return Errors.badCommandLine;
    const [cls, limit] = args.map((a) => (/^\d+$/.test(a) ? Number(a) : NaN));
    if (!Number.isFinite(cls) || !Number.isFinite(limit)) return Errors.badFormat;
    if (cls! >= SLAB_CLASS_LIMIT) return Errors.illegalSlabId;
    return cachedump(this.dumping, cls!, limit!);
  }

  get dumping(): Dumping {
    return { shards: this.access.count, withShard: (shard, fn) => this.access.with(shard, fn), processStarted: this.clock.processStarted };
  }

  /**
   * Test hooks, like memcached's debug-build commands: off unless MEMSHARD_FAULT_INJECTION=1.
   * `debug crash_thread <n> [locked]` makes serving thread n exit (holding its shard's lock with
   * `locked`), to exercise its replacement.
   */
  private debug(args: string[]): string {
    const thread = Number(args[1]);
    if (process.env['MEMSHARD_FAULT_INJECTION'] !== '1' || args[0] !== 'crash_thread') return Errors.error;
    if (!Number.isInteger(thread) || thread < 0 || thread >= this.config.threads) return Errors.badFormat;
    this.send({ type: 'crash', thread, holdingLock: args[2] === 'locked' });
    return 'OK\r\n';
  }

  private gatherConns(then: (conns: ConnInfo[]) => void): void {
    const request = this.nextRequest++;
    this.gathering.set(request, then);
    this.send({ type: 'gatherConns', request });
  }

  private connInfo(): ConnInfo[] {
    return [...this.connections].map((conn) => {
      const s = conn.socket;
      return {
        id: conn.id,
        // memcached prints an unnamed UNIX-socket peer this way
        addr: this.config.unixSocket === undefined ? `tcp:${s.remoteAddress}:${s.remotePort}` : '?:<AF 0>',
        listenAddr: this.config.unixSocket === undefined ? `tcp:${s.localAddress}:${s.localPort}` : `unix:${this.config.unixSocket}`,
        state: conn.state,
        lastCommandAt: conn.lastCommandAt,
      };
    });
  }

  private onMessage(msg: ToThread): void {
    switch (msg.type) {
      case 'conns':
        return this.send({ type: 'conns', request: msg.request, conns: this.connInfo() });
      case 'connsReply': {
        const then = this.gathering.get(msg.request);
        this.gathering.delete(msg.request);
        return then?.(msg.conns);
      }
      case 'crash':
        this.log(1, `fault injection: thread ${this.thread} exits${msg.holdingLock ? ' holding its shard lock' : ''}`);
        if (msg.holdingLock) lock(this.init.locks, this.thread, this.thread);
        return process.exit(1);
      case 'close':
        this.listener.close();
        for (const conn of this.connections) conn.socket.destroy();
        return this.send({ type: 'closed' });
    }
  }

  private send(msg: ToMain): void {
    this.port.postMessage(msg);
  }

  get shared(): Int32Array {
    return this.stats.shared;
  }

  get verbosity(): number {
    return Atomics.load(this.stats.shared, Cell.verbosity);
  }

  observeLatency(protocol: Protocol, command: string, seconds: number): void {
    const index = COMMAND_INDEX.get(command);
    if (index !== undefined) this.stats.observe(this.thread, PROTOCOL_INDEX[protocol], index, seconds);
  }

  countYield(): void {
    this.stats.add(this.thread, Field.connYields, 1);
  }

  holdReplies(deltaKb: number): void {
    if (deltaKb !== 0) this.stats.holdReplies(this.thread, deltaKb);
  }

  replyBudgetSpent(): boolean {
    return this.replyBudgetKb > 0 && Atomics.load(this.stats.shared, Cell.heldReplyKb) >= this.replyBudgetKb;
  }

  countReplyBudgetWait(): void {
    this.stats.add(this.thread, Field.replyBudgetWaits, 1);
  }

  countCommand(): void {
    this.stats.add(this.thread, Field.commands, 1);
  }

  countAuth(ok: boolean): void {
    this.stats.add(this.thread, Field.authCommands, 1);
    if (!ok) this.stats.add(this.thread, Field.authErrors, 1);
  }

  countRead(bytes: number): void {
    this.stats.add(this.thread, Field.bytesRead, bytes);
    this.garbage.allocated(bytes);
  }

  countWritten(bytes: number): void {
    this.stats.add(this.thread, Field.bytesWritten, bytes);
  }

  log(level: number, msg: string): void {
    if (this.verbosity >= level) process.stderr.write(`${msg}\n`);
  }
}
