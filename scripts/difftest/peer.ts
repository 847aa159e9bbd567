/** One connection to a server under test: send a request and its sentinel, read until it is answered. */
import net from 'node:net';
import type { Framed } from './framing.js';

export interface Exchange {
  reply: Buffer;
  /** The server closed the connection (the reply is what came before). */
  closed: boolean;
  timedOut: boolean;
  /** Bytes that came after the previous sentinel's answer start the reply. */
  stray: boolean;
}

export class Peer {
  private socket: net.Socket | null = null;
  private buf: Buffer = Buffer.alloc(0);
  private closed = true;
  private wake: (() => void) | null = null;

  constructor(
    readonly name: string,
    private readonly port: number,
    private readonly host = '127.0.0.1',
  ) {}

  connect(): Promise<void> {
    this.disconnect();
    return new Promise((resolve, reject) => {
      const s = net.connect({ port: this.port, host: this.host });
      s.setNoDelay(true);
      s.once('connect', () => {
        this.closed = false;
        resolve();
      });
      s.once('error', reject);
      // events of an earlier socket (closing after a restart) must not touch this one's state
      s.on('data', (d: Buffer) => {
        if (this.socket !== s) return;
        this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
        this.wake?.();
      });
      s.on('close', () => {
        if (this.socket !== s) return;
        this.closed = true;
        this.wake?.();
      });
      s.on('error', () => undefined);
      this.socket = s;
      this.buf = Buffer.alloc(0);
    });
  }

  isClosed(): boolean {
    return this.closed;
  }

  disconnect(): void {
    this.socket?.destroy();
    this.socket = null;
    this.closed = true;
  }

  /**
   * Writes `request`, then waits until `frame` finds the sentinel's answer (or close / timeout).
   * Bytes already waiting were answered after an earlier sentinel: they start this reply.
   */
  async exchange(request: Buffer, frame: (b: Buffer) => Framed | null, timeoutMs: number): Promise<Exchange> {
    const stray = this.buf.length > 0;
    this.socket?.write(request);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = frame(this.buf);
      if (f !== null) {
        const reply = this.buf.subarray(0, f.reply);
        this.buf = this.buf.subarray(f.consumed);
        return { reply, closed: false, timedOut: false, stray };
      }
      const left = deadline - Date.now();
      if (this.closed || left <= 0) {
        const reply = this.buf;
        this.buf = Buffer.alloc(0);
        return { reply, closed: this.closed, timedOut: !this.closed, stray };
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }
}
