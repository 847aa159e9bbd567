/**
 * The listening socket shared by the serving threads, each through a descriptor of its own (see
 * workers/socket-dup.ts for why and how). The main thread keeps one descriptor that it never
 * accepts on, so the port stays open while threads come and go.
 */
import { fork } from 'node:child_process';

const HELPER = new URL('../../workers/socket-dup.js', import.meta.url);
const HELPER_TIMEOUT_MS = 10_000;

/** A libuv TCP handle received over IPC: not listening in this thread, only holding a descriptor. */
interface RawHandle {
  fd: number;
  close(): void;
}

export class ListenSocket {
  /**
   * Descriptors given to threads. Their handles stay referenced and are never closed here: the
   * thread owns the descriptor and closes it, after which its number may belong to someone else.
   */
  private readonly handedOut: RawHandle[] = [];

  private constructor(
    private readonly reserve: RawHandle,
    readonly port: number,
  ) {}

  /** Bind and listen on host:port (port 0: any); rejects with the system's message (EADDRINUSE...). */
  static async open(port: number, host: string | undefined, backlog: number): Promise<ListenSocket> {
    const [first] = await helper(['listen', String(port), host ?? '-', String(backlog)], null, 1);
    return new ListenSocket(first!.handle, first!.port);
  }

  /** `count` new descriptors of the socket, one per thread that will accept on it. */
  async descriptors(count: number): Promise<number[]> {
    const got = await helper(['dup'], this.reserve.fd, count);
    for (const { handle } of got) this.handedOut.push(handle);
    return got.map((g) => g.handle.fd);
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
