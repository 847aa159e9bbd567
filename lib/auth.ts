/**
 * Password files for SASL PLAIN (`-S`, `--sasl-pwdb`) and memcached's text-protocol auth (`-Y`):
 * lines `user:password`. Secrets are compared in constant time and never logged.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

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
    return timingSafeEqual(given, expected ?? given.map((b) => b ^ 0xff)) && expected !== undefined;
  }
}

function digest(secret: Uint8Array): Buffer {
  return createHash('sha256').update(secret).digest();
}

/** SASL PLAIN's message: [authzid] NUL authcid NUL passwd. */
export function parsePlain(message: Uint8Array): { user: string; password: Uint8Array } | null {
  const first = message.indexOf(0);
  const second = first < 0 ? -1 : message.indexOf(0, first + 1);
  if (second < 0) return null;
  return { user: Buffer.from(message.subarray(first + 1, second)).toString('utf8'), password: message.subarray(second + 1) };
}
