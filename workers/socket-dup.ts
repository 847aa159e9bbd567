/**
 * A short-lived child process that hands listening-socket descriptors to the daemon over IPC
 * (SCM_RIGHTS), because Node has no dup(): each serving thread needs its own descriptor of the
 * one listening socket, so that a thread that dies (and whose handles Node closes) closes only
 * its own. Modes:
 *   listen <port> <host|-> <backlog>  bind and listen, send descriptors of the new socket
 *   dup                              send descriptors of the socket on fd 3
 * Every message is { port } with a handle, or { error } without one. The parent asks for each
 * next descriptor once it holds the previous one, and disconnects when it has them all.
 */
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
} else if (mode === 'dup') {
  const socket = new net.Socket({ fd: 3, readable: false, writable: false });
  sendAll((socket as unknown as { _handle: Handle })._handle, 0);
}
