// memshard vs memcached, same machine, same load generator (mcload), same run.
//
//   npm run bench -- [--duration 3] [--rounds 3] [--threads 4|1,2,4] [--only a,b|tls] [--json]
//
// Runs each scenario in alternation (memcached, memshard -t A, memshard -t B, ..., then the next
// scenario, then the next round) and reports the median of the rounds. The TLS scenarios (tls-*)
// run against a second pair of servers started with -Z and the same certificates (a throwaway
// PKI from scripts/tls-certs.ts), and each brings its plaintext twin into the run, so that the
// report can say what share of its plaintext throughput TLS costs each server. Exits non-zero
// when any mcload run reported errors or failed, or a server died.
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { reusePortAvailable } from '../lib/threads/listen-socket.js';
import { makeTestPki, serverTlsArgs, type TestPki } from './tls-certs.js';
import { memoryBench } from './memory-bench.js';

// ---------------------------------------------------------------------------------------------
// shared helpers (also used by memfill.ts)

/** Repository root: this file runs as <root>/dist/scripts/bench.js. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const sharedDir = path.resolve(repoRoot, '..', 'shared');
/** The daemon's entry point; MEMSHARD_CLI overrides it (e.g. to try another build). */
export const memshardCli = process.env['MEMSHARD_CLI'] ?? path.join(repoRoot, 'dist', 'lib', 'cli.js');
export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

export const log = (...a: unknown[]) => console.error(...a);
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const children = new Set<ChildProcess>();
/** Set on SIGINT/SIGTERM: no new processes are started after it. */
let stopping = false;

/** Kill every process this script started (by PID), SIGTERM then SIGKILL after 3 s. */
export async function killAll(): Promise<void> {
  const waits: Promise<void>[] = [];
  for (const c of children) {
    if (c.exitCode !== null || c.signalCode !== null) {
      children.delete(c);
      continue;
    }
    waits.push(
      new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          try {
            c.kill('SIGKILL');
          } catch {
            /* gone */
          }
        }, 3000);
        c.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        try {
          c.kill('SIGTERM');
        } catch {
          clearTimeout(t);
          resolve();
        }
      }),
    );
  }
  await Promise.all(waits);
  children.clear();
}

let handlersInstalled = false;
/** SIGINT/SIGTERM kill our children and exit; a last-resort SIGKILL on process exit. */
export function installCleanupHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      stopping = true;
      log(`\n${sig}: stopping the processes this script started`);
      void killAll().finally(() => process.exit(130));
    });
  }
  process.on('exit', () => {
    for (const c of children) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
  });
}

export function spawnTracked(cmd: string, args: string[], stdio: 'pipe' | 'ignore' = 'pipe'): ChildProcess {
  if (stopping) throw new Error(`stopping: not starting ${cmd}`);
  const c = spawn(cmd, args, { stdio: ['ignore', stdio, stdio] });
  children.add(c);
  c.on('exit', () => children.delete(c));
  c.on('error', () => children.delete(c));
  return c;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = a !== null && typeof a === 'object' ? a.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

/** A TLS client's settings: the CA (PEM file) the server's certificate must chain to; its name is checked as localhost. */
export interface TlsClient {
  ca: string;
}

/** Send one or more text commands and read until `until` appears (bounded by timeoutMs); over TLS when `tlsClient` is given. */
export function textRequest(port: number, request: string, until: RegExp, timeoutMs = 2000, tlsClient?: TlsClient): Promise<string> {
  return new Promise((resolve, reject) => {
    const s =
      tlsClient === undefined
        ? net.connect({ port, host: '127.0.0.1' })
        : tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: fs.readFileSync(tlsClient.ca) });
    s.setNoDelay(true);
    let buf = '';
    const done = (e: Error | null) => {
      clearTimeout(timer);
      s.destroy();
      if (e) reject(e);
      else resolve(buf);
    };
    const timer = setTimeout(() => done(new Error(`timeout; got ${JSON.stringify(buf)}`)), timeoutMs);
    s.on(tlsClient === undefined ? 'connect' : 'secureConnect', () => s.write(request));
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (until.test(buf)) done(null);
    });
    s.on('error', (e) => done(e));
    s.on('close', () => done(new Error(`closed; got ${JSON.stringify(buf)}`)));
  });
}

export interface Server {
  name: string;
  port: number;
  pid: number;
  version: string;
  proc: ChildProcess;
  alive(): boolean;
  stderr(): string;
  stop(): Promise<void>;
}

/** SIGTERM, then SIGKILL after 3 s; resolves once the process has exited. */
export function stopProcess(proc: ChildProcess, alive: () => boolean): Promise<void> {
  return new Promise<void>((resolve) => {
    if (!alive()) return resolve();
    const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
    proc.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}

/** Spawn a server on a free port and wait (10 s) until it answers `version` (over TLS with `tlsClient`). */
export async function startServer(
  name: string,
  cmd: string,
  argsFor: (port: number) => string[],
  tlsClient?: TlsClient,
): Promise<Server> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const args = argsFor(port);
    const proc = spawnTracked(cmd, args);
    let err = '';
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (d: string) => {
      err = (err + d).slice(-64 * 1024);
    });
    proc.stdout?.resume();
    let spawnErr: Error | null = null;
    proc.on('error', (e) => (spawnErr = e));
    const alive = () => proc.exitCode === null && proc.signalCode === null && spawnErr === null;
    const deadline = Date.now() + 10_000;
    let version = '';
    while (!version) {
      if (!alive()) {
        if (attempt < 2 && /EADDRINUSE|address already in use/i.test(err)) break;
        throw new Error(`${name} exited at start (${spawnErr ?? `code ${proc.exitCode} ${proc.signalCode}`}): ${cmd} ${args.join(' ')}\n${err}`);
      }
      try {
        const r = await textRequest(port, 'version\r\n', /\r\n/, 1000, tlsClient);
        if (r.startsWith('VERSION ')) version = r.slice(8).trim();
        else throw new Error(`bad version reply ${JSON.stringify(r)}`);
      } catch {
        if (Date.now() > deadline) {
          proc.kill('SIGKILL');
          throw new Error(`${name} did not answer version within 10 s: ${cmd} ${args.join(' ')}\n${err}`);
        }
        await sleep(50);
      }
    }
    if (!version) continue; // port taken under us: retry
    const pid = proc.pid ?? -1;
    return {
      name,
      port,
      pid,
      version,
      proc,
      alive,
      stderr: () => err,
      stop: () => stopProcess(proc, alive),
    };
  }
}

/** A server certificate and key for -Z, and the CA its clients check it against. */
export interface ServerTls {
  cert: string;
  key: string;
  ca: string;
}

/** The server side of a test PKI (scripts/tls-certs.ts). */
export const serverTlsOf = (pki: TestPki): ServerTls => ({ cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert });

/** memcached; with `tls`, -Z with that certificate (named `memcached -Z`). */
export function startMemcached(opts: { threads: number; memoryMb: number; tls?: ServerTls }): Promise<Server> {
  const tlsArgs = opts.tls === undefined ? [] : serverTlsArgs(opts.tls.cert, opts.tls.key);
  return startServer(
    opts.tls === undefined ? 'memcached' : 'memcached -Z',
    'memcached',
    (port) => [
      '-p', String(port), '-l', '127.0.0.1', '-U', '0',
      '-t', String(opts.threads), '-m', String(opts.memoryMb),
      ...(isRoot ? ['-u', 'root'] : []),
      ...tlsArgs,
    ],
    opts.tls,
  );
}

/** A memshard daemon; its metrics endpoint is off unless `args` choose a --metrics-port. With `tls`, -Z with that certificate. */
export function startMemshard(opts: { threads: number; memoryMb: number; args?: string[]; tls?: ServerTls }): Promise<Server> {
  if (!fs.existsSync(memshardCli)) {
    return Promise.reject(new Error(`${memshardCli} does not exist: run \`npm run build\` first`));
  }
  const tlsArgs = opts.tls === undefined ? [] : serverTlsArgs(opts.tls.cert, opts.tls.key);
  return startServer(
    `memshard -t ${opts.threads}${opts.tls === undefined ? '' : ' -Z'}`,
    process.execPath,
    (port) => [
      memshardCli, '-p', String(port), '-l', '127.0.0.1', '-U', '0',
      '-t', String(opts.threads), '-m', String(opts.memoryMb),
      ...(opts.args?.includes('--metrics-port') ? [] : ['--metrics-port', '0']),
      ...(opts.args ?? []),
      ...tlsArgs,
    ],
    opts.tls,
  );
}

/**
 * Path of a built mcload: $MCLOAD if set, else shared/bench/mcload if one was built there, else
 * one built into a temp dir (../shared is read-only to this project; with TLS when OpenSSL's
 * headers are installed, as its Makefile does).
 */
export function ensureMcload(): string {
  const given = process.env['MCLOAD'];
  if (given !== undefined && given !== '') {
    if (!fs.existsSync(given)) throw new Error(`MCLOAD=${given} does not exist`);
    return given;
  }
  const benchDir = path.join(sharedDir, 'bench');
  const inShared = path.join(benchDir, 'mcload');
  const src = path.join(benchDir, 'mcload.c');
  if (!fs.existsSync(src)) throw new Error(`mcload source not found: ${src}`);
  if (fs.existsSync(inShared)) return inShared;
  log(`building mcload from ${src} into a temp dir`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'memshard-mcload-'));
  const out = path.join(dir, 'mcload');
  const withTls = fs.existsSync('/usr/include/openssl/ssl.h');
  execFileSync('cc', ['-O2', '-pthread', ...(withTls ? ['-DHAVE_TLS'] : []), '-o', out, src, '-lm', ...(withTls ? ['-lssl', '-lcrypto'] : [])], { stdio: 'inherit' });
  return out;
}

/** Whether this mcload was built with TLS (one without it refuses --tls before connecting). */
export function mcloadHasTls(bin: string): boolean {
  // port 1 on loopback: nothing listens, so a TLS build fails the connect at once
  const r = spawnSync(bin, ['--tls', '--port', '1', '--requests', '1', '--timeout', '1', '--max-time', '5'], { encoding: 'utf8', timeout: 10_000 });
  return !/built without OpenSSL/.test(`${r.stderr}${r.stdout}`);
}

export interface McloadResult {
  json: Record<string, unknown> | null;
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Run mcload against a port; the JSON line is the only stdout line starting with `{`. */
export function runMcload(bin: string, port: number, args: string[], timeoutMs: number): Promise<McloadResult> {
  return new Promise((resolve) => {
    const c = spawnTracked(bin, ['--port', String(port), ...args]);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    c.stdout?.setEncoding('utf8');
    c.stderr?.setEncoding('utf8');
    c.stdout?.on('data', (d: string) => (stdout += d));
    c.stderr?.on('data', (d: string) => (stderr = (stderr + d).slice(-64 * 1024)));
    const t = setTimeout(() => {
      timedOut = true;
      c.kill('SIGKILL');
    }, timeoutMs);
    const finish = (exitCode: number | null) => {
      clearTimeout(t);
      let json: Record<string, unknown> | null = null;
      for (const line of stdout.split('\n')) {
        if (line.startsWith('{')) {
          try {
            json = JSON.parse(line) as Record<string, unknown>;
          } catch {
            /* reported as missing JSON */
          }
        }
      }
      resolve({ json, exitCode, stdout, stderr, timedOut });
    };
    c.on('error', (e) => {
      stderr += String(e);
      finish(null);
    });
    c.on('close', (code) => finish(code));
  });
}

export const num = (j: Record<string, unknown> | null, k: string): number => {
  const v = j?.[k];
  return typeof v === 'number' ? v : NaN;
};

export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Tiny `--flag value` / `--flag=value` / `--bool` parser. */
export function parseArgs(argv: string[], booleans: string[], valued: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (!booleans.includes(name) && !valued.includes(name)) throw new Error(`unknown option --${name}`);
    if (eq > 0) out.set(name, a.slice(eq + 1));
    else if (booleans.includes(a.slice(2))) out.set(a.slice(2), 'true');
    else {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      out.set(a.slice(2), v);
    }
  }
  return out;
}

export function positiveNumber(v: string | undefined, dflt: number, name: string): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${v}`);
  return n;
}

// ---------------------------------------------------------------------------------------------
// bench

interface Scenario {
  id: string;
  title: string;
  args: string[];
  /** Run over TLS, against the servers started with -Z. */
  tls?: boolean;
  /** A TLS scenario's plaintext twin (same load, over TCP): always run with it, for the share TLS costs. */
  plain?: string;
}

/** The Node floor (scripts/node-floor.ts) speaks only the text protocol, and no TLS. */
const textOnly = (sc: Scenario): boolean => !sc.args.includes('--protocol') && sc.tls !== true;

/** Requests per connection between reconnects in the reconnect rows: a full TLS handshake every 20 requests. */
const RECONNECT_EVERY = 20;

const scenarios = (duration: number): Scenario[] => {
  const common = ['--ratio', '1:9', '--duration', String(duration)];
  const small = ['--value-size', '100', ...common];
  const p1 = ['--threads', '2', '--conns', '25', '--pipeline', '1', ...small];
  const p16 = ['--threads', '2', '--conns', '25', '--pipeline', '16', ...small];
  const reconnect = [...p1, '--reconnect-every', String(RECONNECT_EVERY)];
  return [
    { id: 'a', title: '50 conns, pipeline 1, 90% get', args: p1 },
    { id: 'a-bin', title: 'binary, 50 conns, pipeline 1', args: ['--threads', '2', '--conns', '25', '--pipeline', '1', '--protocol', 'binary', ...small] },
    {
      id: 'a-large',
      title: '1-16 KB values, 50 conns, pipeline 1',
      args: ['--threads', '2', '--conns', '25', '--pipeline', '1', '--value-size', '1024-16384', '--keys', '20000', ...common],
    },
    { id: 'b', title: '50 conns, pipeline 16, 90% get', args: p16 },
    { id: 'c', title: '4 conns, pipeline 1, 90% get', args: ['--threads', '1', '--conns', '4', '--pipeline', '1', ...small] },
    { id: 'd', title: 'meta (ms/mg), 50 conns, pipeline 16', args: ['--threads', '2', '--conns', '25', '--pipeline', '16', '--protocol', 'meta', ...small] },
    { id: 'e', title: 'meta (ms/mg), 4 conns, pipeline 1', args: ['--threads', '1', '--conns', '4', '--pipeline', '1', '--protocol', 'meta', ...small] },
    { id: 'reconnect', title: `50 conns, pipeline 1, reconnect every ${RECONNECT_EVERY} requests`, args: reconnect },
    { id: 'tls-a', title: 'TLS, 50 conns, pipeline 1, 90% get', args: p1, tls: true, plain: 'a' },
    { id: 'tls-b', title: 'TLS, 50 conns, pipeline 16, 90% get', args: p16, tls: true, plain: 'b' },
    { id: 'tls-reconnect', title: `TLS, 50 conns, pipeline 1, a full handshake every ${RECONNECT_EVERY} requests`, args: reconnect, tls: true, plain: 'reconnect' },
  ];
};

/**
 * The scenarios `--only` names, in the bench's order: ids, or `tls` for every TLS scenario; a TLS
 * scenario brings its plaintext twin.
 */
export function selectScenarios(all: Scenario[], only: string[] | undefined): Scenario[] {
  if (only === undefined) return all;
  const wanted = new Set<string>();
  for (const id of only) {
    if (id === 'tls') for (const sc of all) if (sc.tls === true) wanted.add(sc.id);
    if (all.some((sc) => sc.id === id)) wanted.add(id);
    else if (id !== 'tls') throw new Error(`--only: no scenario ${id} (there are ${all.map((sc) => sc.id).join(', ')}, and tls)`);
  }
  for (const sc of all) if (wanted.has(sc.id) && sc.plain !== undefined) wanted.add(sc.plain);
  return all.filter((sc) => wanted.has(sc.id));
}

/** The order to run scenarios in within a round: each TLS scenario right after its plaintext twin, so the pair sees the same conditions. */
export function runOrder(scen: Scenario[]): Scenario[] {
  const out: Scenario[] = [];
  for (const sc of scen) {
    if (sc.tls === true && scen.some((p) => p.id === sc.plain)) continue;
    out.push(sc, ...scen.filter((t) => t.tls === true && t.plain === sc.id));
  }
  return out;
}

/** The run's arguments for prefill: every key set once, without reconnecting (a handshake per 20 sets would only slow the prefill). */
function prefillArgs(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--reconnect-every') i++;
    else out.push(args[i]!);
  }
  return out;
}

interface Sample {
  ops: number;
  p99: number;
  errors: number;
  /** Server CPU (user + system, all threads) per request, microseconds. */
  cpuUsPerRequest: number;
  /** The busiest thread's part of the server's CPU in the run, 0-1. */
  busiestThread: number;
  /** TLS runs: handshakes per second in the measured run (the first ones happen before it), and their p99 in ms. */
  handshakesPerSec?: number;
  handshakeP99Ms?: number;
}

/** CPU ticks (user + system) of each thread of process pid, from /proc/<pid>/task/<tid>/stat. */
export function threadTicks(pid: number): Map<string, number> {
  const ticks = new Map<string, number>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // fields after "(comm)": state is field 3, utime 14, stime 15
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks.set(tid, Number(fields[11]) + Number(fields[12]));
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ticks;
}

/** What the server's threads used between two threadTicks samples: total ticks and the busiest thread's part. */
export function cpuBetween(before: Map<string, number>, after: Map<string, number>): { ticks: number; busiest: number } {
  let ticks = 0;
  let busiest = 0;
  for (const [tid, t] of after) {
    const used = t - (before.get(tid) ?? 0);
    ticks += used;
    busiest = Math.max(busiest, used);
  }
  return { ticks, busiest: ticks > 0 ? busiest / ticks : 0 };
}

/** Kernel clock ticks per second (USER_HZ): 100 on Linux for every architecture Node runs on. */
const USER_HZ = 100;
const DEFAULT_MEMSHARD_THREADS = 4;

/** The TLS goals: memshard -Z vs memcached -Z ops ratio, by scenario. */
const TLS_OPS_GOALS: Record<string, number> = { 'tls-a': 0.75, 'tls-b': 1.0 };

const usage = `usage: node dist/scripts/bench.js [--duration S] [--rounds N] [--threads T[,T...]] [--json]
  --duration S   seconds per measured run (default 3)
  --rounds N     rounds; the median is reported (default 3)
  --threads L    memshard -t value(s), e.g. 4 or 1,2,4 (default ${DEFAULT_MEMSHARD_THREADS}, memshard's default); memcached always runs -t 2
  --only IDS     run only these scenarios, e.g. a,a-bin; \`tls\` = every TLS scenario (tls-a, tls-b,
                 tls-reconnect: memshard -Z vs memcached -Z, same certificates); a TLS scenario
                 also runs its plaintext twin (a, b, reconnect), for the share of throughput TLS costs;
                 \`memory\` = the memory and hit-ratio rows (fills of -m 64 and -m 1024, Zipf
                 cache-aside), which a full run ends with (about 5 minutes)
  --gets N       gets of the cache-aside row (default 3000000)
  --floor        also run the Node floor (scripts/node-floor.ts, Node 22.12+): what Node's sockets
                 cost with no store and no protocol work, for the text scenarios
  --json         print the results as one JSON document on stdout (progress goes to stderr)
  MCLOAD=PATH    use this mcload binary (the TLS scenarios need one built with OpenSSL)`;

/** A script's options; or the exit code, after printing the usage (--help) or what was wrong. */
export function scriptOptions(usage: string, flags: string[], valued: string[]): Map<string, string> | number {
  let opts: Map<string, string>;
  try {
    opts = parseArgs(process.argv.slice(2), flags, valued);
  } catch (e) {
    log(`${(e as Error).message}\n${usage}`);
    return 2;
  }
  if (opts.has('help')) {
    console.log(usage);
    return 0;
  }
  return opts;
}

async function main(): Promise<number> {
  const opts = scriptOptions(usage, ['json', 'help', 'floor'], ['duration', 'rounds', 'threads', 'only', 'gets']);
  if (typeof opts === 'number') return opts;
  const duration = positiveNumber(opts.get('duration'), 3, 'duration');
  const rounds = Math.round(positiveNumber(opts.get('rounds'), 3, 'rounds'));
  const threadList = (opts.get('threads') ?? String(DEFAULT_MEMSHARD_THREADS)).split(',').map((s) => Math.round(positiveNumber(s.trim(), DEFAULT_MEMSHARD_THREADS, 'threads')));
  const asJson = opts.has('json');
  const only = opts.get('only')?.split(',');
  // the memory and hit-ratio rows (scripts/memory-bench.ts): in a full run, or with --only memory
  const wantMemory = only === undefined || only.includes('memory');
  const onlyThroughput = only?.filter((id) => id !== 'memory');
  const scen = onlyThroughput?.length === 0 ? [] : selectScenarios(scenarios(duration), onlyThroughput);
  const gets = Math.round(positiveNumber(opts.get('gets'), 3_000_000, 'gets'));
  if (scen.length === 0) {
    installCleanupHandlers();
    return printMemoryRows(ensureMcload(), threadList[0]!, gets, []);
  }
  const wantPlain = scen.some((sc) => sc.tls !== true);
  const wantTls = scen.some((sc) => sc.tls === true);

  installCleanupHandlers();
  const mcload = ensureMcload();
  if (wantTls && !mcloadHasTls(mcload)) throw new Error(`${mcload} was built without TLS: rebuild it with OpenSSL (libssl-dev), or set MCLOAD`);
  const memcachedVersion = execFileSync('memcached', ['-V'], { encoding: 'utf8' }).trim();

  // Each server has a role (memcached, memshard -t A, ...): samples and rows go by role, so that a
  // TLS scenario's samples (from the -Z servers) pair with its plaintext twin's.
  const floorThreads = threadList[0]!;
  const roles = ['memcached', ...threadList.map((t) => `memshard -t ${t}`), ...(opts.has('floor') && wantPlain ? [`node floor -t ${floorThreads}`] : [])];
  const memcachedRole = roles[0]!;
  const isFloor = (role: string): boolean => role.startsWith('node floor');
  // plain[i] and tlsServers[i] play roles[i]
  const plain: Server[] = [];
  const tlsServers: Server[] = [];
  let pkiDir: string | null = null;
  if (wantPlain) {
    plain.push(await startMemcached({ threads: 2, memoryMb: 1024 }));
    for (const t of threadList) plain.push(await startMemshard({ threads: t, memoryMb: 1024 }));
    if (opts.has('floor')) {
      if (!reusePortAvailable()) throw new Error(`--floor needs Node 22.12 or later (this is ${process.version})`);
      const floorScript = path.join(repoRoot, 'dist', 'scripts', 'node-floor.js');
      plain.push(await startServer(`node floor -t ${floorThreads}`, process.execPath, (port) => [floorScript, String(port), String(floorThreads)]));
    }
  }
  let mcloadTls: string[] = [];
  if (wantTls) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'memshard-bench-pki-'));
    pkiDir = dir;
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    const pki = makeTestPki(dir);
    mcloadTls = ['--tls', '--tls-ca', pki.caCert];
    tlsServers.push(await startMemcached({ threads: 2, memoryMb: 1024, tls: serverTlsOf(pki) }));
    for (const t of threadList) tlsServers.push(await startMemshard({ threads: t, memoryMb: 1024, tls: serverTlsOf(pki) }));
  }
  for (const s of [...plain, ...tlsServers]) log(`${s.name}: pid ${s.pid}, port ${s.port}, version ${s.version}`);

  // samples[scenario][role] = Sample[]
  const samples = new Map<string, Map<string, Sample[]>>();
  const failures: string[] = [];
  const runTimeout = (duration + 60) * 1000;

  outer: for (let r = 1; r <= rounds; r++) {
    for (const sc of runOrder(scen)) {
      const lineup = sc.tls === true ? tlsServers : plain;
      for (const [i, s] of lineup.entries()) {
        const role = roles[i]!;
        if (isFloor(role) && !textOnly(sc)) continue;
        if (!s.alive()) {
          failures.push(`${s.name} died (stderr: ${s.stderr().slice(-500)})`);
          break outer;
        }
        const args = [...sc.args, ...(sc.tls === true ? mcloadTls : [])];
        // every key set once first, outside the measured run and its CPU sample
        const prefill = await runMcload(mcload, s.port, [...prefillArgs(args), '--mode', 'prefill', '--max-time', String(duration + 30)], runTimeout);
        if (num(prefill.json, 'errors') !== 0 || prefill.exitCode !== 0) failures.push(`${sc.id} ${s.name}: prefill failed: ${prefill.stderr.slice(-300)}`);
        const before = threadTicks(s.pid);
        const res = await runMcload(mcload, s.port, [...args, '--max-time', String(duration + 30)], runTimeout);
        const cpu = cpuBetween(before, threadTicks(s.pid));
        const errors = num(res.json, 'errors');
        const sample: Sample = {
          ops: num(res.json, 'ops_per_sec'),
          p99: num(res.json, 'p99_us'),
          errors,
          cpuUsPerRequest: (cpu.ticks * 1e6) / USER_HZ / num(res.json, 'ops'),
          busiestThread: cpu.busiest,
        };
        if (sc.tls === true) {
          // mcload counts the first handshakes (one per connection, before the measured run) too
          const conns = Number(sc.args[sc.args.indexOf('--threads') + 1]) * Number(sc.args[sc.args.indexOf('--conns') + 1]);
          sample.handshakesPerSec = (num(res.json, 'handshakes') - conns) / num(res.json, 'seconds');
          sample.handshakeP99Ms = num(res.json, 'handshake_ms_p99');
        }
        const perServer = samples.get(sc.id) ?? new Map<string, Sample[]>();
        samples.set(sc.id, perServer);
        perServer.set(role, [...(perServer.get(role) ?? []), sample]);
        const tag = `round ${r}/${rounds} ${sc.id} (${sc.title}) ${s.name}`;
        if (res.json === null || res.timedOut) {
          failures.push(`${tag}: mcload ${res.timedOut ? 'timed out' : `exited ${res.exitCode} without JSON`}: ${res.stderr.slice(-500)}`);
        } else if (!(errors === 0) || res.exitCode !== 0 || res.json['incomplete'] === true) {
          const detail = ['error_replies', 'bad_values', 'timeouts', 'desyncs', 'disconnects', 'connect_failures', 'handshake_failures', 'prefill_errors']
            .map((k) => `${k}=${String(res.json?.[k])}`)
            .join(' ');
          failures.push(`${tag}: errors=${errors} exit=${res.exitCode} incomplete=${String(res.json['incomplete'])} ${detail}`);
        }
        log(
          `${tag}: ${Math.round(sample.ops)} ops/s, p99 ${sample.p99} us, errors ${sample.errors}, ` +
            `${sample.cpuUsPerRequest.toFixed(1)} us CPU/request, busiest thread ${(sample.busiestThread * 100).toFixed(0)}%` +
            (sample.handshakesPerSec !== undefined && sample.handshakesPerSec > 0
              ? `, ${Math.round(sample.handshakesPerSec)} handshakes/s (p99 ${sample.handshakeP99Ms} ms)`
              : ''),
        );
      }
    }
  }

  const medianOf = (xs: Sample[], k: keyof Sample): number => median(xs.map((x) => x[k] ?? NaN));
  const rows: {
    scenario: string;
    memshard: string;
    memcached_ops: number;
    memcached_p99_us: number;
    memshard_ops: number;
    memshard_p99_us: number;
    ops_ratio: number;
    p99_ratio: number;
    memcached_cpu_us_per_request: number;
    memshard_cpu_us_per_request: number;
    cpu_ratio: number;
    memshard_busiest_thread: number;
  }[] = [];
  for (const sc of scen) {
    const per = samples.get(sc.id);
    const mc = per?.get(memcachedRole) ?? [];
    for (const role of roles.slice(1)) {
      const ms = per?.get(role) ?? [];
      if (ms.length === 0) continue;
      const mcOps = medianOf(mc, 'ops');
      const mcP99 = medianOf(mc, 'p99');
      const msOps = medianOf(ms, 'ops');
      const msP99 = medianOf(ms, 'p99');
      rows.push({
        scenario: `${sc.id}: ${sc.title}`,
        memshard: role,
        memcached_ops: mcOps,
        memcached_p99_us: mcP99,
        memshard_ops: msOps,
        memshard_p99_us: msP99,
        ops_ratio: msOps / mcOps,
        p99_ratio: msP99 / mcP99,
        memcached_cpu_us_per_request: medianOf(mc, 'cpuUsPerRequest'),
        memshard_cpu_us_per_request: medianOf(ms, 'cpuUsPerRequest'),
        cpu_ratio: medianOf(ms, 'cpuUsPerRequest') / medianOf(mc, 'cpuUsPerRequest'),
        memshard_busiest_thread: Math.max(...ms.map((x) => x.busiestThread)),
      });
    }
  }

  // TLS against plaintext, per server: what share of its own plaintext throughput each keeps under
  // TLS, from the medians of the same run (the twin scenario ran in the same rounds).
  const tlsRows: {
    scenario: string;
    memshard: string;
    memcached_tls_ops: number;
    memshard_tls_ops: number;
    ops_ratio: number;
    ops_goal: number | null;
    memcached_plain_ops: number;
    memshard_plain_ops: number;
    /** TLS ops/s over plaintext ops/s, each server against itself. */
    memcached_tls_share: number;
    memshard_tls_share: number;
    /** memshard's share over memcached's: >= 1 when TLS costs memshard no larger a share than memcached. */
    share_ratio: number;
    memcached_tls_cpu_us_per_request: number;
    memshard_tls_cpu_us_per_request: number;
    /** CPU per request under TLS minus plaintext: what TLS adds. */
    memcached_tls_cpu_added_us: number;
    memshard_tls_cpu_added_us: number;
    memcached_handshakes_per_sec: number;
    memshard_handshakes_per_sec: number;
    memcached_handshake_p99_ms: number;
    memshard_handshake_p99_ms: number;
  }[] = [];
  for (const sc of scen) {
    if (sc.tls !== true || sc.plain === undefined) continue;
    const tlsPer = samples.get(sc.id);
    const plainPer = samples.get(sc.plain);
    const mcT = tlsPer?.get(memcachedRole) ?? [];
    const mcP = plainPer?.get(memcachedRole) ?? [];
    for (const role of roles.slice(1)) {
      if (isFloor(role)) continue;
      const msT = tlsPer?.get(role) ?? [];
      const msP = plainPer?.get(role) ?? [];
      if (msT.length === 0) continue;
      const mcShare = medianOf(mcT, 'ops') / medianOf(mcP, 'ops');
      const msShare = medianOf(msT, 'ops') / medianOf(msP, 'ops');
      tlsRows.push({
        scenario: `${sc.id}: ${sc.title}`,
        memshard: role,
        memcached_tls_ops: medianOf(mcT, 'ops'),
        memshard_tls_ops: medianOf(msT, 'ops'),
        ops_ratio: medianOf(msT, 'ops') / medianOf(mcT, 'ops'),
        ops_goal: TLS_OPS_GOALS[sc.id] ?? null,
        memcached_plain_ops: medianOf(mcP, 'ops'),
        memshard_plain_ops: medianOf(msP, 'ops'),
        memcached_tls_share: mcShare,
        memshard_tls_share: msShare,
        share_ratio: msShare / mcShare,
        memcached_tls_cpu_us_per_request: medianOf(mcT, 'cpuUsPerRequest'),
        memshard_tls_cpu_us_per_request: medianOf(msT, 'cpuUsPerRequest'),
        memcached_tls_cpu_added_us: medianOf(mcT, 'cpuUsPerRequest') - medianOf(mcP, 'cpuUsPerRequest'),
        memshard_tls_cpu_added_us: medianOf(msT, 'cpuUsPerRequest') - medianOf(msP, 'cpuUsPerRequest'),
        memcached_handshakes_per_sec: medianOf(mcT, 'handshakesPerSec'),
        memshard_handshakes_per_sec: medianOf(msT, 'handshakesPerSec'),
        memcached_handshake_p99_ms: medianOf(mcT, 'handshakeP99Ms'),
        memshard_handshake_p99_ms: medianOf(msT, 'handshakeP99Ms'),
      });
    }
  }

  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    memcached: memcachedVersion,
    memshard: [...plain, ...tlsServers].filter((s) => s.name.startsWith('memshard')).map((s) => `${s.name} (VERSION ${s.version})`).join(', '),
    cpus: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}`,
    duration_s: duration,
    rounds,
    memcached_args: '-t 2 -m 1024',
    ...(wantTls ? { tls: `-Z -o ssl_chain_cert,ssl_key (EC P-256 test certificates from scripts/tls-certs.ts); mcload --tls --tls-ca` } : {}),
  };
  await killAll();
  if (pkiDir !== null) fs.rmSync(pkiDir, { recursive: true, force: true });

  if (asJson) {
    console.log(
      JSON.stringify(
        { ...meta, rows, ...(wantTls ? { tls_rows: tlsRows } : {}), samples: Object.fromEntries([...samples].map(([k, v]) => [k, Object.fromEntries(v)])), failures },
        null,
        2,
      ),
    );
  } else {
    const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : 'n/a');
    const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(0)}%` : 'n/a');
    const signed = (x: number, d = 0) => `${x >= 0 ? '+' : ''}${f(x, d)}`;
    const out: string[] = [];
    out.push(`## memshard vs memcached (${meta.date})`, '');
    out.push(`node ${meta.node}, ${meta.memcached} (${meta.memcached_args}), ${meta.memshard}; ${meta.cpus}`);
    out.push(`mcload, ${duration} s per run, median of ${rounds} rounds run in alternation; 100-byte values and 100k keys unless the scenario says`);
    out.push('CPU: the server process, user + system, all threads, per request; busiest thread: the largest part of the process CPU one thread used in any round', '');
    out.push('| scenario | memcached ops/s | p99 us | CPU us/req | memshard ops/s | p99 us | CPU us/req | ops ratio | p99 ratio | CPU ratio | busiest thread |');
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      const label = roles.length > 2 ? `${r.scenario} (${r.memshard})` : r.scenario;
      out.push(
        `| ${label} | ${f(r.memcached_ops)} | ${f(r.memcached_p99_us)} | ${f(r.memcached_cpu_us_per_request, 1)} | ${f(r.memshard_ops)} | ` +
          `${f(r.memshard_p99_us)} | ${f(r.memshard_cpu_us_per_request, 1)} | ${f(r.ops_ratio, 2)} | ${f(r.p99_ratio, 2)} | ${f(r.cpu_ratio, 2)} | ` +
          `${f(r.memshard_busiest_thread * 100)}% |`,
      );
    }
    if (tlsRows.length > 0) {
      out.push('', `### TLS (-Z, same certificates) against each server's own plaintext throughput in the same run`, '');
      out.push(
        'ops ratio: memshard -Z / memcached -Z (goal: >= 0.75 at pipeline 1, >= 1.0 at pipeline 16); TLS share: TLS ops/s / plaintext ops/s of the same server; ' +
          "share ratio: memshard's share / memcached's (goal: >= 1, TLS costs memshard no larger a share); CPU added: TLS minus plaintext CPU us/req; " +
          `handshakes/s: full handshakes in the measured run (reconnect rows)`,
        '',
      );
      out.push(
        '| scenario | memcached -Z ops/s | memshard -Z ops/s | ops ratio (goal) | memcached TLS share | memshard TLS share | share ratio | ' +
          'memcached -Z CPU us/req (+TLS) | memshard -Z CPU us/req (+TLS) | handshakes/s memcached / memshard | handshake p99 ms |',
      );
      out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
      for (const r of tlsRows) {
        const label = roles.length > 2 ? `${r.scenario} (${r.memshard})` : r.scenario;
        const goal = r.ops_goal === null ? '' : ` (${r.ops_ratio >= r.ops_goal ? 'meets' : 'misses'} ${f(r.ops_goal, 2)})`;
        const shareGoal = Number.isFinite(r.share_ratio) ? (r.share_ratio >= 1 ? ' (meets)' : ' (misses)') : '';
        const hs = r.memcached_handshakes_per_sec > 0 || r.memshard_handshakes_per_sec > 0;
        out.push(
          `| ${label} | ${f(r.memcached_tls_ops)} | ${f(r.memshard_tls_ops)} | ${f(r.ops_ratio, 2)}${goal} | ${pct(r.memcached_tls_share)} | ${pct(r.memshard_tls_share)} | ` +
            `${f(r.share_ratio, 2)}${shareGoal} | ${f(r.memcached_tls_cpu_us_per_request, 1)} (${signed(r.memcached_tls_cpu_added_us, 1)}) | ` +
            `${f(r.memshard_tls_cpu_us_per_request, 1)} (${signed(r.memshard_tls_cpu_added_us, 1)}) | ` +
            `${hs ? `${f(r.memcached_handshakes_per_sec)} / ${f(r.memshard_handshakes_per_sec)}` : ''} | ` +
            `${hs ? `${f(r.memcached_handshake_p99_ms, 1)} / ${f(r.memshard_handshake_p99_ms, 1)}` : ''} |`,
        );
      }
    }
    console.log(out.join('\n'));
  }
  if (wantMemory) return printMemoryRows(mcload, threadList[0]!, gets, failures);
  return reportFailures(failures);
}

async function printMemoryRows(mcload: string, threads: number, gets: number, failures: string[]): Promise<number> {
  const memory = await memoryBench({ mcload, threads, gets });
  await killAll();
  console.log(memory.lines.join('\n'));
  return reportFailures([...failures, ...memory.failures]);
}

/** Exit code 1 after listing the problems, 0 when there were none. */
function reportFailures(failures: string[]): number {
  if (failures.length) {
    log(`\n${failures.length} problem(s):`);
    for (const x of failures) log(`  - ${x}`);
    return 1;
  }
  return 0;
}

/** Run a script's main when its file is the one node was started with; main's answer is the exit code. */
export function runMain(moduleUrl: string, main: () => Promise<number>): void {
  if (process.argv[1] === undefined || moduleUrl !== pathToFileURL(path.resolve(process.argv[1])).href) return;
  main().then(
    async (code) => {
      await killAll();
      process.exitCode = code;
    },
    async (e: unknown) => {
      log(e instanceof Error ? (e.stack ?? e.message) : String(e));
      await killAll();
      process.exitCode = 1;
    },
  );
}

runMain(import.meta.url, main);
