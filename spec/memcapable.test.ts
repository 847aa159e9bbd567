// libmemcached's conformance checker (`memccapable` on Debian) against memshard.
// Both the ASCII (-a) and the binary (-b) checks by default; MEMCAPABLE_MODES=ascii (or binary)
// runs just one of them.
// MEMCAPABLE_TARGET=memcached runs it against /usr/bin/memcached instead (to check this harness).
import t from 'tap';
import { spawn } from 'node:child_process';
import { startDaemon, startMemcached, type Daemon } from './helpers/daemon.js';

const BIN = process.env['MEMCAPABLE_BIN'] ?? 'memccapable';
const RUN_TIMEOUT_MS = 60_000;

export interface MemcapableResult {
  passed: string[];
  failed: string[];
  skipped: string[];
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/**
 * memcapable prints each test name padded to 40 columns on stdout, then `[pass]` or `[skipped]`
 * on stdout, or `[FAIL]` (plus details) on stderr. So on stdout a name that is not followed by
 * a result marker before the next name is a failure.
 */
export function parseMemcapable(stdout: string): Pick<MemcapableResult, 'passed' | 'failed' | 'skipped'> {
  const passed: string[] = [];
  const failed: string[] = [];
  const skipped: string[] = [];
  const re = /\b((?:ascii|binary) [a-z0-9_]+(?: [a-z0-9_]+)*)|\[(pass|skipped|FAIL)\]/g;
  let current: string | null = null;
  for (const m of stdout.matchAll(re)) {
    if (m[1] !== undefined) {
      if (current !== null) failed.push(current);
      current = m[1];
    } else if (current !== null) {
      if (m[2] === 'pass') passed.push(current);
      else if (m[2] === 'skipped') skipped.push(current);
      else failed.push(current);
      current = null;
    }
  }
  if (current !== null) failed.push(current);
  return { passed, failed, skipped };
}

export function runMemcapable(
  port: number,
  mode: 'ascii' | 'binary',
  extra: string[] = [],
  timeoutMs = RUN_TIMEOUT_MS,
): Promise<MemcapableResult> {
  return new Promise((resolve, reject) => {
    const args = ['-h', '127.0.0.1', '-p', String(port), '-t', '2', mode === 'ascii' ? '-a' : '-b', ...extra];
    const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('latin1');
    child.stderr.setEncoding('latin1');
    child.stdout.on('data', (d: string) => (stdout += d));
    child.stderr.on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${BIN} (install libmemcached-tools): ${e.message}`));
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      resolve({ ...parseMemcapable(stdout), exitCode, signal, timedOut, stdout, stderr });
    });
  });
}

const modes = (process.env['MEMCAPABLE_MODES'] ?? 'ascii,binary')
  .split(',')
  .map((s) => s.trim())
  .filter((s): s is 'ascii' | 'binary' => s === 'ascii' || s === 'binary');

for (const mode of modes) {
  t.test(`memcapable ${mode}`, { timeout: RUN_TIMEOUT_MS + 20_000 }, async (t) => {
    const daemon: Daemon = process.env['MEMCAPABLE_TARGET'] === 'memcached' ? await startMemcached([]) : await startDaemon([]);
    t.teardown(() => daemon.stop());
    const r = await runMemcapable(daemon.port, mode);
    const total = r.passed.length + r.failed.length + r.skipped.length;
    t.comment(`memcapable ${mode}: ${r.passed.length} passed, ${r.failed.length} failed, ${r.skipped.length} skipped`);
    // For failures, rerun each failing test alone with -v: it prints the failed assertion.
    const why: Record<string, string> = {};
    for (const name of r.failed.slice(0, 3)) {
      const one = await runMemcapable(daemon.port, mode, ['-v', '-T', name], 10_000);
      why[name] = `${one.stdout}\n${one.stderr}`.replace(/\r/g, '\\r').trim();
    }
    const diag = {
      failing_test_details: why,
      memcapable_stdout: r.stdout,
      memcapable_stderr: r.stderr.slice(-4000),
      daemon_stderr: daemon.stderr().slice(-4000),
    };
    t.notOk(r.timedOut, `memcapable finished within ${RUN_TIMEOUT_MS} ms`, diag);
    t.ok(total >= 20, `memcapable ran its tests (saw ${total})`, total >= 20 ? {} : diag);
    t.same(r.failed, [], `no failing tests; failing: ${r.failed.join(', ') || 'none'}`, r.failed.length ? diag : {});
    t.equal(r.exitCode, 0, 'memcapable exit status 0');
    t.equal(daemon.exitStatus(), null, 'daemon still running after memcapable');
  });
}
