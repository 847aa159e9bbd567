/** For the CLI: memshard (dist/lib/cli.js) and /usr/bin/memcached on free loopback ports, stopped by the caller. */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../lib/cli.js', import.meta.url));
const MEMCACHED = '/usr/bin/memcached';

/**
 * memcached's background LRU threads hold item references now and then, and incr/decr rewrites a
 * number in place only when nobody else holds the item: with them on, the same requests leave
 * "99 " or "99" behind from run to run. Without them memcached answers deterministically.
 */
export const MEMCACHED_ORACLE_OPTIONS = ['-o', 'no_lru_maintainer,no_lru_crawler'];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port} after 10 s`);
}

export async function startServers(): Promise<{ memshardPort: number; memcachedPort: number; stop(): Promise<void> }> {
  const [memshardPort, memcachedPort] = [await freePort(), await freePort()];
  const root = typeof process.getuid === 'function' && process.getuid() === 0 ? ['-u', 'root'] : [];
  const children = [
    spawn(process.execPath, [CLI, '-p', String(memshardPort), '-l', '127.0.0.1', '-t', '2', '--metrics-port', '0'], { stdio: 'ignore' }),
    spawn(MEMCACHED, ['-p', String(memcachedPort), '-l', '127.0.0.1', '-U', '0', '-t', '2', ...MEMCACHED_ORACLE_OPTIONS, ...root], { stdio: 'ignore' }),
  ];
  const stop = async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGTERM');
          }),
      ),
    );
  };
  try {
    await Promise.all([waitForPort(memshardPort, children[0]!), waitForPort(memcachedPort, children[1]!)]);
  } catch (e) {
    await stop();
    throw e;
  }
  return { memshardPort, memcachedPort, stop };
}
