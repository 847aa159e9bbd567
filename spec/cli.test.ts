/**
 * memshard as a drop-in for memcached's command line: Debian's stock /etc/memcached.conf flags
 * (-d -u -P -m -p -l), the last of a repeated flag, bad values named, flags it cannot honour
 * refused with the reason, and -B and -F answered as the real memcached answers them.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { Op, request, roundTrip, summary } from './helpers/binary.js';
import { cliPath, freePort, rawClient, startDaemon, startMemcached, type Daemon } from './helpers/daemon.js';

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
    [['-s', '/tmp/memshard.sock'], /^memshard: -s\/--unix-socket: UNIX domain sockets are not supported yet/],
    [['-a', '700'], /^memshard: -a\/--unix-mask: /],
    [['-r'], /^memshard: -r\/--enable-coredumps: .*ulimit -c/],
    [['-M'], /^memshard: -M\/--disable-evictions: /],
    [['-k'], /^memshard: -k\/--lock-memory: /],
    [['-C'], /^memshard: -C\/--disable-cas: /],
    [['-D', ':'], /^memshard: -D\/--stats-delimiter: /],
    [['-e', '/dev/shm/x'], /^memshard: -e\/--memory-file: .*not persistent/],
    [['-Z'], /^memshard: -Z\/--enable-ssl: TLS is not supported yet/],
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
