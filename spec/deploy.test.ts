/**
 * The deployment files, checked without a Docker engine or a Kubernetes cluster (none on these
 * machines; README "Running a cluster" says what was and was not run):
 * - Dockerfile: parsed; its build stage and runtime stage replayed in temporary directories laid
 *   out like the image (COPY as Docker copies, RUN with sh, `npm ci` from the npm registry, an
 *   empty npm cache for the runtime stage as in a fresh image), then the image's ENTRYPOINT + CMD
 *   (as the image's `node` user when run as root) answers `version`, its HEALTHCHECK passes and
 *   its STOPSIGNAL stops it with exit 0. deploy/twemproxy/Dockerfile: its COPY sources exist.
 * - docker-compose.yml: `docker-compose config -q` (Debian's docker-compose; skipped with a message
 *   when absent, .ci/run installs it), the nodes' --cluster-nodes, the twemproxy pool and the
 *   Prometheus targets name the same three nodes, and a node's command line runs.
 * - Prometheus configs: `promtool check config` (Debian's promtool has no kubernetes_sd, so the
 *   Kubernetes one is checked by structure), labels the Grafana memcached mixin selects on.
 * - deploy/kubernetes: every manifest validated against the Kubernetes OpenAPI schemas of the npm
 *   package kubernetes-models (its ajv validators: types, required fields, enums; unknown fields
 *   are not caught), installed with yaml into a temporary prefix; then the fields that matter:
 *   headless Service and StatefulSet agree, --cluster-dns names the Service, memory follows -m
 *   and README's overhead, probes, graceful SIGTERM, scrape annotations, non-root; and the
 *   StatefulSet's memshard arguments run.
 * - scripts/cluster.ts (`npm run cluster`): three nodes and (when installed) twemproxy come up,
 *   every endpoint it prints answers, SIGTERM stops them all.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import t from 'tap';
import { freePort, httpGet, probeVersion, repoRoot } from './helpers/daemon.js';

const CLUSTER_SCRIPT = fileURLToPath(new URL('../scripts/cluster.js', import.meta.url));
const CLI = fileURLToPath(new URL('../lib/cli.js', import.meta.url));
const DOCKER_COMPOSE = process.env['DOCKER_COMPOSE_BIN'] ?? '/usr/bin/docker-compose';
const PROMTOOL = process.env['PROMTOOL_BIN'] ?? '/usr/bin/promtool';
const NUTCRACKER = process.env['NUTCRACKER'] ?? '/usr/sbin/nutcracker';
const K8S_MODELS = 'kubernetes-models@5.1.0';
const YAML = 'yaml@2.9.1';

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
const here = (...p: string[]) => path.join(repoRoot, ...p);
// The Dockerfile replay installs the devDependencies (~20-40 s): more than tap's default per file.
t.setTimeout(480_000);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'memshard-deploy-'));
fs.chmodSync(tmp, 0o755); // the image's `node` user runs from here

// ---------------------------------------------------------------------------------------------
// processes: every one started here is stopped by its PID (SIGKILL at the end at the latest)

interface Started {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => string;
}
const started: Started[] = [];

function startProcess(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Started {
  const child = spawn(...bare(cmd, args), { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-262144)));
  child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-262144)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: null, signal: null }));
  });
  const s = { child, exited, output: () => out };
  started.push(s);
  return s;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Send a signal to a process we started, by PID; resolve with its exit status, or null after timeoutMs. */
async function stopProcess(s: Started, signal: NodeJS.Signals, timeoutMs: number) {
  if (s.child.exitCode === null && s.child.signalCode === null && s.child.pid !== undefined) process.kill(s.child.pid, signal);
  return Promise.race([s.exited, deadlineIn(timeoutMs).then(() => null)]);
}

const extraPids: number[] = []; // children of a process we started (cluster.ts's nodes)
const extraDirs: string[] = []; // cluster.ts's temporary directory, should it be killed before it cleans up
t.teardown(async () => {
  for (const s of started) if (s.child.exitCode === null && s.child.signalCode === null) await stopProcess(s, 'SIGKILL', 3000);
  for (const pid of extraPids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  for (const dir of extraDirs) fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A command to its end, within timeoutMs; throws with its output when it fails. */
function run(cmd: string, args: string[], opts: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv }): string {
  const r = spawnSync(...bare(cmd, args), { cwd: opts.cwd, env: opts.env ?? process.env, encoding: 'utf8', timeout: opts.timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  if (r.error !== undefined || r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} (in ${opts.cwd}) failed: ${r.error?.message ?? `exit ${r.status} ${r.signal ?? ''}`}\n${r.stdout}\n${r.stderr}`);
  }
  return r.stdout + r.stderr;
}

/** One request, the reply up to `until`, within timeoutMs. */
function ask(port: number, request: string, until: RegExp, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const timer = setTimeout(() => done(new Error(`no complete reply on ${port} within ${timeoutMs} ms: ${JSON.stringify(buf)}`)), timeoutMs);
    const done = (e: Error | null) => {
      clearTimeout(timer);
      sock.destroy();
      if (e) reject(e);
      else resolve(buf);
    };
    sock.on('connect', () => sock.write(request));
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (until.test(buf)) done(null);
    });
    sock.on('error', (e) => done(e));
    sock.on('close', () => done(until.test(buf) ? null : new Error(`closed on ${port}: ${JSON.stringify(buf)}`)));
  });
}

async function waitVersion(port: number, s: Started, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && s.child.exitCode === null && s.child.signalCode === null) {
    const line = await probeVersion(port, 1000).catch(() => '');
    if (line !== '') return line;
    await sleep(100);
  }
  return '';
}

/** Replace `-p <n>` (or add it) and add --metrics-port: the tests cannot take 11211 or 9150. */
function onPorts(args: string[], port: number, metricsPort: number): string[] {
  const out = [...args];
  const i = out.indexOf('-p');
  if (i >= 0) out.splice(i, 2, '-p', String(port));
  else out.push('-p', String(port));
  return [...out, '-l', '127.0.0.1', '--metrics-port', String(metricsPort)];
}

// ---------------------------------------------------------------------------------------------
// yaml and kubernetes-models from the npm registry, into a temporary prefix

interface YamlModule {
  parse(text: string, options?: { merge?: boolean }): unknown;
  parseAllDocuments(text: string): { toJS(): unknown; errors: unknown[] }[];
}
let yamlModule: YamlModule | null = null;
let depsPrefix = '';
let depsError = '';

async function deps(): Promise<YamlModule> {
  if (yamlModule !== null) return yamlModule;
  if (depsError !== '') throw new Error(depsError);
  try {
    depsPrefix = path.join(tmp, 'deps');
    fs.mkdirSync(depsPrefix);
    fs.writeFileSync(path.join(depsPrefix, 'package.json'), JSON.stringify({ name: 'memshard-deploy-test-deps', private: true }));
    run('npm', ['install', '--prefix', depsPrefix, '--no-audit', '--no-fund', '--no-save', '--loglevel', 'error', K8S_MODELS, YAML], { cwd: depsPrefix, timeoutMs: 120_000 });
    const mod = (await import(pathToFileURL(path.join(depsPrefix, 'node_modules', 'yaml', 'dist', 'index.js')).href)) as YamlModule & { default?: YamlModule };
    yamlModule = typeof mod.parseAllDocuments === 'function' ? mod : mod.default!;
    return yamlModule;
  } catch (e) {
    depsError = `could not install ${K8S_MODELS} and ${YAML} from the npm registry: ${(e as Error).message}`;
    throw new Error(depsError);
  }
}

/** The kubernetes-models class for an apiVersion/kind: its validate() throws on a schema error. */
async function k8sModel(apiVersion: string, kind: string): Promise<new (o: unknown) => { validate(): void }> {
  const file = path.join(depsPrefix, 'node_modules', 'kubernetes-models', ...apiVersion.split('/'), `${kind}.js`);
  if (!fs.existsSync(file)) throw new Error(`kubernetes-models has no ${apiVersion} ${kind}`);
  const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  return (mod[kind] ?? mod['default']) as new (o: unknown) => { validate(): void };
}

// ---------------------------------------------------------------------------------------------
// a Dockerfile, as much of it as these files use

interface Instruction {
  op: string;
  args: string;
  line: number;
}
interface Stage {
  from: string;
  name: string;
  steps: Instruction[];
}

function parseDockerfile(text: string): Stage[] {
  const instructions: Instruction[] = [];
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (pending === '' && (line.trim() === '' || line.trim().startsWith('#'))) return;
    if (pending !== '' && line.trim().startsWith('#')) return; // comment inside a continuation
    if (pending === '') startLine = i + 1;
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      return;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^(\S+)\s*(.*)$/.exec(full)!;
    instructions.push({ op: m[1]!.toUpperCase(), args: m[2]!, line: startLine });
  });
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)!;
      stages.push({ from: m[1]!, name: m[2] ?? String(stages.length), steps: [] });
    } else {
      if (stages.length === 0) throw new Error(`line ${ins.line}: ${ins.op} before FROM`);
      stages[stages.length - 1]!.steps.push(ins);
    }
  }
  return stages;
}

/** `["a", "b"]` (exec form) or a shell-form string. */
function execForm(args: string): string[] | null {
  const s = args.trim();
  if (!s.startsWith('[')) return null;
  return JSON.parse(s) as string[];
}

/** COPY's flags and its sources and destination. */
function copyArgs(args: string): { from: string | null; sources: string[]; dest: string } {
  const parts = execForm(args) ?? args.trim().split(/\s+/);
  let from: string | null = null;
  const rest = parts.filter((p) => {
    const m = /^--from=(.+)$/.exec(p);
    if (m) from = m[1]!;
    return !p.startsWith('--');
  });
  return { from, sources: rest.slice(0, -1), dest: rest[rest.length - 1]! };
}

/** Docker's COPY: a directory's contents go into dest; files into dest/ when dest ends in / or there are several. */
function dockerCopy(source: string, dest: string, severalSources: boolean): void {
  if (fs.statSync(source).isDirectory()) {
    fs.mkdirSync(dest, { recursive: true });
    fs.cpSync(source, dest, { recursive: true, dereference: true });
  } else {
    const target = dest.endsWith('/') || severalSources ? path.join(dest, path.basename(source)) : dest;
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(source, target);
  }
}

interface Replayed {
  root: string;
  workdir: string;
  env: NodeJS.ProcessEnv;
  user: string | null;
  entrypoint: string[];
  cmd: string[];
  healthcheck: string[] | null;
  stopsignal: string | null;
  expose: string[];
}

/**
 * Run a stage's steps in root (the image's / is root): WORKDIR, ENV, COPY (from the context or an
 * earlier replayed stage), RUN with sh -c in the working directory, as root (RUN steps here come
 * before USER); the rest is recorded.
 */
function replayStage(stage: Stage, context: string, root: string, earlier: Map<string, Replayed>, extraEnv: NodeJS.ProcessEnv, log: (s: string) => void): Replayed {
  const r: Replayed = { root, workdir: root, env: {}, user: null, entrypoint: [], cmd: [], healthcheck: null, stopsignal: null, expose: [] };
  fs.mkdirSync(root, { recursive: true });
  const inImage = (p: string, base: string) => (path.isAbsolute(p) ? path.join(root, p) : path.join(base, p)) + (p.endsWith('/') ? '/' : '');
  for (const step of stage.steps) {
    switch (step.op) {
      case 'WORKDIR':
        r.workdir = inImage(step.args.trim(), r.workdir);
        fs.mkdirSync(r.workdir, { recursive: true });
        break;
      case 'ENV': {
        for (const m of step.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) r.env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
        break;
      }
      case 'COPY': {
        const { from, sources, dest } = copyArgs(step.args);
        const target = inImage(dest, r.workdir);
        for (const src of sources) {
          let source: string;
          if (from !== null) {
            const prev = earlier.get(from);
            if (prev === undefined) throw new Error(`line ${step.line}: COPY --from=${from}: no such stage`);
            source = path.join(prev.root, src);
          } else source = path.join(context, src);
          if (!fs.existsSync(source)) throw new Error(`line ${step.line}: COPY source ${src} does not exist (${source})`);
          dockerCopy(source, target, sources.length > 1);
        }
        break;
      }
      case 'RUN': {
        if (r.user !== null) throw new Error(`line ${step.line}: RUN after USER is not replayed`);
        const t0 = Date.now();
        run('sh', ['-c', step.args], { cwd: r.workdir, timeoutMs: 240_000, env: { ...process.env, ...r.env, ...extraEnv } });
        log(`RUN ${step.args} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
        break;
      }
      case 'USER':
        r.user = step.args.trim();
        break;
      case 'ENTRYPOINT':
        r.entrypoint = execForm(step.args) ?? ['/bin/sh', '-c', step.args];
        break;
      case 'CMD':
        r.cmd = execForm(step.args) ?? ['/bin/sh', '-c', step.args];
        break;
      case 'HEALTHCHECK': {
        const m = /\bCMD\s+(.*)$/.exec(step.args);
        r.healthcheck = m ? execForm(m[1]!) ?? ['/bin/sh', '-c', m[1]!] : null;
        break;
      }
      case 'STOPSIGNAL':
        r.stopsignal = step.args.trim();
        break;
      case 'EXPOSE':
        r.expose.push(...step.args.trim().split(/\s+/));
        break;
      default:
        break; // ARG, LABEL...: nothing to replay
    }
  }
  return r;
}

/** The image's absolute paths, rewritten into the replayed root. */
const intoRoot = (argv: string[], root: string) => argv.map((a) => (a.startsWith('/app/') ? path.join(root, a) : a));

/** uid/gid of the official Node.js image's `node` user. */
const NODE_USER = { uid: 1000, gid: 1000 };
const SETPRIV = ['/usr/bin/setpriv', `--reuid=${NODE_USER.uid}`, `--regid=${NODE_USER.gid}`, '--clear-groups'];
/** Run as the image's user when we are root and that user can run this node binary (CI's Node 24 sits in a 0700 temp dir). */
const canDropToImageUser = (() => {
  if (process.getuid?.() !== 0 || !fs.existsSync(SETPRIV[0]!)) return false;
  return spawnSync(...bare(SETPRIV[0]!, [...SETPRIV.slice(1), process.execPath, '-e', '0']), { timeout: 10_000 }).status === 0;
})();
const asImageUser = (argv: string[]): string[] => (canDropToImageUser ? [...SETPRIV, ...argv] : argv);

// ---------------------------------------------------------------------------------------------

t.test('Dockerfile: a lean two-stage image, replayed step by step', { timeout: 360_000 }, async (t) => {
  const stages = parseDockerfile(fs.readFileSync(here('Dockerfile'), 'utf8'));
  t.ok(stages.length >= 2, `${stages.length} stages`);
  const runtime = stages[stages.length - 1]!;
  const build = stages.find((s) => runtime.steps.some((st) => st.op === 'COPY' && copyArgs(st.args).from === s.name));
  t.ok(build !== undefined, 'the runtime stage copies from a build stage');
  if (build === undefined) return;
  t.match(runtime.from, /^node:(2[4-9]|[3-9]\d)[-.\w]*slim/, `runtime base ${runtime.from}: a slim Node.js 24+ image`);
  const ops = (s: Stage, op: string) => s.steps.filter((st) => st.op === op).map((st) => st.args);
  t.ok(ops(build, 'RUN').some((a) => /\bnpm ci\b/.test(a)) && ops(build, 'RUN').some((a) => /\bnpm run build\b/.test(a)), 'build stage: npm ci, npm run build');
  t.ok(ops(runtime, 'RUN').some((a) => /\bnpm ci\b.*--omit=dev/.test(a) && /--ignore-scripts/.test(a)), 'runtime stage: npm ci --omit=dev --ignore-scripts');
  const runtimeSources = runtime.steps.filter((s) => s.op === 'COPY' && copyArgs(s.args).from === null).flatMap((s) => copyArgs(s.args).sources);
  t.same(runtimeSources.filter((s) => /^(lib|workers|spec|scripts|tsconfig)/.test(s)), [], `runtime stage copies no sources from the context (${runtimeSources.join(', ')})`);
  const user = ops(runtime, 'USER').pop();
  t.ok(user !== undefined && !/^(root|0)(:|$)/.test(user), `runs as ${user}, not root`);
  const exposed = ops(runtime, 'EXPOSE').join(' ').split(/\s+/);
  t.ok(exposed.includes('11211') && exposed.includes('9150'), `EXPOSE ${exposed.join(' ')}`);
  t.equal(ops(runtime, 'STOPSIGNAL').pop(), 'SIGTERM', 'STOPSIGNAL SIGTERM');
  t.ok(ops(runtime, 'HEALTHCHECK').length === 1, 'a HEALTHCHECK');

  // .dockerignore must not hide what the image copies from the context
  const ignored = fs.existsSync(here('.dockerignore'))
    ? fs.readFileSync(here('.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
    : [];
  const contextSources = stages.flatMap((s) => s.steps.filter((st) => st.op === 'COPY' && copyArgs(st.args).from === null).flatMap((st) => copyArgs(st.args).sources));
  const hidden = contextSources.filter((src) => ignored.some((pat) => src === pat || src.startsWith(pat.replace(/\/$/, '') + '/')));
  t.same(hidden, [], '.dockerignore hides none of the COPY sources');

  // replay: the build stage with the machine's npm cache, the runtime stage with an empty one (a
  // fresh image has none, and its `npm cache clean --force` must not empty this machine's)
  const replayed = new Map<string, Replayed>();
  const log = (s: string) => t.comment(s);
  for (const stage of stages) {
    const extraEnv = stage === runtime ? { npm_config_cache: path.join(tmp, 'runtime-npm-cache') } : {};
    let r: Replayed;
    try {
      r = replayStage(stage, repoRoot, path.join(tmp, `stage-${stage.name}`), replayed, extraEnv, log);
    } catch (e) {
      t.fail(`stage ${stage.name}: ${(e as Error).message}`);
      return;
    }
    replayed.set(stage.name, r);
  }
  const image = replayed.get(runtime.name)!;
  t.ok(fs.existsSync(path.join(image.workdir, 'dist', 'lib', 'cli.js')), 'image: dist/lib/cli.js');
  t.ok(fs.existsSync(path.join(image.workdir, 'dist', 'workers', 'serve.js')), 'image: dist/workers/serve.js');
  const modules = fs.readdirSync(path.join(image.workdir, 'node_modules'));
  for (const dev of ['typescript', 'tap', '@types', 'memjs']) t.notOk(modules.includes(dev), `image: no devDependency ${dev}`);
  for (const dep of ['piscina', 'prom-client', 'yargs']) t.ok(modules.includes(dep), `image: dependency ${dep}`);
  t.notOk(fs.existsSync(path.join(image.workdir, 'lib')) || fs.existsSync(path.join(image.workdir, 'spec')), 'image: no sources or tests');

  // the container: ENTRYPOINT + CMD on free ports, as the image's user
  const port = await freePort();
  const metricsPort = await freePort();
  const argv = asImageUser([...image.entrypoint, ...onPorts(image.cmd, port, metricsPort)]);
  const node = startProcess(argv[0] === 'node' ? process.execPath : argv[0]!, argv.slice(1).map((a) => (a === 'node' ? process.execPath : a)), { cwd: image.workdir, env: { ...process.env, ...image.env } });
  const version = await waitVersion(port, node);
  t.match(version, /^VERSION 1\.6\.\d+$/, `the image's command answers version (${argv.join(' ')})${version === '' ? `\n${node.output()}` : ''}`);
  const metrics = await httpGet(`http://127.0.0.1:${metricsPort}/metrics`).catch((e: Error) => ({ status: 0, body: e.message }));
  t.equal(metrics.status, 200, 'its /metrics answers');

  t.ok(image.healthcheck !== null, 'HEALTHCHECK CMD');
  if (image.healthcheck !== null) {
    const hc = intoRoot(image.healthcheck, image.root).map((a) => (a === 'node' ? process.execPath : a));
    const ok = spawnSync(...bare(hc[0]!, hc.slice(1)), { cwd: image.workdir, env: { ...process.env, ...image.env, MEMSHARD_PORT: String(port) }, encoding: 'utf8', timeout: 10_000 });
    t.equal(ok.status, 0, `the HEALTHCHECK passes against it ${ok.stderr}`);
    const closed = await freePort();
    const bad = spawnSync(...bare(hc[0]!, hc.slice(1)), { cwd: image.workdir, env: { ...process.env, ...image.env, MEMSHARD_PORT: String(closed) }, encoding: 'utf8', timeout: 10_000 });
    t.equal(bad.status, 1, `and fails against a closed port (${bad.stderr.trim()})`);
  }
  const status = await stopProcess(node, (image.stopsignal ?? 'SIGTERM') as NodeJS.Signals, 10_000);
  t.same(status, { code: 0, signal: null }, `${image.stopsignal} stops it with exit 0`);

  // docker-compose.yml's node command on the same image layout
  const yaml = await deps().catch((e: Error) => {
    t.fail(e.message);
    return null;
  });
  if (yaml === null) return;
  const compose = yaml.parse(fs.readFileSync(here('docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, { command?: string[] }> };
  const first = compose.services['memshard1']?.command;
  t.ok(Array.isArray(first), 'docker-compose.yml: memshard1 has a command');
  if (!Array.isArray(first)) return;
  const port2 = await freePort();
  const argv2 = asImageUser([...image.entrypoint, ...onPorts(first, port2, await freePort())]).map((a) => (a === 'node' ? process.execPath : a));
  const node2 = startProcess(argv2[0]!, argv2.slice(1), { cwd: image.workdir, env: { ...process.env, ...image.env } });
  t.match(await waitVersion(port2, node2), /^VERSION /, `memshard1's compose command runs in the image${node2.child.exitCode !== null ? `\n${node2.output()}` : ''}`);
  const config = await ask(port2, 'config get cluster\r\n', /END\r\n|ERROR\r\n/).catch((e: Error) => e.message);
  t.match(config, /^CONFIG cluster 0 \d+\r\n\d+\nmemshard1\|172\.28\.11\.11\|11211 memshard2\|172\.28\.11\.12\|11211 memshard3\|172\.28\.11\.13\|11211\n\r\nEND\r\n$/, 'and answers Auto Discovery with the three compose nodes');
  t.same(await stopProcess(node2, 'SIGTERM', 10_000), { code: 0, signal: null }, 'SIGTERM: exit 0');
});

t.test('deploy/twemproxy/Dockerfile: Debian nutcracker, its COPY sources exist', async (t) => {
  const context = here('deploy', 'twemproxy');
  const stages = parseDockerfile(fs.readFileSync(path.join(context, 'Dockerfile'), 'utf8'));
  t.equal(stages.length, 1, 'one stage');
  t.match(stages[0]!.from, /^debian:/, `FROM ${stages[0]!.from}`);
  t.ok(stages[0]!.steps.some((s) => s.op === 'RUN' && /apt-get install[^&]*\bnutcracker\b/.test(s.args)), 'installs the nutcracker package');
  for (const s of stages[0]!.steps.filter((st) => st.op === 'COPY')) {
    for (const src of copyArgs(s.args).sources) t.ok(fs.existsSync(path.join(context, src)), `COPY ${src} exists`);
  }
  const cmd = execForm(stages[0]!.steps.filter((s) => s.op === 'CMD').pop()?.args ?? '[]') ?? [];
  t.ok(cmd.includes('/etc/nutcracker/nutcracker.yml'), 'runs with the copied configuration');
});

t.test('docker-compose.yml', { timeout: 120_000 }, async (t) => {
  if (!fs.existsSync(DOCKER_COMPOSE)) {
    t.pass('docker-compose config -q', { skip: `${DOCKER_COMPOSE} not installed (Debian package docker-compose; .ci/run installs it): docker-compose config not run` });
  } else {
    const r = spawnSync(DOCKER_COMPOSE, ['-f', here('docker-compose.yml'), 'config', '-q'], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    t.equal(r.status, 0, `docker-compose config -q ${r.stderr}`);
  }
  const yaml = await deps().catch((e: Error) => {
    t.fail(e.message);
    return null;
  });
  if (yaml === null) return;
  interface Service {
    build?: string | { context: string };
    command?: string[];
    hostname?: string;
    networks?: Record<string, { ipv4_address?: string }> | string[];
    depends_on?: Record<string, unknown> | string[];
    volumes?: string[];
  }
  const compose = yaml.parse(fs.readFileSync(here('docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
  const nodes = Object.entries(compose.services).filter(([, s]) => s.command?.includes('--cluster-nodes'));
  t.equal(nodes.length, 3, `three memshard nodes (${nodes.map(([n]) => n).join(', ')})`);
  const expected = nodes
    .map(([name, s]) => {
      const nets = s.networks !== undefined && !Array.isArray(s.networks) ? Object.values(s.networks) : [];
      return `${s.hostname ?? name}|${nets[0]?.ipv4_address ?? ''}|11211`;
    })
    .sort();
  for (const [name, s] of nodes) {
    const list = s.command![s.command!.indexOf('--cluster-nodes') + 1]!.split(',').sort();
    t.same(list, expected, `${name}: --cluster-nodes lists every node with its address`);
    const build = typeof s.build === 'string' ? s.build : s.build?.context;
    t.equal(build, '.', `${name}: built from the repository's Dockerfile`);
  }
  for (const [name, s] of Object.entries(compose.services)) {
    const build = typeof s.build === 'string' ? s.build : s.build?.context;
    if (build !== undefined) t.ok(fs.existsSync(path.join(repoRoot, build, 'Dockerfile')), `${name}: ${build}/Dockerfile exists`);
    for (const v of s.volumes ?? []) {
      const hostPath = v.split(':')[0]!;
      if (hostPath.startsWith('.')) t.ok(fs.existsSync(path.join(repoRoot, hostPath)), `${name}: volume source ${hostPath} exists`);
    }
  }
  const proxy = compose.services['proxy'];
  const deps2 = proxy?.depends_on === undefined ? [] : Array.isArray(proxy.depends_on) ? proxy.depends_on : Object.keys(proxy.depends_on);
  t.same([...deps2].sort(), nodes.map(([n]) => n).sort(), 'the proxy waits for the three nodes');

  // twemproxy's pool and Prometheus' targets name the same nodes
  const pool = yaml.parse(fs.readFileSync(here('deploy', 'twemproxy', 'nutcracker.yml'), 'utf8')) as Record<string, { servers: string[]; distribution: string; auto_eject_hosts: boolean; listen: string }>;
  const [poolName, p] = Object.entries(pool)[0]!;
  t.same(p.servers.map((s) => s.split(':')[0]).sort(), nodes.map(([n]) => n).sort(), `twemproxy pool ${poolName}: the three nodes`);
  t.equal(p.distribution, 'ketama', 'ketama');
  t.equal(p.auto_eject_hosts, true, 'auto_eject_hosts');
  t.match(p.listen, /:22121$/, 'listens on 22121');
  if (fs.existsSync(NUTCRACKER)) {
    const r = spawnSync(NUTCRACKER, ['--test-conf', '--conf-file', here('deploy', 'twemproxy', 'nutcracker.yml')], { encoding: 'utf8', timeout: 10_000 });
    t.equal(r.status, 0, `nutcracker --test-conf: ${(r.stdout + r.stderr).trim()}`);
  } else t.comment(`${NUTCRACKER} not installed: nutcracker --test-conf not run`);

  const prom = yaml.parse(fs.readFileSync(here('deploy', 'prometheus', 'prometheus.yml'), 'utf8')) as {
    scrape_configs: { job_name: string; static_configs: { targets: string[]; labels?: Record<string, string> }[] }[];
  };
  const statics = prom.scrape_configs.flatMap((j) => j.static_configs ?? []);
  t.same(statics.flatMap((s) => s.targets).sort(), nodes.map(([n]) => `${n}:9150`).sort(), 'Prometheus scrapes every node on 9150');
  t.ok(statics.every((s) => s.labels?.['cluster'] && s.labels['namespace']), 'with cluster and namespace labels (the memcached mixin selects on them)');
  if (fs.existsSync(PROMTOOL)) {
    const r = spawnSync(PROMTOOL, ['check', 'config', here('deploy', 'prometheus', 'prometheus.yml')], { encoding: 'utf8', timeout: 20_000 });
    t.equal(r.status, 0, `promtool check config: ${(r.stdout + r.stderr).trim()}`);
  } else t.comment(`${PROMTOOL} not installed: promtool check config not run`);

  const k8sProm = yaml.parse(fs.readFileSync(here('deploy', 'prometheus', 'kubernetes.yml'), 'utf8')) as {
    scrape_configs: { kubernetes_sd_configs?: { role: string }[]; relabel_configs?: { target_label?: string; source_labels?: string[] }[] }[];
  };
  const job = k8sProm.scrape_configs[0]!;
  t.equal(job.kubernetes_sd_configs?.[0]?.role, 'pod', 'Kubernetes: pod discovery');
  const targets = (job.relabel_configs ?? []).map((r) => r.target_label);
  for (const label of ['cluster', 'namespace', '__address__']) t.ok(targets.includes(label), `Kubernetes: relabels ${label}`);
  t.ok((job.relabel_configs ?? []).some((r) => r.source_labels?.includes('__meta_kubernetes_pod_annotation_prometheus_io_scrape')), 'Kubernetes: keeps pods annotated prometheus.io/scrape');
});

/** "384Mi" -> MiB. */
function mebibytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|M|G)?$/.exec(q);
  if (!m) throw new Error(`memory quantity ${q}`);
  const n = Number(m[1]);
  const unit = m[2] ?? '';
  return unit === 'Gi' ? n * 1024 : unit === 'Mi' ? n : unit === 'Ki' ? n / 1024 : unit === 'G' ? (n * 1e9) / 2 ** 20 : unit === 'M' ? (n * 1e6) / 2 ** 20 : n / 2 ** 20;
}

t.test('deploy/kubernetes: schema-valid manifests that fit memshard', { timeout: 120_000 }, async (t) => {
  const yaml = await deps().catch((e: Error) => {
    t.fail(e.message);
    return null;
  });
  if (yaml === null) return;
  const dir = here('deploy', 'kubernetes');
  const kustomization = yaml.parse(fs.readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
  const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml').sort();
  t.same([...kustomization.resources].sort(), files, 'kustomization.yaml lists every manifest');

  type Obj = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; spec: any }; // eslint-disable-line @typescript-eslint/no-explicit-any
  const objects: Obj[] = [];
  for (const f of files) {
    for (const doc of yaml.parseAllDocuments(fs.readFileSync(path.join(dir, f), 'utf8'))) {
      t.same(doc.errors, [], `${f}: YAML`);
      const o = doc.toJS() as Obj | null;
      if (o === null) continue;
      objects.push(o);
      try {
        const Model = await k8sModel(o.apiVersion, o.kind);
        new Model(o).validate();
        t.pass(`${f}: ${o.apiVersion} ${o.kind} ${o.metadata.name} is valid against the Kubernetes schema`);
      } catch (e) {
        t.fail(`${f}: ${o.apiVersion} ${o.kind}: ${(e as Error).message}`);
      }
    }
  }
  const sts = objects.find((o) => o.kind === 'StatefulSet');
  const svc = objects.find((o) => o.kind === 'Service');
  if (sts === undefined || svc === undefined) {
    t.fail('a StatefulSet and a Service');
    return;
  }
  t.equal(svc.spec.clusterIP, 'None', 'the Service is headless');
  t.equal(sts.spec.serviceName, svc.metadata.name, 'the StatefulSet names it');
  const podLabels = sts.spec.template.metadata.labels as Record<string, string>;
  for (const [k, v] of Object.entries(sts.spec.selector.matchLabels as Record<string, string>)) t.equal(podLabels[k], v, `selector ${k}=${v} matches the pods`);
  for (const [k, v] of Object.entries(svc.spec.selector as Record<string, string>)) t.equal(podLabels[k], v, `the Service selects the pods (${k})`);
  const pdb = objects.find((o) => o.kind === 'PodDisruptionBudget');
  if (pdb !== undefined) t.same(pdb.spec.selector.matchLabels, sts.spec.selector.matchLabels, 'the PodDisruptionBudget selects them too');

  const c = sts.spec.template.spec.containers[0];
  const args = c.args as string[];
  const flag = (name: string) => (args.indexOf(name) >= 0 ? args[args.indexOf(name) + 1] : undefined);
  const dnsName = flag('--cluster-dns');
  t.ok(dnsName !== undefined && (dnsName.split(':')[0] === svc.metadata.name || dnsName.startsWith(`${svc.metadata.name}.`)), `--cluster-dns ${dnsName} is the headless Service`);
  const port = Number(flag('-p') ?? 11211);
  const containerPorts = (c.ports as { containerPort: number; name: string }[]).map((p) => p.containerPort);
  t.ok(containerPorts.includes(port) && containerPorts.includes(9150), `container ports ${containerPorts.join(', ')}`);
  t.same(sts.spec.template.metadata.annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9150', 'prometheus.io/path': '/metrics' }, 'Prometheus scrape annotations');

  // memory: -m plus README "Memory" on Node 24 (the image's): hash index ~3% of -m, ~184 MB of
  // runtime for -t 4 after traffic (~128 + 14 per thread), ~20 MB transient while large values arrive
  const m = Number(flag('-m') ?? 64);
  const threads = Number(flag('-t') ?? 4);
  const steady = m * 1.03 + 128 + 14 * threads;
  const request = mebibytes(c.resources.requests.memory);
  const limit = mebibytes(c.resources.limits.memory);
  t.ok(request >= steady && request <= steady * 1.25, `memory request ${request} MiB covers -m ${m} -t ${threads} at rest (${steady.toFixed(0)} MiB) without much more`);
  t.ok(limit >= steady + 20 && limit <= (steady + 20) * 1.3, `memory limit ${limit} MiB covers the transient 20 MiB on top (${(steady + 20).toFixed(0)} MiB)`);
  t.ok(c.resources.requests.cpu !== undefined, 'a CPU request');

  for (const probe of ['readinessProbe', 'livenessProbe']) {
    const p = c[probe];
    t.ok(p !== undefined, probe);
    if (p === undefined) continue;
    const target = p.tcpSocket?.port ?? null;
    t.ok(target === port || target === 'memcache' || p.exec !== undefined, `${probe} checks the memcached port (${JSON.stringify(p.tcpSocket ?? p.exec)})`);
  }
  const grace = sts.spec.template.spec.terminationGracePeriodSeconds as number;
  t.ok(grace >= 10, `terminationGracePeriodSeconds ${grace}`);
  const preStop = c.lifecycle?.preStop?.exec?.command as string[] | undefined;
  if (preStop !== undefined) t.ok(preStop[0] === 'sleep' && Number(preStop[1]) < grace - 5, `preStop ${preStop.join(' ')} leaves time for SIGTERM`);
  const sec = { ...sts.spec.template.spec.securityContext, ...c.securityContext };
  t.equal(sec.runAsNonRoot, true, 'runAsNonRoot');
  t.equal(sec.runAsUser, NODE_USER.uid, "the image's node user");
  t.equal(sec.allowPrivilegeEscalation, false, 'no privilege escalation');

  // the container's arguments run (on free ports, smaller): --cluster-dns <name>:<port> resolves
  const local = await freePort();
  const small = args.map((a, i) => (args[i - 1] === '-m' ? '32' : args[i - 1] === '-t' ? '2' : args[i - 1] === '--cluster-dns' ? `localhost:${local}` : a));
  const node = startProcess(process.execPath, [CLI, ...onPorts(small, local, await freePort())], { cwd: tmp });
  t.match(await waitVersion(local, node), /^VERSION /, `memshard runs with the StatefulSet's arguments${node.child.exitCode !== null ? `\n${node.output()}` : ''}`);
  const config = await ask(local, 'config get cluster\r\n', /END\r\n|ERROR\r\n/).catch((e: Error) => e.message);
  t.match(config, new RegExp(`^CONFIG cluster 0 \\d+\\r\\n\\d+\\n.*\\|127\\.0\\.0\\.1\\|${local}\\b`), '--cluster-dns lists what the name resolves to');
  t.same(await stopProcess(node, 'SIGTERM', 10_000), { code: 0, signal: null }, 'SIGTERM: exit 0');
});

t.test('npm run cluster: three nodes and the proxy, every printed endpoint answers, SIGTERM stops all', { timeout: 90_000 }, async (t) => {
  const script = startProcess(process.execPath, [CLUSTER_SCRIPT, '--free-ports', '--json'], { cwd: repoRoot });
  const deadline = Date.now() + 45_000;
  interface Endpoints {
    nodes: { port: number; metrics: string; pid: number }[];
    proxy: { port: number; stats: number; pid: number } | null;
    discovery: { port: number };
    tmp: string;
  }
  let endpoints = null as Endpoints | null;
  while (endpoints === null && Date.now() < deadline && script.child.exitCode === null) {
    const line = script.output().split('\n').find((l) => l.startsWith('{"nodes"'));
    if (line !== undefined) endpoints = JSON.parse(line) as Endpoints;
    else await sleep(100);
  }
  if (endpoints === null) {
    t.fail(`cluster.ts printed no endpoints within 45 s:\n${script.output()}`);
    return;
  }
  extraPids.push(...endpoints.nodes.map((n) => n.pid), ...(endpoints.proxy ? [endpoints.proxy.pid] : []));
  if (endpoints.tmp.includes('memshard-cluster-')) extraDirs.push(endpoints.tmp);
  t.match(script.output(), /node1 +127\.0\.0\.1:\d+ +metrics http:\/\/127\.0\.0\.1:\d+\/metrics/, 'prints the endpoints');
  t.equal(endpoints.nodes.length, 3, 'three nodes');
  const ports = endpoints.nodes.map((n) => n.port);
  for (const n of endpoints.nodes) {
    t.match(await probeVersion(n.port, 2000).catch((e: Error) => e.message), /^VERSION /, `node on ${n.port} answers version`);
    const config = await ask(n.port, 'config get cluster\r\n', /END\r\n|ERROR\r\n/).catch((e: Error) => e.message);
    const line = /^CONFIG cluster 0 \d+\r\n\d+\n([^\n]*)\n\r\nEND\r\n$/.exec(config)?.[1] ?? config;
    t.same(line.split(' ').map((e) => Number(e.split('|')[2])).sort(), [...ports].sort(), `node on ${n.port}: config get cluster lists all three`);
    const metrics = await httpGet(n.metrics).catch((e: Error) => ({ status: 0, body: e.message }));
    t.ok(metrics.status === 200 && /^memcached_up 1$/m.test(metrics.body), `${n.metrics} answers`);
  }
  t.equal(endpoints.discovery.port, ports[0], 'the discovery endpoint is a node');
  if (endpoints.proxy === null) {
    t.ok(!fs.existsSync(NUTCRACKER), `no proxy, and no ${NUTCRACKER} either`);
    t.comment('nutcracker not installed: the proxy part was not run');
  } else {
    const p = endpoints.proxy.port;
    t.equal(await ask(p, 'set cluster-test-key 0 0 5\r\nhello\r\n', /\r\n/), 'STORED\r\n', 'set through twemproxy');
    t.equal(await ask(p, 'get cluster-test-key\r\n', /END\r\n/), 'VALUE cluster-test-key 0 5\r\nhello\r\nEND\r\n', 'get through twemproxy');
    const holders = [];
    for (const port of ports) if ((await ask(port, 'get cluster-test-key\r\n', /END\r\n/)).startsWith('VALUE')) holders.push(port);
    t.equal(holders.length, 1, `the key lives on exactly one node (${holders.join(', ')})`);
    const stats = await ask(endpoints.proxy.stats, '', /\}\s*$/, 3000).catch((e: Error) => e.message);
    t.match(stats, /"service":\s*"nutcracker"/, 'twemproxy stats answer');
  }

  const status = await stopProcess(script, 'SIGTERM', 15_000);
  t.same(status, { code: 0, signal: null }, 'SIGTERM: cluster.ts exits 0');
  await sleep(200);
  const left = [...endpoints.nodes.map((n) => n.pid), ...(endpoints.proxy ? [endpoints.proxy.pid] : [])].filter(alive);
  t.same(left, [], 'and every process it started is gone');
  t.notOk(fs.existsSync(endpoints.tmp), 'its temporary directory is removed');
});

