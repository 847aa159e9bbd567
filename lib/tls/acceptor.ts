/**
 * A serving thread's TLS side: accepted TCP sockets go through a tls.Server of this thread (which
 * runs the handshake, bounded in time, and checks the client certificate as memcached's
 * ssl_verify_mode says), and it takes certificates reloaded by any thread (`refresh_certs`,
 * SIGHUP) from a BroadcastChannel: open connections keep the context they started with.
 */
import type net from 'node:net';
import tls from 'node:tls';
import { BroadcastChannel } from 'node:worker_threads';
import { loadServerTls, TlsLoadError, verifyOptions, type ServerTls } from './context.js';
import type { TlsSettings } from './settings.js';

/** A client that has not finished its handshake by then is dropped (it holds a connection slot). */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface TlsCounters {
  handshakeFailed(reason: string): void;
  protocolError(reason: string): void;
  newSession(): void;
  handshakeSeconds(seconds: number): void;
  /** New certificates went out to every thread. */
  reloaded(): void;
}

export interface SecureClient {
  socket: tls.TLSSocket;
  /** The client certificate's subject (mutual TLS), or null. */
  peerSubject: string | null;
  protocol: string;
}

/**
 * Certificates one thread loaded, for every other thread: they take the same bytes at once
 * rather than each reading the files later (which may have changed again by then).
 */
const RELOADS = 'memshard-tls-reload';

/** Tell every serving thread to use these certificates for its next handshakes. */
function publishServerTls(options: tls.SecureContextOptions): void {
  const channel = new BroadcastChannel(RELOADS);
  channel.postMessage(options);
  channel.close();
}

/** A client's address and port: the TCP socket and the TLS socket over it share them. */
const peerOf = (socket: net.Socket): string => `${socket.remoteAddress}:${socket.remotePort}`;

export class TlsAcceptor {
  private readonly server: tls.Server;
  private readonly reloads = new BroadcastChannel(RELOADS);
  /** When each handshaking client was accepted (by peerOf), for the handshake time. */
  private readonly acceptedAt = new Map<string, number>();

  constructor(
    private readonly settings: TlsSettings,
    private readonly counters: TlsCounters,
    ready: (client: SecureClient) => void,
  ) {
    this.server = tls.createServer({ ...loadServerTls(settings).options, ...verifyOptions(settings), handshakeTimeout: HANDSHAKE_TIMEOUT_MS });
    this.reloads.onmessage = (event) => this.server.setSecureContext((event as { data: tls.SecureContextOptions }).data);
    this.reloads.unref();
    this.server.on('tlsClientError', (err, socket) => {
      this.acceptedAt.delete(peerOf(socket));
      counters.handshakeFailed(err.message);
    });
    this.server.on('secureConnection', (socket: tls.TLSSocket) => {
      const started = this.acceptedAt.get(peerOf(socket));
      this.acceptedAt.delete(peerOf(socket));
      const peer = socket.getPeerCertificate();
      const hasPeer = peer !== null && Object.keys(peer).length > 0;
      // verify mode 1 asks for a certificate without requiring one; one that does not verify is refused
      if (hasPeer && !socket.authorized) {
        counters.handshakeFailed(`client certificate refused: ${String(socket.authorizationError)}`);
        socket.destroy();
        return;
      }
      // after the handshake, a TLS error is a protocol error
      socket.on('error', (err) => counters.protocolError(err.message));
      if (started !== undefined) counters.handshakeSeconds((performance.now() - started) / 1000);
      if (settings.sessionCache && !socket.isSessionReused()) counters.newSession();
      const subject = hasPeer ? Object.entries(peer.subject ?? {}).map(([k, v]) => `${k}=${String(v)}`).join(',') : null;
      ready({ socket, peerSubject: subject, protocol: `${socket.getProtocol() ?? '?'} ${socket.getCipher().name}` });
    });
  }

  /**
   * `refresh_certs`: loads the certificate files again for every thread's new handshakes; null
   * when they are good, else memcached's error text (the old certificates stay in use).
   */
  reload(): string | null {
    const failed = reloadServerTls(this.settings);
    if (failed === null) this.counters.reloaded();
    return failed;
  }

  /** Hand an accepted socket to the handshake; the socket is destroyed if it fails. */
  accept(raw: net.Socket): void {
    this.acceptedAt.set(peerOf(raw), performance.now());
    this.server.emit('connection', raw);
  }
}

/** Load the files and hand them to every serving thread (this one too); null, or why not. */
export function reloadServerTls(settings: TlsSettings): string | null {
  return loadProblem(settings, (loaded) => publishServerTls(loaded.options));
}

/** At start: can the files be loaded? null = yes, else why not (memcached's words). */
export function checkServerTls(settings: TlsSettings): string | null {
  return loadProblem(settings, () => {});
}

function loadProblem(settings: TlsSettings, use: (loaded: ServerTls) => void): string | null {
  try {
    use(loadServerTls(settings));
    return null;
  } catch (err) {
    if (err instanceof TlsLoadError) return err.message;
    throw err;
  }
}
