/**
 * A serving thread (memcached's worker thread): accepts connections on its own socket or descriptor
 * of the listening port, and answers everything its connections send, running key commands on any
 * shard under that shard's lock. It also runs the expiry crawler of the shard with its number.
 * What needs every thread (`stats conns`, shutdown, fault injection) goes to the main thread.
 */
import net from 'node:net';
import v8 from 'node:v8';
import type { MessagePort } from 'node:worker_threads';
import { Credentials } from '../auth.js';
import { serverClock, useClockCell } from '../clock.js';
import { idleTimeout, replyBudgetMb, watcherBufferKb, type Config, type ProtocolChoice } from '../config.js';
import { Connection, type ConnectionHost } from '../connection.js';
import { GarbageBound } from '../gc.js';
import { CrawlSchedule } from '../store/crawl-schedule.js';
import { READ_BUFFER_BYTES } from './socket-reads.js';
import { Op, type KeyCommand, type LocalCommand } from '../protocol/command.js';
import { Errors } from '../protocol/text.js';
import { HashRing } from '../router.js';
import { ShardAccess } from '../shards/shard-access.js';
import { cachedump, SLAB_CLASS_LIMIT, type Dumping } from '../shards/dump.js';
import { lock } from '../shards/lock.js';
import { StatsReporter, type ConnInfo, type Row } from '../stats.js';
import type { Clock } from '../store/store.js';
import { UdpEndpoint } from '../udp/endpoint.js';
import { MEMCACHED_VERSION } from '../version.js';
import type { ThreadInit, ThreadReport, ToMain, ToThread } from './messages.js';
import { PrefixEvent, PrefixStats, renderPrefixDump, type PrefixEventId } from '../prefix-stats.js';
import { OperatorCommands } from './operator.js';
import { HotKeyTracker } from '../hotkeys/tracker.js';
import { hotKeysRows, hotKeysTop, renderRows } from '../hotkeys/report.js';
import type { SecureClient, TlsAcceptor, TlsCounters } from '../tls/acceptor.js';
import { certificatesReloaded } from './thread-stats.js';
import { clusterPayload, renderClusterConfig } from '../cluster/config.js';
import type { ClusterView } from '../cluster/discovery.js';
import { parseWatchKinds, StoreWatch, WatchHub, WatchKind, WatchLine, type CurrentClient } from './watch.js';
import { refuseEarly } from './fast-refusal.js';
import { Cell, COMMAND_INDEX, Field, PROTOCOLS, ThreadStats, type Protocol } from './thread-stats.js';

/** Items the background crawler inspects per tick of a pass; a tick every 100 ms keeps it off the hot path. */
const CRAWL_PER_TICK = 2000;
const CRAWL_INTERVAL_MS = 100;
/** How often a thread publishes its heap size (memshard_memory_bytes reads the last one). */
const MEMORY_REPORT_MS = 1000;
const TOO_MANY_CONNECTIONS = 'ERROR Too many open connections\r\n';
const START_BARRIER_MS = 10_000;
/** How often idle connections are looked for (-o idle_timeout has a one-second grain). */
const IDLE_CHECK_MS = 1000;
const PROTOCOL_INDEX: Record<Protocol, number> = { text: PROTOCOLS.indexOf('text'), binary: PROTOCOLS.indexOf('binary') };

/** An IPv4 peer of a dual-stack socket as memcached prints it (127.0.0.1, not ::ffff:127.0.0.1). */
function unmapped(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

/** Which per-prefix count each key command adds to (`stats detail`). */
const PREFIX_EVENT: Partial<Record<number, PrefixEventId>> = {
  [Op.Get]: PrefixEvent.Get, [Op.Gets]: PrefixEvent.Get, [Op.Gat]: PrefixEvent.Get, [Op.Gats]: PrefixEvent.Get,
  [Op.Set]: PrefixEvent.Set, [Op.Add]: PrefixEvent.Set, [Op.Replace]: PrefixEvent.Set, [Op.Append]: PrefixEvent.Set,
  [Op.Prepend]: PrefixEvent.Set, [Op.Cas]: PrefixEvent.Set, [Op.SetTooLarge]: PrefixEvent.Set, [Op.Delete]: PrefixEvent.Delete,
};

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
  private readonly watch: WatchHub;
  /** -Z: handshakes for accepted sockets; null = plain TCP. */
  /** Set in start() with -Z: node:tls is loaded only by a thread that serves TLS (it costs each thread about 1.5 MB). */
  private tls: TlsAcceptor | null = null;
  /** Auto Discovery's node list (from the main thread), null without one. */
  private cluster: ClusterView | null;
  /** Whose command runs now, for watch lines' cfd. */
  private readonly client: CurrentClient = { id: -1 };
  private readonly stats: ThreadStats;
  private readonly reporter: StatsReporter;
  private readonly port: MessagePort;
  /** One server per -l listener, on this thread's socket or descriptor of it. */
  private readonly listeners: net.Server[];
  /** -U: this thread's UDP socket, when it has one (see lib/udp/endpoint.ts). */
  private udp: UdpEndpoint | null = null;
  private readonly connections = new Set<Connection>();
  /** The one buffer every plain connection of this thread reads into (socket-reads.ts). */
  private readonly readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  private readonly garbage = new GarbageBound();
  /** `stats conns` requests waiting for every thread's answer. */
  private readonly gathering = new Map<number, (report: ThreadReport) => void>();
  private readonly prefixes: PrefixStats;
  /** What this thread's commands read and wrote, per shard (and per key with --hot-keys). */
  private readonly hot: HotKeyTracker;
  private prefixEpoch = 0;
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
    this.watch = new WatchHub(this.stats.shared);
    this.prefixes = new PrefixStats(init.config.prefixDelimiter.charCodeAt(0));
    this.hot = new HotKeyTracker(init.shards.length, init.config.hotKeys, () => this.clock.now() + this.clock.processStarted);
    this.cluster = init.cluster;
    this.access.observe((store) => new StoreWatch(this.watch, store, this.client));
    this.port = init.port;
    this.port.on('message', (msg: ToThread) => this.onMessage(msg));
    this.listeners = init.listen.map((l) => net.createServer({ noDelay: true }, (socket) => this.accept(socket, l.tls)));
  }

  async start(): Promise<void> {
    if (this.config.tls !== null) {
      const { TlsAcceptor } = await import('../tls/acceptor.js');
      this.tls = new TlsAcceptor(this.config.tls, this.tlsCounters(), (client) => this.serve(client.socket, client));
    }
    if (this.init.startTogether) await UdpEndpoint.checkPortFree(this.config, this.thread);
    if (this.init.startTogether) this.waitForEveryThread();
    // UDP first: a port in use fails the start before anything else is open
    this.udp = await UdpEndpoint.open(this, this.config, this.thread);
    await Promise.all(
      this.listeners.map(
        (listener, i) =>
          new Promise<void>((resolve, reject) => {
            listener.once('error', reject);
            listener.listen({ ...this.init.listen[i]!.at, backlog: this.config.backlog }, () => {
              listener.off('error', reject);
              refuseEarly(listener, () => this.full(), TOO_MANY_CONNECTIONS, () => this.refused());
              resolve();
            });
          }),
      ),
    ).catch((err: unknown) => {
      this.udp?.close();
      throw err;
    });
    const idle = idleTimeout(this.config);
    if (idle > 0) setInterval(() => this.kickIdle(idle), IDLE_CHECK_MS);
    // a shard's crawler runs in the thread with its number; any thread could, under the lock
    if (this.thread < this.access.count) {
      const schedule = new CrawlSchedule();
      setInterval(() => {
        if (Atomics.load(this.stats.shared, Cell.crawlerEnabled) !== 1 || !schedule.due(this.clock.now())) return;
        const step = this.access.with(this.thread, (store) => store.crawl(CRAWL_PER_TICK));
        schedule.stepped(this.clock.now(), step);
      }, CRAWL_INTERVAL_MS);
    }
    this.reportMemory();
    setInterval(() => this.reportMemory(), MEMORY_REPORT_MS).unref();
  }

  /** This thread's heap, for memshard_memory_bytes (only the thread itself can read its isolate's). */
  private reportMemory(): void {
    const heap = v8.getHeapStatistics();
    this.stats.set(this.thread, Field.heapBytes, heap.total_heap_size);
    this.stats.set(this.thread, Field.externalBytes, heap.external_memory);
  }

  /** Every connection -c allows is open (over all threads). */
  private full(): boolean {
    return Atomics.load(this.stats.shared, Cell.connections) >= this.config.connLimit;
  }

  private refused(): void {
    this.stats.add(this.thread, Field.rejectedConnections, 1);
    this.log(1, 'Too many open connections');
  }

  private accept(socket: net.Socket, tls: boolean): void {
    const shared = this.stats.shared;
    // a reset from the peer must not become an unhandled 'error' event that ends the thread
    socket.on('error', (err) => this.log(2, `connection error: ${err.message}`));
    // the place is taken here; refuseEarly only spares the Socket when -c is plainly reached
    if (Atomics.add(shared, Cell.connections, 1) >= this.config.connLimit) {
      Atomics.sub(shared, Cell.connections, 1);
      this.refused();
      // memcached's maxconns_fast: write the error and close at once (a fresh socket takes the
      // line whole, so nothing is left queued); no shutdown round, no descriptor left waiting
      socket.write(TOO_MANY_CONNECTIONS);
      socket.destroy();
      return;
    }
    this.stats.add(this.thread, Field.currConnections, 1);
    this.stats.add(this.thread, Field.totalConnections, 1);
    // a TLS client holds its place from accept on, through its handshake
    socket.on('close', () => {
      Atomics.sub(shared, Cell.connections, 1);
      this.stats.add(this.thread, Field.currConnections, -1);
    });
    if (this.tls === null || !tls) this.serve(socket, null);
    else this.tls.accept(socket);
  }

  /** A connection on `socket` (a TLS one with -Z) is ready for requests. */
  private serve(socket: net.Socket, secure: SecureClient | null): void {
    // ids unique over threads: thread + threads * n
    const id = this.thread + this.config.threads * this.connectionsAccepted++;
    const conn = new Connection(socket, this, id, secure === null ? this.readBuffer : null);
    conn.peerSubject = secure?.peerSubject ?? null;
    this.connections.add(conn);
    const kind = this.config.protocol === 'auto' ? 'auto-negotiating' : this.config.protocol;
    this.log(2, `<${conn.id} new ${kind} client connection`);
    if (secure !== null) this.log(2, `<${conn.id} TLS ${secure.protocol}${secure.peerSubject === null ? '' : `, client certificate ${secure.peerSubject}`}`);
    const [ip, port, transport] = this.config.unixSocket === undefined ? [unmapped(socket.remoteAddress ?? ''), socket.remotePort ?? 0, 'tcp' as const] : ['unix', 0, 'local' as const];
    if (this.watch.wants(WatchKind.connevents)) this.watch.emit(WatchKind.connevents, WatchLine.connNew(ip, port, transport, conn.id));
    socket.on('error', () => (conn.closeReason = 'error'));
    socket.on('close', () => {
      if (this.watch.wants(WatchKind.connevents)) this.watch.emit(WatchKind.connevents, WatchLine.connClose(ip, port, transport, conn.closeReason, conn.id));
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
      conn.closeReason = 'idle_timeout';
      conn.socket.destroy();
    }
  }

  shardOf(key: Uint8Array): number {
    return this.ring.shardOf(key);
  }

  execute(shard: number, cmd: KeyCommand, client = -1): Buffer {
    this.client.id = client;
    const reply = this.access.run(shard, cmd);
    if (Atomics.load(this.stats.shared, Cell.detailEnabled) === 1) this.recordPrefix(cmd, reply);
    this.hot.record(shard, cmd.op, cmd.key);
    return reply;
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
        return this.startWatch(cmd.args, conn, slot);
      case 'refresh_certs':
        return this.refreshCerts();
      case 'config':
        return this.clusterCommand(cmd.args);
      case 'stats': {
        if (cmd.group === 'cachedump') return this.cachedump(cmd.args);
        const later = (reply: (r: ThreadReport) => string): undefined => {
          this.gather((report) => {
            conn.fill(slot, Buffer.from(reply(report), 'latin1'));
            conn.flushReplies();
          });
          return undefined;
        };
        if (cmd.group === 'hotkeys') {
          const rows = this.hotKeys(cmd.args);
          return rows === null ? Errors.badFormat : later((r) => renderRows(rows(r)));
        }
        if (cmd.group === 'detail') {
          const sub = cmd.args[0];
          if (sub === 'dump') return later((r) => renderPrefixDump(r.prefixes));
          if (sub !== 'on' && sub !== 'off') return Errors.detailUsage;
          this.setDetail(sub === 'on');
          return 'OK\r\n';
        }
        if (!this.needsEveryThread(cmd.group)) return this.reporter.report(cmd.group, cmd.args);
        return later((r) => this.reporter.report(cmd.group, cmd.args, r.conns));
      }
    }
  }

  /**
   * memcached's `refresh_certs`: load the certificate files again; new handshakes on every thread
   * use them, open connections keep theirs. A failure keeps the old ones and says why.
   */
  private refreshCerts(): string {
    if (this.tls === null) return Errors.tlsNotEnabled;
    const failed = this.tls.reload();
    return failed === null ? 'OK\r\n' : `${failed}\r\n`;
  }

  /** ElastiCache's `config get cluster`; a server without Auto Discovery answers ERROR, as memcached. */
  private clusterCommand(args: string[]): string {
    const view = this.cluster;
    if (view === null || args[0] !== 'get' || args[1] !== 'cluster' || args.length !== 2) return Errors.error;
    this.countConfigGet();
    return renderClusterConfig(view.version, view.line);
  }

  clusterConfig(): string | null {
    return this.cluster === null ? null : clusterPayload(this.cluster.version, this.cluster.line);
  }

  countConfigGet(): void {
    this.stats.add(this.thread, Field.configGets, 1);
  }

  private tlsCounters(): TlsCounters {
    const add = (field: number) => this.stats.add(this.thread, field, 1);
    return {
      handshakeFailed: (reason) => {
        add(Field.sslHandshakeErrors);
        this.log(1, `TLS handshake failed: ${reason}`);
      },
      protocolError: (reason) => {
        add(Field.sslProtoErrors);
        this.log(2, `TLS error: ${reason}`);
      },
      newSession: () => add(Field.sslNewSessions),
      handshakeSeconds: (seconds) => this.observeLatency('text', 'tls_handshake', seconds),
      reloaded: () => {
        certificatesReloaded(this.stats.shared, this.clock.now());
        this.log(1, 'TLS certificates reloaded');
      },
    };
  }

  /** `watch [kinds]`: the connection receives every thread's log lines of those kinds from now on. */
  private startWatch(names: string[], conn: Connection, slot: number): string {
    if (!this.config.watchEnabled) return Errors.watchDisabled;
    if (!conn.isFrontReply(slot)) return Errors.watchPipelined;
    const kinds = parseWatchKinds(names);
    if (kinds === null) return Errors.error;
    this.watch.add(conn.startWatching(watcherBufferKb(this.config) * 1024), kinds);
    return 'OK\r\n';
  }

  flushAll(delay: number): boolean {
    if (!this.config.flushEnabled) return false;
    this.stats.add(this.thread, Field.flushCommands, 1);
    this.access.flushAll(delay);
    return true;
  }

  statsRows(group: string, then: (rows: Row[] | null) => void): void {
    // the binary Stat key `detail on|off|dump`, matched by prefix as memcached does
    if (group.startsWith('detail')) {
      const sub = group.slice(6);
      if (sub.startsWith(' dump')) return this.gather((r) => then([['detailed', renderPrefixDump(r.prefixes)]]));
      if (sub.startsWith(' on') || sub.startsWith(' off')) {
        this.setDetail(sub.startsWith(' on'));
        return then([]);
      }
      return then(null);
    }
    if (group === 'hotkeys' || group.startsWith('hotkeys ')) {
      const rows = this.hotKeys(group.split(' ').slice(1).filter((a) => a !== ''));
      return rows === null ? then(null) : this.gather((r) => then(rows(r)));
    }
    if (this.needsEveryThread(group)) this.gather((r) => then(this.reporter.rows(group, r.conns)));
    else then(this.reporter.rows(group));
  }

  /** `stats hotkeys [N]`: the rows, once every thread reported; null for a bad N. */
  private hotKeys(args: string[]): ((report: ThreadReport) => Row[]) | null {
    const top = hotKeysTop(args);
    if (top === null) return null;
    return (report) => hotKeysRows(report.hot ?? [], this.config.hotKeys, this.access.count, top);
  }

  /** `stats detail on|off`: every thread counts per prefix from now on, or stops. */
  private setDetail(on: boolean): void {
    Atomics.store(this.stats.shared, Cell.detailEnabled, on ? 1 : 0);
  }

  /** Per-prefix counts of this thread, cleared when `stats reset` (any thread's) moved the epoch. */
  private prefixStats(): PrefixStats {
    const epoch = Atomics.load(this.stats.shared, Cell.detailEpoch);
    if (epoch !== this.prefixEpoch) {
      this.prefixEpoch = epoch;
      this.prefixes.clear();
    }
    return this.prefixes;
  }

  /** memcached counts text get/set/delete and binary get/set/append/prepend/delete per prefix; meta commands are not counted. */
  private recordPrefix(cmd: KeyCommand, reply: Buffer): void {
    if (cmd.meta !== undefined) return;
    const event = PREFIX_EVENT[cmd.op];
    if (event === undefined) return;
    const hit = event === PrefixEvent.Get && (cmd.binary !== undefined ? reply.length > 7 && reply[6] === 0 && reply[7] === 0 : reply.length > (cmd.end ? 5 : 0));
    this.prefixStats().record(cmd.key, event, hit);
  }

  /**
   * Before a stats group is reported: `reset` clears the shards' counters (under their locks;
   * the reporter clears the threads'), `sizes_enable|disable` switch size tracking. True for
   * `conns`, which needs every thread's connections.
   */
  private needsEveryThread(group: string): boolean {
    if (group === 'reset') {
      this.access.resetStats();
      // memcached's stats reset clears the prefix stats too: every thread drops its counts
      Atomics.add(this.stats.shared, Cell.detailEpoch, 1);
    }
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

  /** Ask the main thread for every thread's report. */
  private gather(then: (report: ThreadReport) => void): void {
    const request = this.nextRequest++;
    this.gathering.set(request, then);
    this.send({ type: 'gather', request });
  }

  private connInfo(): ConnInfo[] {
    return [...this.connections].map((conn) => {
      const s = conn.socket;
      return {
        id: conn.id,
        // memcached prints an unnamed UNIX-socket peer this way
        addr: this.config.unixSocket === undefined ? `tcp:${unmapped(s.remoteAddress ?? '')}:${s.remotePort}` : '?:<AF 0>',
        listenAddr: this.config.unixSocket === undefined ? `tcp:${unmapped(s.localAddress ?? '')}:${s.localPort}` : `unix:${this.config.unixSocket}`,
        state: conn.state,
        lastCommandAt: conn.lastCommandAt,
        peerSubject: conn.peerSubject,
      };
    });
  }

  private onMessage(msg: ToThread): void {
    switch (msg.type) {
      case 'report':
        return this.send({ type: 'report', request: msg.request, report: { conns: this.connInfo(), prefixes: this.prefixStats().entries(), hot: [this.hot.report()] } });
      case 'gathered': {
        const then = this.gathering.get(msg.request);
        this.gathering.delete(msg.request);
        return then?.(msg.report);
      }
      case 'crash':
        this.log(1, `fault injection: thread ${this.thread} exits${msg.holdingLock ? ' holding its shard lock' : ''}`);
        if (msg.holdingLock) lock(this.init.locks, this.thread, this.thread);
        return process.exit(1);
      case 'cluster':
        this.cluster = msg.view;
        return;
      case 'close':
        for (const listener of this.listeners) listener.close();
        this.udp?.close();
        for (const conn of this.connections) {
          conn.closeReason = 'shutdown';
          conn.socket.destroy();
        }
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
