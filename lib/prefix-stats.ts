/**
 * memcached's per-prefix statistics (`stats detail on|off|dump`, -D): gets, hits, sets and deletes
 * counted by the part of the key before the first delimiter; keys without one are not counted.
 * Each serving thread counts its own commands; a dump merges every thread's counts.
 */

/** [prefix, gets, hits, sets, deletes] */
export type PrefixEntry = [string, number, number, number, number];

export const PrefixEvent = { Get: 0, Set: 1, Delete: 2 } as const;
export type PrefixEventId = (typeof PrefixEvent)[keyof typeof PrefixEvent];

export class PrefixStats {
  private readonly counts = new Map<string, PrefixEntry>();

  constructor(private readonly delimiter: number) {}

  record(key: Uint8Array, event: PrefixEventId, hit = false): void {
    // memcached stops at a NUL byte too (the key is a C string there)
    let end = 0;
    while (end < key.length && key[end] !== this.delimiter && key[end] !== 0) end++;
    if (end === key.length || key[end] !== this.delimiter) return;
    const prefix = Buffer.from(key.buffer, key.byteOffset, end).toString('latin1');
    let entry = this.counts.get(prefix);
    if (entry === undefined) this.counts.set(prefix, (entry = [prefix, 0, 0, 0, 0]));
    if (event === PrefixEvent.Get) {
      entry[1]++;
      if (hit) entry[2]++;
    } else {
      entry[event === PrefixEvent.Set ? 3 : 4]++;
    }
  }

  entries(): PrefixEntry[] {
    return [...this.counts.values()];
  }

  clear(): void {
    this.counts.clear();
  }
}

/** memcached's `stats detail dump` text: a PREFIX line per prefix (threads' counts summed), then END. */
export function renderPrefixDump(entries: readonly PrefixEntry[]): string {
  const merged = new Map<string, PrefixEntry>();
  for (const [prefix, gets, hits, sets, dels] of entries) {
    const m = merged.get(prefix);
    if (m === undefined) merged.set(prefix, [prefix, gets, hits, sets, dels]);
    else {
      m[1] += gets;
      m[2] += hits;
      m[3] += sets;
      m[4] += dels;
    }
  }
  let out = '';
  for (const [prefix, gets, hits, sets, dels] of merged.values()) out += `PREFIX ${prefix} get ${gets} hit ${hits} set ${sets} del ${dels}\r\n`;
  return `${out}END\r\n`;
}
