/**
 * A short-lived child process that hands listening-socket descriptors to the daemon over IPC
 * (SCM_RIGHTS), because Node has no dup(): each serving thread needs its own descriptor of the
 * one listening socket, so that a thread that dies (and whose handles Node closes) closes only
 * its own. Modes:
 *   listen <port> <host|-> <backlog>  bind and listen, send descriptors of the new socket
 *   listen-path <path> <mask> <backlog>  the same on a UNIX domain socket (mask: octal file mode)
 *   dup                              send descriptors of the socket on fd 3
 * Every message is { port } with a handle, or { error } without one. The parent asks for each
 * next descriptor once it holds the previous one, and disconnects when it has them all.
 */
import fs from 'node:fs';
import net from 'node:net';

interface Handle {
  fd: number;
}

function sendAll(handle: Handle, port: number): void {
  // keepOpen: the parent's copy is a new descriptor; ours must stay valid for the next send
  const send = (): void => void process.send!({ port }, handle as never, { keepOpen: true });
  process.on('message', send);
  process.on('disconnect', () => process.exit(0));
  send();
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'listen') {
  const [port, host, backlog] = args;
  const server = net.createServer();
  server.once('error', (err) => {
    process.send!({ error: err.message }, () => process.exit(1));
  });
  server.listen({ port: Number(port), host: host === '-' ? undefined : host, backlog: Number(backlog) }, () => {
    const handle = (server as unknown as { _handle: Handle })._handle;
    sendAll(handle, (server.address() as net.AddressInfo).port);
  });
} else if (mode === 'listen-path') {
  // memcached's -s: a stale socket file is removed first, and -a sets the file's mode
  const [path, mask, backlog] = args as [string, string, string];
  if (fs.existsSync(path) && fs.lstatSync(path).isSocket()) fs.unlinkSync(path);
  const server = net.createServer();
  server.once('error', (err) => {
    process.send!({ error: err.message }, () => process.exit(1));
  });
  server.listen({ path, backlog: Number(backlog) }, () => {
    fs.chmodSync(path, parseInt(mask, 8));
    sendAll((server as unknown as { _handle: Handle })._handle, 0);
  });
} else if (mode === 'dup') {
  const socket = new net.Socket({ fd: 3, readable: false, writable: false });
  sendAll((socket as unknown as { _handle: Handle })._handle, 0);
}
