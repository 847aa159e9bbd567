/**
 * Password files for SASL PLAIN (`-S`, `--sasl-pwdb`) and memcached's text-protocol auth (`-Y`):
 * lines `user:password`. Secrets are compared in constant time and never logged.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { MAX_LINE } from './protocol/text.js';

export class Credentials {
  private constructor(private readonly users: Map<string, Buffer>) {}

  /** Reads `user:password` lines; blank lines and lines starting with # are skipped. */
  static fromFile(path: string): Credentials {
    const users = new Map<string, Buffer>();
    for (const raw of readFileSync(path, 'utf8').split('\n')) {
      const line = raw.replace(/\r$/, '');
      if (line.trim() === '' || line.startsWith('#')) continue;
      const colon = line.indexOf(':');
      if (colon <= 0) throw new Error(`${path}: expected user:password lines`);
      users.set(line.slice(0, colon), digest(Buffer.from(line.slice(colon + 1), 'utf8')));
    }
    if (users.size === 0) throw new Error(`${path}: no user:password line`);
    return new Credentials(users);
  }

  /** The digests, to hand to another thread (Credentials.of rebuilds them). */
  get entries(): Array<[string, Uint8Array]> {
    return [...this.users].map(([user, hash]) => [user, new Uint8Array(hash)]);
  }

  static of(entries: Array<[string, Uint8Array]>): Credentials {
    return new Credentials(new Map(entries.map(([user, hash]) => [user, Buffer.from(hash)])));
  }

  get size(): number {
    return this.users.size;
  }

  check(user: string, password: Uint8Array): boolean {
    const given = digest(password);
    const expected = this.users.get(user);
    // compare digests so that the time taken says nothing about the password, nor whether the user exists
    return cryptoModule().timingSafeEqual(given, expected ?? given.map((b) => b ^ 0xff)) && expected !== undefined;
  }
}

function digest(secret: Uint8Array): Buffer {
  return cryptoModule().createHash('sha256').update(secret).digest();
}

/** SASL PLAIN's message: [authzid] NUL authcid NUL passwd. */
export function parsePlain(message: Uint8Array): { user: string; password: Uint8Array } | null {
  const first = message.indexOf(0);
  const second = first < 0 ? -1 : message.indexOf(0, first + 1);
  if (second < 0) return null;
  return { user: Buffer.from(message.subarray(first + 1, second)).toString('utf8'), password: message.subarray(second + 1) };
}

/** What the bytes at pos make of memcached's text login (-Y), see parseAsciiLogin. */
export type AsciiLogin =
  /** more bytes are needed: `need` in all from pos (0: up to a line end) */
  | { kind: 'incomplete'; need: number }
  /** a line longer than memcached's limit without its end: close the connection */
  | { kind: 'close' }
  /** answer `reply` and go on at `next` */
  | { kind: 'reply'; reply: string; next: number }
  /** check these credentials, then go on at `next` */
  | { kind: 'login'; user: string; password: Buffer; next: number };

/**
 * memcached's text login: `set <any key> <flags> <exptime> <n>\r\n<user> <password>\r\n`, the
 * only command a -Y server takes before it; any other line is answered `unauthenticated`.
 */
export function parseAsciiLogin(buf: Buffer, pos: number, end: number): AsciiLogin {
  const nl = buf.indexOf(0x0a, pos);
  if (nl < 0 || nl >= end) return end - pos > MAX_LINE ? { kind: 'close' } : { kind: 'incomplete', need: 0 };
  const tokens = buf.toString('latin1', pos, nl).replace(/\r$/, '').split(' ').filter((t) => t !== '');
  const size = tokens.length >= 5 && tokens[0] === 'set' && /^\d+$/.test(tokens[4]!) ? Number(tokens[4]) : -1;
  if (size < 0) return { kind: 'reply', reply: 'CLIENT_ERROR unauthenticated\r\n', next: nl + 1 };
  const dataEnd = nl + 1 + size;
  if (dataEnd + 2 > end) return { kind: 'incomplete', need: dataEnd + 2 - pos };
  const next = dataEnd + 2;
  if (buf[dataEnd] !== 0x0d || buf[dataEnd + 1] !== 0x0a) return { kind: 'reply', reply: 'CLIENT_ERROR bad command line termination\r\n', next };
  const [user, password] = buf.toString('latin1', nl + 1, dataEnd).split(' ').filter((t) => t !== '');
  if (user === undefined || password === undefined) return { kind: 'reply', reply: 'CLIENT_ERROR bad authentication token format\r\n', next };
  return { kind: 'login', user, password: Buffer.from(password, 'latin1'), next };
}

/** node:crypto, loaded at the first use: the threads of a server without logins do not pay for it (about 1 MB each). */
let crypto: typeof import('node:crypto') | null = null;

function cryptoModule(): typeof import('node:crypto') {
  return (crypto ??= createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto'));
}
