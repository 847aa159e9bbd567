// Memory bound check: fill memshard -m 64 with 100 B..100 KB values (many times its limit) and
// watch the process RSS; then the same with memcached -m 64 for comparison.
//
//   npm run memfill -- [--memory 64] [--threads 4] [--requests N] [--pipeline 8] [--max-growth-mb 75]
//
// Exits non-zero when memshard's peak RSS - idle RSS exceeds --max-growth-mb, when any memshard
// set failed (mcload errors > 0), or when memshard died or stopped answering.
import { ensureMcload, installCleanupHandlers, log, scriptOptions, positiveNumber, runMain, startMemcached, startMemshard } from './bench.js';
import { fill, MAX_VALUE, MIN_VALUE } from './memory-bench.js';

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
  const ms = await fill(() => startMemshard({ threads, memoryMb }), `memshard -t ${threads} -m ${memoryMb}`, mcload, requests, pipeline, `${MIN_VALUE}-${MAX_VALUE}`);
  const mc = await fill(() => startMemcached({ threads, memoryMb }), `memcached -t ${threads} -m ${memoryMb}`, mcload, requests, pipeline, `${MIN_VALUE}-${MAX_VALUE}`);

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
