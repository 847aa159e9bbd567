// Memory and hit-ratio rows of `npm run bench` (memshard's defaults vs memcached -t 2, same run),
// and the fill that scripts/memfill.ts also runs:
//   fill:  -m 64, 200,000 sets of 100-2000 B: items kept, RSS idle (1 s after start, and settled) and
//          after, value bytes per MB of RSS
//   cache: -m 64, cache-aside (get; set on a miss) over 600,000 Zipf 0.99 keys of 100-2000 B: hit ratio
//   peak:  -m 64 filled with 100 B - 100 KB values: peak RSS over idle
//   large: -m 1024 filled with 100-10000 B values: RSS against memcached's
import fs from 'node:fs';
import { log, num, runMcload, sleep, startMemcached, startMemshard, textRequest, type Server } from './bench.js';

export const MIN_VALUE = 100;
export const MAX_VALUE = 102400;
/** How long the fill row's servers stay idle for the settled reading (V8's memory reducer runs ~20 s in). */
const SETTLE_MS = 25_000;

/** VmRSS of a process in bytes, or NaN if it is gone. */
function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

export interface FillReport {
  server: string;
  ok: boolean;
  problems: string[];
  idleMb: number;
  /** RSS after `settleMs` more of idleness (V8 shrinks its heaps some 20 s after start); NaN if not asked. */
  settledIdleMb: number;
  peakMb: number;
  finalMb: number;
  growthMb: number;
  errors: number;
  fillSets: number;
  retained: number;
  retainedRatio: number;
  retainedMb: number;
  seconds: number;
}

export const mb = (b: number) => b / (1024 * 1024);

/**
 * Start a server, fill it with `requests` unique keys of `valueSize` bytes (mcload's range), sampling its RSS every 100 ms;
 * with settleMs, first also read its RSS after that long idle.
 */
export async function fill(
  start: () => Promise<Server>,
  label: string,
  mcload: string,
  requests: number,
  pipeline: number,
  valueSize: string,
  settleMs = 0,
): Promise<FillReport> {
  const problems: string[] = [];
  const report: FillReport = {
    server: label, ok: false, problems, idleMb: NaN, settledIdleMb: NaN, peakMb: NaN, finalMb: NaN, growthMb: NaN,
    errors: NaN, fillSets: NaN, retained: NaN, retainedRatio: NaN, retainedMb: NaN, seconds: NaN,
  };
  let server: Server;
  try {
    server = await start();
  } catch (e) {
    problems.push(`could not start: ${(e as Error).message}`);
    return report;
  }
  try {
    log(`${label}: pid ${server.pid}, port ${server.port}, version ${server.version}`);
    await sleep(1000);
    const idle = rssBytes(server.pid);
    if (settleMs > 0) {
      await sleep(settleMs);
      report.settledIdleMb = mb(rssBytes(server.pid));
    }
    let peak = idle;
    const timer = setInterval(() => {
      const r = rssBytes(server.pid);
      if (r > peak) peak = r;
    }, 100);
    log(`${label}: idle RSS ${mb(idle).toFixed(1)} MB; filling with ${requests} values of ${valueSize} B, pipeline ${pipeline}`);
    const t0 = Date.now();
    const res = await runMcload(
      mcload,
      server.port,
      [
        '--mode', 'fill', '--value-size', valueSize, '--requests', String(requests),
        '--pipeline', String(pipeline), '--key-prefix', 'memfill:', '--quickack', '--max-time', '300',
      ],
      360_000,
    );
    clearInterval(timer);
    const last = rssBytes(server.pid);
    if (last > peak) peak = last;
    report.seconds = (Date.now() - t0) / 1000;
    report.idleMb = mb(idle);
    report.peakMb = mb(peak);
    report.finalMb = mb(last);
    report.growthMb = mb(peak - idle);
    report.errors = num(res.json, 'errors');
    report.fillSets = num(res.json, 'fill_sets');
    report.retained = num(res.json, 'retained');
    report.retainedRatio = num(res.json, 'retained_ratio');
    report.retainedMb = mb(num(res.json, 'retained_bytes'));
    if (res.json === null) problems.push(`mcload gave no JSON (exit ${res.exitCode}${res.timedOut ? ', timed out' : ''}): ${res.stderr.slice(-500)}`);
    else if (report.errors !== 0) {
      const detail = ['error_replies', 'bad_values', 'timeouts', 'desyncs', 'disconnects', 'connect_failures']
        .map((k) => `${k}=${String(res.json?.[k])}`)
        .join(' ');
      problems.push(`mcload errors=${report.errors} (${detail})`);
    }
    if (res.json?.['incomplete'] === true) problems.push('mcload hit --max-time (incomplete)');
    if (!server.alive()) problems.push(`server died (stderr: ${server.stderr().slice(-500)})`);
    else {
      try {
        const r = await textRequest(
          server.port,
          'set memfill:check 0 0 2\r\nok\r\nget memfill:check\r\n',
          /END\r\n|ERROR[^\r]*\r\n/,
          2000,
        );
        if (r !== 'STORED\r\nVALUE memfill:check 0 2\r\nok\r\nEND\r\n') problems.push(`set/get check got ${JSON.stringify(r)}`);
      } catch (e) {
        problems.push(`set/get check failed: ${(e as Error).message}`);
      }
    }
    report.ok = problems.length === 0;
    return report;
  } finally {
    await server.stop();
  }
}


/** A cache-aside run: get Zipf keys, set each miss; mcload reports the hit ratio. */
async function cacheAside(start: () => Promise<Server>, mcload: string, gets: number): Promise<{ hitRatio: number; secondHalf: number; errors: number }> {
  const server = await start();
  try {
    const res = await runMcload(
      mcload,
      server.port,
      ['--mode', 'cache', '--keys', '600000', '--requests', String(gets), '--value-size', '100-2000', '--threads', '2', '--conns', '2', '--pipeline', '8', '--quickack', '--max-time', '600'],
      660_000,
    );
    return { hitRatio: num(res.json, 'hit_ratio'), secondHalf: num(res.json, 'hit_ratio_second_half'), errors: res.json === null ? NaN : num(res.json, 'errors') };
  } finally {
    await server.stop();
  }
}

export interface MemoryBenchOptions {
  mcload: string;
  /** memshard's serving threads (its default -t 4). */
  threads: number;
  /** Gets of the cache-aside row (3,000,000: long enough for the slab movers' 30-second windows). */
  gets: number;
}

/** The rows, as markdown lines, and the problems met (a server died, mcload errors). */
export async function memoryBench(o: MemoryBenchOptions): Promise<{ lines: string[]; failures: string[] }> {
  const failures: string[] = [];
  const servers = {
    memcached: (memoryMb: number) => () => startMemcached({ threads: 2, memoryMb }),
    memshard: (memoryMb: number) => () => startMemshard({ threads: o.threads, memoryMb }),
  };
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : 'n/a');
  const lines: string[] = ['', `### memory and hit ratio (memshard -t ${o.threads} defaults vs memcached -t 2)`, ''];
  const check = (r: FillReport) => failures.push(...r.problems.map((p) => `${r.server}: ${p}`));

  lines.push('| row | measure | memcached | memshard | ratio |', '|---|---|---:|---:|---:|');
  const fills: Record<string, FillReport> = {};
  for (const role of ['memcached', 'memshard'] as const) {
    fills[role] = await fill(servers[role](64), `${role} -m 64`, o.mcload, 200_000, 8, '100-2000', SETTLE_MS);
    check(fills[role]);
  }
  const [mc, ms] = [fills['memcached']!, fills['memshard']!];
  const perMbRss = (r: FillReport) => (r.retainedMb * 1024) / r.finalMb;
  lines.push(`| fill -m 64, 200k x 100-2000 B | items kept | ${f(mc.retained, 0)} | ${f(ms.retained, 0)} | ${f(ms.retained / mc.retained, 3)} |`);
  lines.push(`| | RSS idle MB (1 s after start) | ${f(mc.idleMb)} | ${f(ms.idleMb)} | |`);
  lines.push(`| | RSS idle MB (${SETTLE_MS / 1000} s later) | ${f(mc.settledIdleMb)} | ${f(ms.settledIdleMb)} | |`);
  lines.push(`| | RSS after fill MB (over idle) | ${f(mc.finalMb)} (+${f(mc.finalMb - mc.idleMb)}) | ${f(ms.finalMb)} (+${f(ms.finalMb - ms.idleMb)}) | |`);
  lines.push(`| | value KB per MB of RSS | ${f(perMbRss(mc), 0)} | ${f(perMbRss(ms), 0)} | ${f(perMbRss(ms) / perMbRss(mc), 2)} |`);

  const hits: Record<string, { hitRatio: number; secondHalf: number; errors: number }> = {};
  for (const role of ['memcached', 'memshard'] as const) {
    hits[role] = await cacheAside(servers[role](64), o.mcload, o.gets);
    if (hits[role].errors !== 0) failures.push(`${role} cache-aside: mcload errors ${hits[role].errors}`);
  }
  lines.push(
    `| cache-aside -m 64, ${f(o.gets / 1e6, 1)}M gets, Zipf 0.99 over 600k keys | hit ratio (second half) | ${f(hits['memcached']!.hitRatio, 4)} (${f(hits['memcached']!.secondHalf, 4)}) | ` +
      `${f(hits['memshard']!.hitRatio, 4)} (${f(hits['memshard']!.secondHalf, 4)}) | ${f(hits['memshard']!.hitRatio / hits['memcached']!.hitRatio, 3)} |`,
  );

  const peaks: Record<string, FillReport> = {};
  for (const role of ['memcached', 'memshard'] as const) {
    peaks[role] = await fill(servers[role](64), `${role} -m 64`, o.mcload, 60_000, 8, `${MIN_VALUE}-${MAX_VALUE}`);
    check(peaks[role]);
  }
  lines.push(
    `| fill -m 64, 60k x 100 B-100 KB | peak RSS MB (over idle) | ${f(peaks['memcached']!.peakMb)} (+${f(peaks['memcached']!.growthMb)}) | ` +
      `${f(peaks['memshard']!.peakMb)} (+${f(peaks['memshard']!.growthMb)}) | |`,
  );

  const large: Record<string, FillReport> = {};
  for (const role of ['memcached', 'memshard'] as const) {
    large[role] = await fill(servers[role](1024), `${role} -m 1024`, o.mcload, 400_000, 8, '100-10000');
    check(large[role]);
  }
  lines.push(
    `| fill -m 1024, 400k x 100-10000 B | RSS after fill MB | ${f(large['memcached']!.finalMb)} | ${f(large['memshard']!.finalMb)} | ${f(large['memshard']!.finalMb / large['memcached']!.finalMb, 2)} |`,
  );
  lines.push(`| | items kept | ${f(large['memcached']!.retained, 0)} | ${f(large['memshard']!.retained, 0)} | ${f(large['memshard']!.retained / large['memcached']!.retained, 3)} |`);
  return { lines, failures };
}
