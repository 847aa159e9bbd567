/**
 * Imported first by the CLI, for its side effect: before anything else runs, the daemon
 * executes itself again (same PID, same arguments) with MALLOC_ARENA_MAX=2 in its environment.
 *
 * Why: glibc's malloc gives every thread that allocates an arena of its own (up to 8 per core)
 * and keeps what is freed there. memshard's JavaScript threads and V8's helper threads left
 * 25-30 MB in a dozen arenas after the -m 64 fill of `npm run bench -- --only memory`; with two
 * arenas the RSS after that fill was 10-19 MB lower, at the same CPU per request (1-16 KB values,
 * 50 connections, 5 alternating rounds). glibc reads the variable only when the process starts,
 * hence the second start (about 40 ms).
 *
 * Where Node has no process.execve (before 22.15 and 23.11), MALLOC_ARENA_MAX is already in
 * the environment (any value, also empty: the operator's choice), or this user may not execute
 * Node's binary by its path (a Node unpacked in a root-only directory and run through a copy or
 * a descriptor), nothing happens: a failed execve ends the process instead of throwing.
 */
import { accessSync, constants } from 'node:fs';

// not exported: importing this module anywhere but the CLI would restart that process
const MALLOC_ARENAS = 2;

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

function mayExecute(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function limitMallocArenas(): void {
  const execve = (process as unknown as { execve?: Execve }).execve;
  if (process.platform !== 'linux' || typeof execve !== 'function' || process.env['MALLOC_ARENA_MAX'] !== undefined || !mayExecute(process.execPath)) return;
  execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], { ...process.env, MALLOC_ARENA_MAX: String(MALLOC_ARENAS) });
}

limitMallocArenas();
