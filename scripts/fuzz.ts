// A socket fuzzer: valid text, meta and binary requests (the differential tester's generators),
// mutated (bit flips, truncation, edge numbers, lying binary lengths, splices, repeats, junk),
// sent over many connections, while a canary connection checks that values stored before the
// run never change.
//
//   npm run fuzz -- [--frames 1000000] [--seed 1] [--connections 20] [--protocol text,meta,binary] [--port P]
//
// Without --port it starts its own memshard (-t 4 -m 64). Exits non-zero when a canary value
// changed, the server died, or it stopped answering.
import net from 'node:net';
import { installCleanupHandlers, killAll, log, positiveNumber, runMain, scriptOptions, startMemshard } from './bench.js';
import type { Case, RenderContext } from './difftest/case.js';
import { binaryCommand } from './difftest/gen-binary.js';
import { metaCommand } from './difftest/gen-meta.js';
import { textCommand } from './difftest/gen-text.js';
import { Prng } from './difftest/prng.js';
import { EDGE_NUMBERS } from './difftest/values.js';

export type FuzzProtocol = 'text' | 'meta' | 'binary';

const GENERATORS: Record<FuzzProtocol, (r: Prng) => Case> = { text: textCommand, meta: metaCommand, binary: binaryCommand };
const NUMBERS = [...EDGE_NUMBERS, '18446744073709551616', '-1', '4294967296', '2147483648', '99999999999999999999999'];
/** Lies a binary header can tell about its body length (bytes 8-11). */
const BODY_LENGTHS = [0, 1, 7, 23, 0x7fffffff, 0x80000000, 0xffffffff, 1 << 20, (1 << 20) + 1];

/**
 * A valid request of the protocol, rendered with made-up CAS values and the current time; never
 * a flush, which would empty the canary (a mutation may still make one: see fuzzWithCanary).
 */
export function validFrame(r: Prng, protocol: FuzzProtocol): Buffer {
  const ctx: RenderContext = { recentCas: () => BigInt(r.int(1000)), unixNow: Math.floor(Date.now() / 1000) };
  for (;;) {
    const frame = GENERATORS[protocol](r).render(ctx);
    if (!isFlush(frame)) return frame;
  }
}

function isFlush(frame: Buffer): boolean {
  if (frame[0] === 0x80) return frame[1] === 0x08 || frame[1] === 0x18;
  return frame.includes('flush_all');
}

/** One mutation of frame (`other`: another valid frame, for splices). */
export function mutate(r: Prng, frame: Buffer, other: Buffer, binary: boolean): Buffer {
  const at = (b: Buffer) => r.int(b.length + 1);
  switch (r.int(binary ? 8 : 7)) {
    case 0: {
      const out = Buffer.from(frame);
      for (let n = 1 + r.int(4); n > 0 && out.length > 0; n--) out[r.int(out.length)]! ^= 1 << r.int(8);
      return out;
    }
    case 1:
      return frame.subarray(0, at(frame));
    case 2: {
      // an edge number in place of a run of digits
      const text = frame.toString('latin1');
      const runs = [...text.matchAll(/\d+/g)];
      if (runs.length === 0) return frame;
      const run = r.pick(runs);
      return Buffer.from(text.slice(0, run.index) + r.pick(NUMBERS) + text.slice(run.index! + run[0].length), 'latin1');
    }
    case 3:
      return Buffer.concat([frame.subarray(0, at(frame)), other.subarray(at(other))]);
    case 4:
      return Buffer.concat(Array.from({ length: 2 + r.int(4) }, () => frame));
    case 5: {
      const i = at(frame);
      return Buffer.concat([frame.subarray(0, i), r.bytes(1 + r.int(64)), frame.subarray(i)]);
    }
    case 6:
      return r.bytes(1 + r.int(200));
    default: {
      // binary: a header that lies about its lengths
      const out = Buffer.from(frame);
      if (out.length < 24) return out;
      const field = r.int(3);
      if (field === 0) out.writeUInt32BE(r.pick(BODY_LENGTHS) >>> 0, 8);
      else if (field === 1) out.writeUInt16BE(r.int(0x10000), 2);
      else out[4] = r.int(256);
      return out;
    }
  }
}

/** Send `frames` requests of `protocol`, mostly mutated, over `connections` connections; replies are read and dropped. */
export async function fuzz(opts: { port: number; seed: number; frames: number; connections: number; protocol: FuzzProtocol }): Promise<{ reconnects: number }> {
  const r = new Prng(opts.seed);
  const binary = opts.protocol === 'binary';
  let left = opts.frames;
  let reconnects = 0;
  const perConnection = 200;
  const worker = async (): Promise<void> => {
    while (left > 0) {
      const s = net.connect({ port: opts.port, host: '127.0.0.1' });
      s.on('error', () => {});
      s.on('data', () => {});
      const connected = await new Promise<boolean>((resolve) => {
        s.once('connect', () => resolve(true));
        s.once('error', () => resolve(false));
      });
      if (!connected) throw new Error(`fuzz: cannot connect to port ${opts.port}`);
      for (let i = 0; i < perConnection && left > 0 && !s.destroyed && s.writable; i++, left--) {
        const frame = validFrame(r, opts.protocol);
        const out = r.chance(0.3) ? frame : mutate(r, frame, validFrame(r, opts.protocol), binary);
        if (!s.write(out)) await new Promise((resolve) => setTimeout(resolve, 5));
        if (i % 16 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      s.destroy();
      reconnects++;
    }
  };
  await Promise.all(Array.from({ length: opts.connections }, worker));
  return { reconnects };
}

/** Values stored before the fuzz run, read back and compared while it runs. */
export class Canary {
  private readonly socket: net.Socket;
  private buf = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  readonly values: Map<string, Buffer>;

  private constructor(socket: net.Socket, count: number) {
    this.socket = socket;
    this.values = new Map(Array.from({ length: count }, (_, i) => [`canary:${i}`, Buffer.alloc(1 + ((i * 977) % 3000), 65 + (i % 26))]));
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiter?.();
    });
  }

  static async plant(port: number, count = 50): Promise<Canary> {
    const socket = net.connect({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    const c = new Canary(socket, count);
    const sets = [...c.values].map(([k, v]) => Buffer.concat([Buffer.from(`set ${k} 7 0 ${v.length}\r\n`), v, Buffer.from('\r\n')]));
    socket.write(Buffer.concat(sets));
    const reply = await c.read(Buffer.from('STORED\r\n'.repeat(count)).length, 10_000);
    if (reply.toString() !== 'STORED\r\n'.repeat(count)) throw new Error(`canary: could not store: ${reply.toString().slice(0, 200)}`);
    return c;
  }

  /** Read every canary value; what is wrong (never allowed) and how many are missing. */
  async check(timeoutMs = 10_000): Promise<{ wrong: string[]; missing: number }> {
    const keys = [...this.values.keys()];
    this.socket.write(`get ${keys.join(' ')}\r\n`);
    const reply = await this.readUntilEnd(timeoutMs);
    const wrong: string[] = [];
    const found = new Set<string>();
    let pos = 0;
    while (pos < reply.length) {
      const nl = reply.indexOf('\r\n', pos);
      const line = reply.toString('latin1', pos, nl);
      if (line === 'END') break;
      const m = /^VALUE (\S+) (\d+) (\d+)$/.exec(line);
      if (m === null) {
        wrong.push(`unexpected line ${JSON.stringify(line.slice(0, 100))}`);
        break;
      }
      const value = reply.subarray(nl + 2, nl + 2 + Number(m[3]));
      const want = this.values.get(m[1]!);
      if (want === undefined || m[2] !== '7' || !value.equals(want)) wrong.push(`${m[1]}: flags ${m[2]}, ${value.length} bytes`);
      found.add(m[1]!);
      pos = nl + 2 + Number(m[3]) + 2;
    }
    return { wrong, missing: keys.length - found.size };
  }

  close(): void {
    this.socket.destroy();
  }

  private async readUntilEnd(timeoutMs: number): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (!(this.buf.length >= 5 && this.buf.subarray(-5).toString() === 'END\r\n')) await this.more(deadline);
    const out = this.buf;
    this.buf = Buffer.alloc(0);
    return out;
  }

  private async read(bytes: number, timeoutMs: number): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buf.length < bytes) await this.more(deadline);
    const out = this.buf.subarray(0, bytes);
    this.buf = this.buf.subarray(bytes);
    return out;
  }

  private more(deadline: number): Promise<void> {
    if (this.socket.destroyed) return Promise.reject(new Error('canary: the server closed the connection'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('canary: no answer in time')), Math.max(0, deadline - Date.now()));
      this.waiter = () => {
        clearTimeout(timer);
        this.waiter = null;
        resolve();
      };
    });
  }
}

/** Fuzz while the canary is read in a loop; the canary's findings over the whole run. */
export async function fuzzWithCanary(
  port: number,
  runs: Array<{ protocol: FuzzProtocol; frames: number; seed: number }>,
  connections: number,
): Promise<{ wrong: string[]; missing: number; checks: number }> {
  const canary = await Canary.plant(port);
  const wrong: string[] = [];
  let missing = 0;
  let checks = 0;
  let running = true;
  const watcher = (async () => {
    while (running) {
      const c = await canary.check();
      checks++;
      wrong.push(...c.wrong);
      missing = Math.max(missing, c.missing);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  try {
    for (const run of runs) {
      log(`fuzz: ${run.frames} ${run.protocol} frames, seed ${run.seed}, ${connections} connections`);
      await fuzz({ port, connections, ...run });
    }
  } finally {
    running = false;
    await watcher;
  }
  const last = await canary.check();
  canary.close();
  return { wrong: [...wrong, ...last.wrong], missing: Math.max(missing, last.missing), checks: checks + 1 };
}

const usage = `usage: node dist/scripts/fuzz.js [--frames N] [--seed S] [--connections C] [--protocol text,meta,binary] [--port P]
  --frames N       frames per protocol (default 100000)
  --seed S         first seed (default 1)
  --connections C  fuzzing connections at once (default 20)
  --protocol L     which protocols (default all three)
  --port P         fuzz a running server instead of starting memshard -t 4 -m 64`;

async function main(): Promise<number> {
  const opts = scriptOptions(usage, ['help'], ['frames', 'seed', 'connections', 'protocol', 'port']);
  if (typeof opts === 'number') return opts;
  installCleanupHandlers();
  const frames = Math.round(positiveNumber(opts.get('frames'), 100_000, 'frames'));
  const seed = Math.round(positiveNumber(opts.get('seed'), 1, 'seed'));
  const connections = Math.round(positiveNumber(opts.get('connections'), 20, 'connections'));
  const protocols = (opts.get('protocol') ?? 'text,meta,binary').split(',') as FuzzProtocol[];
  const server = opts.has('port') ? null : await startMemshard({ threads: 4, memoryMb: 64 });
  const port = server?.port ?? Number(opts.get('port'));
  const started = Date.now();
  const result = await fuzzWithCanary(port, protocols.map((protocol, i) => ({ protocol, frames, seed: seed + i })), connections);
  const alive = server === null || server.alive();
  log(`fuzz: ${frames * protocols.length} frames in ${((Date.now() - started) / 1000).toFixed(1)} s; canary read ${result.checks} times: ` +
    `${result.wrong.length} wrong, at most ${result.missing} missing; server ${alive ? 'alive' : 'DIED'}`);
  for (const w of result.wrong.slice(0, 20)) log(`  wrong: ${w}`);
  await killAll();
  return result.wrong.length === 0 && alive ? 0 : 1;
}

runMain(import.meta.url, main);
