/**
 * memcached's TLS options (-Z with `-o ssl_chain_cert=...,ssl_key=...` and the rest), parsed and
 * checked with memcached's messages; pure (files are read by lib/tls/context.ts).
 */

/** memcached's ssl_verify_mode: 0 none, 1 request, 2 require, 3 once (require, checked once). */
export type VerifyMode = 0 | 1 | 2 | 3;

export interface TlsSettings {
  chainCert: string | undefined;
  /** The key file; memcached takes it from the chain file when not given. */
  key: string | undefined;
  caCert: string | undefined;
  verifyMode: VerifyMode;
  /** 0 TLS 1.0, 1 TLS 1.1, 2 TLS 1.2 (memcached's default), 3 TLS 1.3. */
  minVersion: 0 | 1 | 2 | 3;
  ciphers: string | undefined;
  /** OpenSSL's SSL_FILETYPE_PEM (1) or SSL_FILETYPE_ASN1 (2: DER). */
  keyFormat: 1 | 2;
  sessionCache: boolean;
  /** ssl_wbuf_size in bytes (memcached's per-connection TLS output buffer; shown, Node sizes its own). */
  wbufSize: number;
}

/** The `-o` keys of TLS. */
export const TLS_EXTRAS = [
  'ssl_chain_cert', 'ssl_key', 'ssl_ca_cert', 'ssl_verify_mode', 'ssl_min_version', 'ssl_ciphers', 'ssl_keyformat',
  'ssl_session_cache', 'ssl_wbuf_size', 'ssl_kernel_tls',
] as const;

export const TLS_VERSION_NAMES = ['tlsv1.0', 'tlsv1.1', 'tlsv1.2', 'tlsv1.3'] as const;
/** Node's names for the same versions. */
export const NODE_TLS_VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;

export class TlsSettingsError extends Error {}

/** memcached's safe_strtol on an option value. */
function whole(text: string): number | null {
  return /^\s*[+-]?\d+$/.test(text) ? Number(text) : null;
}

/** The TLS settings for -Z and these `-o` extras; null without -Z. Throws memcached's one-line message. */
export function parseTlsSettings(enabled: boolean, x: Readonly<Record<string, string>>): TlsSettings | null {
  for (const key of TLS_EXTRAS) {
    if (key in x && x[key] === '' && key !== 'ssl_session_cache' && key !== 'ssl_kernel_tls') throw new TlsSettingsError(`Missing ${key} argument`);
  }
  const verify = x['ssl_verify_mode'] === undefined ? 0 : whole(x['ssl_verify_mode']);
  if (verify === null) throw new TlsSettingsError('could not parse argument to ssl_verify_mode');
  if (verify < 0 || verify > 3) throw new TlsSettingsError('Invalid ssl_verify_mode. Use help to see valid options.');
  const minVersion = parseMinVersion(x['ssl_min_version']);
  const keyFormat = x['ssl_keyformat'] === undefined ? 1 : whole(x['ssl_keyformat']);
  if (keyFormat === null) throw new TlsSettingsError('could not parse argument to ssl_keyformat');
  if (keyFormat !== 1 && keyFormat !== 2) throw new TlsSettingsError(`ssl_keyformat ${keyFormat}: only 1 (PEM) and 2 (DER) are supported (no OpenSSL engines in Node)`);
  const wbufKb = x['ssl_wbuf_size'] === undefined ? 16 : whole(x['ssl_wbuf_size']);
  if (wbufKb === null || wbufKb < 0) throw new TlsSettingsError('could not parse argument to ssl_wbuf_size');
  if ('ssl_kernel_tls' in x) throw new TlsSettingsError('Kernel TLS offload is not available');
  if (!enabled) return null;
  return {
    chainCert: x['ssl_chain_cert'],
    key: x['ssl_key'],
    caCert: x['ssl_ca_cert'],
    verifyMode: verify as VerifyMode,
    minVersion,
    ciphers: x['ssl_ciphers'],
    keyFormat,
    sessionCache: 'ssl_session_cache' in x,
    wbufSize: wbufKb * 1024,
  };
}

/** memcached takes 0..3; memshard also takes the names `stats settings` shows (tlsv1.2...). */
function parseMinVersion(text: string | undefined): 0 | 1 | 2 | 3 {
  if (text === undefined) return 2;
  const byName = TLS_VERSION_NAMES.indexOf(text.toLowerCase() as (typeof TLS_VERSION_NAMES)[number]);
  if (byName >= 0) return byName as 0 | 1 | 2 | 3;
  const n = whole(text);
  if (n === null) throw new TlsSettingsError('could not parse argument to ssl_min_version');
  if (n < 0 || n > 3) throw new TlsSettingsError('Invalid ssl_min_version. Use help to see valid options.');
  return n as 0 | 1 | 2 | 3;
}
