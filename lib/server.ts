/**
 * The daemon's main thread: it owns the shards' memory and the listening socket, starts the `-t`
 * serving threads (which do all the protocol work), replaces a thread that dies, serves /metrics
 * and relays what needs every thread (`stats conns`, shutdown, fault injection).
 */
import type http from 'node:http';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { Credentials } from './auth.js';
import type { Config } from './config.js';
import { crawlerSettings, firstHost, listeners, shardStoreConfigs, trackSizes } from './config.js';
import { processStartedNow, serverClock, tickingClockCell } from './clock.js';
import { Exporter } from './metrics/exporter.js';
import { serveMetrics } from './metrics/http.js';
import { dashboardRoutes } from './dashboard/routes.js';
import { SnapshotBuilder } from './dashboard/snapshot.js';
import { newShardLocks, takeOver, unlock } from './shards/lock.js';
import type { ShardMemory } from './shards/shard-access.js';
import { StatsReporter } from './stats.js';
import { Store } from './store/store.js';
import { reloadServerTls } from './tls/acceptor.js';
import { ClusterDiscovery } from './cluster/discovery.js';
import { openListenSocket, type ListenAt, type ListenSocket } from './threads/listen-socket.js';
import type { ThreadInit, ThreadListener, ThreadReport, ToMain, ToThread } from './threads/messages.js';
import { Cell, certificatesReloaded, newThreadStatsBuffers, ThreadStats, type ThreadStatsBuffers } from './threads/thread-stats.js';

/**
 * A serving thread's young generation. V8's default grows it to 16+ MB per thread under load,
 * and keeps it: 2 MB holds a turn's garbage and cut RSS after a 50-connection load by 25 MB at
 * -t 4 (168 -> 142 MB), at the same CPU per request (40 vs 40 us, alternating runs).
 */
const WORKER_YOUNG_GENERATION_MB = 2;

/** Who may talk to the server: SASL PLAIN users (-S) or text-protocol users (-Y); null = open. */
export interface ServerAuth {
  sasl: Credentials | null;
  ascii: Credentials | null;
}

const WORKER_URL = new URL('../workers/serve.js', import.meta.url);
const START_ATTEMPTS = 10;
const CLOSE_TIMEOUT_MS = 2000;

/** One serving thread's place: its piscina pool (one thread) and its port, null while it is down. */
interface ThreadSlot {
  pool: Piscina;
  port: MessagePort | null;
  /** Between the thread's start and its piscina task's answer. */
  starting: boolean;
}

/** A report of every thread (`stats conns`, `stats detail dump`) being gathered for thread `from`. */
interface Gathering {
  id: number;
  /** The thread that asked, or -1 for the main thread itself (then `done`). */
  from: number;
  done?: (report: ThreadReport) => void;
  request: number;
  waiting: Set<number>;
  report: ThreadReport;
}

export class Server {
  readonly processStarted = processStartedNow();
  readonly clock = serverClock(this.processStarted);
  readonly shards: ShardMemory[];
  readonly threads: ThreadStats;
  private readonly statsBuffers: ThreadStatsBuffers;
  private readonly locks: Int32Array;
  private readonly slots: ThreadSlot[];
  private readonly exporter: Exporter;
  /** One per listener (-l), each shared by every thread; the first one's port is the daemon's. */
  private listenSockets: ListenSocket[] = [];
  /** Whether each listener speaks TLS. */
  private listenerTls: boolean[] = [];
  private metricsServer: http.Server | null = null;
  private readonly gatherings = new Map<number, Gathering>();
  /** Auto Discovery (--cluster-*), null without it. */
  private readonly cluster: ClusterDiscovery | null;
  private nextGathering = 0;
  private closed = false;

  constructor(
    readonly config: Config,
    private readonly auth: ServerAuth = { sasl: null, ascii: null },
  ) {
    this.shards = shardStoreConfigs(config).map((cfg) => {
      const sab = new SharedArrayBuffer(Store.byteLength(cfg));
      const store = new Store(sab, cfg, this.clock);
      if (config.preallocate) store.commitPages();
      if (trackSizes(config)) store.setSizeTracking(true);
      return { sab, config: cfg };
    });
    this.locks = newShardLocks(config.threads);
    this.statsBuffers = newThreadStatsBuffers(config.threads);
    this.threads = new ThreadStats(this.statsBuffers, config.threads);
    const cells = this.threads.shared;
    Atomics.store(cells, Cell.verbosity, config.verbosity);
    const crawler = crawlerSettings(config);
    Atomics.store(cells, Cell.crawlerEnabled, crawler.enabled ? 1 : 0);
    Atomics.store(cells, Cell.crawlerSleepUs, crawler.sleepUs);
    Atomics.store(cells, Cell.crawlerToCrawl, crawler.toCrawl | 0);
    Atomics.store(cells, Cell.memoryLimitMb, config.memoryLimitMb);
    Atomics.store(cells, Cell.detailEnabled, config.detailAtStart ? 1 : 0);
    Atomics.store(cells, Cell.certRefreshedAt, this.clock.now());
    this.cluster = config.cluster === null
      ? null
      : new ClusterDiscovery(config.cluster, (view) => this.slots.forEach((_, t) => this.post(t, { type: 'cluster', view })), (level, msg) => this.log(level, msg));
    this.exporter = new Exporter(new StatsReporter({ config, clock: this.clock, shards: this.shards, threads: this.threads }), this.threads);
    this.slots = Array.from({ length: config.threads }, (_, t) => {
      const pool = new Piscina({
        filename: WORKER_URL.href,
        minThreads: 1,
        maxThreads: 1,
        idleTimeout: Infinity,
        // 'sync' would freeze the thread's event loop between tasks, and with it its sockets
        atomics: 'disabled',
        resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
      });
      pool.on('error', (err: unknown) => this.log(1, `thread ${t}: error: ${String(err)}`));
      return { pool, port: null, starting: false };
    });
  }

  /** SIGHUP: read --cluster-file again (it is also followed as it changes). */
  reloadCluster(): void {
    void this.cluster?.refresh(false);
  }

  /** SIGHUP with -Z: check the certificate files; good ones are taken by every thread's next handshake. */
  refreshCerts(): string | null {
    const failed = this.config.tls === null ? 'Error TLS not enabled' : reloadServerTls(this.config.tls);
    if (failed !== null) return failed;
    certificatesReloaded(this.threads.shared, this.clock.now());
    this.log(1, 'TLS certificates reloaded');
    return null;
  }

  get verbosity(): number {
    return Atomics.load(this.threads.shared, Cell.verbosity);
  }

  async start(): Promise<{ port: number }> {
    const config = this.config;
    // the node list first: a bad file or an unknown name fails the start, as a bad flag does
    await this.cluster?.start();
    const specs: Array<{ at: ListenAt; tls: boolean }> = config.unixSocket === undefined
      ? listeners(config).map((l) => ({ at: { port: l.port, host: l.host }, tls: l.tls }))
      : [{ at: { path: config.unixSocket, mask: config.unixMask }, tls: config.tls !== null }];
    this.listenerTls = specs.map((s) => s.tls);
    for (const spec of specs) this.listenSockets.push(await openListenSocket(spec.at, config.backlog));
    const perSocket = await Promise.all(this.listenSockets.map((s) => s.forThreads(config.threads)));
    const listensOf = (t: number): ThreadListener[] => specs.map((spec, i) => ({ at: perSocket[i]![t]!, tls: spec.tls }));
    // /metrics before the threads serve: once the memcached port answers, the metrics port does too
    if (config.metricsPort !== 0) {
      const host = config.metricsListen ?? firstHost(config);
      const log = (level: number, msg: string) => this.log(level, msg);
      this.metricsServer = await serveMetrics(this.exporter, config.metricsPort, host, log, this.dashboard(log));
    }
    await Promise.all(Array.from({ length: config.threads }, (_, t) => this.startThread(t, listensOf(t), true)));
    const where = config.unixSocket ?? specs.map((s, i) => `${s.tls ? '' : config.tls === null ? '' : 'notls:'}${'host' in s.at ? s.at.host ?? '0.0.0.0' : ''}:${this.listenSockets[i]!.port}`).join(',');
    this.log(1, `memshard listening on ${where} with ${config.threads} threads`);
    return { port: this.listenSockets[0]!.port };
  }

  /** The dashboard's routes (lib/dashboard), behind the -S/-Y credentials unless --metrics-public. */
  private dashboard(log: (level: number, msg: string) => void): ReturnType<typeof dashboardRoutes> {
    const snapshots = new SnapshotBuilder({
      reporter: new StatsReporter({ config: this.config, clock: this.clock, shards: this.shards, threads: this.threads }),
      threads: this.threads,
      hotKeys: this.config.hotKeys,
      cluster: () => this.cluster?.current ?? null,
      gather: () => this.gather(),
    });
    const credentials = this.config.metricsPublic ? [] : [this.auth.sasl, this.auth.ascii].filter((c) => c !== null);
    return dashboardRoutes({ snapshots, credentials, log });
  }

  /** Start serving thread t, listening as told; retried while piscina is still replacing a dead one. */
  private async startThread(t: number, listen: ThreadListener[], startTogether = false): Promise<void> {
    const slot = this.slots[t]!;
    for (let attempt = 1; ; attempt++) {
      const { port1, port2 } = new MessageChannel();
      const init: ThreadInit = {
        thread: t,
        listen,
        startTogether,
        shards: this.shards,
        locks: this.locks,
        stats: this.statsBuffers,
        config: this.config,
        processStarted: this.processStarted,
        clock: tickingClockCell(),
        sasl: this.auth.sasl?.entries ?? null,
        ascii: this.auth.ascii?.entries ?? null,
        port: port2,
        cluster: this.cluster?.current ?? null,
      };
      // the thread may accept before run() resolves: main must already hear and reach it
      port1.on('message', (msg: ToMain) => this.onMessage(t, msg));
      port1.on('close', () => this.onThreadExit(t, port1));
      slot.port = port1;
      slot.starting = true;
      try {
        await slot.pool.run(init, { transferList: [port2] as never });
      } catch (err) {
        this.forget(t);
        port1.close();
        // a shutdown while threads were still starting is not a failure to start
        if (this.closed) return;
        if (attempt === START_ATTEMPTS) throw err;
        await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
        continue;
      } finally {
        slot.starting = false;
      }
      return;
    }
  }

  /**
   * A thread that died took its connections with it. A shard whose lock it held may be half
   * changed: it is emptied (a cache may lose entries, never return wrong ones); every other shard
   * is kept. Then a new thread takes its place and listens again.
   */
  private onThreadExit(t: number, port: MessagePort): void {
    const slot = this.slots[t]!;
    if (slot.port !== port) return;
    this.forget(t);
    // while starting, startThread tries again itself
    if (this.closed || slot.starting) return;
    this.log(1, `thread ${t}: exited, starting a replacement`);
    Promise.all(this.listenSockets.map((s) => s.forThreads(1)))
      .then((each) => this.startThread(t, each.map(([at], i) => ({ at: at!, tls: this.listenerTls[i]! }))))
      .then(
        () => {
          Atomics.add(this.threads.shared, Cell.threadRestarts, 1);
          this.log(1, `thread ${t}: replacement serving`);
        },
        (err: unknown) => this.log(1, `thread ${t}: restart failed: ${String(err)}`),
      );
  }

  /**
   * Thread t is gone: nothing is sent to it, nothing waits for its answer, and a shard whose lock
   * it held is repaired.
   */
  private forget(t: number): void {
    this.slots[t]!.port = null;
    this.threads.threadGone(t);
    for (const g of this.gatherings.values()) this.answered(g, t, { conns: [], prefixes: [] });
    if (this.closed) return;
    for (let s = 0; s < this.shards.length; s++) {
      if (!takeOver(this.locks, s, t, this.config.threads)) continue;
      const shard = this.shards[s]!;
      new Store(shard.sab, shard.config, this.clock);
      Atomics.add(this.threads.shared, Cell.shardResets, 1);
      unlock(this.locks, s);
      this.log(1, `shard ${s}: thread ${t} died holding its lock, shard emptied`);
    }
  }

  private onMessage(t: number, msg: ToMain): void {
    switch (msg.type) {
      case 'gather':
        this.startGathering({ from: t, request: msg.request });
        return;
      case 'report': {
        const g = this.gatherings.get(msg.request);
        if (g !== undefined) this.answered(g, t, msg.report);
        return;
      }
      case 'shutdown':
        setImmediate(() => void this.close().then(() => process.exit(0)));
        return;
      case 'crash':
        this.post(msg.thread, { type: 'crash', holdingLock: msg.holdingLock });
        return;
      case 'closed':
        return;
    }
  }

  /** Ask every live thread for its report; the merged one goes to `from` (or to `done`). */
  private startGathering(who: Pick<Gathering, 'from' | 'request' | 'done'>): void {
    const id = this.nextGathering++;
    const live = this.slots.flatMap((s, i) => (s.port === null ? [] : [i]));
    const g: Gathering = { ...who, id, waiting: new Set(live), report: { conns: [], prefixes: [], hot: [] } };
    this.gatherings.set(id, g);
    for (const i of live) this.post(i, { type: 'report', request: id });
    if (live.length === 0) this.finish(g);
  }

  /** Every thread's report, for the main thread's own use (the dashboard). */
  gather(): Promise<ThreadReport> {
    return new Promise((done) => this.startGathering({ from: -1, request: -1, done }));
  }

  private answered(g: Gathering, t: number, report: ThreadReport): void {
    if (!g.waiting.delete(t)) return;
    g.report.conns.push(...report.conns);
    g.report.prefixes.push(...report.prefixes);
    g.report.hot!.push(...(report.hot ?? []));
    if (g.waiting.size === 0) this.finish(g);
  }

  private finish(g: Gathering): void {
    this.gatherings.delete(g.id);
    if (g.done !== undefined) g.done(g.report);
    else this.post(g.from, { type: 'gathered', request: g.request, report: g.report });
  }

  private post(t: number, msg: ToThread): void {
    this.slots[t]?.port?.postMessage(msg);
  }

  log(level: number, msg: string): void {
    if (this.verbosity >= level) process.stderr.write(`${msg}\n`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.metricsServer?.close();
    for (const s of this.listenSockets) s.close();
    this.cluster?.stop();
    await Promise.all(
      this.slots.map(async (slot) => {
        const port = slot.port;
        if (port !== null) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
            port.on('message', (msg: ToMain) => {
              if (msg.type === 'closed') {
                clearTimeout(timer);
                resolve();
              }
            });
            port.postMessage({ type: 'close' } satisfies ToThread);
          });
        }
        slot.port = null;
        await slot.pool.destroy();
      }),
    );
  }
}
