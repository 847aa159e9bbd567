// Memory bound check: fill memshard -m 64 with 100 B..100 KB values (many times its limit) and
// watch the process RSS; then the same with memcached -m 64 for comparison.
//
//   npm run memfill -- [--memory 64] [--threads 4] [--requests N] [--pipeline 8] [--max-growth-mb 75]
//
// Exits non-zero when memshard's peak RSS - idle RSS exceeds --max-growth-mb, when any memshard
// set failed (mcload errors > 0), or when memshard died or stopped answering.
import fs from 'node:fs';
import {
  ensureMcload,
  installCleanupHandlers,
  killAll,
  log,
  num,
  scriptOptions,
  positiveNumber,
  runMain,
  runMcload,
  sleep,
  startMemcached,
  startMemshard,
  textRequest,
  type Server,
} from './bench.js';

const MIN_VALUE = 100;
const MAX_VALUE = 102400;

/** VmRSS of a process in bytes, or NaN if it is gone. */
function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

interface FillReport {
  server: string;
  ok: boolean;
  problems: string[];
  idleMb: number;
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

const mb = (b: number) => b / (1024 * 1024);

async function fill(
  start: () => Promise<Server>,
  label: string,
  mcload: string,
  requests: number,
  pipeline: number,
): Promise<FillReport> {
  const problems: string[] = [];
  const report: FillReport = {
    server: label, ok: false, problems, idleMb: NaN, peakMb: NaN, finalMb: NaN, growthMb: NaN,
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
    let peak = idle;
    const timer = setInterval(() => {
      const r = rssBytes(server.pid);
      if (r > peak) peak = r;
    }, 100);
    log(`${label}: idle RSS ${mb(idle).toFixed(1)} MB; filling with ${requests} values of ${MIN_VALUE}-${MAX_VALUE} B, pipeline ${pipeline}`);
    const t0 = Date.now();
    const res = await runMcload(
      mcload,
      server.port,
      [
        '--mode', 'fill', '--value-size', `${MIN_VALUE}-${MAX_VALUE}`, '--requests', String(requests),
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

async function main(): Promise<number> {
  const usage = 'usage: node dist/scripts/memfill.js [--memory 64] [--threads 4] [--requests 150000] [--pipeline 8] [--max-growth-mb 75]';
  const opts = scriptOptions(usage, ['help'], ['memory', 'threads', 'requests', 'pipeline', 'max-growth-mb']);
  if (typeof opts === 'number') return opts;
  const memoryMb = Math.round(positiveNumber(opts.get('memory'), 64, 'memory'));
  const threads = Math.round(positiveNumber(opts.get('threads'), 4, 'threads'));
  // default 150000 sets (mean value 50 KB: ~7.3 GB written, >100x -m 64, so the cache turns over
  // many times and slow growth shows); memcached takes ~3 s for it here. Not less than 4x -m.
  const dfltRequests = Math.max(150_000, Math.ceil((4 * memoryMb * 1024 * 1024) / ((MIN_VALUE + MAX_VALUE) / 2)));
  const requests = Math.round(positiveNumber(opts.get('requests'), dfltRequests, 'requests'));
  const pipeline = Math.round(positiveNumber(opts.get('pipeline'), 8, 'pipeline'));
  const maxGrowthMb = positiveNumber(opts.get('max-growth-mb'), 75, 'max-growth-mb');

  installCleanupHandlers();
  const mcload = ensureMcload();
  const ms = await fill(() => startMemshard({ threads, memoryMb }), `memshard -t ${threads} -m ${memoryMb}`, mcload, requests, pipeline);
  const mc = await fill(() => startMemcached({ threads, memoryMb }), `memcached -t ${threads} -m ${memoryMb}`, mcload, requests, pipeline);

  if (Number.isFinite(ms.growthMb) && ms.growthMb > maxGrowthMb) {
    ms.problems.push(`RSS grew ${ms.growthMb.toFixed(1)} MB > ${maxGrowthMb} MB`);
    ms.ok = false;
  }

  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  const lines = [
    `## memfill: ${requests} values of ${MIN_VALUE}-${MAX_VALUE} B (~${f((requests * (MIN_VALUE + MAX_VALUE)) / 2 / 1024 / 1024, 0)} MB written), pipeline ${pipeline} (${new Date().toISOString()}, node ${process.version})`,
    '',
    '| server | idle RSS MB | peak RSS MB | peak - idle MB | final RSS MB | mcload errors | sets | retained | retained ratio | retained MB | seconds | result |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of [ms, mc]) {
    lines.push(
      `| ${r.server} | ${f(r.idleMb)} | ${f(r.peakMb)} | ${f(r.growthMb)} | ${f(r.finalMb)} | ${f(r.errors, 0)} | ${f(r.fillSets, 0)} | ${f(r.retained, 0)} | ${f(r.retainedRatio, 3)} | ${f(r.retainedMb)} | ${f(r.seconds)} | ${r.ok ? 'ok' : 'FAIL'} |`,
    );
  }
  lines.push('', `memshard limit: peak - idle <= ${maxGrowthMb} MB, no errors, still answering after the fill.`);
  console.log(lines.join('\n'));
  for (const r of [ms, mc]) for (const p of r.problems) log(`${r.server}: ${p}`);
  return ms.ok ? 0 : 1;
}

runMain(import.meta.url, main);
