// What a Prometheus scrape costs: time 200 GETs of /metrics on a memshard holding ~200k items,
// idle and under an mcload get load, and the load's ops/s with and without a scraper hitting
// /metrics every 100 ms.
//
//   npm run bench:scrape -- [--items 200000] [--duration 20] [--rounds 1] [--scrapes 200] [--json]
//
// Starts `memshard -t 4 -m 256 --metrics-port <free> --metrics-listen 127.0.0.1` and mcload; kills
// only those (by PID) at the end or on SIGINT/SIGTERM. Exits non-zero when a scrape or an mcload
// run failed, or the server died.
import http from 'node:http';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  ensureMcload,
  freePort,
  installCleanupHandlers,
  killAll,
  log,
  median,
  num,
  scriptOptions,
  positiveNumber,
  runMcload,
  sleep,
  startMemshard,
  textRequest,
  type McloadResult,
  type Server,
  runMain,
} from './bench.js';

const THREADS = 4;
const MEMORY_MB = 256;
const VALUE_SIZE = 32;
const SCRAPE_INTERVAL_MS = 100;

interface Scrape {
  ms: number;
  bytes: number;
}

/** One GET of /metrics over a keep-alive agent (as Prometheus scrapes); rejects on non-200. */
function getMetrics(agent: http.Agent, url: string, timeoutMs = 10_000): Promise<Scrape> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.get(url, { agent }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => {
        clearTimeout(timer);
        if (res.statusCode !== 200) reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
        else resolve({ ms: performance.now() - t0, bytes });
      });
      res.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`GET ${url}: no reply within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** Scrape back to back, or every intervalMs, until `count` scrapes are done or `until()` says stop. */
async function scrapeLoop(
  agent: http.Agent,
  url: string,
  opts: { count: number; intervalMs: number; until?: () => boolean },
): Promise<Scrape[]> {
  const out: Scrape[] = [];
  const start = performance.now();
  while (out.length < opts.count && !(opts.until?.() ?? false)) {
    out.push(await getMetrics(agent, url));
    if (opts.intervalMs > 0) {
      const next = start + out.length * opts.intervalMs;
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
    }
  }
  return out;
}

function mcloadProblem(what: string, r: McloadResult): string | null {
  if (r.json === null || r.timedOut) return `${what}: mcload ${r.timedOut ? 'timed out' : `exited ${r.exitCode} without JSON`}: ${r.stderr.slice(-500)}`;
  if (num(r.json, 'errors') !== 0 || r.exitCode !== 0 || r.json['incomplete'] === true) {
    return `${what}: mcload errors=${num(r.json, 'errors')} exit=${r.exitCode} incomplete=${String(r.json['incomplete'])}`;
  }
  return null;
}

const usage = `usage: node dist/scripts/scrape.js [--items N] [--duration S] [--rounds N] [--scrapes N] [--json]
  --items N      keys to prefill (${VALUE_SIZE}-byte values; default 200000)
  --duration S   seconds of each get-load run (default 22: room for 200 scrapes at one per 100 ms)
  --rounds N     alternate load-alone / load+scraper runs N times, report medians (default 1)
  --scrapes N    scrapes timed idle and under load (default 200)
  --json         print one JSON document on stdout (progress goes to stderr)`;

async function main(): Promise<number> {
  const opts = scriptOptions(usage, ['json', 'help'], ['items', 'duration', 'rounds', 'scrapes']);
  if (typeof opts === 'number') return opts;
  const items = Math.round(positiveNumber(opts.get('items'), 200_000, 'items'));
  const duration = positiveNumber(opts.get('duration'), 22, 'duration');
  const rounds = Math.round(positiveNumber(opts.get('rounds'), 1, 'rounds'));
  const scrapes = Math.round(positiveNumber(opts.get('scrapes'), 200, 'scrapes'));
  const asJson = opts.has('json');

  installCleanupHandlers();
  const mcload = ensureMcload();
  const failures: string[] = [];

  const metricsPort = await freePort();
  const server: Server = await startMemshard({
    threads: THREADS,
    memoryMb: MEMORY_MB,
    args: ['--metrics-port', String(metricsPort), '--metrics-listen', '127.0.0.1'],
  });
  const url = `http://127.0.0.1:${metricsPort}/metrics`;
  log(`${server.name}: pid ${server.pid}, port ${server.port}, metrics ${url}`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  try {
    // the HTTP listener may come up just after the memcached one
    for (let i = 0; ; i++) {
      try {
        await getMetrics(agent, url, 1000);
        break;
      } catch (e) {
        if (i >= 50) throw new Error(`${url} never answered: ${(e as Error).message}`);
        await sleep(100);
      }
    }

    // fill
    const common = ['--keys', String(items), '--value-size', String(VALUE_SIZE)];
    log(`prefill: ${items} keys of ${VALUE_SIZE} bytes`);
    const fill = await runMcload(mcload, server.port, ['--mode', 'prefill', '--threads', '2', '--conns', '8', '--pipeline', '16', ...common, '--max-time', '120'], 180_000);
    const fillProblem = mcloadProblem('prefill', fill);
    if (fillProblem) failures.push(fillProblem);
    const stats = await textRequest(server.port, 'stats\r\n', /END\r\n/, 5000);
    const currItems = Number(/STAT curr_items (\d+)/.exec(stats)?.[1] ?? NaN);
    log(`curr_items ${currItems}`);

    // idle scrapes (back to back)
    const first = await getMetrics(agent, url);
    const idle = await scrapeLoop(agent, url, { count: scrapes, intervalMs: 0 });
    const body = await new Promise<string>((resolve, reject) => {
      http.get(url, { agent }, (res) => {
        let s = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (s += c));
        res.on('end', () => resolve(s));
        res.on('error', reject);
      }).on('error', reject);
    });
    const series = body.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
    log(`idle: ${idle.length} scrapes, p50 ${percentile(idle.map((s) => s.ms), 50).toFixed(2)} ms, ${first.bytes} bytes, ${series} series`);

    // get load alone vs get load + a scraper every 100 ms (alternating over the rounds)
    const loadArgs = ['--threads', '2', '--conns', '25', '--pipeline', '1', '--ratio', '0:1', ...common, '--duration', String(duration), '--max-time', String(duration + 30)];
    const loadTimeout = (duration + 60) * 1000;
    const alone: number[] = [];
    const withScraper: number[] = [];
    const aloneP99: number[] = [];
    const withP99: number[] = [];
    const underLoad: Scrape[] = [];
    for (let r = 1; r <= rounds; r++) {
      if (!server.alive()) {
        failures.push(`memshard died: ${server.stderr().slice(-500)}`);
        break;
      }
      const a = await runMcload(mcload, server.port, loadArgs, loadTimeout);
      const ap = mcloadProblem(`round ${r} load alone`, a);
      if (ap) failures.push(ap);
      alone.push(num(a.json, 'ops_per_sec'));
      log(`round ${r}/${rounds} load alone: ${Math.round(num(a.json, 'ops_per_sec'))} ops/s, p99 ${num(a.json, 'p99_us')} us`);

      let loadDone = false;
      const load = runMcload(mcload, server.port, loadArgs, loadTimeout).finally(() => (loadDone = true));
      await sleep(300); // let the connections come up before the first scrape
      const timed = await scrapeLoop(agent, url, { count: scrapes, intervalMs: SCRAPE_INTERVAL_MS, until: () => loadDone }).catch((e: unknown) => {
        failures.push(`round ${r} scrape under load: ${(e as Error).message}`);
        return [] as Scrape[];
      });
      // keep scraping every 100 ms until the load ends, so the whole run carries the scraper
      const rest = await scrapeLoop(agent, url, { count: Infinity, intervalMs: SCRAPE_INTERVAL_MS, until: () => loadDone }).catch(() => [] as Scrape[]);
      const b = await load;
      const bp = mcloadProblem(`round ${r} load + scraper`, b);
      if (bp) failures.push(bp);
      withScraper.push(num(b.json, 'ops_per_sec'));
      underLoad.push(...timed);
      if (timed.length < scrapes) log(`note: only ${timed.length} scrapes fitted in the ${duration} s load (use a longer --duration)`);
      log(`round ${r}/${rounds} load + scraper every ${SCRAPE_INTERVAL_MS} ms: ${Math.round(num(b.json, 'ops_per_sec'))} ops/s, p99 ${num(b.json, 'p99_us')} us, ${timed.length + rest.length} scrapes, scrape p50 ${percentile(timed.map((s) => s.ms), 50).toFixed(2)} ms`);
      withP99.push(num(b.json, 'p99_us'));
      aloneP99.push(num(a.json, 'p99_us'));
    }

    const opsAlone = median(alone);
    const opsWith = median(withScraper);
    const row = (label: string, xs: Scrape[]) => ({
      label,
      n: xs.length,
      p50_ms: percentile(xs.map((s) => s.ms), 50),
      p99_ms: percentile(xs.map((s) => s.ms), 99),
      max_ms: Math.max(...xs.map((s) => s.ms)),
      bytes: median(xs.map((s) => s.bytes)),
    });
    const result = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}`,
      server: `memshard -t ${THREADS} -m ${MEMORY_MB} (VERSION ${server.version})`,
      items: currItems,
      series,
      load: `mcload 2 threads x 25 conns, pipeline 1, 100% get over ${items} keys, ${duration} s, ${rounds} round(s)`,
      scrapes: [row('idle (back to back)', idle), row(`under get load (every ${SCRAPE_INTERVAL_MS} ms)`, underLoad)],
      ops_alone: opsAlone,
      ops_with_scraper: opsWith,
      ops_change_pct: ((opsWith - opsAlone) / opsAlone) * 100,
      p99_us_alone: median(aloneP99),
      p99_us_with_scraper: median(withP99),
      failures,
    };

    if (asJson) {
      console.log(JSON.stringify(result, null, 2));
    } else {
      const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : 'n/a');
      const out: string[] = [];
      out.push(`## /metrics scrape cost (${result.date})`, '');
      out.push(`${result.server}, ${f(currItems)} items, ${series} series; node ${result.node}; ${result.cpus}`, '');
      out.push('| scrapes | n | p50 ms | p99 ms | max ms | body bytes |');
      out.push('|---|---:|---:|---:|---:|---:|');
      for (const s of result.scrapes) out.push(`| ${s.label} | ${s.n} | ${f(s.p50_ms, 2)} | ${f(s.p99_ms, 2)} | ${f(s.max_ms, 2)} | ${f(s.bytes)} |`);
      out.push('', `${result.load}:`, '');
      out.push('| get load | ops/s | p99 us |');
      out.push('|---|---:|---:|');
      out.push(`| alone | ${f(opsAlone)} | ${f(result.p99_us_alone)} |`);
      out.push(`| with a scrape every ${SCRAPE_INTERVAL_MS} ms | ${f(opsWith)} (${result.ops_change_pct >= 0 ? '+' : ''}${f(result.ops_change_pct, 1)}%) | ${f(result.p99_us_with_scraper)} |`);
      console.log(out.join('\n'));
    }
  } finally {
    agent.destroy();
    await killAll();
  }
  if (failures.length) {
    log(`\n${failures.length} problem(s):`);
    for (const x of failures) log(`  - ${x}`);
    return 1;
  }
  return 0;
}

runMain(import.meta.url, main);
