/**
 * The Prometheus endpoint (--metrics-port / --metrics-listen): memcached_exporter's names agree
 * with `stats`, promtool accepts the exposition, a real Prometheus scrapes it, and the flags
 * behave (0 = off, bad values exit 64).
 *
 * Needs Debian's `prometheus` package (/usr/bin/promtool, /usr/bin/prometheus); .ci/run installs
 * it. PROMTOOL_BIN / PROMETHEUS_BIN override the paths.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { Op as BinOp, request as binaryRequest } from './helpers/binary.js';
import { cliPath, connectRefused, freePort, httpGet, rawClient, startDaemon, type Daemon, type RawClient } from './helpers/daemon.js';

const PROMTOOL = process.env['PROMTOOL_BIN'] ?? '/usr/bin/promtool';
const PROMETHEUS = process.env['PROMETHEUS_BIN'] ?? '/usr/bin/prometheus';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// a tiny parser of the Prometheus text exposition format: `name{l="v",...} value [timestamp]`

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseValue(s: string): number {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  return Number(s);
}

export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/.exec(line);
    if (!m) throw new Error(`unparseable exposition line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/gy;
    let pos = 0;
    for (let lm = re.exec(body); lm !== null; lm = re.exec(body)) {
      labels[lm[1]!] = lm[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      pos = re.lastIndex;
    }
    if (body.slice(pos).trim() !== '') throw new Error(`unparseable labels: ${JSON.stringify(line)}`);
    out.push({ name: m[1]!, labels, value: parseValue(m[3]!) });
  }
  return out;
}

function find(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The single sample with this name and these labels (undefined when absent or ambiguous). */
function one(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const f = find(samples, name, labels);
  return f.length === 1 ? f[0]!.value : undefined;
}

/** `STAT name value` lines of one or more stats replies. */
function parseStats(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const s = /^STAT (\S+) (.*)$/.exec(line);
    if (s) m.set(s[1]!, s[2]!);
  }
  return m;
}

async function request(c: RawClient, cmd: string, expect: string): Promise<string> {
  c.send(cmd);
  return c.readUntil(expect);
}

/** Send one command and check its exact reply. */
async function exchange(t: Test, c: RawClient, cmd: string, reply: string): Promise<void> {
  c.send(cmd);
  const got = await c.readUntil('\r\n');
  if (reply.split('\r\n').length > 2) {
    // multi-line (VALUE ... END)
    const rest = got + (await c.readUntil('END\r\n'));
    t.equal(rest, reply, JSON.stringify(cmd));
  } else {
    t.equal(got, reply, JSON.stringify(cmd));
  }
}


async function metricsDaemon(t: Test, extra: string[] = []): Promise<{ d: Daemon; metricsPort: number; url: string }> {
  for (let attempt = 0; ; attempt++) {
    const metricsPort = await freePort();
    try {
      const d = await startDaemon(['--metrics-port', String(metricsPort), '--metrics-listen', '127.0.0.1', ...extra]);
      t.teardown(() => d.stop());
      return { d, metricsPort, url: `http://127.0.0.1:${metricsPort}/metrics` };
    } catch (e) {
      // the metrics port can be taken between freePort() and the bind
      if (attempt < 2 && /EADDRINUSE/.test(String(e))) continue;
      throw e;
    }
  }
}

/** GET /metrics until it answers 200 (the HTTP listener may come up just after the memcached one). */
async function scrape(url: string, timeoutMs = 5000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const r = await httpGet(url, Math.max(500, deadline - Date.now()));
      if (r.status === 200) return r.body;
      last = `HTTP ${r.status}: ${r.body.slice(0, 200)}`;
    } catch (e) {
      last = String(e);
    }
    await sleep(100);
  }
  throw new Error(`GET ${url} did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}

// ---------------------------------------------------------------------------------------------

t.test('memcached_exporter names agree with stats after known traffic', async (t) => {
  const { d, url } = await metricsDaemon(t, ['-t', '2']);
  const c = await rawClient(d.port);
  t.teardown(() => c.close());

  // flush_all first: items stored afterwards stay (nothing is pending), so curr_items & co are
  // stable between the stats and /metrics readings below.
  await exchange(t, c, 'flush_all\r\n', 'OK\r\n');
  await exchange(t, c, 'set a 0 0 1\r\n1\r\n', 'STORED\r\n');
  await exchange(t, c, 'set b 0 0 3\r\nabc\r\n', 'STORED\r\n');
  await exchange(t, c, 'set c 0 0 5\r\nhello\r\n', 'STORED\r\n');
  await exchange(t, c, 'get a\r\n', 'VALUE a 0 1\r\n1\r\nEND\r\n');
  await exchange(t, c, 'get b\r\n', 'VALUE b 0 3\r\nabc\r\nEND\r\n');
  await exchange(t, c, 'get c\r\n', 'VALUE c 0 5\r\nhello\r\nEND\r\n');
  await exchange(t, c, 'get nope1\r\n', 'END\r\n');
  await exchange(t, c, 'get nope2\r\n', 'END\r\n');
  await exchange(t, c, 'delete c\r\n', 'DELETED\r\n');
  await exchange(t, c, 'delete c\r\n', 'NOT_FOUND\r\n');
  await exchange(t, c, 'incr a 5\r\n', '6\r\n');
  await exchange(t, c, 'incr nope 1\r\n', 'NOT_FOUND\r\n');
  await exchange(t, c, 'decr a 2\r\n', '4\r\n');
  await exchange(t, c, 'decr nope 1\r\n', 'NOT_FOUND\r\n');
  await exchange(t, c, 'cas b 0 0 1 987654321\r\nx\r\n', 'EXISTS\r\n');
  await exchange(t, c, 'cas nope 0 0 1 1\r\nx\r\n', 'NOT_FOUND\r\n');
  await exchange(t, c, 'touch a 1000\r\n', 'TOUCHED\r\n');
  await exchange(t, c, 'touch nope 1000\r\n', 'NOT_FOUND\r\n');

  // stats first (A), then /metrics over HTTP (touches no memcached counter), then stats again (B):
  // every counter must lie between A and B, and where A = B it must be exactly that.
  // (parsed apart: `stats settings` has fields named like general ones, e.g. `evictions on`)
  const statsA = parseStats(await request(c, 'stats\r\nstats settings\r\nstats items\r\nstats slabs\r\n', 'END\r\n'));
  const settings = parseStats(await c.readUntil('END\r\n'));
  const slabStats = parseStats((await c.readUntil('END\r\n')) + (await c.readUntil('END\r\n')));
  const body = await scrape(url);
  const statsB = parseStats(await request(c, 'stats\r\n', 'END\r\n'));
  const samples = parseExposition(body);

  t.equal(one(samples, 'memcached_up'), 1, 'memcached_up 1');
  t.equal(one(samples, 'memcached_version', { version: statsA.get('version') ?? '?' }), 1, `memcached_version{version="${statsA.get('version')}"} 1`);

  // what the traffic above must have produced, in memcached_exporter's terms
  const expected: Array<[string, string, number]> = [
    ['get', 'hit', 3], ['get', 'miss', 2],
    ['delete', 'hit', 1], ['delete', 'miss', 1],
    ['incr', 'hit', 1], ['incr', 'miss', 1],
    ['decr', 'hit', 1], ['decr', 'miss', 1],
    ['cas', 'hit', 0], ['cas', 'miss', 1], ['cas', 'badval', 1],
    ['touch', 'hit', 1], ['touch', 'miss', 1],
    ['set', 'hit', 3], // cmd_set (5: 3 sets + 2 cas) - cas_hits - cas_misses - cas_badval
    ['flush', 'hit', 1],
  ];
  for (const [command, status, n] of expected) {
    t.equal(one(samples, 'memcached_commands_total', { command, status }), n, `memcached_commands_total{command="${command}",status="${status}"} ${n}`);
  }
  t.equal(find(samples, 'memcached_commands_total').length, expected.length,
    `exactly memcached_exporter's ${expected.length} command/status series: ${find(samples, 'memcached_commands_total').map((s) => JSON.stringify(s.labels)).join(' ')}`);

  const num = (m: Map<string, string>, k: string) => Number(m.get(k));
  const between = (metric: string, labels: Record<string, string>, field: string, a: number, b: number) => {
    const v = one(samples, metric, labels);
    const l = Object.keys(labels).length ? `{${Object.entries(labels).map(([k, x]) => `${k}="${x}"`).join(',')}}` : '';
    if (a === b) t.equal(v, a, `${metric}${l} = stats ${field} (${a})`);
    else t.ok(v !== undefined && v >= Math.min(a, b) && v <= Math.max(a, b), `${metric}${l} ${v} within stats ${field} ${a}..${b}`);
  };
  const fromStats = (metric: string, field: string, labels: Record<string, string> = {}) => {
    t.ok(statsA.has(field) && statsB.has(field), `stats has ${field}`);
    between(metric, labels, field, num(statsA, field), num(statsB, field));
  };

  for (const op of ['get', 'delete', 'incr', 'decr', 'cas', 'touch']) {
    fromStats('memcached_commands_total', `${op}_hits`, { command: op, status: 'hit' });
    fromStats('memcached_commands_total', `${op}_misses`, { command: op, status: 'miss' });
  }
  fromStats('memcached_commands_total', 'cas_badval', { command: 'cas', status: 'badval' });
  fromStats('memcached_commands_total', 'cmd_flush', { command: 'flush', status: 'hit' });
  const setHits = (m: Map<string, string>) => num(m, 'cmd_set') - num(m, 'cas_hits') - num(m, 'cas_misses') - num(m, 'cas_badval');
  between('memcached_commands_total', { command: 'set', status: 'hit' }, 'cmd_set - cas_*', setHits(statsA), setHits(statsB));

  fromStats('memcached_uptime_seconds', 'uptime');
  fromStats('memcached_current_bytes', 'bytes');
  fromStats('memcached_limit_bytes', 'limit_maxbytes');
  fromStats('memcached_current_items', 'curr_items');
  fromStats('memcached_items_total', 'total_items');
  fromStats('memcached_items_evicted_total', 'evictions');
  fromStats('memcached_items_reclaimed_total', 'reclaimed');
  fromStats('memcached_current_connections', 'curr_connections');
  fromStats('memcached_connections_total', 'total_connections');
  fromStats('memcached_read_bytes_total', 'bytes_read');
  fromStats('memcached_written_bytes_total', 'bytes_written');
  t.equal(one(samples, 'memcached_current_items'), 2, 'two items left (a, b)');
  t.equal(one(samples, 'memcached_current_connections'), 1, 'the HTTP scrape is not a memcached connection');
  t.equal(one(samples, 'memcached_max_connections'), num(settings, 'maxconns'), 'memcached_max_connections = stats settings maxconns');

  // per-slab series, labelled by the slab class number as in `stats items` / `stats slabs`
  const slabIds = [...slabStats.keys()].map((k) => /^items:(\d+):number$/.exec(k)?.[1]).filter((x): x is string => x !== undefined);
  t.ok(slabIds.length >= 1, `stats items lists slab classes (${slabIds.join(',')})`);
  for (const slab of slabIds) {
    t.equal(one(samples, 'memcached_slab_current_items', { slab }), num(slabStats, `items:${slab}:number`), `memcached_slab_current_items{slab="${slab}"} = items:${slab}:number`);
    if (slabStats.has(`${slab}:chunk_size`)) {
      t.equal(one(samples, 'memcached_slab_chunk_size_bytes', { slab }), num(slabStats, `${slab}:chunk_size`), `memcached_slab_chunk_size_bytes{slab="${slab}"} = ${slab}:chunk_size`);
    }
  }

  // memshard's own series
  const shardItems = find(samples, 'memshard_shard_items');
  t.equal(shardItems.length, 2, `one memshard_shard_items series per shard (-t 2): ${shardItems.map((s) => JSON.stringify(s.labels)).join(' ')}`);
  t.equal(shardItems.reduce((s, x) => s + x.value, 0), num(statsA, 'curr_items'), 'memshard_shard_items sums to curr_items');
  const durations = find(samples, 'memshard_command_duration_seconds_count');
  t.ok(durations.length > 0 && durations.every((s) => 'command' in s.labels && 'protocol' in s.labels),
    `memshard_command_duration_seconds has command and protocol labels: ${durations.map((s) => JSON.stringify(s.labels)).join(' ')}`);
  const getCount = find(samples, 'memshard_command_duration_seconds_count', { command: 'get' }).reduce((s, x) => s + x.value, 0);
  t.ok(getCount >= 5, `memshard_command_duration_seconds_count{command="get"} counts the 5 gets (${getCount})`);
  t.ok(find(samples, 'memshard_command_duration_seconds_bucket', { command: 'get', le: '+Inf' }).length > 0, 'histogram has +Inf buckets');

  // prom-client's default metrics
  for (const name of ['process_resident_memory_bytes', 'process_cpu_seconds_total', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
    t.ok(find(samples, name).length > 0, `${name} is there`);
  }
});

t.test('command latency is labelled with the protocol the command came in', async (t) => {
  const { d, url } = await metricsDaemon(t);
  const text = await rawClient(d.port);
  text.send('get a\r\nget b\r\nget c\r\nflush_all\r\n');
  await text.readUntil((b) => b.toString('latin1').split('END\r\n').length === 4 && b.toString('latin1').endsWith('OK\r\n'));
  const bin = await rawClient(d.port);
  bin.send(Buffer.concat([binaryRequest({ opcode: BinOp.Get, key: 'a' }), binaryRequest({ opcode: BinOp.Get, key: 'b' }), binaryRequest({ opcode: BinOp.Flush })]));
  await bin.readUntil((b) => b.length >= 3 * 24);
  const samples = parseExposition(await scrape(url));
  const count = (command: string, protocol: string) => one(samples, 'memshard_command_duration_seconds_count', { command, protocol });
  t.equal(count('get', 'text'), 3, 'three text gets');
  t.equal(count('get', 'binary'), 2, 'two binary gets');
  t.equal(count('flush_all', 'text'), 1, 'text flush_all');
  t.equal(count('flush_all', 'binary'), 1, 'binary Flush');
  await Promise.all([text.close(), bin.close()]);
});

t.test('memshard_memory_bytes: the RSS and its parts add up, slab pages follow the items', async (t) => {
  const { d, url } = await metricsDaemon(t, ['-t', '2', '-m', '16']);
  const kinds = (samples: ReturnType<typeof parseExposition>) =>
    new Map(['rss', 'slab_pages', 'store_index', 'store_tables', 'js_heap', 'js_external', 'other'].map((kind) => [kind, one(samples, 'memshard_memory_bytes', { kind }) ?? NaN]));
  const before = kinds(parseExposition(await scrape(url)));
  const procRss = Number(/^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${d.pid}/status`, 'utf8'))![1]) * 1024;
  t.ok(Math.abs(before.get('rss')! - procRss) < 16 * 1024 * 1024, `rss ${before.get('rss')} is the process's (${procRss})`);
  t.equal(before.get('slab_pages'), 0, 'no page handed out before any set');
  t.ok(before.get('js_heap')! > 3 * 4 * 1024 * 1024, `three isolates' heaps (${before.get('js_heap')})`);
  const parts = [...before].filter(([k]) => k !== 'rss').reduce((sum, [, v]) => sum + v, 0);
  t.equal(parts, before.get('rss'), 'the parts add up to rss');
  const c = await rawClient(d.port);
  const value = 'v'.repeat(1000);
  c.send(Array.from({ length: 2000 }, (_, i) => `set m${i} 0 0 1000 noreply\r\n${value}\r\n`).join('') + 'mn\r\n');
  await c.readUntil('MN\r\n');
  await c.close();
  const after = kinds(parseExposition(await scrape(url)));
  t.ok(after.get('slab_pages')! >= 2000 * 1000 && after.get('slab_pages')! <= 16 * 1024 * 1024, `2 MB of items take pages (${after.get('slab_pages')})`);
  t.equal(after.get('store_index'), before.get('store_index'), 'the index is laid out once');
});

t.test('promtool check metrics accepts the exposition', async (t) => {
  if (!fs.existsSync(PROMTOOL)) {
    t.fail(`${PROMTOOL} not found: install Debian's prometheus package (.ci/run does)`);
    return;
  }
  const { d, url } = await metricsDaemon(t, ['-t', '2']);
  const c = await rawClient(d.port);
  t.teardown(() => c.close());
  await request(c, 'set k 0 0 2\r\nhi\r\nget k\r\nget missing\r\n', 'END\r\nEND\r\n');
  const body = await scrape(url);
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: body, encoding: 'utf8', timeout: 15_000 });
  t.equal(r.status, 0, `promtool check metrics exits 0 (signal ${r.signal}, error ${r.error?.message ?? 'none'})\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  const lint = `${r.stdout}${r.stderr}`.trim();
  if (lint) t.comment(`promtool lint output:\n${lint}`);
});

t.test('a real Prometheus scrapes it every second', async (t) => {
  if (!fs.existsSync(PROMETHEUS)) {
    t.fail(`${PROMETHEUS} not found: install Debian's prometheus package (.ci/run does)`);
    return;
  }
  const { d, metricsPort } = await metricsDaemon(t, ['-t', '2']);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'memshard-prom-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const config = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(config, [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    'scrape_configs:',
    '  - job_name: memshard',
    '    static_configs:',
    `      - targets: ['127.0.0.1:${metricsPort}']`,
    '',
  ].join('\n'));

  let prom: ChildProcess | null = null;
  let promPort = 0;
  let promErr = '';
  for (let attempt = 0; attempt < 3 && prom === null; attempt++) {
    promPort = await freePort();
    const p = spawn(PROMETHEUS, [
      `--config.file=${config}`,
      `--storage.tsdb.path=${path.join(dir, `data${attempt}`)}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--log.level=warn',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    promErr = '';
    p.stderr?.setEncoding('utf8');
    p.stderr?.on('data', (s: string) => (promErr = (promErr + s).slice(-16 * 1024)));
    const exited = new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.once('error', () => resolve());
    });
    t.teardown(async () => {
      if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) return;
      const timer = setTimeout(() => p.kill('SIGKILL'), 3000);
      p.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    });
    process.once('exit', () => {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    });
    // ready (bounded 15 s), or exited (port taken: try another)
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) break;
      try {
        const r = await httpGet(`http://127.0.0.1:${promPort}/-/ready`, 1000);
        if (r.status === 200) {
          prom = p;
          break;
        }
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) {
        t.fail(`prometheus did not become ready within 15 s; stderr:\n${promErr}`);
        return;
      }
      await sleep(200);
    }
    if (prom === null && !/address already in use/i.test(promErr)) {
      t.fail(`prometheus exited at start (${p.exitCode} ${p.signalCode}); stderr:\n${promErr}`);
      return;
    }
  }
  if (prom === null) {
    t.fail(`prometheus could not bind a port; stderr:\n${promErr}`);
    return;
  }

  const api = `http://127.0.0.1:${promPort}/api/v1`;
  const query = async (q: string): Promise<number | undefined> => {
    const r = await httpGet(`${api}/query?query=${encodeURIComponent(q)}`, 2000);
    if (r.status !== 200) return undefined;
    const j = JSON.parse(r.body) as { data?: { result?: Array<{ metric: Record<string, string>; value: [number, string] }> } };
    const v = j.data?.result?.[0]?.value[1];
    return v === undefined ? undefined : Number(v);
  };
  const targetHealth = async (): Promise<string> => {
    try {
      const r = await httpGet(`${api}/targets`, 2000);
      const j = JSON.parse(r.body) as { data?: { activeTargets?: Array<{ health: string; lastError: string; scrapeUrl: string }> } };
      return JSON.stringify(j.data?.activeTargets?.map((x) => ({ url: x.scrapeUrl, health: x.health, lastError: x.lastError })));
    } catch (e) {
      return String(e);
    }
  };
  const waitFor = async (what: string, q: string, ok: (v: number | undefined) => boolean, timeoutMs: number): Promise<number | undefined> => {
    const deadline = Date.now() + timeoutMs;
    let v: number | undefined;
    for (;;) {
      try {
        v = await query(q);
      } catch {
        v = undefined;
      }
      if (ok(v)) return v;
      if (Date.now() > deadline) {
        t.fail(`${what}: ${q} = ${v} after ${timeoutMs} ms; targets: ${await targetHealth()}; prometheus stderr:\n${promErr.slice(-2000)}`);
        return v;
      }
      await sleep(250);
    }
  };

  const up = await waitFor('target scraped', `memcached_up{job="memshard",instance="127.0.0.1:${metricsPort}"}`, (v) => v === 1, 20_000);
  t.equal(up, 1, 'Prometheus sees memcached_up 1 for the target');
  t.equal(await query(`up{job="memshard"}`), 1, 'and its own up 1');
  const before = await query('sum(memcached_commands_total)');
  t.ok(before !== undefined, `sum(memcached_commands_total) = ${before}`);

  const c = await rawClient(d.port);
  t.teardown(() => c.close());
  c.send('get k\r\n'.repeat(100));
  await c.readUntil((b) => b.length >= 500); // 100 x "END\r\n"
  const after = await waitFor('commands counted', 'sum(memcached_commands_total)', (v) => v !== undefined && before !== undefined && v >= before + 100, 20_000);
  t.ok(after !== undefined && before !== undefined && after >= before + 100, `Prometheus sees the 100 gets: ${before} -> ${after}`);
});

// ---------------------------------------------------------------------------------------------
// the flags

/** Socket inodes of a process's open fds. */
function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]!);
    } catch {
      // fd closed meanwhile
    }
  }
  return out;
}

/**
 * The TCP addresses `pid` listens on, as "hexaddr:port" (e.g. "0100007F:11211", IPv6 in hex), each
 * once: with SO_REUSEPORT every serving thread has a socket of its own.
 */
function listeningSockets(pid: number): string[] {
  const inodes = socketInodes(pid);
  const out: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9]!)) continue;
      const [addr, port] = f[1]!.split(':');
      out.push(`${addr}:${parseInt(port!, 16)}`);
    }
  }
  return [...new Set(out)].sort();
}

/** Nothing listens on 127.0.0.1:port right now (we can bind it ourselves). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

t.test('--metrics-port 0 serves nothing', async (t) => {
  const defaultFree = await portFree(9150);
  const d = await startDaemon(['--metrics-port', '0', '--metrics-listen', '127.0.0.1']);
  t.teardown(() => d.stop());
  await sleep(300); // give a (wrongly) started HTTP listener time to bind
  t.same(listeningSockets(d.pid), [`0100007F:${d.port}`], 'the memcached port is its only listening socket');
  if (defaultFree) t.ok(await connectRefused(9150), 'connecting to the default port 9150 is refused');
});

t.test('defaults: port 9150 on the -l address', async (t) => {
  // Only when 9150 is free on this machine (it is memcached_exporter's port).
  if (!(await portFree(9150))) {
    t.comment('skipped: 127.0.0.1:9150 is in use on this machine');
    t.pass('nothing to check');
    return;
  }
  const port = await freePort();
  const child = spawn(process.execPath, [cliPath, '-p', String(port), '-l', '127.0.0.1', '-t', '1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => (err = (err + s).slice(-16 * 1024)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  process.once('exit', () => child.kill('SIGKILL'));
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.kill('SIGTERM');
    await exited;
    clearTimeout(timer);
  });
  let body = '';
  try {
    body = await scrape('http://127.0.0.1:9150/metrics', 10_000);
  } catch (e) {
    t.fail(`${String(e)}\nstderr:\n${err}`);
    return;
  }
  t.match(body, /^memcached_up 1$/m, 'serves /metrics on 9150 by default');
  // /metrics listens before the serving threads do: give the memcached port its moment
  const both = [`0100007F:9150`, `0100007F:${port}`].sort();
  let listening = listeningSockets(child.pid!);
  for (const deadline = Date.now() + 10_000; listening.length < both.length && Date.now() < deadline; listening = listeningSockets(child.pid!)) {
    await new Promise((r) => setTimeout(r, 50));
  }
  t.same(listening, both, 'both listeners on the -l address (127.0.0.1) only');
});

t.test('a bad --metrics-port value exits 64 naming the flag', async (t) => {
  const port = await freePort();
  for (const value of ['-1', 'abc', '65536', '1.5']) {
    const r = spawnSync(process.execPath, [cliPath, '-p', String(port), '-l', '127.0.0.1', '--metrics-port', value], { encoding: 'utf8', timeout: 10_000 });
    t.equal(r.status, 64, `--metrics-port ${value} exits with EX_USAGE (stderr: ${r.stderr.trim()})`);
    t.match(r.stderr, /--metrics-port/, `--metrics-port ${value}: the message names the flag`);
    t.equal(r.stderr.trim().split('\n').length, 1, `--metrics-port ${value}: one line`);
  }
});
