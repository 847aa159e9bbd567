/**
 * memcached's `watch`: a connection that asks for log events (fetchers, mutations, evictions,
 * connevents, deletions) gets one line per event, in memcached's format, from every serving
 * thread. Each thread formats its own events and posts them in batches on a BroadcastChannel that
 * every thread listens to; a thread writes to its own watchers. Nobody watching costs one shared
 * counter read per event kind and event (Cell.watching + kind), nothing else.
 */
import { BroadcastChannel } from 'node:worker_threads';
import { memcachedItemSize } from '../protocol/command.js';
import { uriEncode } from '../shards/dump.js';
import { Mode, Status, type FetchResult, type StatusCode, type Store, type StoreMode, type StoreObserver } from '../store/store.js';
import { Cell, WATCH_KIND_COUNT } from './thread-stats.js';

/** Event kinds memshard emits, in Cell order (Cell.watching + kind counts who wants each). */
export const WatchKind = { fetchers: 0, mutations: 1, evictions: 2, connevents: 3, deletions: 4 } as const;
export type WatchKindId = (typeof WatchKind)[keyof typeof WatchKind];
if (Object.keys(WatchKind).length !== WATCH_KIND_COUNT) throw new Error('WATCH_KIND_COUNT out of step with WatchKind');
/** memcached's other kinds: accepted, but memshard has no such events (no proxy, no raw command log). */
const SILENT_KINDS = new Set(['rawcmds', 'sysevents', 'proxyreqs', 'proxyevents', 'proxyuser']);

/** The kinds `watch <names>` asks for (fetchers alone when none is named), or null for an unknown name. */
export function parseWatchKinds(names: string[]): Set<WatchKindId> | null {
  const kinds = new Set<WatchKindId>();
  if (names.length === 0) kinds.add(WatchKind.fetchers);
  for (const name of names) {
    const kind = WatchKind[name as keyof typeof WatchKind];
    if (kind !== undefined) kinds.add(kind);
    else if (!SILENT_KINDS.has(name)) return null;
  }
  return kinds;
}

/** Where a watcher's lines go. */
export interface WatchSink {
  /** Queue text on the watcher's socket; false when its buffer is full (the line is skipped). */
  write(text: string): boolean;
  onClose(fn: () => void): void;
}

interface Watcher {
  sink: WatchSink;
  kinds: ReadonlySet<WatchKindId>;
  /** Lines skipped since the last one written (memcached then writes `skipped=N`). */
  skipped: number;
}

type Batch = Array<[WatchKindId, string]>;

const CHANNEL = 'memshard-watch';

export class WatchHub {
  private readonly channel = new BroadcastChannel(CHANNEL);
  private readonly watchers = new Set<Watcher>();
  private batch: Batch = [];

  constructor(private readonly shared: Int32Array) {
    this.channel.onmessage = (event) => this.deliver((event as { data: Batch }).data);
    // the channel alone must not keep a thread alive
    this.channel.unref();
  }

  /** Does any watcher, on any thread, want this kind? */
  wants(kind: WatchKindId): boolean {
    return Atomics.load(this.shared, Cell.watching + kind) > 0;
  }

  /** One event: `text` is what follows memcached's `ts=... gid=...`. */
  emit(kind: WatchKindId, text: string): void {
    const ms = performance.timeOrigin + performance.now();
    const gid = Atomics.add(this.shared, Cell.watchGid, 1) + 1;
    // memcached prints the microseconds unpadded: ts=%lld.%d
    const line = `ts=${Math.floor(ms / 1000)}.${Math.floor((ms % 1000) * 1000)} gid=${gid} ${text}\n`;
    if (this.batch.length === 0) setImmediate(() => this.flush());
    this.batch.push([kind, line]);
  }

  add(sink: WatchSink, kinds: ReadonlySet<WatchKindId>): void {
    const watcher: Watcher = { sink, kinds, skipped: 0 };
    this.watchers.add(watcher);
    for (const kind of kinds) Atomics.add(this.shared, Cell.watching + kind, 1);
    Atomics.add(this.shared, Cell.watchers, 1);
    sink.onClose(() => {
      if (!this.watchers.delete(watcher)) return;
      for (const kind of kinds) Atomics.sub(this.shared, Cell.watching + kind, 1);
      Atomics.sub(this.shared, Cell.watchers, 1);
    });
  }

  private flush(): void {
    const batch = this.batch;
    this.batch = [];
    Atomics.add(this.shared, Cell.logWorkerWritten, batch.length);
    this.channel.postMessage(batch);
    this.deliver(batch);
  }

  private deliver(batch: Batch): void {
    for (const w of this.watchers) {
      let text = '';
      let lines = 0;
      for (const [kind, line] of batch) {
        if (!w.kinds.has(kind)) continue;
        text += line;
        lines++;
      }
      if (lines === 0) continue;
      if (w.skipped > 0 && w.sink.write(`skipped=${w.skipped}\n`)) w.skipped = 0;
      if (w.skipped === 0 && w.sink.write(text)) {
        Atomics.add(this.shared, Cell.logWatcherSent, lines);
      } else {
        w.skipped += lines;
        Atomics.add(this.shared, Cell.logWatcherSkipped, lines);
      }
    }
  }
}

/** memcached's log lines (logger.c), after `ts=... gid=...`. */
export const WatchLine = {
  fetch(key: Uint8Array, status: 'not_found' | 'found' | 'flushed' | 'expired', clsid: number, cfd: number, size: number): string {
    return `type=item_get key=${uriEncode(key)} status=${status} clsid=${clsid} cfd=${cfd} size=${size}`;
  },
  store(key: Uint8Array, status: string, cmd: string, ttl: number, clsid: number, cfd: number, size: number): string {
    return `type=item_store key=${uriEncode(key)} status=${status} cmd=${cmd} ttl=${ttl} clsid=${clsid} cfd=${cfd} size=${size}`;
  },
  eviction(key: Uint8Array, fetched: boolean, ttl: number, lastAccess: number, clsid: number, size: number): string {
    return `type=eviction key=${uriEncode(key)} fetch=${fetched ? 'yes' : 'no'} ttl=${ttl} la=${lastAccess} clsid=${clsid} size=${size}`;
  },
  deleted(key: Uint8Array, cmd: 'delete' | 'md', clsid: number, size: number): string {
    return `type=deleted key=${uriEncode(key)} cmd=${cmd} clsid=${clsid} size=${size}`;
  },
  connNew(ip: string, port: number, transport: 'tcp' | 'local' | 'udp', cfd: number): string {
    return `type=conn_new rip=${ip} rport=${port} transport=${transport} cfd=${cfd}`;
  },
  connClose(ip: string, port: number, transport: 'tcp' | 'local' | 'udp', reason: string, cfd: number): string {
    return `type=conn_close rip=${ip} rport=${port} transport=${transport} reason=${reason} cfd=${cfd}`;
  },
};

const FETCH_NAMES = ['not_found', 'found', 'flushed', 'expired'] as const;
/** memcached's item_store status names, by store status. */
const STORE_STATUS: Partial<Record<StatusCode, string>> = {
  [Status.NotStored]: 'not_stored', [Status.Stored]: 'stored', [Status.Exists]: 'exists',
  [Status.NotFound]: 'not_found', [Status.TooLarge]: 'too_large', [Status.NoMemory]: 'no_memory',
};
/** memcached's item_store cmd names, by store mode. */
const MODE_CMD: Record<StoreMode, string> = {
  [Mode.Set]: 'set', [Mode.Add]: 'add', [Mode.Replace]: 'replace', [Mode.Append]: 'append',
  [Mode.Prepend]: 'prepend', [Mode.Cas]: 'cas', [Mode.AppendOrCreate]: 'append', [Mode.PrependOrCreate]: 'prepend',
};

/** The client whose command runs now (memcached's `cfd`), shared by a thread's store observers. */
export interface CurrentClient {
  id: number;
}

/** Turns one store's events into watch lines, when someone watches their kind. */
export class StoreWatch implements StoreObserver {
  constructor(
    private readonly hub: WatchHub,
    private readonly store: Store,
    private readonly client: CurrentClient,
  ) {}

  fetched(key: Uint8Array, ref: number, result: FetchResult): void {
    if (!this.hub.wants(WatchKind.fetchers)) return;
    const s = this.store;
    const found = ref !== 0;
    this.hub.emit(WatchKind.fetchers, WatchLine.fetch(key, FETCH_NAMES[result], found ? s.memcachedClassOf(ref) : 0, this.client.id, found ? s.valueLength(ref) : 0));
  }

  stored(key: Uint8Array, status: StatusCode, mode: StoreMode, exptime: number, vlen: number, flags: number, ref: number): void {
    if (!this.hub.wants(WatchKind.mutations)) return;
    const s = this.store;
    // memcached logs the item it linked (an append's whole new value, which keeps the old TTL), or
    // the one the command would have made
    const [size, clsid, ttl] = ref !== 0
      ? [s.valueLength(ref), s.memcachedClassOf(ref), Math.max(s.ttlOf(ref), 0)]
      : [vlen, s.memcachedClassFor(memcachedItemSize(key.length, vlen, flags)), s.relativeTtl(exptime)];
    this.hub.emit(WatchKind.mutations, WatchLine.store(key, STORE_STATUS[status] ?? 'not_stored', MODE_CMD[mode], ttl, clsid, this.client.id, size));
  }

  evicted(ref: number): void {
    if (!this.hub.wants(WatchKind.evictions)) return;
    const s = this.store;
    this.hub.emit(WatchKind.evictions, WatchLine.eviction(s.keyOf(ref), s.fetched(ref), s.ttlOf(ref), s.idleSeconds(ref), s.memcachedClassOf(ref), s.valueLength(ref)));
  }

  deleted(ref: number, byMeta: boolean): void {
    if (!this.hub.wants(WatchKind.deletions)) return;
    const s = this.store;
    this.hub.emit(WatchKind.deletions, WatchLine.deleted(s.keyOf(ref), byMeta ? 'md' : 'delete', s.memcachedClassOf(ref), s.valueLength(ref)));
  }
}
