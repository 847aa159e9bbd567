/**
 * Every thread's hot-key reports merged into one view (for `stats hotkeys` and the dashboard's
 * JSON), and its text form. Pure: the caller gathers the reports (lib/threads/serving-thread.ts,
 * lib/server.ts).
 */
import { mergeSummaries, type HotKey, type SketchSummary } from './sketch.js';
import { EPOCH_SECONDS, SKETCH_CAPACITY, type HotThreadReport } from './tracker.js';

/** Keys listed by default (`stats hotkeys` without a number, the dashboard), and at most. */
export const DEFAULT_TOP = 10;
export const MAX_TOP = 100;

/** A key's merged estimate over the window, with its rate per second. */
export interface HotKeyRow extends HotKey {
  rate: number;
}

export interface HotDirection {
  /** Commands counted over the window, all threads. */
  total: number;
  /** Untracked keys have at most this many in the window (0: every key seen is listed exactly). */
  errorBound: number;
  keys: HotKeyRow[];
}

export interface HotShard {
  shard: number;
  reads: number;
  writes: number;
  /** (reads + writes) per second over the window. */
  rate: number;
}

export interface HotKeysView {
  /** --hot-keys: key names are tracked and shown; otherwise only the shard counts. */
  keys: boolean;
  /** Seconds the counts cover. */
  windowSeconds: number;
  epochSeconds: number;
  capacity: number;
  reads: HotDirection;
  writes: HotDirection;
  /** Hottest first. */
  shards: HotShard[];
}

/**
 * Merge the threads' reports as of `nowMs` (Unix ms). The window starts at the beginning of the
 * previous epoch of the newest one any thread reports (threads agree but at an epoch's edge), or
 * when counting began if that is later.
 */
export function mergeHotReports(reports: readonly HotThreadReport[], keys: boolean, shards: number, top: number, nowMs: number): HotKeysView {
  const newest = Math.max(Math.floor(nowMs / 1000 / EPOCH_SECONDS), ...reports.flatMap((r) => r.epochs.map((e) => e.epoch)));
  const oldest = newest - 1;
  const since = reports.length === 0 ? nowMs : Math.min(...reports.map((r) => r.since));
  const startMs = Math.max(oldest * EPOCH_SECONDS * 1000, since);
  const windowSeconds = Math.max(0.001, (nowMs - startMs) / 1000);
  const reads: SketchSummary[] = [];
  const writes: SketchSummary[] = [];
  const shardReads = new Array<number>(shards).fill(0);
  const shardWrites = new Array<number>(shards).fill(0);
  for (const r of reports) {
    for (const e of r.epochs) {
      if (e.epoch < oldest || e.epoch > newest) continue;
      if (e.reads !== null) reads.push(e.reads);
      if (e.writes !== null) writes.push(e.writes);
      e.shardReads.forEach((n, s) => (shardReads[s]! += n));
      e.shardWrites.forEach((n, s) => (shardWrites[s]! += n));
    }
  }
  // the totals come from the shard counts, which are kept with or without names
  const direction = (summaries: SketchSummary[], counted: number[]): HotDirection => {
    const merged = mergeSummaries(summaries, keys ? top : 0);
    return { total: counted.reduce((a, b) => a + b, 0), errorBound: merged.errorBound, keys: merged.keys.map((k) => ({ ...k, rate: k.count / windowSeconds })) };
  };
  const readView = direction(reads, shardReads);
  const writeView = direction(writes, shardWrites);
  const shardRows = shardReads
    .map((r, shard): HotShard => ({ shard, reads: r, writes: shardWrites[shard]!, rate: (r + shardWrites[shard]!) / windowSeconds }))
    .sort((a, b) => b.reads + b.writes - (a.reads + a.writes) || a.shard - b.shard);
  return { keys, windowSeconds, epochSeconds: EPOCH_SECONDS, capacity: SKETCH_CAPACITY, reads: readView, writes: writeView, shards: shardRows };
}

/**
 * A key as `stats hotkeys` prints it: bytes 0x21-0x7e except `%` as they are, every other byte as
 * %XX (binary-protocol keys may hold spaces and control bytes; the latin1 string has one char per byte).
 */
export function printableKey(key: string): string {
  return key.replace(/[^\x21-\x24\x26-\x7e]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

const rate = (n: number): string => n.toFixed(1);

/** `stats hotkeys [N]` rows (see README, "Hot keys"). */
export function hotKeyRows(view: HotKeysView): Array<[string, string | number]> {
  const rows: Array<[string, string | number]> = [
    ['hot_keys', view.keys ? 'on' : 'off'],
    ['window_seconds', view.windowSeconds.toFixed(1)],
    ['epoch_seconds', view.epochSeconds],
    ['sketch_capacity', view.capacity],
    ['reads', view.reads.total],
    ['writes', view.writes.total],
  ];
  if (view.keys) rows.push(['reads_error_bound', view.reads.errorBound], ['writes_error_bound', view.writes.errorBound]);
  for (const [name, dir] of [['reads', view.reads], ['writes', view.writes]] as const) {
    dir.keys.forEach((k, i) => {
      const at = `${name}:${i + 1}`;
      rows.push([`${at}:key`, printableKey(k.key)], [`${at}:count`, k.count], [`${at}:error`, k.error], [`${at}:rate`, rate(k.rate)]);
    });
  }
  for (const s of view.shards) rows.push([`shard:${s.shard}:reads`, s.reads], [`shard:${s.shard}:writes`, s.writes], [`shard:${s.shard}:rate`, rate(s.rate)]);
  return rows;
}

/** N of `stats hotkeys [N]` (DEFAULT_TOP without one), null when it is not 1..MAX_TOP. */
export function hotKeysTop(args: readonly string[]): number | null {
  if (args.length === 0) return DEFAULT_TOP;
  if (args.length > 1 || !/^\d{1,3}$/.test(args[0]!)) return null;
  const n = Number(args[0]);
  return n >= 1 && n <= MAX_TOP ? n : null;
}

/** The `stats hotkeys` rows from every thread's report, as of now. */
export function hotKeysRows(reports: readonly HotThreadReport[], keys: boolean, shards: number, top: number): Array<[string, string | number]> {
  return hotKeyRows(mergeHotReports(reports, keys, shards, top, Date.now()));
}

/** STAT lines and END, as every stats group. */
export function renderRows(rows: ReadonlyArray<[string, string | number]>): string {
  let out = '';
  for (const [k, v] of rows) out += `STAT ${k} ${v}\r\n`;
  return `${out}END\r\n`;
}
