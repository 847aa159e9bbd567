// Hardening probes: the same bad clients, floods and signals against memcached 1.6.18 and memshard,
// one fresh server process per probe per server, results in one markdown table.
//
//   npm run probes -- [--only NAMES] [--json] [--probe-timeout 55]
//
// --only takes probe names or group numbers (e.g. `--only 1,exptime-smuggle`). RSS is VmRSS of
// /proc/<pid>/status, open descriptors are the entries of /proc/<pid>/fd. Every probe is cut off
// after --probe-timeout seconds; everything runs on 127.0.0.1 and only processes this script
// started are signalled or killed.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  ensureMcload,
  freePort,
  installCleanupHandlers,
  isRoot,
  log,
  median,
  memshardCli,
  num,
  positiveNumber,
  runMcload,
  runMain,
  scriptOptions,
  sleep,
  spawnTracked,
  startMemshard,
  stopProcess,
  startServer,
  textRequest,
} from './bench.js';

type Kind = 'memcached' | 'memshard';
const KINDS: Kind[] = ['memcached', 'memshard'];
const THREADS = 4;
const MEMORY_MB = 64;

/** What a probe needs of a server: SASL servers are started here, the others by bench.ts. */
interface Target {
  kind: Kind;
  port: number;
  pid: number;
  proc: ChildProcess;
  alive(): boolean;
  stop(): Promise<void>;
}

/** Sockets and servers of the running probe, torn down when it ends or times out. */
class Ctx {
  readonly sockets = new Set<net.Socket>();
  readonly targets: Target[] = [];
  stopped = false;

  async close(): Promise<void> {
    this.stopped = true;
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.targets.map((t) => t.stop()));
  }
}

// ---------------------------------------------------------------------------------------------
// process and socket helpers

function rssKb(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  } catch {
    return NaN;
  }
}

function fdCount(pid: number): number {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

const mb = (kb: number) => (Number.isFinite(kb) ? `${(kb / 1024).toFixed(1)} MB` : 'n/a');
const ms = (x: number) => (x >= 10 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(2));
/** A reply as it would be typed, shortened: CR/LF and control bytes escaped. */
const shown = (s: string, max = 120) => {
  const e = JSON.stringify(s).slice(1, -1);
  return e.length > max ? `${e.slice(0, max)}...` : e;
};

/** Highest RSS seen every 100 ms until `until` settles (or ends). */
async function peakRss(pid: number, until: Promise<unknown>): Promise<number> {
  let peak = rssKb(pid);
  let done = false;
  void until.finally(() => (done = true));
  while (!done) {
    await sleep(100);
    const r = rssKb(pid);
    if (r > peak || !Number.isFinite(peak)) peak = r;
  }
  return peak;
}

function memcachedArgs(port: number, extra: string[]): string[] {
  return ['-p', String(port), '-l', '127.0.0.1', '-U', '0', '-t', String(THREADS), '-m', String(MEMORY_MB), ...(isRoot ? ['-u', 'root'] : []), ...extra];
}

function asTarget(kind: Kind, s: { port: number; pid: number; proc: ChildProcess; alive(): boolean; stop(): Promise<void> }): Target {
  return { kind, port: s.port, pid: s.pid, proc: s.proc, alive: () => s.alive(), stop: () => s.stop() };
}

async function fresh(ctx: Ctx, kind: Kind, extra: string[] = []): Promise<Target> {
  const s =
    kind === 'memcached'
      ? await startServer('memcached', 'memcached', (port) => memcachedArgs(port, extra))
      : await startMemshard({ threads: THREADS, memoryMb: MEMORY_MB, args: extra });
  const t = asTarget(kind, s);
  ctx.targets.push(t);
  return t;
}

const BINARY_VERSION = Buffer.from([0x80, 0x0b, ...new Array<number>(22).fill(0)]);

/**
 * Connect to 127.0.0.1:port within 1 s: true once connected (no `request`), or, after sending
 * `request`, whether the first reply bytes pass `check`.
 */
function connectProbe(port: number, request?: Buffer, check?: (reply: Buffer) => boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    const done = (ok: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), 1000);
    s.on('connect', () => (request === undefined ? done(true) : s.write(request)));
    s.on('data', (d) => done(check?.(d) ?? true));
    s.on('error', () => done(false));
    s.on('close', () => done(false));
  });
}

/** Whether a binary Version request is answered (allowed before SASL login on both servers). */
function binaryVersion(port: number): Promise<boolean> {
  return connectProbe(port, BINARY_VERSION, (d) => d[0] === 0x81);
}

let saslDir: string | null = null;
/** user:pass file, and the Cyrus config memcached -S needs to find it (mech_list: plain). */
function saslFiles(): string {
  if (saslDir === null) {
    saslDir = fs.mkdtempSync(path.join(os.tmpdir(), 'memshard-probes-sasl-'));
    fs.writeFileSync(path.join(saslDir, 'pwdb'), 'probe:secret\n');
    fs.writeFileSync(path.join(saslDir, 'memcached.conf'), `mech_list: plain\nsasldb_path: ${path.join(saslDir, 'sasldb')}\n`);
  }
  return saslDir;
}

/**
 * A server started with -S. The text `version` check of startServer cannot see one (memcached
 * does not answer text, memshard closes), so readiness is a binary Version. memcached finds its
 * password file through the environment, set only while spawning it.
 */
async function freshSasl(ctx: Ctx, kind: Kind): Promise<Target | string> {
  const dir = saslFiles();
  const pwdb = path.join(dir, 'pwdb');
  const port = await freePort();
  let proc: ChildProcess;
  if (kind === 'memcached') {
    const saved = { conf: process.env['SASL_CONF_PATH'], pwdb: process.env['MEMCACHED_SASL_PWDB'] };
    process.env['SASL_CONF_PATH'] = dir;
    process.env['MEMCACHED_SASL_PWDB'] = pwdb;
    try {
      proc = spawnTracked('memcached', memcachedArgs(port, ['-S']));
    } finally {
      for (const [k, v] of [['SASL_CONF_PATH', saved.conf], ['MEMCACHED_SASL_PWDB', saved.pwdb]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  } else {
    proc = spawnTracked(process.execPath, [
      memshardCli, '-p', String(port), '-l', '127.0.0.1', '-U', '0', '-t', String(THREADS), '-m', String(MEMORY_MB),
      '--metrics-port', '0', '-S', '--sasl-pwdb', pwdb,
    ]);
  }
  let err = '';
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (d: string) => (err = (err + d).slice(-4096)));
  proc.stdout?.resume();
  const alive = () => proc.exitCode === null && proc.signalCode === null;
  const target: Target = {
    kind,
    port,
    pid: proc.pid ?? -1,
    proc,
    alive,
    stop: () => stopProcess(proc, alive),
  };
  ctx.targets.push(target);
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(50)) {
    if (!alive()) return `-S does not start: ${err.trim().split('\n').slice(-2).join('; ')}`;
    if (await binaryVersion(port)) return target;
  }
  return `-S: no binary Version reply within 10 s`;
}

/** A connected socket (registered for teardown); `first` is written on connect. */
function connect(ctx: Ctx, port: number, first?: string | Buffer): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.setNoDelay(true);
    ctx.sockets.add(s);
    s.once('close', () => ctx.sockets.delete(s));
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      s.on('error', () => {});
      if (first !== undefined) s.write(first);
      resolve(s);
    });
  });
}

/** Write, waiting for drain (or close, or the deadline) when the socket's buffer is full. */
async function writeAll(s: net.Socket, data: Buffer | string, deadline: number): Promise<boolean> {
  if (s.destroyed || !s.writable) return false;
  if (s.write(data)) return true;
  while (!s.destroyed && s.writableNeedDrain && Date.now() < deadline) {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        s.off('drain', done);
        resolve();
      };
      const t = setTimeout(done, 50);
      s.on('drain', done);
    });
  }
  return !s.destroyed;
}

/** Store `count` values of `size` bytes as `${prefix}${i}` over one pipelined connection. */
async function storeValues(port: number, prefix: string, count: number, size: number): Promise<void> {
  const value = 'v'.repeat(size);
  let req = '';
  for (let i = 0; i < count; i++) req += `set ${prefix}${i} 0 0 ${size}\r\n${value}\r\n`;
  await textRequest(port, req, new RegExp(`^(?:STORED\\r\\n){${count}}$`), 20_000);
}

// ---------------------------------------------------------------------------------------------
// an unrelated client's latency

/** The keys the measuring client reads (set once before it starts). */
const LATENCY_KEYS = 10;
/**
 * A run of the measuring client before anything is measured, so that both servers are warm as a
 * serving one is: memshard's first few thousand requests after a start run while V8 compiles.
 */
const WARMUP_SECONDS = 2;
/** The measured run; a load starts about 1 s into it, once its client is connected. */
const LATENCY_SECONDS = 8;

let mcloadBin: string | null = null;
/** mcload, built once per run. */
const mcload = (): string => (mcloadBin ??= ensureMcload());

interface Latency {
  p50: number;
  p99: number;
  max: number;
  failed: string | null;
}

/**
 * An established client's latency: mcload (C, so that no pause of the measuring client is
 * counted as the server's) on one connection at pipeline 1, `get`s only, each reply checked.
 */
async function mcloadLatency(port: number, seconds: number): Promise<Latency> {
  const r = await runMcload(mcload(), port, ['--threads', '1', '--conns', '1', '--pipeline', '1', '--ratio', '0:1', '--keys', String(LATENCY_KEYS), '--duration', String(seconds)], (seconds + 20) * 1000);
  const errors = num(r.json, 'errors') + num(r.json, 'bad_values') + num(r.json, 'desyncs');
  const failed = r.json === null ? `mcload: ${shown(r.stderr.trim() || `exit ${r.exitCode}`, 120)}` : errors > 0 ? `${errors} errors` : null;
  return { p50: num(r.json, 'p50_us') / 1000, p99: num(r.json, 'p99_us') / 1000, max: num(r.json, 'max_us') / 1000, failed };
}

const showLatency = (l: Latency) => `p50 ${ms(l.p50)} / p99 ${ms(l.p99)} / max ${ms(l.max)} ms` + (l.failed ? ` (${l.failed})` : '');

type LoadKind = 'flood' | 'sets' | 'fuzz';
const LOADS: LoadKind[] = ['flood', 'sets', 'fuzz'];

/**
 * Run a load in a child process (this script with --load) while `measure` runs: in this process
 * it would share an event loop with the probe's own timers. The child prints `started`, then one
 * summary line when it gets SIGTERM.
 */
async function withLoad(load: LoadKind, port: number, measure: Promise<Latency>): Promise<{ l: Latency; summary: string }> {
  await sleep(200); // the measuring client connects before the load (a flood may refuse it after)
  const proc = spawnTracked(process.execPath, [fileURLToPath(import.meta.url), '--load', load, '--port', String(port)]);
  let out = '';
  proc.stdout?.setEncoding('utf8');
  proc.stdout?.on('data', (d: string) => (out += d));
  proc.stderr?.resume();
  const l = await measure;
  await new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
    proc.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    proc.kill('SIGTERM');
  });
  const last = out.trim().split('\n').pop() ?? '';
  return { l, summary: last === 'started' || last === '' ? `load: no summary (exit ${proc.exitCode ?? proc.signalCode})` : last };
}

/** Probe 6: latency of an established client while `load` (or nothing) runs, on a warm server. */
async function latencyUnder(ctx: Ctx, kind: Kind, load: LoadKind | null): Promise<LatencyRound> {
  const t = await fresh(ctx, kind);
  await runMcload(mcload(), t.port, ['--mode', 'prefill', '--keys', String(LATENCY_KEYS), '--value-size', '10'], 20_000);
  await mcloadLatency(t.port, WARMUP_SECONDS);
  const { l, summary } =
    load === null ? { l: await mcloadLatency(t.port, LATENCY_SECONDS), summary: 'nothing else running' } : await withLoad(load, t.port, mcloadLatency(t.port, LATENCY_SECONDS));
  return { l, summary: `${summary}${t.alive() ? '' : '; server DIED'}` };
}

/** The child side of withLoad: run `load` against 127.0.0.1:port until SIGTERM. */
async function loadMain(load: LoadKind, port: number): Promise<number> {
  const ctx = new Ctx();
  const counts = new Map<string, number>();
  const add = (k: string, n = 1) => counts.set(k, (counts.get(k) ?? 0) + n);
  const flooded = newFlood(); // counted as it goes: a measurement may end mid-round
  process.once('SIGTERM', () => {
    ctx.stopped = true;
    const done = [...counts].map(([k, v]) => `${v.toLocaleString('en-US')} ${k}`);
    if (load === 'flood') {
      // replies are tallied when a round closes its connections
      const tally = flooded.replies.size || flooded.errors.size ? ` (in the closed rounds: ${showFlood(flooded)})` : '';
      done.unshift(`${flooded.connected.toLocaleString('en-US')} flood connections${tally}`);
    }
    console.log(done.join(', ') || 'nothing done');
    process.exit(0);
  });
  setTimeout(() => process.exit(3), 60_000).unref(); // never outlive a probe
  const stop = () => ctx.stopped;
  console.log('started');
  if (load === 'flood') {
    for (; !stop(); add('rounds of 8,000 closed')) await flood(ctx, port, 8000, 1000, stop, flooded);
  } else if (load === 'sets') {
    const c = await connect(ctx, port);
    let pending = 0;
    let wake: (() => void) | null = null;
    c.on('data', (d: Buffer) => {
      for (let i = d.indexOf('\r\n'); i >= 0; i = d.indexOf('\r\n', i + 2)) {
        add('set replies');
        pending--;
      }
      if (pending <= 0) wake?.();
    });
    for (let key = 0; !stop() && !c.destroyed; ) {
      const parts: Buffer[] = [];
      let size = 0;
      const target = (1 + Math.random() * 2) * (1 << 20);
      while (size < target) {
        const len = 1024 + Math.floor(Math.random() * 63 * 1024);
        parts.push(Buffer.from(`set burst${key++ % 5000} 0 0 ${len}\r\n`), Buffer.alloc(len, 98), Buffer.from('\r\n'));
        size += len + 40;
        pending++;
      }
      const replies = new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 10_000);
      });
      await writeAll(c, Buffer.concat(parts), Date.now() + 10_000);
      await replies;
      add('bursts');
    }
  } else {
    const fuzz = await loadFuzz();
    if (fuzz === null) add('random-bytes runs (no scripts/fuzz.ts)', 0);
    for (let seed = 1; !stop(); seed++) {
      try {
        if (fuzz) {
          await fuzz({ port, seed, frames: 4000, connections: 20, protocol: 'text' });
          add('fuzz frames', 4000);
        } else {
          await randomBytesFuzz(ctx, port, stop);
          add('random-bytes runs');
        }
      } catch {
        add('fuzz runs failed');
        await sleep(50);
      }
    }
  }
  await new Promise(() => {}); // the summary is printed on SIGTERM
  return 0;
}

// ---------------------------------------------------------------------------------------------
// connection floods

interface FloodResult {
  connected: number;
  /** First reply of each connection, by kind. */
  replies: Map<string, number>;
  errors: Map<string, number>;
  emfile: boolean;
}

const newFlood = (): FloodResult => ({ connected: 0, replies: new Map(), errors: new Map(), emfile: false });

/** What a flood connection's first bytes were. */
const replyKind = (r: string) => (r.startsWith('END') || r.startsWith('VALUE') ? 'served' : r.startsWith('ERROR Too many') ? '"ERROR Too many open connections"' : `"${shown(r.split('\r\n')[0] ?? r, 40)}"`);

/**
 * `total` connections opened in batches of `batch` (Node cannot read the script's descriptor
 * limit, so EMFILE is reported when it happens) and all kept open, each writing `get k` as it
 * connects; then, once every one has a reply or was closed (3 s at most), all closed.
 */
async function flood(ctx: Ctx, port: number, total: number, batch = 1000, stop: () => boolean = () => ctx.stopped, res = newFlood()): Promise<FloodResult> {
  const open: { s: net.Socket; reply: string; closed: boolean }[] = [];
  for (let opened = 0; opened < total && !stop(); opened += batch) {
    const n = Math.min(batch, total - opened);
    await Promise.all(
      Array.from({ length: n }, () =>
        connect(ctx, port, 'get k\r\n').then(
          (s) => {
            res.connected++;
            const c = { s, reply: '', closed: false };
            s.on('data', (d: Buffer) => (c.reply += d.toString('latin1')));
            s.once('close', () => (c.closed = true));
            open.push(c);
          },
          (e: NodeJS.ErrnoException) => {
            const code = e.code ?? e.message;
            if (code === 'EMFILE') res.emfile = true;
            res.errors.set(code, (res.errors.get(code) ?? 0) + 1);
          },
        ),
      ),
    );
  }
  for (const deadline = Date.now() + 3000; Date.now() < deadline && !stop() && open.some((c) => !c.closed && !c.reply.includes('\r\n')); ) await sleep(50);
  for (const c of open) {
    const k = c.reply ? replyKind(c.reply) : c.closed ? 'closed without reply' : 'no reply in 3 s';
    res.replies.set(k, (res.replies.get(k) ?? 0) + 1);
    c.s.destroy();
  }
  return res;
}

const showFlood = (r: FloodResult) =>
  [...r.replies].map(([k, v]) => `${v} ${k}`).join(', ') +
  (r.errors.size ? `; connect errors: ${[...r.errors].map(([k, v]) => `${v} ${k}`).join(', ')}` : '') +
  (r.emfile ? ' (EMFILE in this script: raise ulimit -n)' : '');

/** Descriptors once they stop changing (500 ms) or after 5 s. */
async function settledFds(pid: number): Promise<number> {
  let last = fdCount(pid);
  let since = Date.now();
  for (const deadline = Date.now() + 5000; Date.now() < deadline; ) {
    await sleep(100);
    const now = fdCount(pid);
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= 500) break;
  }
  return last;
}

// ---------------------------------------------------------------------------------------------
// binary headers that lie about their body

const STATUS: Record<number, string> = {
  0x00: 'OK', 0x01: 'Not found', 0x03: 'Too large', 0x04: 'Invalid arguments', 0x05: 'Not stored',
  0x20: 'Auth error', 0x21: 'Auth continue', 0x81: 'Unknown command', 0x82: 'Out of memory',
};

/** A binary Set header (8 extras bytes, 1-byte key) whose total body length is `bodyLength`. */
function lyingSetHeader(bodyLength: number): Buffer {
  const h = Buffer.alloc(24);
  h[0] = 0x80;
  h[1] = 0x01;
  h.writeUInt16BE(1, 2);
  h[4] = 8;
  h.writeUInt32BE(bodyLength >>> 0, 8);
  return h;
}

/** What came back on a binary connection: the first response's status, and whether it closed. */
function watchBinary(s: net.Socket): { summary: () => string; closed: Promise<void> } {
  let got = Buffer.alloc(0);
  let closedAt = -1;
  let reset = false;
  const t0 = performance.now();
  s.on('data', (d: Buffer) => (got = Buffer.concat([got, d]).subarray(0, 4096)));
  // a reset can drop a reply already received: say so rather than report "no reply" alone
  s.on('error', (e: NodeJS.ErrnoException) => (reset ||= e.code === 'ECONNRESET'));
  const closed = new Promise<void>((resolve) => s.once('close', () => ((closedAt = performance.now() - t0), resolve())));
  const summary = () => {
    let reply = 'no reply';
    if (got.length >= 24 && got[0] === 0x81) {
      const st = got.readUInt16BE(6);
      reply = `status 0x${st.toString(16).padStart(2, '0')} (${STATUS[st] ?? '?'})`;
    } else if (got.length > 0) reply = `"${shown(got.toString('latin1'), 60)}"`;
    return `${reply}, ${closedAt >= 0 ? `${reset ? 'reset' : 'closed'} after ${ms(closedAt)} ms` : 'connection still open'}`;
  };
  return { summary, closed };
}

// ---------------------------------------------------------------------------------------------
// the probes

interface ProbeInfo {
  group: number;
  name: string;
  description: string;
}
/** A probe run once per server. */
interface OnceProbe extends ProbeInfo {
  run(ctx: Ctx, kind: Kind): Promise<string>;
}
/** A latency probe (group 6): --latency-rounds rounds, the servers in alternation, medians shown. */
interface LatencyProbe extends ProbeInfo {
  load: LoadKind | null;
}
type Probe = OnceProbe | LatencyProbe;

/** Probe 1: one get line naming a 500 KB value `repeats` times, not read for 5 s. */
function bigMultiget(repeats: number): Probe {
  return {
    group: 1,
    name: `multiget-${repeats}`,
    description: `one get line naming a 500 KB value ${repeats.toLocaleString('en-US')} times, unread for 5 s: RSS before -> peak -> after 5 s -> 1 s after close`,
    async run(ctx, kind) {
      const t = await fresh(ctx, kind);
      await storeValues(t.port, 'big', 1, 500 * 1024);
      await sleep(300);
      const before = rssKb(t.pid);
      const c = await connect(ctx, t.port);
      c.pause(); // never read: the server has to hold or stream the reply
      c.write(`get${' big0'.repeat(repeats)}\r\n`);
      const peak = await peakRss(t.pid, sleep(5000));
      const after = rssKb(t.pid);
      c.destroy();
      await sleep(1000);
      const closed = rssKb(t.pid);
      return `${mb(before)} -> ${mb(peak)} -> ${mb(after)} -> ${mb(closed)}${t.alive() ? '' : '; died'}`;
    },
  };
}

/** Probe 5: a binary Set header declaring 0x7fffffff, then 300 MB of junk as fast as the server takes it. */
function junkProbe(sasl: boolean): Probe {
  return {
    group: 5,
    name: sasl ? 'sasl-300mb-junk' : 'plain-300mb-junk',
    description: `${sasl ? 'started with -S; an unauthenticated' : 'no -S (the same without SASL); a'} binary Set header declaring 0x7fffffff, then 300 MB of junk as fast as possible: reply, MB taken, RSS before -> max (100 ms samples)`,
    async run(ctx, kind) {
      const t = sasl ? await freshSasl(ctx, kind) : await fresh(ctx, kind);
      if (typeof t === 'string') return `${t}; not run`;
      const before = rssKb(t.pid);
      const c = await connect(ctx, t.port);
      const w = watchBinary(c);
      const junk = randomBytes(1 << 20);
      let sent = 0;
      const t0 = performance.now();
      const send = (async () => {
        const deadline = Date.now() + 30_000;
        if (!(await writeAll(c, lyingSetHeader(0x7fffffff), deadline))) return;
        for (; sent < 300 && Date.now() < deadline; sent++) if (!(await writeAll(c, junk, deadline))) break;
        // the last chunks may sit in our buffer: wait until the kernel took them (or a close)
        while (!c.destroyed && c.writableLength > 0 && Date.now() < deadline) await sleep(20);
      })();
      const secs = send.then(() => (performance.now() - t0) / 1000);
      // and 1 s more: up to tcp_rmem of what was written may still be unread
      const peak = await peakRss(t.pid, send.then(() => sleep(1000)));
      await Promise.race([w.closed, sleep(500)]);
      const reply = w.summary();
      c.destroy();
      await sleep(300);
      return `${reply}; ${sent} MB written in ${(await secs).toFixed(1)} s; ${t.alive() ? 'alive' : 'DIED'}; RSS ${mb(before)} -> max ${mb(peak)}`;
    },
  };
}

const probes: Probe[] = [
  bigMultiget(400),
  bigMultiget(2000),
  bigMultiget(9000),
  {
    group: 2,
    name: 'conn-flood',
    description: '-c 1024; 8,000 connections (batches of 1,000) each sending `get k` as it connects, then closed; twice: open fds at start, after round 1, after round 2 (settled, up to 5 s)',
    async run(ctx, kind) {
      const t = await fresh(ctx, kind, ['-c', '1024']);
      const start = fdCount(t.pid);
      const out: string[] = [];
      for (let round = 1; round <= 2; round++) {
        const r = await flood(ctx, t.port, 8000);
        out.push(`${await settledFds(t.pid)} (${showFlood(r)})`);
      }
      const ok = await textRequest(t.port, 'version\r\n', /\r\n/, 2000).then(() => 'answers', () => 'does not answer');
      return `${start} -> ${out.join(' -> ')}; ${ok} afterwards${t.alive() ? '' : '; died'}`;
    },
  },
  {
    group: 3,
    name: 'wide-get',
    description: '`get` lines naming 200 keys of 100 KB values (20 MB of reply a line) sent for 5 s, replies never read: RSS before -> peak -> after 5 s -> 1 s after close',
    async run(ctx, kind) {
      const t = await fresh(ctx, kind);
      await storeValues(t.port, 'w', 200, 100 * 1024);
      await sleep(300);
      const before = rssKb(t.pid);
      const c = await connect(ctx, t.port);
      c.pause();
      const line = `get${Array.from({ length: 200 }, (_, i) => ` w${i}`).join('')}\r\n`;
      let lines = 0;
      const send = (async () => {
        for (const deadline = Date.now() + 5000; Date.now() < deadline && !ctx.stopped; lines++) {
          if (!(await writeAll(c, line, deadline))) break;
        }
      })();
      const peak = await peakRss(t.pid, send);
      const after = rssKb(t.pid);
      c.destroy();
      await sleep(1000);
      return `${mb(before)} -> ${mb(peak)} -> ${mb(after)} -> ${mb(rssKb(t.pid))}; ${lines.toLocaleString('en-US')} lines written${t.alive() ? '' : '; died'}`;
    },
  },
  {
    group: 4,
    name: 'sasl-4g-body',
    description: 'started with -S; an unauthenticated binary Set header declaring a 0xffffffff body, then 1 MB (and the header alone on a second connection): reply, connection, alive, RSS before -> after',
    async run(ctx, kind) {
      const t = await freshSasl(ctx, kind);
      if (typeof t === 'string') return `${t}; not run`;
      const before = rssKb(t.pid);
      const c = await connect(ctx, t.port);
      const w = watchBinary(c);
      await writeAll(c, Buffer.concat([lyingSetHeader(0xffffffff), randomBytes(1 << 20)]), Date.now() + 3000);
      await Promise.race([w.closed, sleep(3000)]);
      const reply = w.summary();
      c.destroy();
      await sleep(500);
      // the header alone, since a reset after unread data can drop the reply above
      const h = await connect(ctx, t.port, lyingSetHeader(0xffffffff));
      const hw = watchBinary(h);
      await Promise.race([hw.closed, sleep(1000)]);
      const alone = hw.summary();
      h.destroy();
      return `${reply} (header alone: ${alone}); ${t.alive() ? 'alive' : 'DIED'}; RSS ${mb(before)} -> ${mb(rssKb(t.pid))}`;
    },
  },
  junkProbe(true),
  junkProbe(false),
  {
    group: 6,
    name: 'latency-idle',
    description: `an established client (mcload, 1 connection, pipeline 1, \`get\`s) for ${LATENCY_SECONDS} s on a warm server, p50/p99/max, with nothing else running (baseline)`,
    load: null,
  },
  {
    group: 6,
    name: 'latency-conn-flood',
    description: 'the same client during floods of 8,000 connections (opened 1,000 at a time, each sending `get k`, then all closed), repeated',
    load: 'flood',
  },
  {
    group: 6,
    name: 'latency-set-bursts',
    description: 'the same client while another connection pipelines 1-3 MB bursts of `set`s (1-64 KB values) back to back',
    load: 'sets',
  },
  {
    group: 6,
    name: 'latency-fuzz',
    description: 'the same client while `fuzz()` of scripts/fuzz.ts sends mutated text requests over 20 connections (random bytes if fuzz.ts is absent)',
    load: 'fuzz',
  },
  {
    group: 7,
    name: 'exptime-smuggle',
    description: '`set victim 0 0 9` important, then `set k 0 2147483648 13\\r\\ndelete victim\\r\\n`, then `get victim`: the replies, and whether victim is intact',
    async run(ctx, kind) {
      const t = await fresh(ctx, kind);
      const stored = await textRequest(t.port, 'set victim 0 0 9\r\nimportant\r\n', /\r\n/);
      // one connection, as a client would send it; replies collected for 1 s
      const c = await connect(ctx, t.port, 'set k 0 2147483648 13\r\ndelete victim\r\n');
      let got = '';
      c.on('data', (d: Buffer) => (got += d.toString('latin1')));
      await sleep(1000);
      c.destroy();
      const get = await textRequest(t.port, 'get victim\r\n', /END\r\n|ERROR/);
      const intact = get.includes('\r\nimportant\r\n');
      return `${shown(stored)} / ${shown(got)} / ${shown(get)}: victim ${intact ? 'intact' : 'GONE'}`;
    },
  },
  {
    group: 8,
    name: 'sigusr1',
    description: 'SIGUSR1: does the process exit (within 3 s), and is 127.0.0.1:9229 (Node inspector) open afterwards',
    async run(ctx, kind) {
      const before = await portOpen(9229);
      const t = await fresh(ctx, kind);
      const t0 = performance.now();
      const exited = new Promise<string>((resolve) =>
        t.proc.once('exit', (code, sig) => resolve(`exited (${sig ?? `code ${code}`}) after ${ms(performance.now() - t0)} ms`)),
      );
      t.proc.kill('SIGUSR1');
      const what = await Promise.race([exited, sleep(3000).then(() => 'still running after 3 s')]);
      await sleep(200);
      const inspector = before ? '9229 was already open before (not ours)' : (await portOpen(9229)) ? '9229 OPEN' : '9229 closed';
      return `${what}; ${inspector}`;
    },
  },
  {
    group: 8,
    name: 'sighup',
    description: 'SIGHUP: still alive and answering after 1 s',
    async run(ctx, kind) {
      const t = await fresh(ctx, kind);
      t.proc.kill('SIGHUP');
      await sleep(1000);
      if (!t.alive()) return `exited (${t.proc.signalCode ?? `code ${t.proc.exitCode}`})`;
      const v = await textRequest(t.port, 'version\r\n', /\r\n/, 2000).then((r) => shown(r.trim()), () => 'no answer');
      return `alive; version -> ${v}`;
    },
  },
];

function portOpen(port: number): Promise<boolean> {
  return connectProbe(port);
}

type FuzzFn = (opts: { port: number; seed: number; frames: number; connections: number; protocol: 'text' | 'meta' | 'binary' }) => Promise<unknown>;

/** fuzz() of scripts/fuzz.ts when it was built; loaded by a computed name so this builds without it. */
async function loadFuzz(): Promise<FuzzFn | null> {
  const url = new URL('./fuzz.js', import.meta.url);
  if (!fs.existsSync(url)) return null;
  const mod = (await import(url.href)) as { fuzz?: unknown };
  return typeof mod.fuzz === 'function' ? (mod.fuzz as FuzzFn) : null;
}

/** The fallback fuzzer: random bytes over 20 connections, reconnecting when one is closed. */
async function randomBytesFuzz(ctx: Ctx, port: number, stop: () => boolean): Promise<void> {
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      const c = await connect(ctx, port);
      c.resume();
      for (let i = 0; i < 50 && !stop() && !c.destroyed; i++) await writeAll(c, randomBytes(4096), Date.now() + 1000);
      c.destroy();
    }),
  );
}

// ---------------------------------------------------------------------------------------------

const usage = `usage: node dist/scripts/probes.js [--only NAMES] [--json] [--probe-timeout S]
  --only NAMES       probes to run, by name or group number: ${probes.map((p) => p.name).join(', ')}
  --json             print the results as JSON on stdout (progress goes to stderr)
  --probe-timeout S  cut a probe (one server) off after S seconds (default 55)
  --latency-rounds N run each latency probe (group 6) N times, the servers in alternation, and
                     show medians (default 3)
  --load KIND --port P  (used by the script itself) run probe 6's background load: ${LOADS.join(', ')}`;

interface Row {
  probe: string;
  description: string;
  memcached: string;
  memshard: string;
  seconds: number;
}

/** One probe on one server, cut off after timeoutMs; a string says why it could not finish. */
async function runOne<T>(run: (ctx: Ctx) => Promise<T>, timeoutMs: number): Promise<T | string> {
  const ctx = new Ctx();
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      run(ctx),
      new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`TIMED OUT after ${timeoutMs / 1000} s`), timeoutMs))),
    ]);
  } catch (e) {
    return `probe failed: ${shown((e as Error).message, 200)}`;
  } finally {
    clearTimeout(timer);
    await ctx.close();
  }
}

/** A latency round's result, or why it has none. */
interface LatencyRound {
  l: Latency;
  summary: string;
}

/** Medians over rounds (and the range of p99), with the last round's load summary. */
function showRounds(rounds: Array<LatencyRound | string>): string {
  const done = rounds.filter((r): r is LatencyRound => typeof r !== 'string');
  const failed = rounds.filter((r): r is string => typeof r === 'string');
  if (done.length === 0) return failed[0] ?? 'no rounds';
  const p99s = done.map((r) => r.l.p99);
  const medians = { p50: median(done.map((r) => r.l.p50)), p99: median(p99s), max: median(done.map((r) => r.l.max)), failed: done.find((r) => r.l.failed)?.l.failed ?? null };
  const range = done.length > 1 ? ` (p99 ${ms(Math.min(...p99s))}-${ms(Math.max(...p99s))} over ${done.length} rounds)` : '';
  return `${showLatency(medians)}${range}; ${done[done.length - 1]!.summary}${failed.length > 0 ? `; ${failed.length} rounds failed: ${failed[0]}` : ''}`;
}

async function main(): Promise<number> {
  const opts = scriptOptions(usage, ['json', 'help'], ['only', 'probe-timeout', 'load', 'port', 'latency-rounds']);
  if (typeof opts === 'number') return opts;
  const load = opts.get('load');
  if (load !== undefined) {
    if (!LOADS.includes(load as LoadKind)) throw new Error(`--load must be one of ${LOADS.join(', ')}`);
    if (!opts.has('port')) throw new Error('--load needs --port');
    return loadMain(load as LoadKind, positiveNumber(opts.get('port'), 0, 'port'));
  }
  const timeoutMs = positiveNumber(opts.get('probe-timeout'), 55, 'probe-timeout') * 1000;
  const latencyRounds = positiveNumber(opts.get('latency-rounds'), 3, 'latency-rounds');
  const only = opts.get('only')?.split(',').map((s) => s.trim());
  const chosen = probes.filter((p) => only === undefined || only.includes(p.name) || only.includes(String(p.group)));
  if (chosen.length === 0) {
    log(`--only ${opts.get('only')}: no such probe\n${usage}`);
    return 2;
  }
  installCleanupHandlers();
  const memcachedVersion = execFileSync('memcached', ['-V'], { encoding: 'utf8' }).trim();
  const started = Date.now();
  const rows: Row[] = [];
  for (const p of chosen) {
    const t0 = Date.now();
    const row: Row = { probe: `${p.group}. ${p.name}`, description: p.description, memcached: '', memshard: '', seconds: 0 };
    if ('load' in p) {
      // the servers in alternation, round by round, so that both see the machine's same moments
      const rounds: Record<Kind, Array<LatencyRound | string>> = { memcached: [], memshard: [] };
      for (let r = 1; r <= latencyRounds; r++) {
        for (const kind of KINDS) {
          const result = await runOne((ctx) => latencyUnder(ctx, kind, p.load), timeoutMs);
          rounds[kind].push(result);
          log(`${p.name} ${kind} round ${r}: ${typeof result === 'string' ? result : `${showLatency(result.l)}; ${result.summary}`}`);
        }
      }
      for (const kind of KINDS) row[kind] = showRounds(rounds[kind]);
    } else {
      for (const kind of KINDS) {
        const result = await runOne((ctx) => p.run(ctx, kind), timeoutMs);
        row[kind] = result;
        log(`${p.name} ${kind}: ${result}`);
      }
    }
    row.seconds = (Date.now() - t0) / 1000;
    rows.push(row);
  }
  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    memcached: `${memcachedVersion} (-t ${THREADS} -m ${MEMORY_MB})`,
    memshard: `memshard (-t ${THREADS} -m ${MEMORY_MB})`,
    cpus: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}`,
    seconds: Math.round((Date.now() - started) / 1000),
  };
  if (saslDir !== null) fs.rmSync(saslDir, { recursive: true, force: true });
  if (opts.has('json')) {
    console.log(JSON.stringify({ ...meta, rows }, null, 2));
  } else {
    const cell = (s: string) => s.replace(/\|/g, '\\|');
    const out = [
      `Probes ${meta.date}: node ${meta.node}, ${meta.memcached}, ${meta.memshard}; ${meta.cpus}; ${meta.seconds} s`,
      '',
      '| probe | memcached | memshard |',
      '|---|---|---|',
      ...rows.map((r) => `| **${r.probe}**: ${cell(r.description)} | ${cell(r.memcached)} | ${cell(r.memshard)} |`),
    ];
    console.log(out.join('\n'));
  }
  // a probe that could not run to its end makes the run fail; what the servers did never does
  return rows.some((r) => /^(probe failed|TIMED OUT)/.test(r.memcached) || /^(probe failed|TIMED OUT)/.test(r.memshard)) ? 1 : 0;
}

runMain(import.meta.url, main);
