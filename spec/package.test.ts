/**
 * The npm package as `npx memshard` users get it: `npm pack` ships the compiled daemon and its
 * worker scripts (package.json "files") and not the sources, tests, CI script, bench harness or
 * deployment files; every relative import of a shipped file is shipped too; the tarball installs
 * into an empty prefix (production dependencies from the npm registry) and its `memshard` bin
 * serves `version`, /metrics and the dashboard (its uPlot from the `uplot` dependency), and stops on
 * SIGTERM with exit 0.
 *
 * The pack is made from a temporary copy of the working tree (tracked and untracked files, not
 * node_modules/dist), compiled there with the project's tsc, so that it is fresh and so that the
 * copy has dist/scripts and spec/ for "files" to leave out; `npm pack --ignore-scripts` because
 * `prepare` would also run `tap build` in node_modules. Needs the npm registry for the install.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { freePort, httpGet, probeVersion, repoRoot } from './helpers/daemon.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/**
 * Commands run through `env -u NODE_OPTIONS`: under the tap runner, @tapjs/processinfo adds its
 * loaders to every child's NODE_OPTIONS, and TypeScript 7's tsc cannot start under them
 * (ERR_REQUIRE_CYCLE_MODULE); nothing started here needs tap's process tracking. env execs, so
 * the PID is the command's own.
 */
const bare = (cmd: string, args: string[]): [string, string[]] => ['/usr/bin/env', ['-u', 'NODE_OPTIONS', cmd, ...args]];
/** A timer for Promise.race that does not keep the process alive. */
const deadlineIn = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** A command to its end, within timeoutMs; throws with its output when it fails. */
function run(cmd: string, args: string[], opts: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv }): string {
  const r = spawnSync(...bare(cmd, args), { cwd: opts.cwd, env: opts.env ?? process.env, encoding: 'utf8', timeout: opts.timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  if (r.error !== undefined || r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} (in ${opts.cwd}) failed: ${r.error?.message ?? `exit ${r.status} ${r.signal ?? ''}`}\n${r.stdout}\n${r.stderr}`);
  }
  return r.stdout;
}

/** The files git would commit now: tracked and untracked, less the ignored ones. */
function workingTreeFiles(): string[] {
  const out = run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repoRoot, timeoutMs: 20_000 });
  return out.split('\0').filter((f) => f !== '' && fs.existsSync(path.join(repoRoot, f)) && fs.statSync(path.join(repoRoot, f)).isFile());
}

/** Relative specifiers a compiled ES module imports or opens with new URL(..., import.meta.url). */
function relativeImports(source: string): string[] {
  const found = new Set<string>();
  const patterns = [
    /\bfrom\s+['"](\.{1,2}\/[^'"]+)['"]/g,
    /\bimport\s*\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g,
    /\bimport\s+['"](\.{1,2}\/[^'"]+)['"]/g,
    /new URL\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/g,
  ];
  for (const re of patterns) for (const m of source.matchAll(re)) found.add(m[1]!);
  return [...found];
}

interface Started {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => string;
}

function startProcess(cmd: string, args: string[], cwd: string): Started {
  const child = spawn(...bare(cmd, args), { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-65536)));
  child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-65536)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: null, signal: null }));
  });
  return { child, exited, output: () => out };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'memshard-package-'));
const started: Started[] = [];
t.teardown(async () => {
  for (const s of started) {
    if (s.child.exitCode === null && s.child.signalCode === null && s.child.pid !== undefined) {
      try {
        process.kill(s.child.pid, 'SIGKILL');
      } catch {
        // gone already
      }
      await Promise.race([s.exited, deadlineIn(3000)]);
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

let tarball = '';
let packedFiles: string[] = [];

t.test('npm pack ships the daemon, its workers and package.json, nothing else', { timeout: 120_000 }, async (t) => {
  const copy = path.join(tmp, 'src');
  for (const f of workingTreeFiles()) {
    fs.mkdirSync(path.dirname(path.join(copy, f)), { recursive: true });
    fs.copyFileSync(path.join(repoRoot, f), path.join(copy, f));
  }
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(copy, 'node_modules'), 'dir');
  // the project's own build command (tsc -p tsconfig.json), with the project's tsc
  run(path.join(repoRoot, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], { cwd: copy, timeoutMs: 90_000 });
  t.ok(fs.existsSync(path.join(copy, 'dist', 'scripts')), 'the copy has compiled scripts (for "files" to leave out)');
  t.ok(fs.existsSync(path.join(copy, 'spec')) && fs.existsSync(path.join(copy, '.ci', 'run')), 'the copy has spec/ and .ci/run');

  const packDir = path.join(tmp, 'pack');
  fs.mkdirSync(packDir);
  const json = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', packDir], { cwd: copy, timeoutMs: 60_000 });
  const info = (JSON.parse(json.slice(json.indexOf('['))) as { filename: string; files: { path: string }[] }[])[0]!;
  tarball = path.join(packDir, info.filename);
  packedFiles = info.files.map((f) => f.path).sort();
  t.ok(fs.existsSync(tarball), `tarball ${info.filename}`);
  t.comment(`${packedFiles.length} files packed`);

  for (const needed of ['package.json', 'README.md', 'dist/lib/cli.js', 'dist/workers/serve.js', 'dist/workers/socket-dup.js', 'dist/lib/dashboard/client.js']) {
    t.ok(packedFiles.includes(needed), `ships ${needed}`);
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  for (const [name, file] of Object.entries(pkg.bin)) t.ok(packedFiles.includes(file.replace(/^\.\//, '')), `ships the ${name} bin ${file}`);

  const unwanted = packedFiles.filter((f) => !/^dist\/(lib|workers)\/.*\.js$/.test(f) && f !== 'package.json' && f !== 'README.md' && !/^LICEN[CS]E/i.test(f));
  t.same(unwanted, [], 'nothing but dist/lib, dist/workers (compiled .js), package.json, README and a licence');
  for (const prefix of ['spec/', 'scripts/', 'dist/scripts/', 'dist-test/', '.ci/', 'lib/', 'workers/', 'deploy/', 'node_modules/']) {
    t.same(packedFiles.filter((f) => f.startsWith(prefix)), [], `no ${prefix}`);
  }
  t.same(packedFiles.filter((f) => f.endsWith('.map') || f.endsWith('.ts')), [], 'no source maps or TypeScript');
  t.ok(packedFiles.length < 100, `a small package (${packedFiles.length} files; 120+ without "files")`);

  // Every shipped module's relative imports (and new URL(..., import.meta.url) worker paths) are shipped.
  const missing: string[] = [];
  for (const f of packedFiles.filter((p) => p.endsWith('.js'))) {
    for (const spec of relativeImports(fs.readFileSync(path.join(copy, f), 'utf8'))) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(f), spec));
      if (!packedFiles.includes(target)) missing.push(`${f} -> ${spec}`);
    }
  }
  t.same(missing, [], 'every relative import of a shipped file is shipped');
  // a shipped module without a source would be stale output of a deleted file
  const orphans = packedFiles
    .filter((f) => f.startsWith('dist/') && f.endsWith('.js'))
    .filter((f) => !fs.existsSync(path.join(copy, f.replace(/^dist\//, '').replace(/\.js$/, '.ts'))));
  t.same(orphans, [], 'every shipped module comes from a source file');
});

t.test('the tarball installs into an empty prefix and its memshard bin serves', { timeout: 180_000 }, async (t) => {
  if (tarball === '') {
    t.fail('no tarball (the pack test failed)');
    return;
  }
  const prefix = path.join(tmp, 'prefix');
  fs.mkdirSync(prefix);
  // a package.json of its own, so that npm installs here and not in an enclosing project
  fs.writeFileSync(path.join(prefix, 'package.json'), JSON.stringify({ name: 'memshard-install-test', private: true }));
  run('npm', ['install', '--prefix', prefix, tarball, '--no-audit', '--no-fund', '--loglevel', 'error'], { cwd: prefix, timeoutMs: 150_000 });
  const bin = path.join(prefix, 'node_modules', '.bin', 'memshard');
  t.ok(fs.existsSync(bin), 'node_modules/.bin/memshard');
  const installed = fs.readdirSync(path.join(prefix, 'node_modules')).filter((n) => !n.startsWith('.'));
  for (const dev of ['typescript', 'tap', 'memjs', '@types']) t.notOk(installed.includes(dev), `no devDependency ${dev}`);

  // `npx memshard` finds the installed bin (--no: never download anything). In a process group of
  // its own, so that a time-out stops npx and whatever it started.
  const npx = spawn(...bare('npx', ['--no', '--', 'memshard', '-V']), { cwd: prefix, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let v = '';
  npx.stdout.on('data', (d: Buffer) => (v += d.toString()));
  npx.stderr.on('data', (d: Buffer) => (v += d.toString()));
  const npxExit = new Promise<number | null>((resolve) => npx.once('exit', (code) => resolve(code)));
  const npxCode = await Promise.race([npxExit, deadlineIn(30_000).then(() => 'timeout' as const)]);
  if (npxCode === 'timeout' && npx.pid !== undefined) process.kill(-npx.pid, 'SIGKILL');
  t.equal(npxCode, 0, 'npx memshard -V exits 0 within 30 s');
  t.match(v, /^memshard \d+\.\d+\.\d+ \(memcached 1\.6\.\d+ compatible\)/, `npx memshard -V: ${v.trim()}`);

  const port = await freePort();
  let metricsPort = await freePort();
  while (metricsPort === port) metricsPort = await freePort();
  const server = startProcess(bin, ['-p', String(port), '-l', '127.0.0.1', '--metrics-port', String(metricsPort), '-m', '16', '-t', '1'], prefix);
  started.push(server);
  let line = '';
  const deadline = Date.now() + 15_000;
  while (line === '' && Date.now() < deadline && server.child.exitCode === null) {
    line = await probeVersion(port, 1000).catch(() => '');
    if (line === '') await sleep(100);
  }
  t.match(line, /^VERSION 1\.6\.\d+$/, `the installed bin answers version: ${line || server.output()}`);
  // /metrics opens after the memcached port does: a first scrape may find it not yet listening
  let metrics = { status: 0, body: '' };
  while (metrics.status !== 200 && Date.now() < deadline && server.child.exitCode === null) {
    metrics = await httpGet(`http://127.0.0.1:${metricsPort}/metrics`).catch((e: Error) => ({ status: 0, body: e.message }));
    if (metrics.status !== 200) await sleep(100);
  }
  t.equal(metrics.status, 200, `GET /metrics: ${metrics.status === 200 ? '' : metrics.body || server.output()}`);
  t.match(metrics.body, /^memcached_up 1$/m, 'memcached_up 1');
  // the dashboard's page and script come with the package (dist/lib/dashboard), uPlot from its
  // `uplot` dependency: nothing is fetched from anywhere else
  for (const asset of ['/', '/dashboard.js', '/uplot.js', '/uplot.css', '/api/snapshot']) {
    const r = await httpGet(`http://127.0.0.1:${metricsPort}${asset}`).catch((e: Error) => ({ status: 0, body: e.message }));
    t.equal(r.status, 200, `GET ${asset} from the installed package${r.status === 200 ? '' : `: ${r.body}`}`);
  }

  t.ok(server.child.pid !== undefined && process.kill(server.child.pid, 'SIGTERM'), 'SIGTERM by PID');
  const status = await Promise.race([server.exited, deadlineIn(10_000).then(() => null)]);
  t.same(status, { code: 0, signal: null }, 'exits 0 on SIGTERM');
});
