/**
 * The front end's side of the shard workers: one piscina pool of exactly one thread per shard
 * (piscina supervises and respawns; it is not on the request path), one MessagePort per shard for
 * packed batches, and per-shard FIFO bookkeeping of who waits for which reply.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { KeyCommand } from '../protocol/command.js';
import { Store, type StoreConfig } from '../store/store.js';
import { BatchWriter, ReplyReader } from './batch.js';

/** Who receives a reply: the connection and its reply slot. */
export interface ReplySink {
  fill(slot: number, reply: Buffer): void;
  /** Write whatever replies are ready, in order (a no-op when nothing is). */
  flushReplies(): void;
}

export interface ShardInit {
  sab: SharedArrayBuffer;
  port: MessagePort;
  store: StoreConfig;
  processStarted: number;
}

const WORKER_URL = new URL('../../workers/shard.js', import.meta.url);
const SHARD_DIED = Buffer.from('SERVER_ERROR shard restarted, request lost\r\n');

class Shard {
  readonly writer = new BatchWriter();
  /** Sinks and slots of the batch being built, then of each batch in flight, oldest first. */
  private sinks: Array<ReplySink | null> = [];
  private slots: number[] = [];
  private readonly inflight: Array<{ sinks: Array<ReplySink | null>; slots: number[] }> = [];
  private port: MessagePort | null = null;
  private readonly pool: Piscina;
  readonly sab: SharedArrayBuffer;
  batches = 0;
  restarts = 0;

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
    });
    this.pool.on('error', (err: unknown) => this.log(1, `shard ${index}: worker error: ${String(err)}`));
  }

  async start(): Promise<void> {
    const { port1, port2 } = new MessageChannel();
    port1.on('message', (ab: ArrayBuffer) => this.onReply(ab));
    port1.on('close', () => this.onWorkerGone(port1));
    this.port = port1;
    const init: ShardInit = { sab: this.sab, port: port2, store: this.config, processStarted: this.processStarted };
    await this.pool.run(init, { transferList: [port2] as never });
  }

  enqueue(cmd: KeyCommand, sink: ReplySink | null, slot: number): void {
    this.writer.add(cmd);
    this.sinks.push(sink);
    this.slots.push(slot);
  }

  send(): void {
    if (this.writer.count === 0) return;
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
    this.failInflight();
    if (this.stopping()) return;
    this.restarts++;
    this.log(1, `shard ${this.index}: worker exited, restarting it with an empty shard`);
    this.start().catch((err: unknown) => this.log(1, `shard ${this.index}: restart failed: ${String(err)}`));
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
