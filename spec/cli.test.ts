/**
 * memshard as a drop-in for memcached's command line: Debian's stock /etc/memcached.conf flags
 * (-d -u -P -m -p -l), the last of a repeated flag, bad values named, flags it cannot honour
 * refused with the reason, and -B and -F answered as the real memcached answers them.
 */
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { Op, request, roundTrip, summary } from './helpers/binary.js';
import { cliPath, freePort, memcachedBin, rawClient, startDaemon, startMemcached, type Daemon } from './helpers/daemon.js';

const asRoot = process.getuid?.() === 0;

function cli(args: string[]) {
  return spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', timeout: 15_000 });
}

const gone = async (pid: number): Promise<boolean> => {
  for (let i = 0; i < 100; i++) {
    if (!existsSync(`/proc/${pid}`)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
};

t.test("Debian's stock memcached.conf: -d -u memcache -P <file> -m 64 -p <port> -l 127.0.0.1", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'memshard-cli-'));
  // as /run/memcached is for Debian's memcache user: the daemon writes it after giving up root
  chmodSync(dir, 0o777);
  const pidFile = path.join(dir, 'memcached.pid');
  const port = await freePort();
  const started = cli(['-d', '-u', 'memcache', '-P', pidFile, '-m', '64', '-p', String(port), '-l', '127.0.0.1', '--metrics-port', '0']);
  t.equal(started.status, 0, `the foreground process exits 0 once the daemon serves (${started.stderr})`);
  const pid = Number(readFileSync(pidFile, 'utf8'));
  t.teardown(() => {
    if (existsSync(`/proc/${pid}`)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  t.ok(pid > 0 && pid !== started.pid, `the PID file names the daemon (${pid})`);
  const c = await rawClient(port);
  c.send('version\r\n');
  t.match(await c.readUntil('\r\n'), /^VERSION /, 'it serves on the port');
  await c.close();
  const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  const memcacheUid = /^memcache:[^:]*:(\d+):/m.exec(readFileSync('/etc/passwd', 'utf8'))?.[1];
  if (asRoot && memcacheUid !== undefined) t.equal(uid, memcacheUid, 'started as root, it runs as memcache');
  else t.comment(`not root or no memcache user: -u is ignored, as in memcached (uid ${uid})`);
  process.kill(pid, 'SIGTERM');
  t.ok(await gone(pid), 'SIGTERM stops it');
  t.notOk(existsSync(pidFile), 'and the PID file is removed');
});

t.test('a repeated flag takes its last value; bad values and unknown users are named', async (t) => {
  const d = await startDaemon(['-t', '8', '-t', '2']);
  t.teardown(() => d.stop());
  const c = await rawClient(d.port);
  c.send('stats\r\n');
  t.match(await c.readUntil('END\r\n'), /STAT threads 2\r\n/);
  await c.close();
  const bad = cli(['-p', 'abc']);
  t.equal(bad.status, 64);
  t.equal(bad.stderr, "memshard: -p/--port: 'abc' is not a number\n");
  if (asRoot) {
    const port = await freePort();
    const user = cli(['-u', 'no-such-user-here', '-p', String(port), '-l', '127.0.0.1', '--metrics-port', '0']);
    t.equal(user.status, 67, 'EX_NOUSER, like memcached');
    t.equal(user.stderr, "memshard: can't find the user no-such-user-here to switch to\n");
  }
});

t.test('flags memshard cannot honour are refused with the reason', async (t) => {
  const refused: Array<[string[], RegExp]> = [
    [['-s', '/tmp/x.sock', '-a', '7a'], /^memshard: -a\/--unix-mask: '7a' is not an octal file mode/],
    [['-r'], /^memshard: -r\/--enable-coredumps: .*ulimit -c/],
    [['-D', '::'], /^memshard: -D\/--stats-delimiter: must be one character, got '::'/],
    [['-o', 'hot_lru_pct=90'], /^memshard: -o hot_lru_pct=90: hot_lru_pct must be > 1 and < 80/],
    [['-o', 'slab_automove=3'], /^memshard: -o slab_automove=3: slab_automove must be between 0 and 2/],
    [['-o', 'lru_crawler_sleep=2000000'], /^memshard: -o lru_crawler_sleep=2000000: LRU crawler sleep must be between 0 and 1 second/],
    [['-o', 'hot_max_factor=0'], /^memshard: -o hot_max_factor=0: hot_max_factor must be > 0/],
    [['-o', 'hashpower=11'], /^memshard: -o hashpower=11: Initial hashtable multiplier of 11 is too low/],
    [['-o', 'hashpower=x'], /^memshard: -o hashpower=x: Initial hashtable multiplier of 0 is too low/],
    [['-o', 'hashpower=33'], /^memshard: -o hashpower=33: Initial hashtable multiplier of 33 is too high/],
    [['-o', 'hashpower'], /^memshard: -o hashpower: Missing numeric argument for hashpower/],
    [['-k'], /^memshard: -k\/--lock-memory: /],
    [['-C'], /^memshard: -C\/--disable-cas: /],
    [['-e', '/dev/shm/x'], /^memshard: -e\/--memory-file: .*not persistent/],
    [['-Z'], /^memshard: Error loading the certificate chain: \(null\)/],
    [['-Z', '-o', 'ssl_verify_mode=5'], /^memshard: Invalid ssl_verify_mode. Use help to see valid options.$/m],
    [['-Z', '-o', 'ssl_min_version=x'], /^memshard: could not parse argument to ssl_min_version$/m],
    [['-o', 'ssl_kernel_tls'], /^memshard: Kernel TLS offload is not available$/m],
    [['-B', 'both'], /^memshard: -B\/--protocol: 'both' is not one of ascii, binary, auto/],
  ];
  for (const [args, message] of refused) {
    const r = cli(args);
    t.equal(r.status, 64, `${args.join(' ')}: EX_USAGE`);
    t.match(r.stderr, message);
  }
  const help = cli(['--help']);
  const order = ['-p', '-U', '-s', '-a', '-A', '-l', '-d', '-r', '-u', '-m', '-M', '-c', '-k', '-v', '-i', '-V', '-P', '-f', '-n', '-L', '-D', '-t', '-R', '-C', '-b', '-B', '-I', '-S', '-F', '-X', '-W', '-Y', '-e', '-Z', '-o'];
  const at = order.map((f) => help.stdout.indexOf(`  ${f}, `));
  t.ok(at.every((p) => p >= 0), 'every memcached flag is in --help');
  t.same([...at].sort((a, b) => a - b), at, "in memcached's order");
});

/** Both servers started with args: the replies of each, side by side. */
async function bothWith(args: string[], talk: (port: number) => Promise<unknown>): Promise<{ memcached: unknown; memshard: unknown }> {
  const servers: Daemon[] = [await startMemcached(args), await startDaemon(args)];
  try {
    const [memcached, memshard] = await Promise.all(servers.map((s) => talk(s.port)));
    return { memcached, memshard };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

t.test('-F: flush_all is refused as memcached refuses it, in text and binary', async (t) => {
  const text = await bothWith(['-F'], async (port) => {
    const c = await rawClient(port);
    c.send('set k 0 0 1\r\nv\r\nflush_all\r\nflush_all 10\r\nflush_all noreply\r\nget k\r\n');
    const reply = await c.readUntil('END\r\n');
    await c.close();
    return reply;
  });
  t.equal(text.memshard, text.memcached);
  t.equal(text.memshard, 'STORED\r\nCLIENT_ERROR flush_all not allowed\r\nCLIENT_ERROR flush_all not allowed\r\nVALUE k 0 1\r\nv\r\nEND\r\n');
  const binary = await bothWith(['-F'], async (port) => {
    const c = await rawClient(port);
    const replies = await roundTrip(c, request({ opcode: Op.Flush }), 1);
    await c.close();
    return replies.map(summary);
  });
  t.same(binary.memshard, binary.memcached, 'binary Flush: the same auth error');
});

t.test('-B ascii and -B binary: a connection speaks only that protocol, as in memcached', async (t) => {
  const talk = async (port: number) => {
    const text = await rawClient(port);
    text.send('version\r\n');
    const textReply = (await text.waitForClose(3000).catch(() => text.pending())).toString('latin1');
    const bin = await rawClient(port);
    bin.send(request({ opcode: Op.Version }));
    bin.send('\r\n');
    const binReply = (await bin.waitForClose(3000).catch(() => bin.pending())).toString('latin1');
    await Promise.all([text.close(), bin.close()]);
    return { text: textReply.replace(/VERSION \S+/, 'VERSION x'), binary: binReply.replace(/1\.6\.\d+/, 'x') };
  };
  for (const mode of ['ascii', 'binary']) {
    const r = await bothWith(['-B', mode], talk);
    t.same(r.memshard, r.memcached, `-B ${mode}: ${JSON.stringify(r.memshard)}`);
  }
});

/** A server started with `args` that listens on the UNIX socket `path`: stopped at teardown. */
async function onUnixSocket(t: Test, cmd: string, args: string[], path: string): Promise<void> {
  const child = spawn(cmd, args, { stdio: 'ignore' });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(path, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${cmd} did not listen on ${path}`);
}

t.test('-s and -a: a UNIX domain socket with its mode, answered as memcached answers there', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'memshard-unix-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const mine = path.join(dir, 'memshard.sock');
  const theirs = path.join(dir, 'memcached.sock');
  // a stale socket file from an earlier run is replaced, as memcached replaces it
  await new Promise<void>((resolve) => {
    const stale = net.createServer().listen(mine, () => {
      const handle = (stale as unknown as { _handle: { close(): void } })._handle;
      // close the handle without unlinking: the file stays behind
      handle.close();
      resolve();
    });
  });
  await onUnixSocket(t, process.execPath, [cliPath, '-s', mine, '-a', '770', '-t', '2', '--metrics-port', '0'], mine);
  await onUnixSocket(t, memcachedBin, ['-s', theirs, '-a', '770', ...(asRoot ? ['-u', 'root'] : [])], theirs);
  for (const file of [mine, theirs]) t.equal(statSync(file).mode & 0o777, 0o770, `${path.basename(file)} has mode 770`);
  const talk = (file: string) =>
    new Promise<string>((resolve, reject) => {
      const s = net.connect(file, () => s.write('set k 0 0 2\r\nhi\r\nget k\r\nstats settings\r\nstats conns\r\n'));
      let got = '';
      s.on('error', reject);
      s.on('data', (b: Buffer) => {
        got += b.toString('latin1');
        if (got.split('END\r\n').length === 4) {
          s.destroy();
          resolve(got);
        }
      });
    });
  const [a, b] = [await talk(mine), await talk(theirs)];
  const lines = (reply: string, file: string) =>
    reply
      .replaceAll(file, '<path>')
      .split('\r\n')
      .filter((l) => /^(STORED|VALUE|hi|STAT (domain_socket|umask) |STAT \d+:(addr|listen_addr) (\?|unix:<path>$))/.test(l))
      .map((l) => l.replace(/^STAT \d+:/, 'STAT n:'));
  // memcached also lists its listening socket in stats conns; memshard lists client connections only
  const compared = lines(a, mine);
  t.equal(compared.length, 7, `replies, settings and the connection's addresses: ${compared.join(' | ')}`);
  t.same(compared, lines(b, theirs).filter((l) => l !== 'STAT n:addr unix:<path>'));
});

/** `stats` and `stats settings` rows about the hash table, after `sets` noreply sets. */
async function hashRows(port: number, sets: number): Promise<Record<string, string>> {
  const c = await rawClient(port, 10_000);
  let batch = '';
  for (let i = 0; i < sets; i++) batch += `set hk${i} 0 0 1 noreply\r\nx\r\n`;
  c.send(`${batch}stats\r\nstats settings\r\n`);
  const text = (await c.readUntil('END\r\n')) + (await c.readUntil('END\r\n'));
  await c.close();
  return Object.fromEntries([...text.matchAll(/STAT (hash\S*) (\S+)\r\n/g)].map((m) => [m[1]!, m[2]!]));
}

t.test('-o hashpower and no_hashexpand: the hash index starts at 2^N buckets, and keeps that size without expansion', async (t) => {
  const { memcached, memshard } = await bothWith(['-t', '4', '-o', 'hashpower=18'], (port) => hashRows(port, 0));
  for (const [name, want] of [['hashpower_init', '18'], ['hash_power_level', '18']] as const) {
    t.equal((memshard as Record<string, string>)[name], want, `${name} ${want}`);
    t.equal((memcached as Record<string, string>)[name], want, `memcached says ${name} ${want} too`);
  }
  t.equal((memshard as Record<string, string>)['hash_bytes'], String(2 ** 18 * 4), 'four bytes a bucket');
  for (const [args, grows] of [[[], true], [['-o', 'no_hashexpand'], false]] as const) {
    const d = await startDaemon(['-t', '4', ...args]);
    const before = await hashRows(d.port, 0);
    const after = await hashRows(d.port, 20_000);
    await d.stop();
    t.equal(before['hash_bytes'], String(4 * 1024 * 4), `${args.join(' ') || 'defaults'}: 1024 buckets a shard at start`);
    t.equal(before['hashpower_init'], '0');
    if (grows) t.ok(Number(after['hash_bytes']) >= (20_000 / 1.5) * 4, `grown to ${after['hash_bytes']} bytes for 20,000 items`);
    else t.equal(after['hash_bytes'], before['hash_bytes'], 'no_hashexpand: the same size after 20,000 items');
  }
});
