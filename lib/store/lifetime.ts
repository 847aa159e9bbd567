/**
 * When an item is alive: client exptimes turned into server time, flush_all (immediate and
 * delayed), and the shard's CAS sequence (unique across shards: shard i of n hands out
 * seq * n + i + 1).
 */
import { F_CAS, H_CAS_SEQ, H_FLUSH_CAS, H_FLUSH_TIME, I_EXPTIME, I_UTIME } from './layout.js';
import type { ShardMemory } from './memory.js';

/** exptimes up to 30 days are relative, larger ones absolute Unix time (memcached). */
const REALTIME_MAXDELTA = 2592000;
const EXPTIME_MAX = 0x7fffffff;

/** Why an item is dead, as lookups count it (get_flushed, get_expired). */
export const Liveness = { Alive: 0, Flushed: 1, Expired: 2 } as const;
export type LivenessCode = (typeof Liveness)[keyof typeof Liveness];

export class Lifetime {
  /**
   * @param processStarted Unix time of server time 0: absolute exptimes are relative to it.
   */
  constructor(
    private readonly m: ShardMemory,
    private readonly processStarted: number,
    private readonly shardIndex: number,
    private readonly shardCount: number,
  ) {}

  /** Client exptime -> server time (memcached's realtime()): 0 = never, 1 = already expired. */
  realtime(exptime: number): number {
    if (exptime === 0) return 0;
    if (exptime < 0) return 1;
    let t: number;
    if (exptime > REALTIME_MAXDELTA) {
      t = exptime - this.processStarted;
      if (t <= 0) return 1;
    } else {
      t = exptime + this.m.now;
    }
    return t > EXPTIME_MAX ? EXPTIME_MAX : Math.floor(t);
  }

  nextCas(): number {
    const seq = this.m.f64[H_CAS_SEQ]! + 1;
    this.m.f64[H_CAS_SEQ] = seq;
    return seq * this.shardCount + this.shardIndex + 1;
  }

  /** The CAS last handed out (or, before any, the one just below the first): every item has one <= it. */
  lastCas(): number {
    return this.m.f64[H_CAS_SEQ]! * this.shardCount + this.shardIndex + 1;
  }

  liveness(ref: number): LivenessCode {
    const { f64, i32, now } = this.m;
    // read from the buffer, not cached: another thread's Store may have flushed (see Store's `attach`)
    const flushCas = f64[H_FLUSH_CAS]!;
    if (flushCas !== 0 && f64[ref + F_CAS]! <= flushCas) return Liveness.Flushed;
    const w = ref * 2;
    const ft = f64[H_FLUSH_TIME]!;
    if (ft !== 0 && now >= ft && i32[w + I_UTIME]! < ft) return Liveness.Flushed;
    const e = i32[w + I_EXPTIME]!;
    return e !== 0 && e <= now ? Liveness.Expired : Liveness.Alive;
  }

  /** flush_all: everything stored so far is dead now, or (delay > 0) once that time comes. */
  flush(delaySeconds: number): void {
    const f64 = this.m.f64;
    if (delaySeconds > 0) {
      f64[H_FLUSH_TIME] = this.realtime(delaySeconds);
    } else {
      f64[H_FLUSH_CAS] = this.lastCas();
      f64[H_FLUSH_TIME] = 0; // replaces a pending delayed flush
    }
  }
}
