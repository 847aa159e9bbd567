/**
 * A serving thread's TLS side: accepted TCP sockets go through a tls.Server of this thread (which
 * runs the handshake, bounded in time, and checks the client certificate as memcached's
 * ssl_verify_mode says), and it picks up certificates reloaded by any thread (`refresh_certs`,
 * SIGHUP) through a shared epoch: open connections keep the context they started with.
 */
import type net from 'node:net';
import tls from 'node:tls';
import { loadServerTls, TlsLoadError, verifyOptions } from './context.js';
import type { TlsSettings } from './settings.js';

/** A client that has not finished its handshake by then is dropped (it holds a connection slot). */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface TlsCounters {
  handshakeFailed(reason: string): void;
  protocolError(reason: string): void;
  newSession(): void;
  handshakeSeconds(seconds: number): void;
  /** The epoch of the certificates in use, shared by every thread. */
  epoch(): number;
}

export interface SecureClient {
  socket: tls.TLSSocket;
  /** The client certificate's subject (mutual TLS), or null. */
  peerSubject: string | null;
  protocol: string;
}

/** A client's address and port: the TCP socket and the TLS socket over it share them. */
const peerOf = (socket: net.Socket): string => `${socket.remoteAddress}:${socket.remotePort}`;

export class TlsAcceptor {
  private readonly server: tls.Server;
  private epoch: number;
  /** When each handshaking client was accepted (by peerOf), for the handshake time. */
  private readonly acceptedAt = new Map<string, number>();

  constructor(
    private readonly settings: TlsSettings,
    private readonly counters: TlsCounters,
    ready: (client: SecureClient) => void,
    private readonly log: (level: number, msg: string) => void,
  ) {
    this.server = tls.createServer({ ...loadServerTls(settings).options, ...verifyOptions(settings), handshakeTimeout: HANDSHAKE_TIMEOUT_MS });
    this.epoch = counters.epoch();
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
   * Loads the certificate files again for this thread's new handshakes; null when they are good,
   * else memcached's error text (the old certificates stay in use).
   */
  reload(): string | null {
    try {
      this.server.setSecureContext(loadServerTls(this.settings).options);
      return null;
    } catch (err) {
      if (err instanceof TlsLoadError) return err.message;
      throw err;
    }
  }

  /** This thread loaded the certificates of `epoch` itself (`refresh_certs`). */
  adopt(epoch: number): void {
    this.epoch = epoch;
  }

  /** Hand an accepted socket to the handshake; the socket is destroyed if it fails. */
  accept(raw: net.Socket): void {
    const epoch = this.counters.epoch();
    if (epoch !== this.epoch) {
      this.epoch = epoch;
      const failed = this.reload();
      if (failed !== null) this.log(1, `could not load the new TLS certificates, keeping the old: ${failed}`);
    }
    this.acceptedAt.set(peerOf(raw), performance.now());
    this.server.emit('connection', raw);
  }
}

/** For the main thread and `refresh_certs`: can the files be loaded now? null = yes, else why not. */
export function checkServerTls(settings: TlsSettings): string | null {
  try {
    loadServerTls(settings);
    return null;
  } catch (err) {
    if (err instanceof TlsLoadError) return err.message;
    throw err;
  }
}
