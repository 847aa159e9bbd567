/**
 * How the serving threads share the listening port. Two ways, chosen by what Node offers:
 *
 * - SO_REUSEPORT (`listen({ reusePort })`, Node >= 22.12 and >= 23.1 on Linux): every thread
 *   listens on a socket of its own in the port's reuse group, and the kernel hashes each new
 *   connection to one of them. The split does not depend on which thread the scheduler runs
 *   first, so a burst of connections (a client pool starting) spreads over the threads.
 * - One socket, a descriptor per thread (Node 20, and UNIX domain sockets): see
 *   workers/socket-dup.ts. Whichever thread the kernel wakes first accepts, so a burst can land on
 *   few threads.
 *
 * Either way a thread that dies closes only its own socket or descriptor: the port keeps
 * accepting, and its replacement listens again.
 */
import { fork } from 'node:child_process';
import net from 'node:net';

const HELPER = new URL('../../workers/socket-dup.js', import.meta.url);
const HELPER_TIMEOUT_MS = 10_000;

/** What a serving thread passes to `net.Server.listen` (with its backlog). */
export type ThreadListen = { fd: number } | { port: number; host: string | undefined; reusePort: true };

export interface ListenSocket {
  readonly port: number;
  /** How `count` more threads listen on the port. */
  forThreads(count: number): Promise<ThreadListen[]>;
  close(): void;
}

/** Node's `reusePort` listen option: 23.1 and later, 22.12 and later in the 22 line. */
export function reusePortAvailable(version = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return process.platform === 'linux' && (major >= 23 || (major === 22 && minor >= 12));
}

/** Where the daemon listens: TCP host:port (port 0: any), or a UNIX domain socket (-s, -a). */
export type ListenAt = { port: number; host: string | undefined } | { path: string; mask: number };

/** Bind and listen; rejects with the system's message (EADDRINUSE...). */
export function openListenSocket(at: ListenAt, backlog: number): Promise<ListenSocket> {
  if ('path' in at) return SharedSocket.open(['listen-path', at.path, at.mask.toString(8), String(backlog)]);
  return reusePortAvailable() ? ReusePortGroup.open(at.port, at.host) : SharedSocket.open(['listen', String(at.port), at.host ?? '-', String(backlog)]);
}

class ReusePortGroup implements ListenSocket {
  private constructor(
    readonly port: number,
    private readonly host: string | undefined,
  ) {}

  /**
   * A plain bind first: it fails where memcached's would (a port in use, by anyone, including
   * another memshard's reuse group, which would otherwise silently share the port with this one)
   * and picks the port when asked for any. The threads bind it again a moment later.
   */
  static async open(port: number, host: string | undefined): Promise<ReusePortGroup> {
    const probe = net.createServer();
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen({ port, host }, resolve);
    });
    const bound = (probe.address() as net.AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    return new ReusePortGroup(bound, host);
  }

  async forThreads(count: number): Promise<ThreadListen[]> {
    return Array.from({ length: count }, () => ({ port: this.port, host: this.host, reusePort: true }) as const);
  }

  close(): void {}
}

/** A libuv TCP handle received over IPC: not listening in this thread, only holding a descriptor. */
interface RawHandle {
  fd: number;
  close(): void;
}

/**
 * One listening socket; the main thread keeps a descriptor that it never accepts on, so the port
 * stays open while threads come and go.
 */
class SharedSocket implements ListenSocket {
  /**
   * Descriptors given to threads. Their handles stay referenced and are never closed here: the
   * thread owns the descriptor and closes it, after which its number may belong to someone else.
   */
  private readonly handedOut: RawHandle[] = [];

  private constructor(
    private readonly reserve: RawHandle,
    readonly port: number,
  ) {}

  /** The helper's listen command line (see workers/socket-dup.ts). */
  static async open(listen: string[]): Promise<SharedSocket> {
    const [first] = await helper(listen, null, 1);
    return new SharedSocket(first!.handle, first!.port);
  }

  async forThreads(count: number): Promise<ThreadListen[]> {
    const got = await helper(['dup'], this.reserve.fd, count);
    for (const { handle } of got) this.handedOut.push(handle);
    return got.map((g) => ({ fd: g.handle.fd }));
  }

  close(): void {
    this.reserve.close();
  }
}
function helper(args: string[], fd: number | null, count: number): Promise<Array<{ handle: RawHandle; port: number }>> {
  return new Promise((resolve, reject) => {
    const stdio: Array<'ignore' | 'inherit' | 'ipc' | number> = ['ignore', 'ignore', 'inherit', fd ?? 'ignore', 'ipc'];
    const child = fork(HELPER, args, { stdio, execArgv: [] });
    const got: Array<{ handle: RawHandle; port: number }> = [];
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error('listening socket helper did not answer'));
    }, HELPER_TIMEOUT_MS);
    child.on('message', (msg: { port?: number; error?: string }, handle: unknown) => {
      if (msg.error !== undefined) {
        clearTimeout(timer);
        reject(new Error(msg.error));
        return;
      }
      got.push({ handle: handle as RawHandle, port: msg.port ?? 0 });
      if (got.length < count) {
        child.send('next');
        return;
      }
      clearTimeout(timer);
      child.disconnect();
      resolve(got);
    });
    child.on('exit', (code) => {
      if (got.length < count) {
        clearTimeout(timer);
        reject(new Error(`listening socket helper exited with ${code}`));
      }
    });
  });
}
