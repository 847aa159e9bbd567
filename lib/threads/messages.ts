/**
 * What the main thread and the serving threads say to each other on a thread's MessagePort.
 * Commands never travel here: only what needs the whole server.
 */
import type { Config } from '../config.js';
import type { ShardMemory } from '../shards/shard-access.js';
import type { ClusterView } from '../cluster/discovery.js';
import type { PrefixEntry } from '../prefix-stats.js';
import type { HotThreadReport } from '../hotkeys/tracker.js';
import type { ConnInfo } from '../stats.js';
import type { ThreadListen } from './listen-socket.js';
import type { ThreadStatsBuffers } from './thread-stats.js';
import type { MessagePort } from 'node:worker_threads';

/** One listener of a thread, and whether it speaks TLS (-Z, unless `notls:`). */
export interface ThreadListener {
  at: ThreadListen;
  tls: boolean;
}

/** Everything a serving thread starts from (piscina's task argument). */
export interface ThreadInit {
  thread: number;
  /** Where it accepts connections (see lib/threads/listen-socket.ts): one per -l listener. */
  listen: ThreadListener[];
  /** Part of the first start: listen only once every thread is ready to. */
  startTogether: boolean;
  shards: ShardMemory[];
  locks: Int32Array;
  stats: ThreadStatsBuffers;
  config: Config;
  processStarted: number;
  /** The main thread's clock (see lib/clock.ts). */
  clock: Int32Array;
  /** Password digests (-S, -Y), as Credentials.entries gives them. */
  sasl: Array<[string, Uint8Array]> | null;
  ascii: Array<[string, Uint8Array]> | null;
  port: MessagePort;
  /** Auto Discovery's node list as it is now (then 'cluster' messages), null without one. */
  cluster: ClusterView | null;
}

/** What a thread reports for a report that needs every thread (`stats conns`, `stats detail dump`). */
export interface ThreadReport {
  conns: ConnInfo[];
  prefixes: PrefixEntry[];
  /** Hot-key counts (`stats hotkeys`, the dashboard): one per thread. */
  hot?: HotThreadReport[];
}

export type ToThread =
  | { type: 'report'; request: number }
  | { type: 'gathered'; request: number; report: ThreadReport }
  /** Fault injection: exit, optionally while holding this thread's shard lock. */
  | { type: 'crash'; holdingLock: boolean }
  | { type: 'close' }
  /** Auto Discovery's node list changed. */
  | { type: 'cluster'; view: ClusterView };

export type ToMain =
  | { type: 'report'; request: number; report: ThreadReport }
  /** A connection asked for a report of every thread: gather them. */
  | { type: 'gather'; request: number }
  | { type: 'shutdown' }
  | { type: 'crash'; thread: number; holdingLock: boolean }
  | { type: 'closed' };
