import t from 'tap';
import { CRAWL_WAIT_MAX_S, CRAWL_WAIT_STEP_S, CrawlSchedule } from '../lib/store/crawl-schedule.js';

const step = (checked: number, reclaimed: number, passEnded = true) => ({ checked, reclaimed, passEnded });

t.test('a pass that frees nothing puts the next one further off, up to an hour', async (t) => {
  const s = new CrawlSchedule();
  t.ok(s.due(0), 'the first pass starts at once');
  s.stepped(0, step(5000, 0, false));
  t.ok(s.due(0), 'within a pass, every step is due');
  s.stepped(1, step(5000, 0));
  t.equal(s.wait, CRAWL_WAIT_STEP_S);
  t.notOk(s.due(60));
  t.ok(s.due(61));
  for (let i = 0; i < 100; i++) s.stepped(100 * i, step(0, 0));
  t.equal(s.wait, CRAWL_WAIT_MAX_S, 'an empty cache is walked once an hour');
});

t.test('a pass that frees more than 1% of what it saw brings the next one nearer', async (t) => {
  const s = new CrawlSchedule();
  for (let i = 0; i < 3; i++) s.stepped(i, step(1000, 0));
  t.equal(s.wait, 3 * CRAWL_WAIT_STEP_S);
  s.stepped(200, step(500, 6, false));
  s.stepped(201, step(500, 5));
  t.equal(s.wait, 2 * CRAWL_WAIT_STEP_S, 'counted over the whole pass: 11 of 1000');
  s.stepped(400, step(1000, 10));
  t.equal(s.wait, 3 * CRAWL_WAIT_STEP_S, '10 of 1000 is not more than 1%');
  for (let i = 0; i < 5; i++) s.stepped(1000 + i, step(100, 50));
  t.equal(s.wait, 0, 'never below none');
  t.ok(s.due(1004));
});
