/**
 * The command line: memcached 1.6's flags, in `memcached -h`'s order and with its wording where
 * the meaning is the same, then memshard's own. A repeated flag takes its last value, as in
 * memcached. Flags memshard cannot honour are refused with the reason, never silently ignored.
 */
import yargs, { type Options } from 'yargs';
import { ConfigError, parseExtras, parseSize, validate, type Config, type ProtocolChoice } from '../config.js';
import { parseTlsSettings, TlsSettingsError, type TlsSettings } from '../tls/settings.js';
import type { ClusterSource } from '../cluster/discovery.js';
import { MEMCACHED_VERSION, MEMSHARD_VERSION } from '../version.js';

/** Every value given to a flag (`-l X`, `-lX`, `--listen X`, `--listen=X`), in order; undefined if none. */
function everyValue(argv: string[], short: string, long: string): string[] | undefined {
  const values: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === `-${short}` || a === `--${long}`) {
      if (i + 1 < argv.length) values.push(argv[++i]!);
    } else if (a.startsWith(`--${long}=`)) {
      values.push(a.slice(long.length + 3));
    } else if (a.startsWith(`-${short}`) && !a.startsWith('--')) {
      values.push(a.slice(2));
    }
  }
  return values.length === 0 ? undefined : values;
}

/** The Auto Discovery flags, or null when none is given. */
function clusterFlags(args: Record<string, unknown>, port: number, dnsIntervalSeconds: number): ClusterSource | null {
  const [nodes, file, dns] = ['cluster-nodes', 'cluster-file', 'cluster-dns'].map((k) => args[k] as string | undefined);
  if (nodes === undefined && file === undefined && dns === undefined) return null;
  return { nodes, file, dns, dnsIntervalSeconds, defaultPort: port };
}

/** memcached's TLS options, its messages as a ConfigError. */
function tlsSettings(enabled: boolean, extras: Record<string, string>): TlsSettings | null {
  try {
    return parseTlsSettings(enabled, extras);
  } catch (err) {
    if (err instanceof TlsSettingsError) throw new ConfigError(err.message);
    throw err;
  }
}

/** What a flag memshard refuses says (after the flag's name). */
const REFUSED: Record<string, string> = {
  'enable-coredumps': 'Node cannot raise the core file limit; run `ulimit -c unlimited` before starting',
  'lock-memory': 'Node cannot lock its memory (mlockall)',
  'disable-cas': 'not supported: CAS values are always kept',
  'memory-file': 'memshard is deliberately not persistent: there is no memory file',
};

/** Numeric flags, read as text so that a bad value can be named. */
const num = (describe: string, def?: number): Options => ({ type: 'string', describe, ...(def === undefined ? {} : { default: String(def) }) });
const flag = (describe: string): Options => ({ type: 'boolean', describe });

const OPTIONS: Array<[string, string | undefined, Options]> = [
  ['port', 'p', num('TCP port to listen on', 11211)],
  ['udp-port', 'U', num('UDP port to listen on (default: 0, off)', 0)],
  ['unix-socket', 's', { type: 'string', describe: 'UNIX socket to listen on (disables network support)' }],
  ['unix-mask', 'a', { type: 'string', default: '700', describe: 'access mask for UNIX socket, in octal' }],
  ['enable-shutdown', 'A', flag('enable ascii "shutdown" command')],
  ['listen', 'l', { type: 'string', describe: 'interface to listen on (default: INADDR_ANY); <addr> may be host:port, several separated by commas or given by repeating -l; with -Z, a notls: prefix makes a plaintext listener' }],
  ['daemon', 'd', flag('run as a daemon')],
  ['enable-coredumps', 'r', flag('maximize core file limit (refused)')],
  ['user', 'u', { type: 'string', describe: 'assume identity of <username> (only when run as root)' }],
  ['memory-limit', 'm', num('item memory in megabytes, split across the shards', 64)],
  ['disable-evictions', 'M', flag('return error on memory exhausted instead of evicting')],
  ['conn-limit', 'c', num('max simultaneous connections', 1024)],
  ['lock-memory', 'k', flag('lock down all paged memory (refused)')],
  ['verbose', 'v', { type: 'count', describe: 'verbose (print errors/warnings); -vv also prints client commands' }],
  ['license', 'i', flag('print the license and exit')],
  ['version', 'V', flag('print version and exit')],
  ['pidfile', 'P', { type: 'string', describe: 'save PID in <file>, only used with -d option' }],
  ['slab-growth-factor', 'f', num("chunk size growth factor (default: memshard's finest ladder that fits 63 classes, 1.13 for 256 KB pages; 1.25 gives memcached's classes)")],
  ['slab-min-size', 'n', num('min space used for key+value+flags', 48)],
  ['enable-largepages', 'L', flag('preallocate the item memory at start (cache_memlimit cannot change it then)')],
  ['stats-delimiter', 'D', { type: 'string', describe: 'Use <char> as the delimiter between key prefixes and IDs. This is used for per-prefix stats reporting. The default is ":" (colon). If this option is specified, stats collection is turned on automatically; if not, then it may be turned on by sending the "stats detail on" command to the server.' }],
  ['threads', 't', num('number of threads: each serves connections and owns one shard', 4)],
  ['max-reqs-per-event', 'R', num('maximum number of requests per event, limits the requests processed per connection to prevent starvation', 20)],
  ['disable-cas', 'C', flag('disable use of CAS (refused)')],
  ['listen-backlog', 'b', num('set the backlog queue limit', 1024)],
  ['protocol', 'B', { type: 'string', default: 'auto', describe: 'protocol - one of ascii, binary, or auto (auto-negotiate)' }],
  ['max-item-size', 'I', { type: 'string', default: '1m', describe: 'adjusts max item size (k/m suffix; min 1k, max 1g)' }],
  ['enable-sasl', 'S', flag('turn on SASL PLAIN authentication (binary protocol only)')],
  ['disable-flush-all', 'F', flag('disable flush_all command')],
  ['disable-dumping', 'X', flag('disable stats cachedump and lru_crawler metadump')],
  ['disable-watch', 'W', flag('disable watch commands (live logging)')],
  ['auth-file', 'Y', { type: 'string', describe: 'enable ASCII protocol authentication; format: user:pass lines' }],
  ['memory-file', 'e', { type: 'string', describe: 'mmap a file for item memory (refused)' }],
  ['enable-ssl', 'Z', flag('enable TLS/SSL, with -o ssl_chain_cert=FILE,ssl_key=FILE[,ssl_ca_cert=FILE,ssl_verify_mode=0-3,ssl_min_version=0-3,ssl_ciphers=LIST,ssl_keyformat=1|2,ssl_session_cache]')],
  ['extended', 'o', { type: 'string', array: true, default: [] as string[], describe: 'comma separated list of extended options (see README)' }],
  ['sasl-pwdb', undefined, { type: 'string', describe: 'SASL password file, lines user:password (default: $MEMCACHED_SASL_PWDB)' }],
  ['metrics-port', undefined, num("HTTP port of Prometheus /metrics (memcached_exporter's) and the dashboard at / (0 = off)", 9150)],
  ['metrics-listen', undefined, { type: 'string', describe: 'interface for /metrics and the dashboard (default: as --listen)' }],
  ['hot-keys', undefined, flag('track hot keys by name (`stats hotkeys`, the dashboard); without it key names never leave the server, only per-shard counts')],
  ['metrics-public', undefined, flag('serve the dashboard (/ on --metrics-port) without asking for the -S/-Y credentials')],
  ['cluster-nodes', undefined, { type: 'string', describe: 'ElastiCache Auto Discovery: the nodes `config get cluster` lists, host|ip|port,...' }],
  ['cluster-file', undefined, { type: 'string', describe: 'Auto Discovery nodes from this file (one host|ip|port per line), reloaded when it changes and on SIGHUP' }],
  ['cluster-dns', undefined, { type: 'string', describe: 'Auto Discovery nodes: every address this name[:port] resolves to (a Kubernetes headless service)' }],
  ['cluster-dns-interval', undefined, num('seconds between two resolutions of --cluster-dns', 30)],
];

export type Parsed = { kind: 'run'; config: Config } | { kind: 'print'; text: string };

const LICENSE = `memshard ${MEMSHARD_VERSION}: MIT License. memcached, whose protocol and command line it follows,
is BSD licensed: https://github.com/memcached/memcached/blob/master/LICENSE
`;

/** A number flag's value, or a ConfigError naming the flag and the value. */
function number(name: string, alias: string | undefined, text: unknown): number {
  const s = String(text).trim();
  if (!/^-?\d+(\.\d+)?$/.test(s)) throw new ConfigError(`${alias === undefined ? '' : `-${alias}/`}--${name}: '${String(text)}' is not a number`);
  return Number(s);
}

function octal(flag: string, text: string): number {
  if (!/^[0-7]{1,4}$/.test(text)) throw new ConfigError(`${flag}: '${text}' is not an octal file mode`);
  return parseInt(text, 8);
}

const PROTOCOLS: Record<string, ProtocolChoice> = { auto: 'auto', ascii: 'ascii', binary: 'binary', negotiate: 'auto' };

export function parseArgs(argv: string[]): Parsed {
  let builder = yargs(argv)
    .scriptName('memshard')
    .version(false)
    .help('help')
    .alias('help', 'h')
    .describe('help', 'print this help and exit')
    .usage(`memshard ${MEMSHARD_VERSION}: a memcached ${MEMCACHED_VERSION} compatible cache, sharded over worker threads\n\nUsage: memshard [options]`)
    .parserConfiguration({ 'duplicate-arguments-array': false })
    .strict()
    .wrap(100)
    .fail((msg, err) => {
      throw new ConfigError(msg ?? err?.message ?? 'invalid arguments');
    });
  for (const [name, alias, options] of OPTIONS) builder = builder.option(name, alias === undefined ? options : { alias, ...options });
  const args = builder.parseSync() as Record<string, unknown>;
  if (args['version'] === true) return { kind: 'print', text: `memshard ${MEMSHARD_VERSION} (memcached ${MEMCACHED_VERSION} compatible)\n` };
  if (args['license'] === true) return { kind: 'print', text: LICENSE };
  for (const [name, reason] of Object.entries(REFUSED)) {
    const value = args[name];
    if (value !== undefined && value !== false) {
      const alias = OPTIONS.find(([n]) => n === name)?.[1];
      throw new ConfigError(`-${alias}/--${name}: ${reason}`);
    }
  }
  const n = (name: string) => number(name, OPTIONS.find(([o]) => o === name)?.[1], args[name]);
  const protocol = PROTOCOLS[String(args['protocol'])];
  if (protocol === undefined) throw new ConfigError(`-B/--protocol: '${String(args['protocol'])}' is not one of ascii, binary, auto`);
  const extras = parseExtras(args['extended'] as string[]);
  const config = validate({
    port: n('port'),
    // memcached adds up repeated -l flags (every other repeated flag: the last one wins)
    listen: everyValue(argv, 'l', 'listen')?.join(','),
    memoryLimitMb: n('memory-limit'),
    connLimit: n('conn-limit'),
    threads: n('threads'),
    maxItemSize: parseSize('-I/--max-item-size', String(args['max-item-size'])),
    growthFactor: args['slab-growth-factor'] === undefined ? null : n('slab-growth-factor'),
    minChunk: n('slab-min-size'),
    verbosity: args['verbose'] as number,
    enableShutdown: args['enable-shutdown'] === true,
    udpPort: n('udp-port'),
    sasl: args['enable-sasl'] === true,
    saslPwdb: (args['sasl-pwdb'] as string | undefined) ?? process.env['MEMCACHED_SASL_PWDB'],
    authFile: args['auth-file'] as string | undefined,
    metricsPort: n('metrics-port'),
    metricsListen: args['metrics-listen'] as string | undefined,
    hotKeys: args['hot-keys'] === true,
    metricsPublic: args['metrics-public'] === true,
    reqsPerEvent: n('max-reqs-per-event'),
    backlog: n('listen-backlog'),
    protocol,
    flushEnabled: args['disable-flush-all'] !== true,
    dumpEnabled: args['disable-dumping'] !== true,
    daemon: args['daemon'] === true,
    pidFile: args['pidfile'] as string | undefined,
    user: args['user'] as string | undefined,
    unixSocket: args['unix-socket'] as string | undefined,
    unixMask: octal('-a/--unix-mask', String(args['unix-mask'])),
    evictions: args['disable-evictions'] !== true,
    preallocate: args['enable-largepages'] === true,
    watchEnabled: args['disable-watch'] !== true,
    prefixDelimiter: (args['stats-delimiter'] as string | undefined) ?? ':',
    detailAtStart: args['stats-delimiter'] !== undefined,
    extras,
    tls: tlsSettings(args['enable-ssl'] === true, extras),
    cluster: clusterFlags(args, n('port'), n('cluster-dns-interval')),
  });
  return { kind: 'run', config };
}
