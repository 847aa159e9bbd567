// A three-node memshard cluster on this machine, for a first look without containers:
//
//   npm run cluster [-- --memory 64 --threads 2 --free-ports --no-proxy --verbose --json]
//
// Starts three memshard nodes on 127.0.0.1 (ports 11211-11213 and metrics 9151-9153 when they are
// all free, else ports the system picks; --free-ports always picks), each with --cluster-nodes
// listing all three so that any of them answers Auto Discovery (`config get cluster`), and
// twemproxy (Debian's `nutcracker`, ketama) in front on 22121 when it is installed ($NUTCRACKER
// names another binary). Prints the endpoints, then runs until Ctrl-C or SIGTERM, which stop
// every process it started (by PID) and remove its temporary directory. A node that dies is
// reported and not restarted: its keys are gone, the others keep serving (as with memcached).
// --json also prints the endpoints as one JSON line (spec/deploy.test.ts reads it).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const CLI = fileURLToPath(new URL('../lib/cli.js', import.meta.url));
const HOST = '127.0.0.1';
const NODES = 3;
const READY_MS = 15_000;
const STOP_GRACE_MS = 5_000;

interface Proc {
  name: string;
  child: ChildProcess;
  exited: Promise<void>;
  status: { code: number | null; signal: NodeJS.Signals | null } | null;
}

export interface ClusterEndpoints {
  nodes: { name: string; host: string; port: number; metrics: string; pid: number }[];
  proxy: { host: string; port: number; stats: number; pid: number; config: string } | null;
  discovery: { host: string; port: number; command: string };
  /** Why there is no proxy, when there is none. */
  proxyNote: string | null;
  /** The temporary directory (twemproxy's configuration and log), removed on stop. */
  tmp: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, HOST, () => srv.close(() => resolve(true)));
  });
}

/** n distinct ports the system considers free right now (all held open together, then closed). */
async function systemPorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<net.Server>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, HOST, () => resolve(srv));
    })),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

/** One request line, the reply up to `until` (or the connection's end), within timeoutMs. */
export function ask(port: number, request: string, until: RegExp, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: HOST, port });
    let buf = '';
    const timer = setTimeout(() => finish(new Error(`no complete reply from ${HOST}:${port} within ${timeoutMs} ms: ${JSON.stringify(buf)}`)), timeoutMs);
    const finish = (err: Error | null) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(buf);
    };
    sock.on('connect', () => sock.write(request));
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (until.test(buf)) finish(null);
    });
    sock.on('error', (e) => finish(e));
    sock.on('close', () => finish(until.test(buf) ? null : new Error(`connection to ${HOST}:${port} closed: ${JSON.stringify(buf)}`)));
  });
}

async function waitFor(what: string, proc: Proc, probe: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + READY_MS;
  let last = '';
  for (;;) {
    if (proc.status !== null) throw new Error(`${what} exited before it was ready (${JSON.stringify(proc.status)})`);
    try {
      await probe();
      return;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${READY_MS} ms: ${last}`);
    await sleep(100);
  }
}

function findNutcracker(): string | null {
  const given = process.env.NUTCRACKER;
  if (given !== undefined && given !== '') return given;
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = path.join(dir, 'nutcracker');
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

function start(name: string, cmd: string, args: string[], echo: boolean): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const proc: Proc = { name, child, status: null, exited: Promise.resolve() };
  proc.exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      proc.status = { code, signal };
      resolve();
    });
    child.once('error', (e) => {
      proc.status = { code: null, signal: null };
      process.stderr.write(`[${name}] could not start ${cmd}: ${e.message}\n`);
      resolve();
    });
  });
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    let partial = '';
    stream?.on('data', (d: string) => {
      if (!echo) return;
      const lines = (partial + d).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) process.stderr.write(`[${name}] ${line}\n`);
    });
  }
  return proc;
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      memory: { type: 'string', default: '64' },
      threads: { type: 'string', default: '2' },
      'free-ports': { type: 'boolean', default: false },
      'no-proxy': { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('npm run cluster -- [--memory MB] [--threads N] [--free-ports] [--no-proxy] [--verbose] [--json]\n');
    return;
  }
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);

  const fixed = [11211, 11212, 11213, 9151, 9152, 9153];
  const nutcracker = values['no-proxy'] ? null : findNutcracker();
  if (nutcracker !== null) fixed.push(22121, 22222);
  const useFixed = !values['free-ports'] && (await Promise.all(fixed.map(portFree))).every(Boolean);
  const ports = useFixed ? fixed : await systemPorts(fixed.length);
  const nodePorts = ports.slice(0, NODES);
  const metricsPorts = ports.slice(NODES, 2 * NODES);
  const [proxyPort, statsPort] = [ports[2 * NODES] ?? 0, ports[2 * NODES + 1] ?? 0];

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'memshard-cluster-'));
  const procs: Proc[] = [];
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    stopping = true;
    for (const p of procs) if (p.status === null) p.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const p of procs) if (p.status === null) p.child.kill('SIGKILL');
    }, STOP_GRACE_MS);
    await Promise.all(procs.map((p) => p.exited));
    clearTimeout(timer);
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    process.stderr.write(`\n${signal}: stopping the cluster\n`);
    void stopAll().then(() => process.exit(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const clusterNodes = nodePorts.map((p) => `localhost|${HOST}|${p}`).join(',');
    for (let i = 0; i < NODES; i++) {
      const args = [CLI, '-l', HOST, '-p', String(nodePorts[i]), '-m', values.memory, '-t', values.threads,
        '--metrics-port', String(metricsPorts[i]), '--cluster-nodes', clusterNodes];
      if (values.verbose) args.push('-v');
      procs.push(start(`node${i + 1}`, process.execPath, args, true));
    }
    await Promise.all(procs.map((p, i) => waitFor(`memshard node ${i + 1}`, p, () => ask(nodePorts[i]!, 'version\r\n', /\r\n/))));

    let proxy: ClusterEndpoints['proxy'] = null;
    let proxyNote: string | null = values['no-proxy'] ? 'left out (--no-proxy)' : null;
    if (nutcracker !== null) {
      const config = path.join(tmp, 'nutcracker.yml');
      // The pool of deploy/twemproxy/nutcracker.yml, on this machine's ports.
      fs.writeFileSync(config, [
        'memshard:',
        `  listen: ${HOST}:${proxyPort}`,
        '  hash: md5',
        '  distribution: ketama',
        '  timeout: 400',
        '  backlog: 1024',
        '  preconnect: true',
        '  auto_eject_hosts: true',
        '  server_retry_timeout: 2000',
        '  server_failure_limit: 3',
        '  servers:',
        ...nodePorts.map((p, i) => `    - ${HOST}:${p}:1 memshard${i + 1}`),
        '',
      ].join('\n'));
      const p = start('twemproxy', nutcracker, ['--conf-file', config, '--output', path.join(tmp, 'nutcracker.log'),
        '--stats-addr', HOST, '--stats-port', String(statsPort), '--stats-interval', '10000'], true);
      procs.push(p);
      // twemproxy has no `version`: a get of a key nobody sets answers END once a node is reached.
      await waitFor('twemproxy', p, () => ask(proxyPort, 'get memshard-cluster-probe\r\n', /END\r\n|ERROR/));
      proxy = { host: HOST, port: proxyPort, stats: statsPort, pid: p.child.pid ?? -1, config };
    } else if (proxyNote === null) {
      proxyNote = 'not started: nutcracker is not installed (Debian: apt-get install nutcracker)';
    }

    let discovery = '';
    try {
      discovery = await ask(nodePorts[0]!, 'config get cluster\r\n', /END\r\n|ERROR\r\n/);
    } catch (e) {
      discovery = (e as Error).message;
    }
    const endpoints: ClusterEndpoints = {
      nodes: nodePorts.map((port, i) => ({
        name: `node${i + 1}`, host: HOST, port, metrics: `http://${HOST}:${metricsPorts[i]}/metrics`, pid: procs[i]!.child.pid ?? -1,
      })),
      proxy,
      discovery: { host: HOST, port: nodePorts[0]!, command: 'config get cluster' },
      proxyNote,
      tmp,
    };

    const out: string[] = [`memshard cluster: ${NODES} nodes (-m ${values.memory} -t ${values.threads} each). Ctrl-C stops it.`];
    for (const n of endpoints.nodes) out.push(`  ${n.name}      ${n.host}:${n.port}   metrics ${n.metrics}   pid ${n.pid}`);
    if (proxy !== null) out.push(`  proxy      ${proxy.host}:${proxy.port}   twemproxy (ketama, auto_eject_hosts), stats: TCP ${proxy.host}:${proxy.stats}   pid ${proxy.pid}`);
    else out.push(`  proxy      ${proxyNote}`);
    out.push(`  discovery  ${HOST}:${nodePorts[0]}   \`config get cluster\` (every node answers with all ${NODES})`);
    const nodeLine = /\r\n\d+\n([^\n]*)\n/.exec(discovery);
    out.push(nodeLine !== null ? `             answers: ${nodeLine[1]}` : `             answers: ${JSON.stringify(discovery.slice(0, 200))} (no Auto Discovery in this build?)`);
    out.push(`  try:       telnet ${HOST} ${proxy?.port ?? nodePorts[0]}`);
    process.stdout.write(out.join('\n') + '\n');
    if (values.json) process.stdout.write(JSON.stringify(endpoints) + '\n');

    for (const p of procs) {
      void p.exited.then(() => {
        if (stopping) return;
        process.stderr.write(`${p.name} (pid ${p.child.pid}) exited ${JSON.stringify(p.status)}: ` +
          (p.name === 'twemproxy' ? 'the proxy is gone, the nodes still serve directly\n' : 'its keys are gone; the other nodes keep serving\n'));
        if (procs.every((q) => q.status !== null)) {
          fs.rmSync(tmp, { recursive: true, force: true });
          process.exit(1);
        }
      });
    }
  } catch (e) {
    await stopAll();
    throw e;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`cluster: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
