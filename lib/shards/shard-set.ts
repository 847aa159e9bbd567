/**
 * The front end's side of the shard workers: one piscina pool of exactly one thread per shard
 * (piscina supervises and respawns; it is not on the request path), one MessagePort per shard for
 * packed batches, and per-shard FIFO bookkeeping of who waits for which reply.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { KeyCommand } from '../protocol/command.js';
import { serverClock } from '../clock.js';
import { Store, type StoreConfig } from '../store/store.js';
import { BatchWriter, ReplyReader } from './batch.js';
import { CommandExecutor } from './execute.js';
import { newShardLock, tryLock, unlock } from './lock.js';

/** Who receives a reply: the connection and its reply slot. */
export interface ReplySink {
  fill(slot: number, reply: Buffer): void;
  /** Write whatever replies are ready, in order (a no-op when nothing is). */
  flushReplies(): void;
}

export interface ShardInit {
  sab: SharedArrayBuffer;
  lock: Int32Array;
  port: MessagePort;
  store: StoreConfig;
  processStarted: number;
}

const WORKER_URL = new URL('../../workers/shard.js', import.meta.url);
const SHARD_DIED = Buffer.from('SERVER_ERROR shard restarted, request lost\r\n');
const START_ATTEMPTS = 10;

class Shard {
  readonly writer = new BatchWriter();
  /** Sinks and slots of the batch being built, then of each batch in flight, oldest first. */
  private sinks: Array<ReplySink | null> = [];
  private slots: number[] = [];
  private readonly inflight: Array<{ sinks: Array<ReplySink | null>; slots: number[] }> = [];
  private port: MessagePort | null = null;
  private readonly pool: Piscina;
  readonly sab: SharedArrayBuffer;
  private readonly lock = newShardLock();
  /** Runs commands on the front end's view of the shard's store, only while holding the shard lock. */
  private readonly inline: CommandExecutor;
  /** Off while the worker is being replaced: its store is not to be read then. */
  private readable = false;
  batches = 0;
  /** Where batch sizes are recorded for metrics, when enabled. */
  batchSizes: { observe(value: number): void } | null = null;
  /** Workers replaced after dying (counted once the replacement serves). */
  restarts = 0;
  inlineCommands = 0;

  constructor(
    readonly index: number,
    readonly config: StoreConfig,
    private readonly processStarted: number,
    private readonly log: (level: number, msg: string) => void,
    private readonly stopping: () => boolean,
  ) {
    this.sab = new SharedArrayBuffer(Store.byteLength(config));
    this.pool = new Piscina({
      filename: WORKER_URL.href,
      minThreads: 1,
      maxThreads: 1,
      idleTimeout: Infinity,
      // 'sync' would freeze the worker's event loop between tasks, and with it the expiry crawler
      atomics: 'disabled',
      // a shard worker allocates little (its data lives in the shared buffer): keep its heap small
      resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 128 },
    });
    this.pool.on('error', (err: unknown) => this.log(1, `shard ${index}: worker error: ${String(err)}`));
    this.inline = new CommandExecutor(new Store(this.sab, config, serverClock(processStarted), true));
  }

  /** Hand the shard to a worker; retried while piscina is still replacing a dead one. */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const { port1, port2 } = new MessageChannel();
      const init: ShardInit = { sab: this.sab, lock: this.lock, port: port2, store: this.config, processStarted: this.processStarted };
      try {
        await this.pool.run(init, { transferList: [port2] as never });
      } catch (err) {
        port1.close();
        if (attempt === START_ATTEMPTS || this.stopping()) throw err;
        await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
        continue;
      }
      port1.on('message', (ab: ArrayBuffer) => this.onReply(ab));
      port1.on('close', () => this.onWorkerGone(port1));
      this.port = port1;
      this.readable = true;
      return;
    }
  }

  /**
   * Run a command on this thread, straight on the shard's shared memory, when the worker is not
   * using it: no hop, no wait. It may overtake other connections' queued commands, which are
   * concurrent with it (the connection makes sure none of its own are queued on this shard).
   * Returns the reply, or null when the command must be queued.
   */
  tryInline(cmd: KeyCommand): Buffer | null {
    if (!this.readable || !tryLock(this.lock)) return null;
    try {
      this.inlineCommands++;
      return this.inline.runOne(cmd);
    } finally {
      unlock(this.lock);
    }
  }

  enqueue(cmd: KeyCommand, sink: ReplySink | null, slot: number): void {
    this.writer.add(cmd);
    this.sinks.push(sink);
    this.slots.push(slot);
  }

  send(): void {
    if (this.writer.count === 0) return;
    this.batchSizes?.observe(this.writer.count);
    const batch = this.writer.take();
    this.inflight.push({ sinks: this.sinks, slots: this.slots });
    this.sinks = [];
    this.slots = [];
    this.batches++;
    if (this.port === null) {
      this.failInflight();
      return;
    }
    this.port.postMessage(batch, [batch]);
  }

  private onReply(ab: ArrayBuffer): void {
    const batch = this.inflight.shift();
    if (batch === undefined) return;
    const replies = new ReplyReader(ab);
    const { sinks, slots } = batch;
    // fill every slot first, then write once per connection: one socket write per reply message
    const touched: ReplySink[] = [];
    let last: ReplySink | null = null;
    for (let i = 0; i < replies.count; i++) {
      const sink = sinks[i];
      if (sink == null) continue;
      sink.fill(slots[i]!, replies.slice(i));
      if (sink !== last) {
        touched.push(sink);
        last = sink;
      }
    }
    for (const sink of touched) sink.flushReplies();
  }

  /** A dead worker takes its shard with it: answer what was in flight, start a fresh empty shard. */
  private onWorkerGone(port: MessagePort): void {
    if (port !== this.port) return;
    this.port = null;
    // the dead worker may have died holding the lock: stop reading, then free it for the next one
    this.readable = false;
    unlock(this.lock);
    this.failInflight();
    if (this.stopping()) return;
    this.log(1, `shard ${this.index}: worker exited, restarting it with an empty shard`);
    this.start().then(
      () => {
        this.restarts++;
        this.log(1, `shard ${this.index}: replacement worker serving`);
      },
      (err: unknown) => this.log(1, `shard ${this.index}: restart failed: ${String(err)}`),
    );
  }

  private failInflight(): void {
    const touched = new Set<ReplySink>();
    for (const batch of this.inflight.splice(0)) {
      batch.sinks.forEach((sink, i) => {
        if (sink === null) return;
        sink.fill(batch.slots[i]!, SHARD_DIED);
        touched.add(sink);
      });
    }
    for (const sink of touched) sink.flushReplies();
  }

  async close(): Promise<void> {
    this.port?.close();
    this.port = null;
    await this.pool.destroy();
  }
}

export class ShardSet {
  readonly shards: Shard[];
  private scheduled = false;
  private stopped = false;

  constructor(configs: StoreConfig[], processStarted: number, log: (level: number, msg: string) => void) {
    this.shards = configs.map((cfg, i) => new Shard(i, cfg, processStarted, log, () => this.stopped));
  }

  async start(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.start()));
  }

  /** Run a command at once on this thread if its shard allows it (see Shard.tryInline). */
  tryInline(shard: number, cmd: KeyCommand): Buffer | null {
    return this.shards[shard]!.tryInline(cmd);
  }

  /** Queue a command for a shard; all queued commands leave as one batch per shard this turn. */
  enqueue(shard: number, cmd: KeyCommand, sink: ReplySink | null, slot: number): void {
    this.shards[shard]!.enqueue(cmd, sink, slot);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.sendAll);
    }
  }

  private readonly sendAll = (): void => {
    this.scheduled = false;
    for (const shard of this.shards) shard.send();
  };

  async close(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.shards.map((s) => s.close()));
  }
}
