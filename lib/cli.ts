#!/usr/bin/env node
/**
 * `memshard` command line: memcached's flags and defaults (yargs), then start the server.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ConfigError, parseExtras, parseSize, validate, type Config } from './config.js';
import { Credentials } from './auth.js';
import { Server, type ServerAuth } from './server.js';
import { MEMCACHED_VERSION, MEMSHARD_VERSION } from './version.js';

function parseArgs(argv: string[]): Config {
  const args = yargs(argv)
    .scriptName('memshard')
    .version(false)
    .usage(
      `memshard ${MEMSHARD_VERSION}: a memcached ${MEMCACHED_VERSION} compatible cache, sharded over worker threads\n\nUsage: memshard [options]`,
    )
    .option('port', { alias: 'p', type: 'number', default: 11211, describe: 'TCP port to listen on' })
    .option('listen', { alias: 'l', type: 'string', describe: 'interface to listen on (default: all)' })
    .option('memory-limit', { alias: 'm', type: 'number', default: 64, describe: 'item memory in megabytes, split across shards' })
    .option('conn-limit', { alias: 'c', type: 'number', default: 1024, describe: 'max simultaneous connections' })
    .option('threads', { alias: 't', type: 'number', default: 4, describe: 'number of shard worker threads' })
    .option('max-item-size', { alias: 'I', type: 'string', default: '1m', describe: 'max item size (k/m suffix; min 1k, max 1g)' })
    .option('slab-growth-factor', { alias: 'f', type: 'number', default: 1.25, describe: 'chunk size growth factor' })
    .option('slab-min-size', { alias: 'n', type: 'number', default: 48, describe: 'min space for key+value+flags in a chunk' })
    .option('verbose', { alias: 'v', type: 'count', describe: 'verbose (print errors/warnings); -vv also prints client commands' })
    .option('enable-shutdown', { alias: 'A', type: 'boolean', default: false, describe: 'enable the ascii "shutdown" command' })
    .option('max-reqs-per-event', {
      alias: 'R',
      type: 'number',
      default: 20,
      describe: 'maximum number of requests per event, limits the requests processed per connection to prevent starvation',
    })
    .option('listen-backlog', { alias: 'b', type: 'number', default: 1024, describe: 'set the backlog queue limit' })
    .option('udp-port', { alias: 'U', type: 'number', default: 0, describe: 'UDP port (0 = off, the only value supported)' })
    .option('enable-sasl', { alias: 'S', type: 'boolean', default: false, describe: 'require SASL PLAIN authentication (binary protocol only)' })
    .option('sasl-pwdb', { type: 'string', describe: 'SASL password file, lines user:password (default: $MEMCACHED_SASL_PWDB)' })
    .option('auth-file', { alias: 'Y', type: 'string', describe: 'require text-protocol authentication against FILE (lines user:password)' })
    .option('metrics-port', { type: 'number', default: 9150, describe: 'Prometheus /metrics HTTP port (memcached_exporter\'s; 0 = off)' })
    .option('metrics-listen', { type: 'string', describe: 'interface for /metrics (default: as --listen)' })
    .option('extended', { alias: 'o', type: 'string', array: true, default: [] as string[], describe: 'comma separated memcached -o key=value options' })
    .option('version', { alias: 'V', type: 'boolean', describe: 'print version and exit' })
    .help('help')
    .alias('help', 'h')
    .strict()
    .wrap(100)
    .fail((msg, err) => {
      throw new ConfigError(msg ?? err?.message ?? 'invalid arguments');
    })
    .parseSync();

  if (args.version === true) {
    process.stdout.write(`memshard ${MEMSHARD_VERSION} (memcached ${MEMCACHED_VERSION} compatible)\n`);
    process.exit(0);
  }
  return validate({
    port: args.port,
    listen: args.listen,
    memoryLimitMb: args['memory-limit'],
    connLimit: args['conn-limit'],
    threads: args.threads,
    maxItemSize: parseSize('-I/--max-item-size', args['max-item-size']),
    growthFactor: args['slab-growth-factor'],
    minChunk: args['slab-min-size'],
    verbosity: args.verbose,
    enableShutdown: args['enable-shutdown'],
    udpPort: args['udp-port'],
    sasl: args['enable-sasl'],
    saslPwdb: args['sasl-pwdb'] ?? process.env['MEMCACHED_SASL_PWDB'],
    authFile: args['auth-file'],
    metricsPort: args['metrics-port'],
    metricsListen: args['metrics-listen'],
    reqsPerEvent: args['max-reqs-per-event'],
    backlog: args['listen-backlog'],
    extras: parseExtras(args.extended),
  });
}

/** A password file, or a ConfigError naming the flag. */
function credentials(flag: string, path: string | undefined): Credentials | null {
  if (path === undefined) return null;
  try {
    return Credentials.fromFile(path);
  } catch (err) {
    throw new ConfigError(`${flag}: ${(err as Error).message}`);
  }
}

/**
 * memcached's signals: SIGINT, SIGTERM and SIGUSR1 (its graceful stop) close and exit 0; SIGHUP is
 * logged and ignored. A second SIGINT or SIGTERM kills at once. The SIGUSR1 listener stays, as
 * while there is one Node does not open its inspector on SIGUSR1.
 */
function handleSignals(server: Server): void {
  let stopping: Promise<void> | null = null;
  const stop = (signal: NodeJS.Signals) => {
    server.log(1, `Signal handled: ${signal}.`);
    stopping ??= server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.on('SIGUSR1', stop);
  process.on('SIGHUP', (signal) => server.log(1, `Signal handled: ${signal}.`));
}

async function main(): Promise<void> {
  let config: Config;
  let auth: ServerAuth;
  try {
    config = parseArgs(hideBin(process.argv));
    auth = {
      sasl: config.sasl ? credentials('--sasl-pwdb', config.saslPwdb) : null,
      ascii: credentials('-Y/--auth-file', config.authFile),
    };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`memshard: ${err.message.split('\n')[0]}\n`);
    process.exit(64); // EX_USAGE, like memcached
  }
  const server = new Server(config, auth);
  handleSignals(server);
  try {
    await server.start();
  } catch (err) {
    process.stderr.write(`memshard: failed to start: ${(err as Error).message}\n`);
    await server.close();
    process.exit(71); // EX_OSERR
  }
}

await main();
