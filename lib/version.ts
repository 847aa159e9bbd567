import { readFileSync } from 'node:fs';

/** What `version` answers: clients parse a numeric x.y.z and gate features on it. */
export const MEMCACHED_VERSION = '1.6.45';

/** memshard's own version (package.json), reported as `memshard_version` in `stats`. */
export const MEMSHARD_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
