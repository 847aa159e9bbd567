/**
 * A memshard cluster as memcached users run one: nodes on separate hosts (a network namespace
 * each, as root; else loopback addresses 127.0.0.2..5, see helpers/hosts.ts), ElastiCache Auto
 * Discovery (`config get cluster`, byte-exact, from flags, a file that changes, DNS), the
 * memcached-elasticache client following nodes added and removed, ketama clients (npm memcached,
 * pymemcache's HashClient, php-memcached with OPT_LIBKETAMA_COMPATIBLE) spreading keys and
 * surviving a node's loss, and twemproxy (nutcracker) in front of three nodes,
 * ejecting a node that was stopped and (with namespaces) one whose host vanished from the network.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { nodeLine, parseNodeFile, parseNodeList, renderClusterConfig } from '../lib/cluster/config.js';
import { cliPath, rawClient, type RawClient } from './helpers/daemon.js';
import { loopbackHost, makeHosts, type Host } from './helpers/hosts.js';

const require = createRequire(import.meta.url);
const dir = mkdtempSync(path.join(tmpdir(), 'memshard-cluster-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

const lab = makeHosts(4);
t.teardown(() => lab.remove());
t.comment(lab.kind === 'netns'
  ? `hosts: network namespaces at ${lab.hosts.map((h) => h.address).join(', ')}`
  : `hosts: loopback addresses (${lab.why})`);
const HOSTS = lab.hosts.slice(0, 3).map((h) => h.address);
const local = loopbackHost('127.0.0.1');

t.test('the config payload, byte for byte', async (t) => {
  // ElastiCache's documented example: 136 bytes of version and node lines
  const line = 'myCluster.pc4ldq.0001.use1.cache.amazonaws.com|10.82.235.120|11211 myCluster.pc4ldq.0002.use1.cache.amazonaws.com|10.80.249.27|11211';
  t.equal(renderClusterConfig(12, line), `CONFIG cluster 0 136\r\n12\n${line}\n\r\nEND\r\n`);
  t.equal(nodeLine(parseNodeList('b|10.0.0.2|11211,a||11212,b|10.0.0.2|11211', 11211)), 'a||11212 b|10.0.0.2|11211', 'sorted by host, each once, an empty ip keeps its pipes');
  t.same(parseNodeFile('# nodes\nx|1.2.3.4|11211 y:11300\n\nz\n', 11211).map((n) => `${n.host}|${n.ip}|${n.port}`), ['x|1.2.3.4|11211', 'y||11300', 'z||11211']);
  t.throws(() => parseNodeList('a|b|notaport', 1));
});

interface Node {
  host: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** A memshard node on host's address and port. */
async function startNode(on: Host, port: number, extra: string[] = []): Promise<Node> {
  const host = on.address;
  const run = on.command([process.execPath, cliPath, '-l', host, '-p', String(port), '-t', '2', '-m', '32', '--metrics-port', '0', ...extra]);
  const child = spawn(run.file, run.args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`node ${host}:${port} exited: ${err}`);
    // up, and ours: another process on the same address and port must not pass for this node
    const stats = await ask(host, port, 'stats\r\n', 'END\r\n').catch(() => '');
    if (Number(/STAT pid (\d+)/.exec(stats)?.[1]) === child.pid) break;
    if (Date.now() > deadline) throw new Error(`node ${host}:${port} did not start: ${err}`);
    await settle(50);
  }
  return {
    host,
    port,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

async function freePortOn(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** A node's curr_items (rawClient only reaches 127.0.0.1: the nodes are on other addresses). */
async function itemsVia(node: Node): Promise<number> {
  return Number(/STAT curr_items (\d+)/.exec(await ask(node.host, node.port, 'stats\r\n', 'END\r\n'))?.[1]);
}

function ask(host: string, port: number, request: string, until: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host, () => s.write(request));
    let b = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no ${JSON.stringify(until)} from ${host}:${port}: ${JSON.stringify(b)}`));
    }, 3000);
    s.on('data', (d) => {
      b += d.toString('latin1');
      if (b.includes(until)) {
        clearTimeout(timer);
        s.destroy();
        resolve(b);
      }
    });
    s.on('error', reject);
  });
}

t.test('Auto Discovery: memcached-elasticache finds every node from one, and follows the file', async (t) => {
  const ports = await Promise.all(lab.hosts.slice(0, 3).map(portOn));
  const file = path.join(dir, 'nodes');
  const entry = (i: number) => `node${i + 1}|${HOSTS[i]}|${ports[i]}`;
  writeFileSync(file, `# the cluster\n${entry(0)}\n${entry(1)}\n`);
  const nodes = await Promise.all(lab.hosts.slice(0, 3).map((h, i) => startNode(h, ports[i]!, ['--cluster-file', file])));
  t.teardown(() => Promise.all(nodes.map((n) => n.stop())));
  const reply = await ask(HOSTS[0]!, ports[0]!, 'config get cluster\r\n', 'END\r\n');
  t.equal(reply, renderClusterConfig(1, `${entry(0)} ${entry(1)}`), 'version 1, the file\'s two nodes');
  // the client connects by host name: node1..3 must resolve, so the file names them by address
  writeFileSync(file, HOSTS.slice(0, 2).map((h, i) => `${h}|${h}|${ports[i]}`).join('\n'));
  await settle(1500);
  t.match(await ask(HOSTS[1]!, ports[1]!, 'config get cluster\r\n', 'END\r\n'), /^CONFIG cluster 0 \d+\r\n2\n/, 'a change: version 2, on every node');
  const Elasticache = require('memcached-elasticache') as new (endpoint: string, options: object) => {
    on(event: string, fn: (nodes: string[]) => void): void;
    set(k: string, v: string, ttl: number, cb: (err: unknown) => void): void;
    get(k: string, cb: (err: unknown, v: unknown) => void): void;
    end(): void;
  };
  const client = new Elasticache(`${HOSTS[0]}:${ports[0]}`, { autoDiscoverInterval: 400, retries: 0, timeout: 500 });
  t.teardown(() => client.end());
  const discovered = (count: number) => new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no discovery of ${count} nodes`)), 8000);
    client.on('autoDiscover', (found) => {
      if (found.length === count) {
        clearTimeout(timer);
        resolve(found);
      }
    });
  });
  t.same(await discovered(2), HOSTS.slice(0, 2).map((h, i) => `${h}:${ports[i]}`).sort(), 'two nodes discovered');
  const setAll = async (prefix: string, n: number) => {
    for (let i = 0; i < n; i++) await new Promise<void>((resolve, reject) => client.set(`${prefix}${i}`, 'v', 0, (e) => (e ? reject(e) : resolve())));
  };
  await setAll('a', 300);
  const counts = await Promise.all(nodes.slice(0, 2).map(itemsVia));
  t.ok(counts.every((c) => c > 60), `keys on both nodes: ${counts.join(', ')}`);
  // a node added
  const added = discovered(3);
  writeFileSync(file, HOSTS.map((h, i) => `${h}|${h}|${ports[i]}`).join('\n'));
  t.equal((await added).length, 3, 'the third node added to the file is discovered');
  await setAll('b', 300);
  t.ok((await itemsVia(nodes[2]!)) > 50, 'and gets keys');
  // and removed again, with SIGHUP as the signal (the file is also polled)
  const removed = discovered(2);
  writeFileSync(file, HOSTS.slice(1).map((h, i) => `${h}|${h}|${ports[i + 1]}`).join('\n'));
  for (const n of nodes) process.kill(n.pid, 'SIGHUP');
  t.same(await removed, HOSTS.slice(1).map((h, i) => `${h}:${ports[i + 1]}`).sort(), 'a node removed from the file is dropped');
  t.match(await ask(HOSTS[2]!, ports[2]!, 'stats\r\n', 'END\r\n'), /STAT cmd_config_get \d+\r\n/, 'cmd_config_get counted');
});

t.test('Auto Discovery from DNS (--cluster-dns localhost) and without a cluster (ERROR, as memcached)', async (t) => {
  const port = await freePortOn('127.0.0.1');
  const n = await startNode(local, port, ['--cluster-dns', `localhost:${port}`]);
  t.teardown(() => n.stop());
  t.match(await ask('127.0.0.1', port, 'config get cluster\r\n', 'END\r\n'), new RegExp(`^CONFIG cluster 0 \\d+\\r\\n1\\n(::1\\|::1\\|${port} )?127\\.0\\.0\\.1\\|127\\.0\\.0\\.1\\|${port}\\n\\r\\nEND\\r\\n$`));
  const plainPort = await freePortOn('127.0.0.1');
  const plain = await startNode(local, plainPort);
  t.teardown(() => plain.stop());
  t.equal(await ask('127.0.0.1', plainPort, 'config get cluster\r\n', '\r\n'), 'ERROR\r\n');
});

/**
 * Three nodes on their own hosts for the ketama and proxy tests, on 11211 when it is free
 * there: the ring, and so the spread, then depends on nothing random.
 */
async function threeNodes(): Promise<Node[]> {
  return Promise.all(lab.hosts.slice(0, 3).map((h) => nodeOn(h)));
}

/** A port to start a node on: 11211 in a host's own namespace, else a free one on its address. */
async function portOn(host: Host): Promise<number> {
  return lab.kind === 'netns' ? 11211 : freePortOn(host.address);
}

/** A node on host:11211, or on a free port when 11211 is taken there (also by a race). */
async function nodeOn(host: Host): Promise<Node> {
  if (lab.kind === 'netns' || await portFree(host.address, 11211)) {
    try {
      return await startNode(host, 11211);
    } catch (e) {
      if (lab.kind === 'netns') throw e;
      // taken between the check and the bind: any port will do
    }
  }
  return startNode(host, await freePortOn(host.address));
}

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

t.test('ketama clients (npm memcached, pymemcache HashClient, php-memcached): an even spread, a lost node loses its third', async (t) => {
  const nodes = await threeNodes();
  t.teardown(() => Promise.all(nodes.map((n) => n.stop())));
  const servers = nodes.map((n) => `${n.host}:${n.port}`);
  const Memcached = require('memcached') as new (servers: string[], options: object) => {
    set(k: string, v: string, ttl: number, cb: (err: unknown) => void): void;
    get(k: string, cb: (err: unknown, v: unknown) => void): void;
    end(): void;
  };
  const KEYS = 3000;
  const client = new Memcached(servers, { retries: 0, timeout: 500, failures: 0, remove: true, poolSize: 4 });
  t.teardown(() => client.end());
  const set = (k: string) => new Promise<void>((resolve, reject) => client.set(k, 'v', 0, (e) => (e ? reject(e) : resolve())));
  const get = (k: string) => new Promise<unknown>((resolve) => client.get(k, (e, v) => resolve(e ? undefined : v)));
  for (let i = 0; i < KEYS; i++) await set(`key:${i}`);
  const counts = await Promise.all(nodes.map(itemsVia));
  const even = KEYS / 3;
  t.ok(counts.every((c) => Math.abs(c - even) / even <= 0.15), `npm memcached (ketama): ${counts.join(', ')} within 15% of ${even}`);

  const python = spawnSync('/usr/bin/python3', ['-c', [
    'from pymemcache.client.hash import HashClient',
    // generous timeouts: a slow CI machine must not make the client route around a live node
    `c = HashClient([${nodes.map((n) => `('${n.host}', ${n.port})`).join(', ')}], connect_timeout=5, timeout=5, retry_attempts=5, dead_timeout=1)`,
    "failed = sum(0 if c.set('py:%d' % i, b'v', noreply=False) else 1 for i in range(3000))",
    'print("ok" if failed == 0 else "%d sets failed" % failed)',
  ].join('\n')], { encoding: 'utf8', timeout: 60_000 });
  t.equal(python.stdout.trim(), 'ok', `pymemcache HashClient (stderr: ${python.stderr.trim().split('\n').pop()})`);
  const after = await Promise.all(nodes.map(itemsVia));
  const py = after.map((c, i) => c - counts[i]!);
  t.ok(py.every((c) => Math.abs(c - even) / even <= 0.15), `pymemcache HashClient: ${py.join(', ')} within 15% of ${even}`);

  // php-memcached (libmemcached) with OPT_LIBKETAMA_COMPATIBLE, as PHP users configure it
  const php = spawnSync('php', ['-r', [
    '$m = new Memcached();',
    '$m->setOption(Memcached::OPT_LIBKETAMA_COMPATIBLE, true);',
    `$m->addServers([${nodes.map((n) => `['${n.host}', ${n.port}]`).join(', ')}]);`,
    '$failed = 0;',
    "for ($i = 0; $i < 3000; $i++) { if (!$m->set('php:' . $i, 'v')) $failed++; }",
    'echo $failed === 0 ? "ok" : "$failed sets failed";',
  ].join(' ')], { encoding: 'utf8', timeout: 60_000 });
  t.equal(php.stdout.trim(), 'ok', `php-memcached (stderr: ${(php.stderr ?? '').trim().split('\n').pop()}; needs Debian's php-cli and php-memcached)`);
  const afterPhp = await Promise.all(nodes.map(itemsVia));
  const phpSpread = afterPhp.map((c, i) => c - after[i]!);
  t.ok(phpSpread.every((c) => Math.abs(c - even) / even <= 0.15), `php-memcached (libketama compatible): ${phpSpread.join(', ')} within 15% of ${even}`);

  // a fourth node joins: about a quarter of the keys now map to it (and miss there)
  const fourth = await nodeOn(lab.hosts[3]!);
  t.teardown(() => fourth.stop());
  const grown = new Memcached([...servers, `${fourth.host}:${fourth.port}`], { retries: 0, timeout: 500, failures: 0, remove: true, poolSize: 4 });
  let moved = 0;
  for (let i = 0; i < KEYS; i++) {
    const v = await new Promise<unknown>((resolve) => grown.get(`key:${i}`, (e, got) => resolve(e ? undefined : got)));
    if (v !== 'v') moved++;
  }
  grown.end();
  t.ok(moved > KEYS * 0.15 && moved < KEYS * 0.35, `a node added moves ${moved} of ${KEYS} keys (about a quarter)`);

  // one node goes: its third of the keys is gone, the client keeps working on the rest
  const lost = counts[1]!;
  await nodes[1]!.stop();
  let hits = 0;
  for (let i = 0; i < KEYS; i++) if ((await get(`key:${i}`)) === 'v') hits++;
  t.ok(Math.abs(KEYS - hits - lost) <= KEYS * 0.02, `after losing a node: ${hits} of ${KEYS} still found (${lost} were on it)`);
  // new writes go to the two left
  for (let i = 0; i < 300; i++) await set(`after:${i}`);
  let found = 0;
  for (let i = 0; i < 300; i++) if ((await get(`after:${i}`)) === 'v') found++;
  t.equal(found, 300, 'the client goes on with two nodes');
});

const NUTCRACKER = '/usr/sbin/nutcracker';

t.test('twemproxy (nutcracker, ketama, auto_eject_hosts) in front of three nodes', { skip: existsSync(NUTCRACKER) ? false : `${NUTCRACKER} not installed (Debian package nutcracker; .ci/run installs it)` }, async (t) => {
  const nodes = await threeNodes();
  t.teardown(() => Promise.all(nodes.map((n) => n.stop())));
  const proxyPort = await freePortOn('127.0.0.1');
  const conf = path.join(dir, 'nutcracker.yml');
  writeFileSync(conf, [
    'pool:',
    `  listen: 127.0.0.1:${proxyPort}`,
    // md5 as libmemcached's ketama: nutcracker's fnv1a_64 with ketama puts short keys like these
    // on one node (measured: 0 / 410 / 190 of 600)
    '  hash: md5',
    '  distribution: ketama',
    '  timeout: 2000',
    '  auto_eject_hosts: true',
    '  server_retry_timeout: 30000',
    '  server_failure_limit: 2',
    '  servers:',
    ...nodes.map((n, i) => `    - ${n.host}:${n.port}:1 node${i}`),
    '',
  ].join('\n'));
  const proxy = spawn(NUTCRACKER, ['-c', conf, '-s', String(await freePortOn('127.0.0.1'))], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => {
    if (proxy.exitCode === null) proxy.kill('SIGTERM');
  });
  let c: RawClient | null = null;
  for (let i = 0; i < 100 && c === null; i++) {
    c = await rawClient(proxyPort, 500).catch(() => null);
    if (c === null) await settle(50);
  }
  t.ok(c, 'nutcracker is up');
  const p = c!;
  const req = async (r: string, until: string) => {
    p.send(r);
    return p.readUntil(until, 3000);
  };
  let sets = 0;
  for (let i = 0; i < 60; i++) if ((await req(`set k${i} 0 0 2\r\nv${i % 10}\r\n`, '\r\n')) === 'STORED\r\n') sets++;
  t.equal(sets, 60, 'sets through the proxy');
  t.equal(await req('get k1 k2 k3\r\n', 'END\r\n'), 'VALUE k1 0 2\r\nv1\r\nVALUE k2 0 2\r\nv2\r\nVALUE k3 0 2\r\nv3\r\nEND\r\n', 'a multi-get over several nodes');
  t.equal(await req('set n 0 0 1\r\n5\r\n', '\r\n'), 'STORED\r\n');
  t.equal(await req('incr n 10\r\n', '\r\n'), '15\r\n');
  t.equal(await req('delete k1\r\n', '\r\n'), 'DELETED\r\n');
  const spread = await Promise.all(nodes.map(itemsVia));
  t.ok(spread.every((n) => n > 5), `keys on every node: ${spread.join(', ')}`);
  await nodes[0]!.stop();
  // the first request to the dead node fails and ejects it; after that every key lands on the two left
  for (let i = 0; i < 20; i++) await req(`set e${i} 0 0 1\r\nx\r\n`, '\r\n');
  let stored = 0;
  for (let i = 0; i < 50; i++) if ((await req(`set after${i} 0 0 1\r\nx\r\n`, '\r\n')) === 'STORED\r\n') stored++;
  t.equal(stored, 50, 'the dead node is ejected, traffic goes on');
  if (lab.kind === 'netns') {
    // a host that vanishes answers nothing at all: requests to it time out (2 s) until it is ejected
    lab.hosts[1]!.setPlugged(false);
    t.teardown(() => lab.hosts[1]!.setPlugged(true));
    const timedOut: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await req(`set u${i} 0 0 1\r\nx\r\n`, '\r\n');
      if (r !== 'STORED\r\n') timedOut.push(r.trim());
    }
    t.ok(timedOut.length >= 1 && timedOut.length <= 4, `requests to the unplugged host fail until it is ejected: ${JSON.stringify(timedOut)}`);
    let last = 0;
    for (let i = 0; i < 50; i++) if ((await req(`set v${i} 0 0 1\r\nx\r\n`, '\r\n')) === 'STORED\r\n') last++;
    t.equal(last, 50, 'the one node left takes every key');
    t.equal(await req('get v7\r\n', 'END\r\n'), 'VALUE v7 0 1\r\nx\r\nEND\r\n');
  }
  await p.close();
});
