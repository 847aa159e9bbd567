/**
 * The daemon: TCP listener, connection limit, routing of key commands to shards, and the commands
 * the front end answers itself (version, verbosity, quit, shutdown, flush_all, stats).
 */
import type http from 'node:http';
import net from 'node:net';
import type { Credentials } from './auth.js';
import type { Config } from './config.js';
import { shardStoreConfigs } from './config.js';
import { Connection, type ConnectionHost } from './connection.js';
import { Op, type KeyCommand, type LocalCommand, type ShardOp } from './protocol/command.js';
import { Errors } from './protocol/text.js';
import { processStartedNow, serverClock } from './clock.js';
import { GarbageBound } from './gc.js';
import { HashRing } from './router.js';
import { ShardSet, type ReplySink } from './shards/shard-set.js';
import { Exporter } from './metrics/exporter.js';
import type { HistogramChild } from './metrics/histogram.js';
import { serveMetrics } from './metrics/http.js';
import { StatsReporter } from './stats.js';
import { MEMCACHED_VERSION } from './version.js';

const TOO_MANY_CONNECTIONS = 'ERROR Too many open connections\r\n';
const NO_KEY = new Uint8Array(0);

export interface ServerCounters {
  currConnections: number;
  totalConnections: number;
  rejectedConnections: number;
  bytesRead: number;
  bytesWritten: number;
  /** flush_all commands (each shard counts its own flush too: this is the command count). */
  flushCommands: number;
  authCommands: number;
  authErrors: number;
}

/** Who may talk to the server: SASL PLAIN users (-S) or text-protocol users (-Y); null = open. */
export interface ServerAuth {
  sasl: Credentials | null;
  ascii: Credentials | null;
}

export class Server implements ConnectionHost {
  readonly maxValue: number;
  readonly processStarted = processStartedNow();
  readonly clock = serverClock(this.processStarted);
  readonly counters: ServerCounters = {
    currConnections: 0,
    totalConnections: 0,
    rejectedConnections: 0,
    bytesRead: 0,
    bytesWritten: 0,
    flushCommands: 0,
    authCommands: 0,
    authErrors: 0,
  };
  verbosity: number;
  readonly connections = new Set<Connection>();
  readonly shards: ShardSet;
  private readonly ring: HashRing;
  private readonly stats: StatsReporter;
  private readonly exporter: Exporter;
  private metricsServer: http.Server | null = null;
  /** Latency histogram children by command name, created on first use. */
  private readonly latency = new Map<string, HistogramChild>();
  private readonly listener: net.Server;
  private nextConnId = 0;
  private readonly garbage = new GarbageBound();
  private closed = false;

  readonly sasl: Credentials | null;
  readonly asciiAuth: Credentials | null;

  constructor(
    readonly config: Config,
    auth: ServerAuth = { sasl: null, ascii: null },
  ) {
    this.sasl = auth.sasl;
    this.asciiAuth = auth.ascii;
    this.maxValue = config.maxItemSize;
    this.verbosity = config.verbosity;
    this.ring = new HashRing(config.threads);
    this.shards = new ShardSet(shardStoreConfigs(config), this.processStarted, (level, msg) => this.log(level, msg));
    this.stats = new StatsReporter(this);
    this.exporter = new Exporter(this.stats, () => this.shards.shards);
    for (const shard of this.shards.shards) shard.batchSizes = this.exporter.batchSize.child({ shard: String(shard.index) });
    this.listener = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  async start(): Promise<net.AddressInfo> {
    await this.shards.start();
    await new Promise<void>((resolve, reject) => {
      this.listener.once('error', reject);
      this.listener.listen({ port: this.config.port, host: this.config.listen, backlog: 1024 }, () => {
        this.listener.off('error', reject);
        resolve();
      });
    });
    if (this.config.metricsPort !== 0) {
      const host = this.config.metricsListen ?? this.config.listen;
      this.metricsServer = await serveMetrics(this.exporter, this.config.metricsPort, host, (level, msg) => this.log(level, msg));
    }
    const address = this.listener.address() as net.AddressInfo;
    this.log(1, `memshard listening on ${address.address}:${address.port} with ${this.config.threads} shards`);
    return address;
  }

  private accept(socket: net.Socket): void {
    const counters = this.counters;
    // a reset from the peer must not become an unhandled 'error' event that ends the process
    socket.on('error', (err) => this.log(2, `connection error: ${err.message}`));
    if (counters.currConnections >= this.config.connLimit) {
      counters.rejectedConnections++;
      this.log(1, 'Too many open connections');
      socket.end(TOO_MANY_CONNECTIONS);
      return;
    }
    counters.currConnections++;
    counters.totalConnections++;
    const conn = new Connection(socket, this, this.nextConnId++);
    this.connections.add(conn);
    this.log(2, `<${conn.id} new client connection`);
    socket.on('close', () => {
      counters.currConnections--;
      this.connections.delete(conn);
      this.log(2, `<${conn.id} connection closed.`);
    });
  }

  get shardCount(): number {
    return this.config.threads;
  }

  shardOf(key: Uint8Array): number {
    return this.ring.shardOf(key);
  }

  dispatch(shard: number, cmd: KeyCommand, sink: ReplySink, slot: number, inline: boolean): boolean {
    if (inline) {
      const reply = this.shards.tryInline(shard, cmd);
      if (reply !== null) {
        sink.fill(slot, reply);
        return true;
      }
    }
    // noreply commands get an empty reply too: its arrival tells the connection they are applied
    this.shards.enqueue(shard, cmd, sink, slot);
    return false;
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
        this.verbosity = Math.min(cmd.level, 2);
        return cmd.noreply ? '' : 'OK\r\n';
      case 'flush_all':
        this.flushAll(cmd.delay, () => {
          conn.fill(slot, cmd.noreply ? EMPTY : OK);
          conn.flushReplies();
        });
        return undefined;
      case 'shutdown':
        if (!this.config.enableShutdown) return Errors.shutdownDisabled;
        if (cmd.mode === 'invalid') return Errors.shutdownMode;
        this.log(1, `shutdown requested by connection ${conn.id}`);
        setImmediate(() => void this.close().then(() => process.exit(0)));
        return null;
      case 'debug':
        return this.debug(cmd.args);
      case 'stats':
        this.settled(cmd.group === 'reset', () => {
          conn.fill(slot, Buffer.from(this.stats.report(cmd.group, cmd.args), 'latin1'));
          conn.flushReplies();
        });
        return undefined;
    }
  }

  /** flush_all: `done` runs once every shard has applied it (so a later get may read shared memory). */
  flushAll(delay: number, done: () => void): void {
    this.counters.flushCommands++;
    this.broadcast(Op.FlushAll, delay, done);
  }

  /** Run `then` once every shard has executed what was queued before (and reset its stats first if asked). */
  settled(resetStats: boolean, then: () => void): void {
    this.broadcast(resetStats ? Op.ResetStats : Op.Barrier, 0, then);
  }

  /** Rows of a stats group, for the binary Stat command (null: unknown group). */
  statsRows(group: string): Array<[string, string | number]> | null {
    return this.stats.rows(group);
  }

  /**
   * Test hooks, like memcached's debug-build commands: off unless MEMSHARD_FAULT_INJECTION=1.
   * `debug crash_shard <n>` makes shard n's worker exit, to exercise its replacement.
   */
  private debug(args: string[]): string {
    const shard = Number(args[1]);
    if (process.env['MEMSHARD_FAULT_INJECTION'] !== '1' || args[0] !== 'crash_shard') return Errors.error;
    if (!Number.isInteger(shard) || shard < 0 || shard >= this.config.threads) return Errors.badFormat;
    this.log(1, `fault injection: crashing shard ${shard}`);
    this.shards.enqueue(shard, keyless(Op.Crash, 0, true), null, 0);
    return 'OK\r\n';
  }

  /**
   * Send a key-less command to every shard; `done` runs when all of them have executed it. A
   * command without `done` needs no wait: it is queued ahead of any later command on every shard,
   * so no client can observe it unapplied.
   */
  private broadcast(op: ShardOp, exptime: number, done: (() => void) | null): void {
    let waiting = this.config.threads;
    const sink: ReplySink | null =
      done === null
        ? null
        : {
            fill: () => {
              if (--waiting === 0) done();
            },
            flushReplies: () => {},
          };
    for (let shard = 0; shard < this.config.threads; shard++) this.shards.enqueue(shard, keyless(op, exptime, sink === null), sink, 0);
  }

  observeLatency(command: string, seconds: number): void {
    let child = this.latency.get(command);
    if (child === undefined) {
      child = this.exporter.latency.child({ command, protocol: 'text' });
      this.latency.set(command, child);
    }
    child.observe(seconds);
  }

  countAuth(ok: boolean): void {
    this.counters.authCommands++;
    if (!ok) this.counters.authErrors++;
  }

  countRead(bytes: number): void {
    this.counters.bytesRead += bytes;
    this.garbage.allocated(bytes);
  }

  countWritten(bytes: number): void {
    this.counters.bytesWritten += bytes;
  }

  log(level: number, msg: string): void {
    if (this.verbosity >= level) process.stderr.write(`${msg}\n`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listener.close();
    this.metricsServer?.close();
    for (const conn of this.connections) conn.socket.destroy();
    await this.shards.close();
  }
}

/** A command for a whole shard rather than a key (flush, stats barrier, fault injection). */
function keyless(op: ShardOp, exptime: number, noreply: boolean): KeyCommand {
  return { op, key: NO_KEY, flags: 0, exptime, cas: 0, delta: 0n, value: null, noreply, end: false };
}

const EMPTY = Buffer.alloc(0);
const OK = Buffer.from('OK\r\n');
