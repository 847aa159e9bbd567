// The Node floor: the least a Node server on worker threads can do per request. Text get/set
// only, a Map per thread (no shared store, no locks, no protocol checks, no stats; a get for a
// key another thread stored misses, so its replies are shorter), reads into one buffer per thread
// as memshard's do (lib/threads/socket-reads.ts), one write per read. `npm run bench -- --floor`
// runs it beside memcached and memshard, so that a target for memshard can be set against what
// Node's sockets cost at all.
//
//   node dist/scripts/node-floor.js <port> [threads]     (Node 22.12+: threads share the port by SO_REUSEPORT)
import net from 'node:net';
import { Worker, isMainThread, workerData } from 'node:worker_threads';
import { READ_BUFFER_BYTES, readChunks } from '../lib/threads/socket-reads.js';

const CRLF = Buffer.from('\r\n');
const END = Buffer.from('END\r\n');
const STORED = Buffer.from('STORED\r\n');

function serve(port: number): void {
  const store = new Map<string, Buffer>();
  const readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  net
    .createServer({ noDelay: true }, (socket) => {
      let rest: Buffer | null = null;
      socket.on('error', () => {});
      const onChunk = (chunk: Buffer) => {
        const buf = rest === null ? chunk : Buffer.concat([rest, chunk]);
        rest = null;
        const out: Buffer[] = [];
        let pos = 0;
        for (;;) {
          const nl = buf.indexOf(10, pos);
          if (nl < 0) break;
          const line = buf.toString('latin1', pos, nl - 1);
          if (line.startsWith('get ')) {
            const key = line.slice(4);
            const v = store.get(key);
            if (v !== undefined) out.push(Buffer.from(`VALUE ${key} 0 ${v.length}\r\n`, 'latin1'), v, CRLF);
            out.push(END);
            pos = nl + 1;
          } else if (line.startsWith('set ')) {
            const fields = line.split(' ');
            const end = nl + 1 + Number(fields[4]);
            if (end + 2 > buf.length) break;
            store.set(fields[1]!, Buffer.from(buf.subarray(nl + 1, end)));
            out.push(STORED);
            pos = end + 2;
          } else {
            out.push(Buffer.from('VERSION floor\r\n'));
            pos = nl + 1;
          }
        }
        // a copy: the next read overwrites the shared buffer
        if (pos < buf.length) rest = Buffer.from(buf.subarray(pos));
        if (out.length > 0) socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
      };
      readChunks(socket, readBuffer, onChunk);
    })
    .listen({ port, host: '127.0.0.1', reusePort: true });
}

if (isMainThread) {
  const port = Number(process.argv[2]);
  const threads = Number(process.argv[3] ?? 4);
  for (let t = 0; t < threads; t++) new Worker(new URL(import.meta.url), { workerData: port });
} else {
  serve(workerData as number);
}
