/**
 * The soak's short form (scripts/soak.ts; `npm run soak -- --minutes 10` runs long): mixed load
 * against -m 64 for half a minute, every reply checked, RSS flat at the end.
 */
import t from 'tap';
import { rssVerdict, soak } from '../scripts/soak.js';
import { startDaemon } from './helpers/daemon.js';

const SECONDS = 30;

t.test(`${SECONDS} s of mixed load: every reply right, RSS flat at the end`, async (t) => {
  const d = await startDaemon(['-t', '4', '-m', '64']);
  t.teardown(() => d.stop());
  const result = await soak(d.port, d.pid, SECONDS);
  t.same(result.problems, [], 'every reply parsed and every value right');
  t.ok(result.requests > 10_000, `${result.requests} requests`);
  const verdict = rssVerdict(result.rss);
  const mb = (kb: number) => `${(kb / 1024).toFixed(1)} MB`;
  t.ok(verdict.flat, `RSS ${mb(result.rss[0]!)} at the start, ${mb(verdict.warm)} before the last quarter, ${mb(verdict.end)} in it`);
  t.equal(d.exitStatus(), null, 'the server is still running');
});
