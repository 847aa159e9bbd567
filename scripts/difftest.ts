/**
 * Differential tester: a seeded random sequence of requests sent to memshard and to the real
 * memcached, one request at a time, with their replies compared byte for byte once CAS values
 * and clock readings are normalised (see difftest/normalise.ts). Known, documented differences
 * (difftest/known-differences.ts) are left out or accepted, and counted.
 *
 *   node dist/scripts/difftest.js --seed 1 --commands 100000 --protocol text|meta|binary|all
 *     [--memshard-port P --memcached-port Q]   (default: starts both on free loopback ports)
 */
import { pathToFileURL } from 'node:url';
import { describe, type Case, type RenderContext } from './difftest/case.js';
import { binarySentinel, frameBinary, frameText, textSentinel } from './difftest/framing.js';
import { binaryCommand } from './difftest/gen-binary.js';
import { metaCommand } from './difftest/gen-meta.js';
import { textCommand } from './difftest/gen-text.js';
import { explanation, skipReason } from './difftest/known-differences.js';
import { CasNames, normaliseBinary, normaliseText, sameReply, type Normalised } from './difftest/normalise.js';
import { Peer, type Exchange } from './difftest/peer.js';
import { Prng } from './difftest/prng.js';

export type Protocol = 'text' | 'meta' | 'binary';
export const PROTOCOLS: readonly Protocol[] = ['text', 'meta', 'binary'];

const GENERATORS: Record<Protocol, (r: Prng) => Case> = { text: textCommand, meta: metaCommand, binary: binaryCommand };

export interface DifftestOptions {
  seed: number;
  commands: number;
  protocol: Protocol;
  memshardPort: number;
  memcachedPort: number;
  /** Stop after this many differences (default 20). */
  maxDifferences?: number;
  /** Per request (default 2000 ms). */
  timeoutMs?: number;
  /** Called with every request and both replies (for replaying a difference). */
  trace?: (line: string) => void;
}

export interface Difference {
  index: number;
  request: string;
  memshard: string;
  memcached: string;
  /** The requests before it since the caches were last emptied (at most HISTORY), with memcached's replies. */
  history: string[];
}

const HISTORY = 40;

export interface DifftestResult {
  protocol: Protocol;
  seed: number;
  /** Requests sent to both servers. */
  sent: number;
  /** Requests left out, by known difference. */
  skipped: Record<string, number>;
  /** Replies that differed in a known way, by known difference. */
  known: Record<string, number>;
  /** Replies by their first word (STORED, VALUE, HD, EN, 0x01...): shows what the run exercised. */
  replies: Record<string, number>;
  differences: Difference[];
  elapsedMs: number;
}

/** One side of the comparison: its connection and its CAS names. */
interface Side {
  peer: Peer;
  cas: CasNames;
}

const bump = (m: Record<string, number>, k: string) => {
  m[k] = (m[k] ?? 0) + 1;
};

function firstWord(protocol: Protocol, reply: Buffer): string {
  if (reply.length === 0) return '(none)';
  if (protocol === 'binary') return reply.length >= 8 ? `status 0x${reply.readUInt16BE(6).toString(16)}` : '(partial)';
  const line = reply.toString('latin1', 0, Math.min(reply.length, 40)).split(/[ \r]/)[0]!;
  return /^\d+$/.test(line) ? '<number>' : line;
}

export async function runDifftest(opts: DifftestOptions): Promise<DifftestResult> {
  const started = Date.now();
  const { protocol } = opts;
  const binary = protocol === 'binary';
  const maxDifferences = opts.maxDifferences ?? 20;
  const timeoutMs = opts.timeoutMs ?? 2000;
  const frame = binary ? frameBinary : frameText;
  const sentinel = binary ? binarySentinel : textSentinel;
  const normalise = binary ? normaliseBinary : normaliseText;
  const sides: Side[] = [
    { peer: new Peer('memshard', opts.memshardPort), cas: new CasNames() },
    { peer: new Peer('memcached', opts.memcachedPort), cas: new CasNames() },
  ];
  const result: DifftestResult = { protocol, seed: opts.seed, sent: 0, skipped: {}, known: {}, replies: {}, differences: [], elapsedMs: 0 };

  let seq = 0;
  const exchange = (side: Side, request: Buffer, n: number): Promise<Exchange> =>
    side.peer.exchange(Buffer.concat([request, sentinel(n)]), (b) => frame(b, n), timeoutMs);
  // an empty cache on fresh connections: after a difference too, so that one bug is reported once
  let history: string[] = [];
  const restart = async () => {
    history = [];
    // the CAS values seen so far name flushed items, and may have come apart at a difference
    for (const side of sides) side.cas = new CasNames();
    await Promise.all(sides.map((s) => s.peer.connect()));
    const flush = binary ? Buffer.from('800800000000000000000000000000000000000000000000', 'hex') : Buffer.from('flush_all\r\n', 'latin1');
    const n = ++seq;
    await Promise.all(sides.map((s) => exchange(s, flush, n)));
  };
  await restart();

  const r = new Prng(opts.seed);
  try {
    for (let i = 0; result.sent < opts.commands && result.differences.length < maxDifferences; i++) {
      const c = GENERATORS[protocol](r);
      const unixNow = Math.floor(Date.now() / 1000);
      const requests = sides.map((s) => c.render({ unixNow, recentCas: (j) => s.cas.recentCas(j) } satisfies RenderContext));
      const request = requests[1]!.toString('latin1');
      const skip = skipReason(request);
      if (skip !== null) {
        bump(result.skipped, skip);
        continue;
      }
      result.sent++;
      const n = ++seq;
      const answers = await Promise.all(sides.map((s, k) => exchange(s, requests[k]!, n)));
      const norm: Normalised[] = answers.map((a, k) => {
        const x = normalise(a.reply, sides[k]!.cas);
        const marks = `${a.stray ? '<stray bytes first>' : ''}${a.closed ? '<closed>' : ''}${a.timedOut ? '<no answer>' : ''}`;
        return { ...x, text: x.text + marks };
      });
      bump(result.replies, firstWord(protocol, answers[1]!.reply));
      const [ours, theirs] = norm as [Normalised, Normalised];
      let resync = answers.some((a) => a.closed || a.timedOut);
      if (!sameReply(ours, theirs)) {
        const raw = answers.map((a) => a.reply.toString('latin1'));
        const known = explanation({
          request, harmlessBlock: c.harmlessBlock === true, memshard: ours.text, memcached: theirs.text,
          memshardRaw: raw[0]!, memcachedRaw: raw[1]!,
        });
        if (known !== null) {
          bump(result.known, known.id);
          // the caches no longer agree, or a CAS value in one reply only would rename the later ones: start over
          if (known.diverges === true || casCount(ours) !== casCount(theirs)) resync = true;
        } else {
          result.differences.push({ index: i, request: describe(requests[1]!), memshard: show(ours), memcached: show(theirs), history });
          resync = true;
        }
      }
      history = [...history.slice(1 - HISTORY), `${describe(requests[1]!, 200)} -> ${show(theirs, 200)}`];
      opts.trace?.(`#${i} ${describe(requests[1]!, 400)}\n  memshard:  ${show(ours, 400)}\n  memcached: ${show(theirs, 400)}`);
      if (resync) await restart();
    }
  } finally {
    for (const s of sides) s.peer.disconnect();
  }
  result.elapsedMs = Date.now() - started;
  return result;
}

const casCount = (n: Normalised) => n.text.split('#').length;

function show(n: Normalised, max = 600): string {
  const clipped = n.text.length > max ? `${JSON.stringify(n.text.slice(0, max))}... (${n.text.length} chars)` : JSON.stringify(n.text);
  return n.clock.length === 0 ? clipped : `${clipped} clock=${n.clock.join(',')}`;
}

/** A short report of one run. */
export function summarise(r: DifftestResult, withHistory = false): string {
  const lines = [
    `${r.protocol} seed ${r.seed}: ${r.sent} requests in ${(r.elapsedMs / 1000).toFixed(1)} s, ${r.differences.length} differences`,
    `  skipped: ${JSON.stringify(r.skipped)}  known: ${JSON.stringify(r.known)}`,
    `  replies: ${JSON.stringify(r.replies)}`,
  ];
  for (const d of r.differences) {
    if (withHistory) lines.push(...d.history.map((h) => `      ${h}`));
    lines.push(`  #${d.index} ${d.request}\n    memshard:  ${d.memshard}\n    memcached: ${d.memcached}`);
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const arg = (name: string, fallback: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
  };
  const seeds = arg('seed', '1').split(',').map(Number);
  const commands = Number(arg('commands', '20000'));
  const which = arg('protocol', 'all');
  const protocols = which === 'all' ? PROTOCOLS : [which as Protocol];
  if (!protocols.every((p) => PROTOCOLS.includes(p)) || seeds.some((s) => !Number.isInteger(s)) || !(commands > 0)) {
    process.stderr.write('usage: difftest [--seed N[,N...]] [--commands N] [--protocol text|meta|binary|all] [--memshard-port P --memcached-port Q]\n');
    return 64;
  }
  const { startServers } = await import('./difftest/servers.js');
  const given = argv.includes('--memshard-port');
  const servers = given ? null : await startServers();
  const memshardPort = given ? Number(arg('memshard-port', '0')) : servers!.memshardPort;
  const memcachedPort = given ? Number(arg('memcached-port', '0')) : servers!.memcachedPort;
  let failed = 0;
  try {
    for (const seed of seeds) {
      for (const protocol of protocols) {
        const trace = argv.includes('--trace') ? (line: string) => process.stdout.write(`${line}\n`) : undefined;
        const res = await runDifftest({ seed, commands, protocol, memshardPort, memcachedPort, trace });
        process.stdout.write(`${summarise(res, argv.includes('--history'))}\n`);
        if (res.differences.length > 0) failed++;
      }
    }
  } finally {
    await servers?.stop();
  }
  return failed === 0 ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
