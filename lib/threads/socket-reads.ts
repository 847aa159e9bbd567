/**
 * Reads of an accepted plain socket land in one buffer the thread reuses, instead of a new buffer
 * per read: Node's `onread` option of `net.Socket` (documented since Node 12), which `net.Server`
 * does not offer for the sockets it accepts. It is switched on here the way the option's own
 * constructor code does, in the 'connection' handler, before any read can be delivered; where
 * this Node lacks the pieces, the socket keeps its 'data' events. The gain: no buffer allocated
 * (and later collected) per read, and no readable-stream work per chunk, about 1 us per request.
 *
 * A chunk in the shared buffer is valid only during the call: whatever the receiver keeps must
 * be copied (Connection copies its unparsed rest and a multi-get's keys).
 */
import type { Socket } from 'node:net';

/** The size of a thread's shared read buffer: Node's own read size. */
export const READ_BUFFER_BYTES = 64 * 1024;

interface UserBufferHandle {
  useUserBuffer(buffer: Uint8Array): void;
}

interface OnreadSymbols {
  buffer: symbol;
  callback: symbol;
  generator: symbol;
}

/**
 * net.Socket's own symbols for the `onread` option, found by name on the first socket (they are
 * not exported; every socket has the same ones); null when this Node has none of that name.
 */
let symbols: OnreadSymbols | null | undefined;

function onreadSymbols(socket: Socket): OnreadSymbols | null {
  if (symbols !== undefined) return symbols;
  const byName = new Map<string, symbol>();
  for (const s of Object.getOwnPropertySymbols(socket)) byName.set(s.description ?? '', s);
  const buffer = byName.get('kBuffer');
  const callback = byName.get('kBufferCb');
  const generator = byName.get('kBufferGen');
  symbols = buffer === undefined || callback === undefined || generator === undefined ? null : { buffer, callback, generator };
  return symbols;
}

/**
 * Hand `socket`'s input to `onChunk`: read into `shared` where this Node can (the chunk is then
 * valid only during the call, and `inShared` is true), else as the socket's own 'data' chunks
 * (TLS and UDP sockets, a null `shared`, or a Node without the pieces). After each read into
 * `shared`, `readTarget` may name another buffer for the next read to land in (see
 * request-stage.ts); null keeps `shared`.
 */
export function readChunks(socket: Socket, shared: Buffer | null, onChunk: (chunk: Buffer, inShared: boolean) => void, readTarget: () => Buffer | null = () => null): void {
  if (shared !== null && readIntoSharedBuffer(socket, shared, onChunk, readTarget)) {
    socket.resume(); // flowing, so that the client's end of input still ends the socket
  } else {
    socket.on('data', (chunk: Buffer) => onChunk(chunk, false));
  }
}

/** Have `socket`'s reads go into `buffer` (or the next `readTarget`) and to `onChunk`; false (nothing changed) when it cannot. */
function readIntoSharedBuffer(socket: Socket, buffer: Buffer, onChunk: (chunk: Buffer, inShared: boolean) => void, readTarget: () => Buffer | null): boolean {
  const handle = (socket as unknown as { _handle?: Partial<UserBufferHandle> | null })._handle;
  if (handle === null || handle === undefined || typeof handle.useUserBuffer !== 'function') return false;
  const onread = onreadSymbols(socket);
  if (onread === null) return false;
  const fields = socket as unknown as Record<symbol, unknown>;
  fields[onread.buffer] = buffer;
  // called after every read; what it returns is where the next read lands
  fields[onread.generator] = () => readTarget() ?? buffer;
  fields[onread.callback] = (bytes: number, into: Buffer) => {
    onChunk(into.subarray(0, bytes), into === buffer);
  };
  handle.useUserBuffer(buffer);
  return true;
}
