#!/usr/bin/env node
/**
 * `memshard`: read the command line (lib/cli/options.ts), then run the server: in the foreground,
 * or detached with -d; with -u it gives up root once listening.
 */
// first: it may start the process again before anything else is set up
import './cli/malloc-arenas.js';
import { hideBin } from 'yargs/helpers';
import { Credentials } from './auth.js';
import { daemonize, isDaemonChild, reportToParent, switchUser, UnknownUserError, writePidFile } from './cli/process.js';
import { parseArgs } from './cli/options.js';
import { ConfigError, type Config } from './config.js';
import { checkServerTls } from './tls/acceptor.js';
import { Server, type ServerAuth } from './server.js';

/** memcached's exit codes (sysexits.h). */
const EX_USAGE = 64;
const EX_NOUSER = 67;
const EX_OSERR = 71;

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
 * memcached's signals: SIGINT, SIGTERM and SIGUSR1 (its graceful stop) close and exit 0; SIGHUP
 * reloads the TLS certificates with -Z (memcached 1.6.40+) and a --cluster-file, and is otherwise
 * logged and ignored.
 * A second SIGINT or SIGTERM kills at once. The SIGUSR1 listener stays, as while there is one
 * Node does not open its inspector on SIGUSR1.
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
  process.on('SIGHUP', (signal) => {
    server.log(1, `Signal handled: ${signal}.`);
    server.reloadCluster();
    if (server.config.tls === null) return;
    const failed = server.refreshCerts();
    if (failed !== null) process.stderr.write(`Could not reload TLS certificates on SIGHUP: ${failed}\n`);
  });
}

/** Say why the server cannot run, to the terminal or to the waiting -d parent, and exit. */
function fail(message: string, code: number): never {
  const line = `memshard: ${message}\n`;
  if (isDaemonChild()) reportToParent({ error: line, code });
  else process.stderr.write(line);
  process.exit(code);
}

async function main(): Promise<void> {
  let config: Config;
  let auth: ServerAuth;
  try {
    const parsed = parseArgs(hideBin(process.argv));
    if (parsed.kind === 'print') {
      process.stdout.write(parsed.text);
      return;
    }
    config = parsed.config;
    auth = {
      sasl: config.sasl ? credentials('--sasl-pwdb', config.saslPwdb) : null,
      ascii: credentials('-Y/--auth-file', config.authFile),
    };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    fail(err.message.split('\n')[0]!, EX_USAGE);
  }
  // memcached checks its certificates before anything else starts (ssl_init), and exits EX_USAGE
  const tlsProblem = config.tls === null ? null : checkServerTls(config.tls);
  if (tlsProblem !== null) fail(tlsProblem, EX_USAGE);
  if (config.daemon && !isDaemonChild()) await daemonize();
  const server = new Server(config, auth);
  handleSignals(server);
  try {
    await server.start();
    if (config.user !== undefined) switchUser(config.user);
    if (config.daemon && config.pidFile !== undefined) writePidFile(config.pidFile);
  } catch (err) {
    await server.close();
    if (err instanceof UnknownUserError) fail(err.message, EX_NOUSER);
    fail(`failed to start: ${(err as Error).message}`, EX_OSERR);
  }
  reportToParent({ ready: true });
}

await main();
