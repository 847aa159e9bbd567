// What hot-key tracking costs: the same mcload load (pipeline 1, 50 connections, 90% get, the
// bench's scenario `a`) against memshard without and with --hot-keys, in alternation, medians of
// the rounds; with --hot-keys a client also asks `stats hotkeys` every second during the run, as
// an operator or the dashboard would. Key patterns: uniform over 100k keys (the sketch's worst
// case: almost every key is new to it and replaces its least counted one) and zipf. First, in
// this process: what HotKeyTracker.record costs per command, with and without names (keys written
// into one reused buffer, as a connection's input buffer holds them).
//   npm run bench:hotkeys -- [--duration S] [--rounds N] [--threads T] [--json]
import { HotKeyTracker } from '../lib/hotkeys/tracker.js';
import { Op } from '../lib/protocol/command.js';
import { seededRandom, zipfSampler } from './random.js';
import { cpuBetween, ensureMcload, installCleanupHandlers, killAll, log, median, num, positiveNumber, runMain, runMcload, scriptOptions, startMemshard, textRequest, threadTicks, type Server } from './bench.js';

/** Linux clock ticks per second (/proc's unit). */
const USER_HZ = 100;

const usage = `usage: node dist/scripts/bench-hotkeys.js [--duration S] [--rounds N] [--threads T] [--json]
  --duration S   seconds per measured run (5)
  --rounds N     rounds; each runs every pattern against both servers (3)
  --threads T    memshard -t (2)
  --json         one JSON document on stdout
  MCLOAD=PATH    use this mcload binary`;

const PATTERNS = ['uniform', 'zipf'] as const;
const KEYS = 100_000;

/** A seeded key-number generator: uniform, or zipf 0.99 (mcload's default exponent). */
function picker(pattern: (typeof PATTERNS)[number]): () => number {
  const rnd = seededRandom(7);
  return pattern === 'uniform' ? () => Math.floor(rnd() * KEYS) : zipfSampler(KEYS, 0.99, rnd);
}

/** ns per HotKeyTracker.record over n commands of `pattern` keys (key:<n>), best of 3. */
function recordCost(pattern: (typeof PATTERNS)[number], names: boolean, n = 2_000_000): number {
  const next = picker(pattern);
  const ids = Int32Array.from({ length: n }, next);
  const input = Buffer.alloc(64);
  const views = Array.from({ length: 32 }, (_, len) => input.subarray(0, len));
  const key = (i: number) => views[input.write(`key:${ids[i]!}`, 0, 'latin1')]!;
  let best = Infinity;
  for (let run = 0; run < 3; run++) {
    const tracker = new HotKeyTracker(2, names, () => Math.floor(Date.now() / 1000));
    let t = performance.now();
    for (let i = 0; i < n; i++) key(i);
    const base = performance.now() - t;
    t = performance.now();
    for (let i = 0; i < n; i++) tracker.record(i & 1, i % 10 === 0 ? Op.Set : Op.Get, key(i));
    best = Math.min(best, ((performance.now() - t - base) * 1e6) / n);
  }
  return Math.max(0, best);
}

async function main(): Promise<number> {
  const opts = scriptOptions(usage, ['json', 'help'], ['duration', 'rounds', 'threads']);
  if (typeof opts === 'number') return opts;
  const duration = positiveNumber(opts.get('duration'), 5, 'duration');
  const rounds = Math.round(positiveNumber(opts.get('rounds'), 3, 'rounds'));
  const threads = Math.round(positiveNumber(opts.get('threads'), 2, 'threads'));
  const micro = PATTERNS.map((pattern) => ({ pattern, off_ns: recordCost(pattern, false), on_ns: recordCost(pattern, true) }));
  for (const m of micro) log(`record(): ${m.pattern} keys: ${m.off_ns.toFixed(0)} ns without names, ${m.on_ns.toFixed(0)} ns with`);
  installCleanupHandlers();
  const mcload = ensureMcload();
  // a second server without --hot-keys (`control`) shows how far two identical servers differ on
  // this machine at this time: an on/off ratio inside that spread is no measured cost
  const servers: Array<{ role: 'off' | 'on' | 'control'; server: Server }> = [
    { role: 'off', server: await startMemshard({ threads, memoryMb: 1024 }) },
    { role: 'on', server: await startMemshard({ threads, memoryMb: 1024, args: ['--hot-keys'] }) },
    { role: 'control', server: await startMemshard({ threads, memoryMb: 1024 }) },
  ];
  const ops = new Map<string, number[]>();
  const p99 = new Map<string, number[]>();
  const cpu = new Map<string, number[]>();
  const failures: string[] = [];
  for (let r = 1; r <= rounds; r++) {
    for (const pattern of PATTERNS) {
      // every other round in the reverse order, so that a drift of the machine's load favours no server
      for (const { role, server } of r % 2 === 1 ? servers : [...servers].reverse()) {
        const args = ['--threads', '2', '--conns', '25', '--pipeline', '1', '--value-size', '100', '--ratio', '1:9', '--key-pattern', pattern];
        await runMcload(mcload, server.port, [...args, '--mode', 'prefill', '--max-time', '60'], 90_000);
        let polls = 0;
        const poller = role === 'on'
          ? setInterval(() => {
              textRequest(server.port, 'stats hotkeys\r\n', /END\r\n/, 2000).then(() => polls++, (e: Error) => failures.push(`stats hotkeys: ${e.message}`));
            }, 1000)
          : null;
        const before = threadTicks(server.pid);
        const res = await runMcload(mcload, server.port, [...args, '--duration', String(duration), '--max-time', String(duration + 30)], (duration + 60) * 1000);
        if (poller !== null) clearInterval(poller);
        const used = cpuBetween(before, threadTicks(server.pid));
        const key = `${pattern} ${role}`;
        const cpuUs = (used.ticks * 1e6) / USER_HZ / num(res.json, 'ops');
        cpu.set(key, [...(cpu.get(key) ?? []), cpuUs]);
        if (res.json === null || num(res.json, 'errors') !== 0) failures.push(`${key}: mcload failed: ${res.stderr.slice(-300)}`);
        ops.set(key, [...(ops.get(key) ?? []), num(res.json, 'ops_per_sec')]);
        p99.set(key, [...(p99.get(key) ?? []), num(res.json, 'p99_us')]);
        log(`round ${r}/${rounds} ${pattern} hot keys ${role}: ${Math.round(num(res.json, 'ops_per_sec'))} ops/s, p99 ${num(res.json, 'p99_us')} us, ${cpuUs.toFixed(1)} us CPU/request${poller === null ? '' : `, ${polls} stats hotkeys answered`}`);
      }
    }
  }
  await killAll();
  const rows = PATTERNS.map((pattern) => {
    const off = median(ops.get(`${pattern} off`) ?? []);
    const on = median(ops.get(`${pattern} on`) ?? []);
    const control = median(ops.get(`${pattern} control`) ?? []);
    const offCpu = median(cpu.get(`${pattern} off`) ?? []);
    const onCpu = median(cpu.get(`${pattern} on`) ?? []);
    return {
      pattern, off_ops: off, on_ops: on, ratio: on / off,
      off_p99_us: median(p99.get(`${pattern} off`) ?? []), on_p99_us: median(p99.get(`${pattern} on`) ?? []),
      off_cpu_us_per_request: offCpu, on_cpu_us_per_request: onCpu, cpu_ratio: onCpu / offCpu,
      control_ops: control, control_ratio: control / off, control_cpu_ratio: median(cpu.get(`${pattern} control`) ?? []) / offCpu,
    };
  });
  if (opts.has('json')) {
    console.log(JSON.stringify({ date: new Date().toISOString(), node: process.version, threads, duration_s: duration, rounds, record_ns: micro, rows, failures }, null, 2));
  } else {
    const f = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
    console.log(`## hot-key tracking cost (${new Date().toISOString()}), node ${process.version}, memshard -t ${threads}, mcload 50 conns pipeline 1 90% get, ${duration} s x ${rounds} rounds (medians)\n`);
    console.log('CPU: the server process, user + system, all threads, per request\n');
    console.log('control: a second server without --hot-keys, the spread between two identical servers\n');
    console.log('| keys | --hot-keys off ops/s | p99 us | CPU us/req | --hot-keys on ops/s | p99 us | CPU us/req | ops on/off | CPU on/off | ops control/off | CPU control/off |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      console.log(
        `| ${r.pattern} | ${f(r.off_ops)} | ${f(r.off_p99_us)} | ${r.off_cpu_us_per_request.toFixed(1)} | ${f(r.on_ops)} | ${f(r.on_p99_us)} | ` +
          `${r.on_cpu_us_per_request.toFixed(1)} | ${r.ratio.toFixed(3)} | ${r.cpu_ratio.toFixed(3)} | ${r.control_ratio.toFixed(3)} | ${r.control_cpu_ratio.toFixed(3)} |`,
      );
    }
    console.log('\nHotKeyTracker.record() per command, in one thread (best of 3 x 2M commands, 100k keys):\n');
    console.log('| keys | without --hot-keys ns | with --hot-keys ns |');
    console.log('|---|---:|---:|');
    for (const m of micro) console.log(`| ${m.pattern} | ${m.off_ns.toFixed(0)} | ${m.on_ns.toFixed(0)} |`);
    if (failures.length > 0) console.log(`\nfailures:\n${failures.join('\n')}`);
  }
  return failures.length === 0 ? 0 : 1;
}

runMain(import.meta.url, main);
