/**
 * The server's TLS context from memcached's settings: the certificate chain, its key, the client
 * CA, checked one by one so that a failure says what memcached says (tls.c's
 * load_server_certificates), and what the metrics need to know about the certificate.
 */
import { constants, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { NODE_TLS_VERSIONS, type TlsSettings } from './settings.js';

export interface ServerTls {
  /** What tls.createServer / setSecureContext take. */
  options: tls.SecureContextOptions;
  /** When the server certificate expires (Unix seconds). */
  notAfter: number;
}

export class TlsLoadError extends Error {}

function read(path: string | undefined, what: string): Buffer {
  if (path === undefined) throw new TlsLoadError(`Error loading the ${what}: (null) : no file given`);
  try {
    return readFileSync(path);
  } catch (err) {
    throw new TlsLoadError(`Error loading the ${what}: ${path} : ${(err as Error).message}`);
  }
}

function parseKey(settings: TlsSettings, bytes: Buffer, path: string): KeyObject {
  try {
    return settings.keyFormat === 2 ? createPrivateKey({ key: bytes, format: 'der', type: 'pkcs8' }) : createPrivateKey(bytes);
  } catch (err) {
    if (settings.keyFormat === 2) {
      try {
        return createPrivateKey({ key: bytes, format: 'der', type: 'pkcs1' });
      } catch {
        // the pkcs8 error is the one to report
      }
    }
    throw new TlsLoadError(`Error loading the key: ${path} : ${(err as Error).message}`);
  }
}

/** Loads and checks everything; throws a TlsLoadError with memcached's wording. */
export function loadServerTls(settings: TlsSettings): ServerTls {
  const chainPath = settings.chainCert;
  const chain = read(chainPath, 'certificate chain');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(chain);
  } catch (err) {
    throw new TlsLoadError(`Error loading the certificate chain: ${chainPath} : ${(err as Error).message}`);
  }
  // like memcached, the key may sit in the chain file
  const keyPath = settings.key ?? chainPath!;
  const key = parseKey(settings, settings.key === undefined ? chain : read(settings.key, 'key'), keyPath);
  if (!cert.checkPrivateKey(key)) throw new TlsLoadError('Error validating the certificate: key values mismatch');
  let ca: Buffer | undefined;
  if (settings.caCert !== undefined) {
    ca = read(settings.caCert, 'CA certificate');
    try {
      new X509Certificate(ca);
    } catch (err) {
      throw new TlsLoadError(`Error loading the CA certificate: ${settings.caCert} : ${(err as Error).message}`);
    }
  }
  const options: tls.SecureContextOptions = {
    cert: chain,
    key: key.export({ format: 'pem', type: 'pkcs8' }),
    ...(ca === undefined ? {} : { ca }),
    minVersion: NODE_TLS_VERSIONS[settings.minVersion],
    ...(settings.ciphers === undefined ? {} : { ciphers: settings.ciphers }),
    // memcached turns session resumption off unless ssl_session_cache is given
    ...(settings.sessionCache ? {} : { secureOptions: constants.SSL_OP_NO_TICKET }),
  };
  try {
    // built once here so that a bad cipher list or chain fails now, with memcached's words
    tls.createSecureContext(options);
  } catch (err) {
    if (settings.ciphers !== undefined && /cipher/i.test((err as Error).message)) {
      throw new TlsLoadError(`Error setting the provided cipher(s): ${settings.ciphers}`);
    }
    throw new TlsLoadError(`Error validating the certificate: ${(err as Error).message}`);
  }
  return { options, notAfter: Math.floor(Date.parse(cert.validTo) / 1000) };
}

/** memcached's verify modes: 1 asks for a certificate (one that fails is refused), 2 and 3 require one. */
export function verifyOptions(settings: TlsSettings): { requestCert: boolean; rejectUnauthorized: boolean } {
  return { requestCert: settings.verifyMode !== 0, rejectUnauthorized: settings.verifyMode >= 2 };
}
