/**
 * What memcached does to its own process: -d (run in the background), -P (its PID file) and -u
 * (give up root once listening). Node cannot fork, so -d starts the daemon again as a detached
 * child and waits until it serves or fails, to report either with memcached's exit codes.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';

/** Set in the detached child of -d. */
const DAEMON_CHILD = 'MEMSHARD_DAEMON_CHILD';

export const isDaemonChild = (): boolean => process.env[DAEMON_CHILD] === '1';

/** Messages from the detached child to the waiting parent. */
type DaemonMessage = { ready: true } | { error: string; code: number };

/** Parent side of -d: start the detached child, exit with 0 once it serves, or with its error. */
export function daemonize(): Promise<never> {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    env: { ...process.env, [DAEMON_CHILD]: '1' },
  });
  return new Promise<never>(() => {
    child.on('message', (msg: DaemonMessage) => {
      if ('error' in msg) process.stderr.write(msg.error);
      process.exit('error' in msg ? msg.code : 0);
    });
    child.on('exit', (code) => process.exit(code ?? 1));
  });
}

/** Child side of -d: tell the parent, then stop talking to it. */
export function reportToParent(msg: DaemonMessage): void {
  if (!isDaemonChild() || process.send === undefined) return;
  process.send(msg, () => process.disconnect());
}

export function writePidFile(path: string): void {
  writeFileSync(path, `${process.pid}\n`);
  process.on('exit', () => rmSync(path, { force: true }));
}

/** memcached's EX_NOUSER (67) case. */
export class UnknownUserError extends Error {}

/**
 * -u: switch to the user (and its groups) when running as root, as memcached does after opening
 * its sockets; ignored otherwise, as in memcached.
 */
export function switchUser(user: string): void {
  if (process.getuid?.() !== 0) return;
  const entry = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((line) => line.split(':'))
    .find((fields) => fields[0] === user);
  if (entry === undefined) throw new UnknownUserError(`can't find the user ${user} to switch to`);
  const uid = Number(entry[2]);
  const gid = Number(entry[3]);
  // POSIX only, like -u itself (getuid() is 0 only there)
  const posix = process as NodeJS.Process & { initgroups(user: string, group: number): void };
  posix.setgid!(gid);
  posix.initgroups(user, gid);
  posix.setuid!(uid);
}
