/**
 * A serving thread's hot-key tracking: what its commands read and wrote, per shard always, and per
 * key name only with --hot-keys (two Space-Saving sketches, reads and writes). Counts go into
 * epochs of EPOCH_SECONDS aligned on the shared Unix clock, so that every thread's epochs line up;
 * the current and the previous epoch make the sliding window a report covers (between one and two
 * epochs long). Reports are merged over threads by mergeHotReports (lib/hotkeys/report.ts).
 */
import { Op } from '../protocol/command.js';
import { SpaceSaving, type SketchSummary } from './sketch.js';

/** One epoch's length: the window is the current epoch plus the previous one (10-20 s). */
export const EPOCH_SECONDS = 10;
/** Counters per sketch: any key above 1/SKETCH_CAPACITY of a thread's reads (or writes) in an epoch is found. */
export const SKETCH_CAPACITY = 512;
/** Entries per sketch sent in a report (the rest is covered by the summary's floor). */
export const REPORT_ENTRIES = 128;

/** Key commands that change an item (or its expiry); every other key command is a read. */
const WRITES = new Set<number>([
  Op.Set, Op.Add, Op.Replace, Op.Append, Op.Prepend, Op.Cas, Op.Delete, Op.Incr, Op.Decr, Op.Touch, Op.SetTooLarge,
  Op.MetaSet, Op.MetaDelete, Op.MetaArith,
]);
const IS_WRITE = new Uint8Array(256);
for (const op of WRITES) IS_WRITE[op] = 1;

/** One epoch of one thread. */
export interface EpochReport {
  epoch: number;
  /** Per key, null without --hot-keys. */
  reads: SketchSummary | null;
  writes: SketchSummary | null;
  /** Per shard: key commands run on it. */
  shardReads: number[];
  shardWrites: number[];
}

/** What one thread reports: its epochs in the window (newest first) and when it began counting. */
export interface HotThreadReport {
  epochs: EpochReport[];
  /** Unix ms the thread started counting (a replacement thread starts later). */
  since: number;
}

class Epoch {
  epoch = -1;
  readonly reads: SpaceSaving | null;
  readonly writes: SpaceSaving | null;
  readonly shardReads: Float64Array;
  readonly shardWrites: Float64Array;

  constructor(shards: number, keys: boolean) {
    this.reads = keys ? new SpaceSaving(SKETCH_CAPACITY) : null;
    this.writes = keys ? new SpaceSaving(SKETCH_CAPACITY) : null;
    this.shardReads = new Float64Array(shards);
    this.shardWrites = new Float64Array(shards);
  }

  reset(epoch: number): void {
    this.epoch = epoch;
    this.reads?.clear();
    this.writes?.clear();
    this.shardReads.fill(0);
    this.shardWrites.fill(0);
  }

  report(): EpochReport {
    return {
      epoch: this.epoch,
      reads: this.reads?.summary(REPORT_ENTRIES) ?? null,
      writes: this.writes?.summary(REPORT_ENTRIES) ?? null,
      shardReads: [...this.shardReads],
      shardWrites: [...this.shardWrites],
    };
  }
}

export class HotKeyTracker {
  private current: Epoch;
  private previous: Epoch;
  /** Unix second at which the current epoch ends. */
  private ends = 0;
  private readonly since = Date.now();

  /**
   * @param keys count key names too (--hot-keys)
   * @param unixNow the shared clock's Unix seconds (lib/clock.ts), the same in every thread
   */
  constructor(
    shards: number,
    readonly keys: boolean,
    private readonly unixNow: () => number,
  ) {
    this.current = new Epoch(shards, keys);
    this.previous = new Epoch(shards, keys);
    this.rotate(unixNow());
  }

  /** One key command on `shard`. */
  record(shard: number, op: number, key: Uint8Array): void {
    const now = this.unixNow();
    if (now >= this.ends) this.rotate(now);
    const e = this.current;
    if (IS_WRITE[op] === 1) {
      e.shardWrites[shard]!++;
      e.writes?.addBytes(key);
    } else {
      e.shardReads[shard]!++;
      e.reads?.addBytes(key);
    }
  }

  /** The epochs of the window, as of now. */
  report(): HotThreadReport {
    this.rotate(this.unixNow());
    const epochs = [this.current.report()];
    if (this.previous.epoch === this.current.epoch - 1) epochs.push(this.previous.report());
    return { epochs, since: this.since };
  }

  /** Move to the epoch of Unix second `now` (nothing when it is the current one). */
  private rotate(now: number): void {
    const epoch = Math.floor(now / EPOCH_SECONDS);
    if (epoch === this.current.epoch) return;
    const old = this.previous;
    if (epoch === this.current.epoch + 1) {
      this.previous = this.current;
      this.current = old;
    } else {
      // a thread that saw no command for a whole epoch: both are stale
      this.previous.reset(epoch - 1);
    }
    this.current.reset(epoch);
    this.ends = (epoch + 1) * EPOCH_SECONDS;
  }
}
