// Test helper: start memshard (compiled, from dist-test/) or memcached on a free port, wait
// until it answers `version`, and stop it again. Also a tiny raw-socket client.
//
// Everything here is bounded in time, and every process started here is killed on stop(),
// and (as a safety net) with SIGKILL when the test process exits.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';

/** Repository root: this file is compiled to <root>/dist-test/spec/helpers/daemon.js. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
/** The compiled daemon entry point the tests run. */
export const cliPath = fileURLToPath(new URL('../../../dist-test/lib/cli.js', import.meta.url));
export const memcachedBin = '/usr/bin/memcached';

export interface Daemon {
  port: number;
  pid: number;
  /** SIGTERM, wait for exit, SIGKILL after 3 s. Safe to call more than once. */
  stop(): Promise<void>;
  /** Everything the process wrote to stderr so far (last 256 KB). */
  stderr(): string;
  /** Everything the process wrote to stdout so far (last 256 KB). */
  stdout(): string;
  /** Exit code / signal once it has exited, else null. */
  exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | null;
}

const MAX_CAPTURE = 256 * 1024;
const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** A port that was free a moment ago (listen on port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('could not get a free port'));
        return;
      }
      const port = addr.port;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One attempt: connect, send `version`, resolve with the reply line, or reject. */
/**
 * Ask for the version (text, or binary for a -S server, which refuses text). A text server that
 * requires a login (-Y) answers CLIENT_ERROR unauthenticated: alive too.
 */
export function probeVersion(port: number, timeoutMs = 1000, binary = false, tlsOptions?: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connectTo(port, tlsOptions);
    let buf = '';
    const done = (err: Error | null, line?: string) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(line ?? '');
    };
    const timer = setTimeout(() => done(new Error(`no reply to version within ${timeoutMs} ms`)), timeoutMs);
    sock.setNoDelay(true);
    const request = Buffer.alloc(24);
    request[0] = 0x80;
    request[1] = 0x0b; // Version
    sock.on(tlsOptions === undefined ? 'connect' : 'secureConnect', () => sock.write(binary ? request : 'version\r\n'));
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (binary) {
        if (buf.length >= 24 && buf.length >= 24 + Buffer.from(buf, 'latin1').readUInt32BE(8)) done(null, `VERSION ${buf.slice(24)}`);
        return;
      }
      const i = buf.indexOf('\r\n');
      if (i >= 0) {
        const line = buf.slice(0, i);
        if (line.startsWith('VERSION ') || line === 'CLIENT_ERROR unauthenticated') done(null, line);
        else done(new Error(`unexpected reply to version: ${JSON.stringify(line)}`));
      }
    });
    sock.on('error', (e) => done(e));
    sock.on('close', () => done(new Error('connection closed before a reply to version')));
  });
}

/** A connection to 127.0.0.1:port, over TLS with tlsOptions (ready on 'secureConnect' then). */
function connectTo(port: number, tlsOptions?: tls.ConnectionOptions): net.Socket {
  return tlsOptions === undefined ? net.connect({ port, host: '127.0.0.1' }) : tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ...tlsOptions });
}

/** How a test reaches a daemon: over TLS (-Z) with these options. */
export interface Reach {
  tls?: tls.ConnectionOptions;
}

function launch(cmd: string, argv: (port: number) => string[], what: string, reach: Reach = {}): Promise<Daemon> {
  const attempt = async (): Promise<Daemon> => {
    const port = await freePort();
    const args = argv(port);
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let err = '';
    let out = '';
    child.stderr?.setEncoding('utf8');
    child.stdout?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      err += d;
      if (err.length > MAX_CAPTURE) err = err.slice(-MAX_CAPTURE);
    });
    child.stdout?.on('data', (d: string) => {
      out += d;
      if (out.length > MAX_CAPTURE) out = out.slice(-MAX_CAPTURE);
    });
    let status: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    let spawnError: Error | null = null;
    const exited = new Promise<void>((resolve) => {
      child.on('exit', (code, signal) => {
        status = { code, signal };
        live.delete(child);
        resolve();
      });
      child.on('error', (e) => {
        // spawn failure (ENOENT...): there is no process and no 'exit' will follow
        spawnError = e;
        status = { code: null, signal: null };
        live.delete(child);
        resolve();
      });
    });

    const stop = async (): Promise<void> => {
      if (status !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (status === null) child.kill('SIGKILL');
      }, STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    };

    const daemon: Daemon = {
      port,
      pid: child.pid ?? -1,
      stop,
      stderr: () => err,
      stdout: () => out,
      exitStatus: () => status,
    };

    const deadline = Date.now() + READY_TIMEOUT_MS;
    let lastError = '';
    for (;;) {
      if (status !== null) {
        const e = new Error(
          `${what} exited before it was ready (${spawnError ? String(spawnError) : JSON.stringify(status)}): ` +
            `${cmd} ${args.join(' ')}\nstderr:\n${err}`,
        ) as Error & { addrInUse?: boolean };
        e.addrInUse = /EADDRINUSE|address already in use/i.test(err);
        throw e;
      }
      try {
        const binaryOnly = args.includes('-S') || args.includes('--enable-sasl') || args.join(' ').includes('-B binary');
        await probeVersion(port, Math.max(100, Math.min(1000, deadline - Date.now())), binaryOnly, reach.tls);
        return daemon;
      } catch (e) {
        lastError = e instanceof Error ? e.message : String(e);
      }
      if (Date.now() >= deadline) {
        await stop();
        throw new Error(
          `${what} did not answer version within ${READY_TIMEOUT_MS} ms (last: ${lastError}): ` +
            `${cmd} ${args.join(' ')}\nstderr:\n${err}`,
        );
      }
      await sleep(50);
    }
  };

  // The free port can be taken between our probe and the daemon's bind: retry a few times.
  return (async () => {
    for (let i = 0; ; i++) {
      try {
        return await attempt();
      } catch (e) {
        if (i < 2 && (e as { addrInUse?: boolean }).addrInUse) continue;
        throw e;
      }
    }
  })();
}

/**
 * Start the compiled memshard daemon (dist-test/lib/cli.js) on a free port. The Prometheus
 * endpoint is off (`--metrics-port 0`) unless args choose a port: otherwise every test daemon
 * would try to bind the default 9150.
 */
export function startDaemon(args: string[] = [], reach: Reach = {}): Promise<Daemon> {
  const metrics = args.some((a) => a === '--metrics-port' || a.startsWith('--metrics-port=')) ? [] : ['--metrics-port', '0'];
  return launch(
    process.execPath,
    (port) => [cliPath, '-p', String(port), '-l', '127.0.0.1', ...metrics, ...args],
    'memshard',
    reach,
  );
}

/**
 * GET an http:// URL; resolves with the status and the body (utf8) whatever the status,
 * rejects on a connection error or when the whole exchange takes longer than timeoutMs.
 */
export function httpGet(url: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (e: Error | null, r?: { status: number; body: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (e) {
        req.destroy();
        reject(e);
      } else resolve(r!);
    };
    const req = http.get(url, { agent: false, headers: { connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => finish(null, { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (e) => finish(e));
    });
    const timer = setTimeout(() => finish(new Error(`GET ${url}: no complete reply within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => finish(e));
  });
}

/** Start /usr/bin/memcached on a free port (with -u root when running as root). */
export function startMemcached(args: string[] = [], reach: Reach = {}): Promise<Daemon> {
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  return launch(
    memcachedBin,
    (port) => ['-p', String(port), '-l', '127.0.0.1', '-U', '0', ...(asRoot ? ['-u', 'root'] : []), ...args],
    'memcached',
    reach,
  );
}

export interface RawClient {
  /** Write raw bytes (a string is sent as latin1/binary, byte for byte). */
  send(bytes: string | Buffer): void;
  /**
   * Wait until the received, not yet consumed bytes contain `terminator` (returns everything up
   * to and including its first occurrence, as a latin1 string) or satisfy `predicate` (returns
   * the whole unconsumed buffer, or its first N bytes if the predicate returns a number N).
   * What is returned is consumed. Rejects after timeoutMs (default 2000) or when the
   * connection closes first, with what was received in the message.
   */
  readUntil(terminator: string, timeoutMs?: number): Promise<string>;
  readUntil(predicate: (received: Buffer) => boolean | number, timeoutMs?: number): Promise<Buffer>;
  /** Resolves with the remaining unconsumed bytes once the peer closes; rejects after timeoutMs. */
  waitForClose(timeoutMs?: number): Promise<Buffer>;
  /** Bytes received and not yet consumed. */
  pending(): Buffer;
  isClosed(): boolean;
  close(): Promise<void>;
  socket: net.Socket;
}

/** A connection to 127.0.0.1:port is refused (false when it connects, or nothing answers in time). */
export function connectRefused(port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    const timer = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(e.code === 'ECONNREFUSED');
    });
  });
}

/** Connect a raw TCP client to 127.0.0.1:port (rejects after timeoutMs). */
export function rawClient(port: number, timeoutMs = 2000, tlsOptions?: tls.ConnectionOptions): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const sock = connectTo(port, tlsOptions);
    sock.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    let closed = false;
    const waiters = new Set<() => void>();
    const wake = () => {
      for (const w of [...waiters]) w();
    };
    sock.on('data', (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      wake();
    });
    sock.on('close', () => {
      closed = true;
      wake();
    });
    sock.on('error', () => {
      // surfaced through 'close' and the waiters
    });
    const connectTimer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`rawClient: connect to ${port} timed out`));
    }, timeoutMs);
    sock.once('error', (e) => {
      clearTimeout(connectTimer);
      reject(e);
    });

    const show = (b: Buffer) => JSON.stringify(b.subarray(0, 2000).toString('latin1'));

    function wait<T>(check: () => T | undefined, timeout: number, what: string, rejectOnClose: boolean): Promise<T> {
      return new Promise<T>((res, rej) => {
        let timer: NodeJS.Timeout | undefined;
        const finish = () => {
          clearTimeout(timer);
          waiters.delete(tryIt);
        };
        const tryIt = () => {
          const r = check();
          if (r !== undefined) {
            finish();
            res(r);
          } else if (closed && rejectOnClose) {
            finish();
            rej(new Error(`rawClient: connection closed while waiting for ${what}; received ${show(buf)}`));
          }
        };
        timer = setTimeout(() => {
          finish();
          rej(new Error(`rawClient: timed out after ${timeout} ms waiting for ${what}; received ${show(buf)}`));
        }, timeout);
        waiters.add(tryIt);
        tryIt();
      });
    }

    function readUntil(terminator: string, timeoutMs?: number): Promise<string>;
    function readUntil(predicate: (received: Buffer) => boolean | number, timeoutMs?: number): Promise<Buffer>;
    function readUntil(
      what: string | ((received: Buffer) => boolean | number),
      timeout = 2000,
    ): Promise<string | Buffer> {
      if (typeof what === 'string') {
        const term = Buffer.from(what, 'latin1');
        return wait<string>(
          () => {
            const i = buf.indexOf(term);
            if (i < 0) return undefined;
            const out = buf.subarray(0, i + term.length);
            buf = buf.subarray(i + term.length);
            return out.toString('latin1');
          },
          timeout,
          JSON.stringify(what),
          true,
        );
      }
      return wait<Buffer>(
        () => {
          const r = what(buf);
          if (r === false) return undefined;
          const n = r === true ? buf.length : Math.min(r, buf.length);
          const out = buf.subarray(0, n);
          buf = buf.subarray(n);
          return out;
        },
        timeout,
        'predicate',
        true,
      );
    }

    sock.once(tlsOptions === undefined ? 'connect' : 'secureConnect', () => {
      clearTimeout(connectTimer);
      resolve({
        socket: sock,
        send(bytes) {
          sock.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
        },
        readUntil,
        waitForClose(timeout = 2000) {
          return wait<Buffer>(
            () => {
              if (!closed) return undefined;
              const out = buf;
              buf = Buffer.alloc(0);
              return out;
            },
            timeout,
            'the connection to close',
            false,
          );
        },
        pending: () => buf,
        isClosed: () => closed,
        close() {
          if (closed) return Promise.resolve();
          return new Promise<void>((res) => {
            const t = setTimeout(() => {
              sock.destroy();
              res();
            }, 1000);
            sock.once('close', () => {
              clearTimeout(t);
              res();
            });
            sock.end();
          });
        },
      });
    });
  });
}
