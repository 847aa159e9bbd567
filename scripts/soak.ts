// A soak: mixed load (10% sets of 100 B - 20 KB values, 90% gets) from a few pipelining
// connections for a while, the server's RSS sampled every second, every reply checked.
//
//   npm run soak -- [--minutes 10] [--port P] [--memory 64]
//
// Without --port it starts its own memshard (-t 4 -m <memory>). Exits non-zero on a wrong reply,
// a dead server, or an RSS that is still growing at the end (see rssVerdict).
import fs from 'node:fs';
import net from 'node:net';
import { installCleanupHandlers, killAll, log, positiveNumber, runMain, scriptOptions, startMemshard } from './bench.js';
import { Prng } from './difftest/prng.js';

const KEYS = 5000;
const CONNECTIONS = 8;
const PIPELINE = 16;
/** RSS may still move by this much at the end of a run (allocator and GC noise). */
export const RSS_SLACK_KB = 16 * 1024;

export function rssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

/** A value whose bytes say its length, so that any reply can be checked on its own. */
function valueOf(length: number): Buffer {
  return Buffer.alloc(length, 97 + (length % 26));
}

function checkValue(value: Buffer): boolean {
  const want = 97 + (value.length % 26);
  for (let i = 0; i < value.length; i++) if (value[i] !== want) return false;
  return true;
}

/** One connection's load: PIPELINE requests in flight, each reply parsed and checked. */
async function loadConnection(port: number, seed: number, until: number, problems: string[]): Promise<number> {
  const r = new Prng(seed);
  const s = net.connect({ port, host: '127.0.0.1' });
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('error', reject);
  });
  let buf: Buffer = Buffer.alloc(0);
  let done = 0;
  const expected: Array<'get' | 'set'> = [];
  const send = (): void => {
    if (r.chance(0.1)) {
      const v = valueOf(100 + r.int(20 * 1024 - 100));
      s.write(Buffer.concat([Buffer.from(`set soak:${r.int(KEYS)} 0 0 ${v.length}\r\n`), v, Buffer.from('\r\n')]));
      expected.push('set');
    } else {
      s.write(`get soak:${r.int(KEYS)}\r\n`);
      expected.push('get');
    }
  };
  return new Promise((resolve) => {
    const finish = (): void => {
      s.destroy();
      resolve(done);
    };
    s.on('error', (e) => {
      problems.push(`connection error: ${e.message}`);
      finish();
    });
    s.on('data', (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      for (;;) {
        const kind = expected[0];
        if (kind === undefined) break;
        let used: number;
        if (kind === 'set') {
          if (buf.length < 8) break;
          if (buf.subarray(0, 8).toString() !== 'STORED\r\n') problems.push(`set answered ${JSON.stringify(buf.toString('latin1', 0, 40))}`);
          used = buf.indexOf('\r\n') + 2;
        } else {
          if (buf.length >= 5 && buf.subarray(0, 5).toString() === 'END\r\n') used = 5;
          else {
            const nl = buf.indexOf('\r\n');
            if (nl < 0) break;
            const m = /^VALUE soak:\d+ 0 (\d+)$/.exec(buf.toString('latin1', 0, nl));
            if (m === null) {
              problems.push(`get answered ${JSON.stringify(buf.toString('latin1', 0, 60))}`);
              return finish();
            }
            const end = nl + 2 + Number(m[1]) + 2 + 5;
            if (buf.length < end) break;
            if (!checkValue(buf.subarray(nl + 2, nl + 2 + Number(m[1])))) problems.push(`a wrong ${m[1]}-byte value`);
            used = end;
          }
        }
        buf = buf.subarray(used);
        expected.shift();
        done++;
        if (Date.now() < until) send();
        else if (expected.length === 0) return finish();
      }
    });
    for (let i = 0; i < PIPELINE; i++) send();
  });
}

export interface SoakResult {
  requests: number;
  problems: string[];
  /** RSS (KB), one sample a second. */
  rss: number[];
}

/** Run the load for `seconds` against port, sampling pid's RSS. */
export async function soak(port: number, pid: number, seconds: number, seed = 1): Promise<SoakResult> {
  const problems: string[] = [];
  const rss = [rssKb(pid)];
  const sampler = setInterval(() => rss.push(rssKb(pid)), 1000);
  const until = Date.now() + seconds * 1000;
  try {
    const counts = await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => loadConnection(port, seed * 100 + i, until, problems)));
    return { requests: counts.reduce((a, b) => a + b, 0), problems, rss };
  } finally {
    clearInterval(sampler);
  }
}

/**
 * Flat at the end: the last quarter's highest RSS is within RSS_SLACK_KB of the highest before
 * it. The first quarter is warm-up (the cache fills, the JIT and heaps settle).
 */
export function rssVerdict(rss: number[]): { flat: boolean; warm: number; end: number } {
  const q = Math.max(1, Math.floor(rss.length / 4));
  const warm = Math.max(...rss.slice(0, rss.length - q));
  const end = Math.max(...rss.slice(rss.length - q));
  return { flat: end <= warm + RSS_SLACK_KB, warm, end };
}

const usage = `usage: node dist/scripts/soak.js [--minutes M] [--port P --pid PID] [--memory MB]
  --minutes M   how long (default 10)
  --port P      soak a running server (then --pid PID for its RSS) instead of starting memshard -t 4
  --memory MB   -m of the memshard it starts (default 64)`;

async function main(): Promise<number> {
  const opts = scriptOptions(usage, ['help'], ['minutes', 'port', 'pid', 'memory']);
  if (typeof opts === 'number') return opts;
  installCleanupHandlers();
  const minutes = positiveNumber(opts.get('minutes'), 10, 'minutes');
  const server = opts.has('port') ? null : await startMemshard({ threads: 4, memoryMb: positiveNumber(opts.get('memory'), 64, 'memory') });
  const port = server?.port ?? Number(opts.get('port'));
  const pid = server?.pid ?? Number(opts.get('pid'));
  const result = await soak(port, pid, minutes * 60);
  const verdict = rssVerdict(result.rss);
  const mb = (kb: number) => (kb / 1024).toFixed(1);
  log(`soak: ${result.requests} requests in ${minutes} min, ${result.problems.length} problems; RSS ${mb(result.rss[0]!)} MB at the start, ` +
    `${mb(verdict.warm)} MB at most before the last quarter, ${mb(verdict.end)} MB at most in it: ${verdict.flat ? 'flat' : 'STILL GROWING'}`);
  for (const p of result.problems.slice(0, 20)) log(`  ${p}`);
  const alive = server === null || server.alive();
  await killAll();
  return result.problems.length === 0 && verdict.flat && alive ? 0 : 1;
}

runMain(import.meta.url, main);
