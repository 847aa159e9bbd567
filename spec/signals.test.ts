/**
 * Signals, as memcached handles them: SIGHUP does not stop the daemon, SIGUSR1 (memcached's
 * graceful shutdown) and SIGTERM close it with status 0. SIGUSR1 must never open Node's inspector.
 */
import t from 'tap';
import { connectRefused, probeVersion, startDaemon, type Daemon } from './helpers/daemon.js';

const INSPECTOR_PORT = 9229;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Something accepts connections on 127.0.0.1:port (a timeout counts as yes: the test then fails). */
async function listening(port: number): Promise<boolean> {
  return !(await connectRefused(port, 1000));
}

async function waitForExit(d: Daemon, timeoutMs = 5000): Promise<{ code: number | null; signal: NodeJS.Signals | null } | null> {
  const deadline = Date.now() + timeoutMs;
  while (d.exitStatus() === null && Date.now() < deadline) await sleep(20);
  return d.exitStatus();
}

t.test('SIGHUP is logged and ignored: the daemon still answers', async (t) => {
  const d = await startDaemon(['-t', '1', '-v']);
  t.teardown(() => d.stop());
  process.kill(d.pid, 'SIGHUP');
  await sleep(300);
  t.equal(d.exitStatus(), null, 'still running');
  t.match(await probeVersion(d.port, 2000), /^VERSION /, 'answers version');
  t.match(d.stderr(), 'Signal handled: SIGHUP.', 'logged at -v');
});

t.test('SIGUSR1 shuts down with status 0 and never opens the inspector', async (t) => {
  const d = await startDaemon(['-t', '1', '-v']);
  t.teardown(() => d.stop());
  const taken = await listening(INSPECTOR_PORT);
  process.kill(d.pid, 'SIGUSR1');
  // the inspector would listen while the process lives: look until it has exited
  let inspector = false;
  const deadline = Date.now() + 5000;
  while (d.exitStatus() === null && !inspector && Date.now() < deadline) {
    inspector = !taken && (await listening(INSPECTOR_PORT));
    await sleep(20);
  }
  t.notOk(inspector, `nothing listens on ${INSPECTOR_PORT}`);
  t.same(await waitForExit(d), { code: 0, signal: null }, 'exited with status 0');
  t.notMatch(d.stderr(), /Debugger listening/, 'no inspector banner');
  t.match(d.stderr(), 'Signal handled: SIGUSR1.', 'logged at -v');
  if (taken) t.comment(`${INSPECTOR_PORT} was already in use: the port check was skipped`);
  else t.equal(await listening(INSPECTOR_PORT), false, `${INSPECTOR_PORT}: ECONNREFUSED`);
});

t.test('SIGTERM shuts down with status 0', async (t) => {
  const d = await startDaemon(['-t', '1', '-v']);
  t.teardown(() => d.stop());
  process.kill(d.pid, 'SIGTERM');
  t.same(await waitForExit(d), { code: 0, signal: null }, 'exited with status 0');
  t.match(d.stderr(), 'Signal handled: SIGTERM.', 'logged at -v');
});
