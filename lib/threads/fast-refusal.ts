/**
 * Refusing a connection over -c before Node makes a `net.Socket` of it. memcached refuses on its
 * listener thread; here the serving threads accept for themselves, so in a flood of connections
 * every refusal runs on an event loop that also serves clients. Writing the error line straight on
 * the accepted handle and closing it costs about half of building a Socket first, its events and
 * its teardown (measured on Node 24, a bare server, one thread).
 *
 * It uses the handle's `onconnection` (what net.Server sets) and the stream binding's WriteWrap
 * (what net.Socket writes with), so where a Node lacks them nothing is hooked and the Socket path
 * in the 'connection' listener refuses as before.
 */
import type net from 'node:net';

/** The parts of libuv stream handles used here (TCPWrap, PipeWrap). */
interface ClientHandle {
  writeLatin1String(req: object, data: string): number;
  close(): void;
}
type OnConnection = (this: unknown, err: number, client: ClientHandle | undefined) => void;
interface ServerHandle {
  onconnection?: OnConnection;
}
interface StreamBinding {
  WriteWrap: new () => { handle?: ClientHandle; oncomplete?: () => void; async?: boolean };
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

function streamBinding(): StreamBinding | null {
  try {
    const b = (process as unknown as { binding(name: string): Partial<StreamBinding> }).binding('stream_wrap');
    return typeof b.WriteWrap === 'function' && b.streamBaseState instanceof Int32Array && typeof b.kLastWriteWasAsync === 'number' ? (b as StreamBinding) : null;
  } catch {
    return null;
  }
}

/**
 * While `full()` says so, connections accepted by `server` (listening) get `line` and are closed
 * before Node builds a Socket for them; `refused()` counts each. False when this Node does not
 * allow it (then the 'connection' listener must refuse).
 */
export function refuseEarly(server: net.Server, full: () => boolean, line: string, refused: () => void): boolean {
  const handle = (server as unknown as { _handle?: ServerHandle })._handle;
  const binding = streamBinding();
  const accepted = handle?.onconnection;
  if (handle === undefined || binding === null || accepted === undefined) return false;
  const { WriteWrap, streamBaseState, kLastWriteWasAsync } = binding;
  handle.onconnection = function (this: unknown, err: number, client: ClientHandle | undefined) {
    if (err !== 0 || client === undefined || !full()) return accepted.call(this, err, client);
    refused();
    const req = new WriteWrap();
    req.handle = client;
    req.async = false;
    req.oncomplete = () => client.close();
    // a fresh socket takes the line whole at once; only a queued write closes on completion
    if (client.writeLatin1String(req, line) !== 0 || streamBaseState[kLastWriteWasAsync] === 0) client.close();
  };
  return true;
}
